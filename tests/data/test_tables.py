"""Reading user tables, atomic deterministic writes and verified model directories (uplift.data.tables)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import uplift
import uplift._files as ufiles
import uplift.data.tables as uio
import uplift.persist.container as ucontainer
from uplift._files import atomic_write_bytes, atomic_write_text
from uplift.data.campaign import campaign_data
from uplift.data.tables import read_table, write_table
from uplift.errors import UpliftInputError
from uplift.persist.container import MODEL_FORMAT, MODEL_FORMAT_VERSION, read_model_dir, write_model_dir

# Child processes must import this very package, wherever the tests run it from.
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(uio.__file__).absolute().parents[2]), os.environ.get("PYTHONPATH", "")])}
TEMP_NAME = re.compile(r"^\..+\.uplift-tmp-\d+-.+$")


def campaign_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A small campaign table with the awkward values real exports have."""
    rng = np.random.default_rng(seed)
    spend = rng.normal(50, 20, n) * 10.0 ** rng.integers(-8, 8, n)  # many magnitudes, full precision
    spend[::17] = np.nan
    return pd.DataFrame({
        "customer": [f"C{i:05d}" for i in range(n)],
        "spend": spend,
        "visits": rng.integers(0, 30, n),
        "coupon": rng.integers(0, 2, n),
        "channel": rng.choice(["web", "app", "store, mall", 'say "hi"', "café", "line\nbreak"], n),
    })


def message(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, "errors must be one line"
    return msg


# ---------------------------------------------------------------------------------------------------------
# read_table / write_table round trips
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.tsv", "t.tsv.gz", "t.parquet", "t.PQ"])
def test_round_trip_is_exact(tmp_path, name):
    frame = campaign_frame()
    write_table(frame, tmp_path / name)
    back = read_table(tmp_path / name)
    # exact floats (no rtol): the CSV float format is lossless by design
    pd.testing.assert_frame_equal(back, frame, check_dtype=False, check_exact=True)
    assert back["spend"].to_numpy().tobytes() == frame["spend"].to_numpy().tobytes()


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_column_projection_in_requested_order(tmp_path, name):
    frame = campaign_frame()
    write_table(frame, tmp_path / name)
    back = read_table(tmp_path / name, columns=["coupon", "customer", "coupon"])
    assert list(back.columns) == ["coupon", "customer"]
    assert back["coupon"].tolist() == frame["coupon"].tolist()
    assert back["customer"].tolist() == frame["customer"].tolist()


def test_csv_with_byte_order_mark_reads_clean_names(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes(b"\xef\xbb\xbfcustomer,coupon\nA,1\n")
    assert list(read_table(p).columns) == ["customer", "coupon"]


def test_parquet_named_index_comes_back_as_a_column(tmp_path):
    p = tmp_path / "indexed.parquet"
    pd.DataFrame({"spend": [1.0, 2.0]}, index=pd.Index(["A", "B"], name="customer")).to_parquet(p)
    back = read_table(p)
    assert list(back.columns) == ["customer", "spend"] and back["customer"].tolist() == ["A", "B"]
    assert read_table(p, columns=["customer"])["customer"].tolist() == ["A", "B"]


# ---------------------------------------------------------------------------------------------------------
# read_table errors: each names the file (and column) and says what to do
# ---------------------------------------------------------------------------------------------------------
def test_missing_file_is_named_with_a_close_match(tmp_path):
    (tmp_path / "campaign.csv").write_text("a\n1\n")
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / "campain.csv")
    msg = message(err)
    assert "campain.csv does not exist" in msg and "'campaign.csv'" in msg


@pytest.mark.parametrize("name", ["table.txt", "table.xlsx", "table", "table.gz"])
def test_unsupported_extension(tmp_path, name):
    (tmp_path / name).write_text("a,b\n1,2\n")
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / name)
    msg = message(err)
    assert name in msg and ".csv" in msg and ".parquet" in msg


@pytest.mark.parametrize("name", ["empty.csv", "empty.parquet", "empty.tsv"])
def test_zero_byte_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(UpliftInputError, match=r"empty\.\w+ is empty \(0 bytes\)"):
        read_table(tmp_path / name)


def test_gzip_of_nothing_and_blank_first_line(tmp_path):
    (tmp_path / "nothing.csv.gz").write_bytes(gzip.compress(b"", mtime=0))
    with pytest.raises(UpliftInputError, match=r"nothing\.csv\.gz has no header line"):
        read_table(tmp_path / "nothing.csv.gz")
    (tmp_path / "blank.csv").write_text("\n\n")
    with pytest.raises(UpliftInputError, match=r"blank\.csv has no header line"):
        read_table(tmp_path / "blank.csv")


def test_header_only_csv_and_empty_parquet(tmp_path):
    (tmp_path / "head.csv").write_text("customer,coupon\n")
    with pytest.raises(UpliftInputError, match=r"head\.csv has a header but no rows"):
        read_table(tmp_path / "head.csv")
    pd.DataFrame({"customer": pd.Series([], dtype=str)}).to_parquet(tmp_path / "head.parquet")
    with pytest.raises(UpliftInputError, match=r"head\.parquet has columns but no rows"):
        read_table(tmp_path / "head.parquet")


@pytest.mark.parametrize(("name", "content", "found"), [
    ("semi.csv", "customer;spend;coupon\nA;1,5;1\n", "';'"),
    ("semi_comma.csv", "customer;spend, EUR;coupon\nA;1,5;1\n", "';'"),  # split once, at the stray comma
    ("tab.csv", "customer\tspend\nA\t1\n", "'\\t'"),
    ("comma.tsv", "customer,spend\nA,1\n", "','"),
])
def test_wrong_delimiter_is_recognised(tmp_path, name, content, found):
    (tmp_path / name).write_text(content)
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / name)
    msg = message(err)
    assert f"{name} looks like {found}-separated" in msg


def test_a_separator_inside_one_column_name_is_not_a_delimiter_problem(tmp_path):
    (tmp_path / "ok.csv").write_text('"spend;EUR",coupon,visits\n1,0,3\n')
    assert list(read_table(tmp_path / "ok.csv").columns) == ["spend;EUR", "coupon", "visits"]


def test_non_utf8_reports_offset_and_line(tmp_path):
    lines = ["customer,city"] + [f"C{i},Paris" for i in range(60_000)]
    lines[45_001] = "C45000,Montr\xe9al"  # latin-1 é, far beyond pandas' first parsing chunk
    raw = ("\n".join(lines) + "\n").encode("latin-1")
    offset = raw.index(b"\xe9")
    (tmp_path / "latin.csv").write_bytes(raw)
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / "latin.csv")
    msg = message(err)
    assert "latin.csv is not valid UTF-8" in msg and "0xe9" in msg
    assert f"offset {offset} " in msg and "(line 45002)" in msg and "re-save it as UTF-8" in msg

    (tmp_path / "latin.csv.gz").write_bytes(gzip.compress(raw, mtime=0))
    pattern = rf"latin\.csv\.gz is not valid UTF-8.*offset {offset} .*line 45002"
    with pytest.raises(UpliftInputError, match=pattern):
        read_table(tmp_path / "latin.csv.gz")


def test_non_utf8_in_the_header(tmp_path):
    (tmp_path / "h.csv").write_bytes(b"customer,r\xe9gion\nA,x\n")
    with pytest.raises(UpliftInputError, match=r"h\.csv is not valid UTF-8: byte 0xe9 at offset 10 \(line 1"):
        read_table(tmp_path / "h.csv")


def test_bad_byte_located_exactly_whatever_the_read_chunking(tmp_path, monkeypatch):
    good = "a,b\nx,é€\n".encode()  # multi-byte characters will straddle chunk boundaries
    (tmp_path / "ok.csv").write_bytes(good)
    bad = good + b"y,\xff\n"
    (tmp_path / "bad.csv").write_bytes(bad)
    offset = bad.index(b"\xff")
    for chunk in range(1, len(bad) + 2):
        monkeypatch.setattr(uio, "_CHUNK", chunk)
        assert "offset" not in str(uio._utf8_error(tmp_path / "ok.csv"))  # nothing to point at
        msg = str(uio._utf8_error(tmp_path / "bad.csv"))
        assert f"byte 0xff at offset {offset} (line 3)" in msg, (chunk, msg)


def test_duplicate_column_names_are_rejected_not_renamed(tmp_path):
    (tmp_path / "dup.csv").write_text("customer,spend,Spend,spend\nA,1,2,3\n")
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / "dup.csv")
    assert "dup.csv has two columns named 'spend'" in message(err)
    twice = pa.table([pa.array([1]), pa.array([2])], names=["coupon", "coupon"])
    pq.write_table(twice, tmp_path / "dup.parquet")
    with pytest.raises(UpliftInputError, match=r"dup\.parquet has two columns named 'coupon'"):
        read_table(tmp_path / "dup.parquet")


def test_parquet_that_is_not_parquet(tmp_path):
    write_table(campaign_frame(), tmp_path / "really_csv.csv")
    os.rename(tmp_path / "really_csv.csv", tmp_path / "really_csv.parquet")
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / "really_csv.parquet")
    msg = message(err)
    assert "really_csv.parquet is not a Parquet file" in msg and "perhaps a CSV" in msg

    write_table(campaign_frame(), tmp_path / "good.parquet")
    raw = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])  # a download that stopped half way
    with pytest.raises(UpliftInputError, match=r"cut\.parquet is not a Parquet file"):
        read_table(tmp_path / "cut.parquet")
    (tmp_path / "mangled.parquet").write_bytes(raw[:4] + b"\x00" * (len(raw) - 8) + raw[-4:])
    with pytest.raises(UpliftInputError, match=r"mangled\.parquet is damaged and cannot be read as Parquet"):
        read_table(tmp_path / "mangled.parquet")


def test_plain_text_named_gz_is_read_by_its_bytes_and_a_broken_gzip_is_named(tmp_path):
    (tmp_path / "plain.csv.gz").write_text("a,b\n1,2\n")
    assert read_table(tmp_path / "plain.csv.gz").to_dict("list") == {"a": [1], "b": [2]}
    (tmp_path / "cut.csv").write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 1000)[:40])
    with pytest.raises(UpliftInputError, match=r"cut\.csv is not a valid gzip file"):
        read_table(tmp_path / "cut.csv")


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_missing_requested_columns_are_named_with_close_matches(tmp_path, name):
    write_table(campaign_frame(), tmp_path / name)
    with pytest.raises(UpliftInputError) as err:
        read_table(tmp_path / name, columns=["spnd", "coupon", "zzz"])
    msg = message(err)
    assert f"{name} has no column 'spnd' (did you mean 'spend'?)" in msg
    assert "no column 'zzz';" in msg and "its columns are: customer, spend, visits, coupon, channel" in msg


def test_ragged_rows(tmp_path):
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(UpliftInputError, match=r"ragged\.csv cannot be parsed .*line 3"):
        read_table(tmp_path / "ragged.csv")
    # every row one field too long: pandas alone would silently make column 'a' the index
    (tmp_path / "shifted.csv").write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(UpliftInputError, match=r"shifted\.csv: the first data row has 3 fields"):
        read_table(tmp_path / "shifted.csv")


def test_directory_instead_of_file(tmp_path):
    (tmp_path / "data.parquet").mkdir()
    with pytest.raises(UpliftInputError, match=r"data\.parquet is a directory"):
        read_table(tmp_path / "data.parquet")


# ---------------------------------------------------------------------------------------------------------
# write_table: deterministic, atomic, safe
# ---------------------------------------------------------------------------------------------------------
def test_csv_format_is_documented_exactly(tmp_path):
    frame = pd.DataFrame({"customer": ["A", "B,C"], "uplift": [0.1, np.nan], "n": [3, 1_000_000],
                          "score": [1 / 3, 1e-20]})
    write_table(frame, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes() == (
        b'customer,uplift,n,score\nA,0.1,3,0.3333333333333333\n"B,C",,1000000,1e-20\n')
    write_table(frame, tmp_path / "i.tsv", index=True)
    assert (tmp_path / "i.tsv").read_text().splitlines()[1] == "0\tA\t0.1\t3\t0.3333333333333333"


WRITE_ONCE = """
import sys, numpy as np, pandas as pd
from uplift.data.tables import write_table
rng = np.random.default_rng(5)
frame = pd.DataFrame({"x": rng.normal(size=5000), "k": rng.integers(0, 9, 5000),
                      "s": rng.choice(["a", "b", "café"], 5000)})
for name in sys.argv[2:]:
    write_table(frame, sys.argv[1] + "/" + name)
"""
FORMATS = ["t.csv", "t.csv.gz", "t.tsv", "t.parquet"]


def test_writes_are_byte_identical_across_runs_and_time(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for k, sub in enumerate("ab"):
        if k:
            time.sleep(1.1)  # so that any embedded clock (second resolution, as gzip's) would differ
        subprocess.run([sys.executable, "-c", WRITE_ONCE, str(tmp_path / sub), *FORMATS], check=True,
                       env=CHILD_ENV)
    for name in FORMATS:
        first, second = (tmp_path / "a" / name).read_bytes(), (tmp_path / "b" / name).read_bytes()
        assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest(), name
    assert (tmp_path / "a" / "t.csv.gz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip MTIME field
    meta = pq.ParquetFile(tmp_path / "a" / "t.parquet").metadata
    assert set(meta.metadata) == {b"ARROW:schema", b"pandas"}
    assert meta.row_group(0).column(0).compression == "SNAPPY"


def test_same_frame_same_bytes_in_process(tmp_path):
    frame = campaign_frame(500)
    for name in FORMATS:
        write_table(frame, tmp_path / f"1{name}")
        write_table(frame.copy(), tmp_path / f"2{name}")
        assert (tmp_path / f"1{name}").read_bytes() == (tmp_path / f"2{name}").read_bytes(), name


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(UpliftInputError) as err:
        write_table(campaign_frame(), tmp_path / "nope" / "out.csv")
    assert f"directory {tmp_path / 'nope'} does not exist" in message(err)
    with pytest.raises(UpliftInputError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "r.html", "x")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write to read-only directories")
def test_read_only_directory_is_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UpliftInputError, match=rf"directory {re.escape(str(ro))} is not writable"):
            write_table(campaign_frame(), ro / "out.csv")
    finally:
        ro.chmod(0o755)


def test_unwritable_directory_error_from_the_system(tmp_path, monkeypatch):
    # Root ignores permission bits, so make the system refuse the temp file the way a read-only mount does.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ufiles.tempfile, "mkstemp", refuse)
    with pytest.raises(UpliftInputError) as err:
        write_table(campaign_frame(), tmp_path / "out.parquet")
    assert f"directory {tmp_path} is not writable (Permission denied)" in message(err)


def test_output_may_not_overwrite_the_input(tmp_path, monkeypatch):
    src = tmp_path / "customers.csv"
    write_table(campaign_frame(), src)
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    os.link(src, tmp_path / "hardlink.csv")
    (tmp_path / "sub").mkdir()
    cases = [(src, src), ("customers.csv", str(src)), (tmp_path / "sub" / ".." / "customers.csv", src),
             (tmp_path / "hardlink.csv", [tmp_path / "other.csv", src])]
    for out, protect in cases:
        with pytest.raises(UpliftInputError) as err:
            write_table(pd.DataFrame({"uplift": [0.0]}), out, protect=protect)
        assert "refusing to overwrite the input file" in message(err)
        assert Path(out).name in message(err)
    assert src.read_bytes() == before
    write_table(pd.DataFrame({"uplift": [0.0]}), tmp_path / "pred.csv", protect=src)  # another file is fine


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "scores.parquet"
    write_table(campaign_frame(), out)
    before = out.read_bytes()
    mixed = pd.DataFrame({"x": [1, "a", 2.5]}, dtype=object)  # pyarrow cannot give this column one type
    with pytest.raises(UpliftInputError, match=r"cannot write .*scores\.parquet as Parquet"):
        write_table(mixed, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]


def test_write_refuses_duplicate_columns_and_unknown_extensions(tmp_path):
    frame = pd.DataFrame([[1, 2]], columns=["uplift", "uplift"])
    with pytest.raises(UpliftInputError, match="two columns are named 'uplift'"):
        write_table(frame, tmp_path / "d.csv")
    with pytest.raises(UpliftInputError, match=r"out\.xlsx: unsupported file type '\.xlsx'"):
        write_table(campaign_frame(), tmp_path / "out.xlsx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_permissions_follow_umask_or_the_replaced_file(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "new.bin", b"x")
        assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
        (tmp_path / "kept.bin").write_bytes(b"old")
        (tmp_path / "kept.bin").chmod(0o640)
        atomic_write_bytes(tmp_path / "kept.bin", b"new")
        assert (tmp_path / "kept.bin").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_atomic_write_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "r.html", "a\r\nb\né")
    assert (tmp_path / "r.html").read_bytes() == b"a\r\nb\n\xc3\xa9"  # no newline translation
    atomic_write_bytes(tmp_path / "r.html", b"\x00")
    assert (tmp_path / "r.html").read_bytes() == b"\x00"
    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "r.html", "text")
    with pytest.raises(UpliftInputError, match="is a directory"):
        atomic_write_bytes(tmp_path, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# ---------------------------------------------------------------------------------------------------------
# crash safety: SIGKILL a writer at a random moment
# ---------------------------------------------------------------------------------------------------------
FRAMES = """
import numpy as np, pandas as pd

def frames(n):
    out = []
    for seed in (1, 2):
        rng = np.random.default_rng(seed)
        out.append(pd.DataFrame({"x": rng.normal(size=n), "k": rng.integers(0, 10**6, n),
                                 "s": rng.choice(["web", "app", "store"], n)}))
    return out

def model_files(version):
    rng = np.random.default_rng(version)
    return {f"fold{k}/m{j}.bin": rng.bytes(150_000) for k in range(4) for j in range(4)}
"""
TABLE_WRITER = FRAMES + """
import sys
from uplift.data.tables import write_table
a, b = frames(int(sys.argv[2]))
while True:
    write_table(a, sys.argv[1])
    write_table(b, sys.argv[1])
"""
MODEL_WRITER = FRAMES + """
import sys
from uplift.persist.container import write_model_dir
while True:
    for v in (1, 2):
        write_model_dir(sys.argv[1], model_files(v), {"version": v})
"""


def _kill_mid_write(script: str, target: Path, rng: random.Random, *args: str) -> bool:
    """Run ``script`` writing ``target`` over and over; SIGKILL it mid-write. True if a temp was left."""
    proc = subprocess.Popen([sys.executable, "-c", script, str(target), *args], stderr=subprocess.PIPE,
                            env=CHILD_ENV)
    def state():
        return (target.stat().st_size, target.stat().st_mtime_ns) if target.exists() else None

    initial = state()
    try:
        deadline = time.monotonic() + 60
        # Wait until a write is under way (a temp exists, or - were writes not atomic - the target changed),
        # then let it run a random while longer.
        while not any(TEMP_NAME.match(p.name) for p in target.parent.iterdir()) and state() == initial:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "writer never started"
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.03))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    return any(TEMP_NAME.match(p.name) for p in target.parent.iterdir())


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize("name", ["big.csv", "big.parquet"])
def test_killed_table_writer_leaves_old_or_new_never_partial(tmp_path, name):
    namespace: dict = {}
    exec(FRAMES, namespace)
    n = 60_000 if name.endswith(".csv") else 150_000  # each write lasts far longer than the kill delay
    complete = set()
    for k, frame in enumerate(namespace["frames"](n)):
        write_table(frame, tmp_path / f"ref{k}_{name}")
        complete.add((tmp_path / f"ref{k}_{name}").read_bytes())
    rng = random.Random(7)
    left_temp = 0
    for trial in range(2):
        work = tmp_path / f"trial{trial}"
        work.mkdir()
        target = work / name
        if trial:  # an old complete file is in place before the writer starts
            target.write_bytes((tmp_path / f"ref0_{name}").read_bytes())
        left_temp += _kill_mid_write(TABLE_WRITER, target, rng, str(n))
        if target.exists():
            assert target.read_bytes() in complete
            assert len(read_table(target)) == n
        else:
            assert trial == 0  # absent is only acceptable when there was no old file
        for other in work.iterdir():
            assert other == target or TEMP_NAME.match(other.name), other.name
    assert left_temp >= 1, "no kill landed inside a write; the test proved nothing"


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_killed_model_writer_leaves_a_complete_model(tmp_path):
    namespace: dict = {}
    exec(FRAMES, namespace)
    versions = {v: namespace["model_files"](v) for v in (1, 2)}
    rng = random.Random(3)
    for trial in range(2):
        work = tmp_path / f"trial{trial}"
        work.mkdir()
        target = work / "model"
        write_model_dir(target, versions[1], {"version": 1})
        _kill_mid_write(MODEL_WRITER, target, rng)
        manifest, files = read_model_dir(target)  # verifies every hash
        assert files == versions[manifest["version"]]
        for other in work.iterdir():
            assert other == target or TEMP_NAME.match(other.name), other.name


# ---------------------------------------------------------------------------------------------------------
# model directories
# ---------------------------------------------------------------------------------------------------------
FILES = {"study.json": b'{"a": 1}', "fold0/mu0.txt": b"tree\n", "oof/uplift_t.npy": bytes(range(256))}


def test_model_dir_round_trip_and_manifest(tmp_path):
    d = tmp_path / "model"
    write_model_dir(d, FILES, {"schema": {"names": ["age"]}, "training_data_sha256": "ab"})
    manifest, files = read_model_dir(d)
    assert files == FILES
    raw = (d / "manifest.json").read_bytes()
    on_disk = json.loads(raw)
    assert on_disk == {k: v for k, v in manifest.items() if k not in ("digest", "signature")}
    assert manifest["digest"] == hashlib.sha256(raw).hexdigest() and manifest["signature"] == "unsigned"
    assert manifest["format"] == MODEL_FORMAT == "uplift-study"
    assert manifest["format_version"] == MODEL_FORMAT_VERSION == 2
    assert manifest["schema"] == {"names": ["age"]} and manifest["training_data_sha256"] == "ab"
    assert manifest["sha256"] == {k: hashlib.sha256(v).hexdigest() for k, v in FILES.items()}
    assert manifest["uplift_version"] == uplift.__version__
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp left behind


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_model_dir_is_replaced_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(ucontainer, "_exchange", lambda a, b: False)
    d = tmp_path / "model"
    write_model_dir(d, {**FILES, "fold1/old_only.txt": b"old"}, {"run": 1})
    write_model_dir(d, FILES, {"run": 2})
    manifest, files = read_model_dir(d)
    assert manifest["run"] == 2 and files == FILES
    assert not (d / "fold1").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux-only")
def test_exchange_swaps_directories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("from a")
    if not ucontainer._exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("file system without RENAME_EXCHANGE")
    assert (tmp_path / "b" / "x").read_text() == "from a" and not (tmp_path / "a" / "x").exists()


def test_failed_model_save_keeps_the_old_model(tmp_path, monkeypatch):
    d = tmp_path / "model"
    write_model_dir(d, FILES, {"run": 1})
    real_fsync = os.fsync
    calls = []

    def flaky_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(ucontainer.os, "fsync", flaky_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_model_dir(d, {"other.txt": b"new"}, {"run": 2})
    monkeypatch.undo()
    manifest, files = read_model_dir(d)
    assert manifest["run"] == 1 and files == FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_second_rename_failure_restores_the_old_model(tmp_path, monkeypatch):
    d = tmp_path / "model"
    write_model_dir(d, FILES, {"run": 1})
    monkeypatch.setattr(ucontainer, "_exchange", lambda a, b: False)
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == d and not Path(src).name.endswith("-old"):
            raise OSError(5, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(ucontainer.os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        write_model_dir(d, {"other.txt": b"new"}, {"run": 2})
    monkeypatch.undo()
    assert read_model_dir(d)[0]["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_refuses_to_replace_something_that_is_not_a_model(tmp_path):
    d = tmp_path / "reports"
    d.mkdir()
    (d / "q3.xlsx").write_bytes(b"precious")
    with pytest.raises(UpliftInputError) as err:
        write_model_dir(d, FILES, {})
    assert f"{d} exists and is not an uplift model directory" in message(err)
    assert (d / "q3.xlsx").read_bytes() == b"precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UpliftInputError, match="it is a file"):
        write_model_dir(tmp_path / "file", FILES, {})
    missing_parent = re.escape(str(tmp_path / "no"))
    with pytest.raises(UpliftInputError, match=rf"directory {missing_parent} does not exist"):
        write_model_dir(tmp_path / "no" / "model", FILES, {})
    (tmp_path / "empty").mkdir()
    write_model_dir(tmp_path / "empty", FILES, {})  # an empty directory holds nothing to lose
    assert read_model_dir(tmp_path / "empty")[1] == FILES


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", ".hidden", "a/.b", "a\\b.txt", "a//b",
                                  "manifest.json", "C:x.txt", "", "a/./b"])
def test_unsafe_file_names_are_refused_on_write(tmp_path, name):
    with pytest.raises(UpliftInputError, match="invalid model file name"):
        write_model_dir(tmp_path / "m", {name: b"x"}, {})
    assert not (tmp_path / "escape.txt").exists() and list(tmp_path.iterdir()) == []


def test_colliding_names_and_bad_manifests_are_refused(tmp_path):
    clashes = ({"A.txt": b"1", "a.txt": b"2"}, {"fold": b"1", "fold/m.txt": b"2"}, {"F/x": b"1", "f": b"2"})
    for files in clashes:
        with pytest.raises(UpliftInputError, match="collides"):
            write_model_dir(tmp_path / "m", files, {})
    with pytest.raises(UpliftInputError, match="'format_version' is set by write_model_dir"):
        write_model_dir(tmp_path / "m", FILES, {"format_version": 7})
    with pytest.raises(UpliftInputError, match="not plain JSON"):
        write_model_dir(tmp_path / "m", FILES, {"auc": float("nan")})
    with pytest.raises(TypeError):
        write_model_dir(tmp_path / "m", {"a.txt": "text"}, {})
    assert list(tmp_path.iterdir()) == []


def _saved(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    write_model_dir(d, FILES, {"run": 1})
    return d


def _edit_manifest(d: Path, **changes) -> None:
    """Change the manifest as someone who knows the format would: its self-check recomputed."""
    manifest = json.loads((d / "manifest.json").read_bytes())
    manifest.update(changes)
    manifest["self_sha256"] = ucontainer._self_sha256(manifest)
    (d / "manifest.json").write_text(json.dumps(manifest))


def test_tampered_file_fails_its_hash(tmp_path):
    d = _saved(tmp_path)
    raw = bytearray((d / "oof" / "uplift_t.npy").read_bytes())
    raw[100] ^= 1
    (d / "oof" / "uplift_t.npy").write_bytes(bytes(raw))
    with pytest.raises(UpliftInputError) as err:
        read_model_dir(d)
    assert "model file 'oof/uplift_t.npy'" in message(err) and "sha256" in message(err)


def test_extra_missing_and_linked_files_are_refused(tmp_path):
    d = _saved(tmp_path)
    (d / "fold0" / "evil.skops").write_bytes(b"x")
    with pytest.raises(UpliftInputError, match=r"contains 'fold0/evil.skops', which its manifest does not"):
        read_model_dir(d)
    (d / "fold0" / "evil.skops").unlink()
    (d / ".DS_Store").write_bytes(b"finder")  # OS clutter is ignored, never read
    assert read_model_dir(d)[1] == FILES
    (d / "fold0" / "mu0.txt").unlink()
    with pytest.raises(UpliftInputError, match=r"is missing 'fold0/mu0.txt', which its manifest lists"):
        read_model_dir(d)
    (tmp_path / "outside.txt").write_bytes(b"tree\n")
    (d / "fold0" / "mu0.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(UpliftInputError, match=r"symbolic link fold0/mu0.txt"):
        read_model_dir(d)


def test_newer_format_version_names_the_uplift_version_needed(tmp_path):
    d = _saved(tmp_path)
    _edit_manifest(d, format_version=MODEL_FORMAT_VERSION + 1, uplift_version="9.9.0")
    with pytest.raises(UpliftInputError) as err:
        read_model_dir(d)
    msg = message(err)
    assert f"model format version {MODEL_FORMAT_VERSION + 1}, written by uplift 9.9.0" in msg
    assert "pip install -U 'uplift>=9.9.0'" in msg


@pytest.mark.parametrize("changes", [{"format": "sklearn-pickle"}, {"format_version": "1"},
                                     {"format_version": 0}, {"format_version": True}])
def test_foreign_or_unknown_formats_are_refused(tmp_path, changes):
    d = _saved(tmp_path)
    _edit_manifest(d, **changes)
    with pytest.raises(UpliftInputError) as err:
        read_model_dir(d)
    assert str(d) in message(err)
    assert ("not 'uplift-study'" in message(err)) == ("format" in changes)


def test_damaged_manifests(tmp_path):
    d = _saved(tmp_path)
    _edit_manifest(d, sha256={"../../etc/passwd": "0" * 64})
    with pytest.raises(UpliftInputError, match="invalid model file name '../../etc/passwd'"):
        read_model_dir(d)
    _edit_manifest(d, sha256={"study.json": "not-a-hash"})
    with pytest.raises(UpliftInputError, match="no valid sha256 list"):
        read_model_dir(d)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(UpliftInputError, match=r"manifest\.json is not valid JSON"):
        read_model_dir(d)
    (d / "manifest.json").unlink()
    with pytest.raises(UpliftInputError, match=rf"{re.escape(str(d))} is not an uplift model directory"):
        read_model_dir(d)


def test_missing_model_dir_mentions_an_interrupted_save(tmp_path):
    with pytest.raises(UpliftInputError, match=r"model directory .*model does not exist; check the path"):
        read_model_dir(tmp_path / "model")
    (tmp_path / ".model.k2j4.old.tmp").mkdir()  # the temp name of earlier versions
    with pytest.raises(UpliftInputError, match=r"interrupted save left \.model\.k2j4\.old\.tmp"):
        read_model_dir(tmp_path / "model")
    (tmp_path / ".model.k2j4.old.tmp").rmdir()
    (tmp_path / ".model.uplift-tmp-77-k2j4-old").mkdir()
    with pytest.raises(UpliftInputError, match=r"interrupted save left \.model\.uplift-tmp-77-k2j4-old"):
        read_model_dir(tmp_path / "model")


@pytest.mark.parametrize("index", [None, pd.RangeIndex(5, 10), pd.Index(["a", "b", "c", "d", "e"], name="customer"),
                                   pd.Index([3, 1, 4, 1, 5])])
def test_parquet_read_column_by_column_is_the_whole_table_read(tmp_path, index):
    from uplift.data.tables import _parquet_frame
    frame = pd.DataFrame({
        "spend": [1.5, None, 3.0, 4.0, 5.0], "visits": pd.array([1, None, 3, 4, 5], dtype="Int64"),
        "channel": pd.Categorical(["web", "app", "web", None, "store"]), "note": ["x", None, "z", "w", "v"],
        "when": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01", "2024-05-01"]).tz_localize("UTC"),
        "code": [1, 2, 3, 4, 5], "f1": np.arange(5, dtype=np.float32), "share": pd.array([0.5, None, 1, 2, 3],
                                                                                         dtype="Float32"),
        "f2": np.array([np.nan, 1, 2, 3, 4], np.float32)}, index=index)
    p = tmp_path / "t.parquet"
    frame.to_parquet(p)
    names = pq.ParquetFile(p).schema_arrow.names
    for columns in (None, ["code", "spend"], names, ["f2", "code", "f1"], ["share", "f1"]):
        expected = pq.read_table(p, columns=columns).to_pandas()
        pd.testing.assert_frame_equal(_parquet_frame(pq.ParquetFile(p), columns), expected)
    assert read_table(p)["spend"].isna().sum() == 1


def test_a_parquet_files_float32_features_are_held_once_by_the_frame_and_the_feature_matrix(tmp_path):
    """Read column by column, the float32 columns still land in one block, so the study's feature matrix is a
    view of the frame's memory (the features are not held twice)."""
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({f"f{j}": rng.normal(size=n).astype(np.float32) for j in range(4)})
    frame.insert(2, "channel", rng.choice(["web", "app"], n))
    frame["propensity"] = np.float32(0.5)
    frame["treatment"] = rng.integers(0, 2, n)
    frame["buy"] = rng.integers(0, 2, n)
    frame.to_parquet(tmp_path / "c.parquet")
    read = read_table(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(read, pd.read_parquet(tmp_path / "c.parquet"))
    data = campaign_data(read, "treatment", "buy", exclude=["channel", "propensity"])
    assert data.X.dtype == np.float32 and data.X.shape == (n, 4)
    assert np.shares_memory(data.X, data.frame["f0"].to_numpy()) and np.shares_memory(data.X, read["f3"].to_numpy())
    np.testing.assert_array_equal(data.X, frame[[f"f{j}" for j in range(4)]].to_numpy())

"""Outputs never destroy an input, and an interrupted write leaves the old file or the new one, then no trace.

Kill-mid-write and concurrent writers run in real child processes writing through :func:`atomic_file`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uplift._files import (
    TMP_MARK,
    atomic_file,
    atomic_write_bytes,
    check_output_path,
    json_text,
    plain_json,
    remove_stale_temps,
)
from uplift.errors import UpliftInputError

ROOT = Path(__file__).resolve().parents[1]

#: A child that writes ``size`` bytes of ``fill`` to ``path`` through atomic_file in 1 MB chunks, printing
#: "started" after the first chunk and sleeping ``pause`` seconds between chunks (so it can be killed mid-write).
WRITER = """
import sys, time
from uplift._files import atomic_file, exit_on_termination
path, size, fill, pause = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode(), float(sys.argv[4])
exit_on_termination()
chunk = fill * (1 << 20)
with atomic_file(path) as fh:
    for i in range(size // len(chunk)):
        fh.write(chunk)
        if i == 0:
            print("started", flush=True)
        time.sleep(pause)
"""


def writer(path: Path, size: int, fill: str, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(size), fill, str(pause)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}{TMP_MARK}*"))


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killed_writer_leaves_the_old_file_and_the_next_write_leaves_no_temp(tmp_path, how):
    out = tmp_path / "list.csv"
    out.write_bytes(b"old\n" * 1000)
    child = writer(out, 64 << 20, "n", 0.2)
    assert child.stdout.readline().strip() == "started"
    child.send_signal(how)
    child.wait(timeout=60)
    assert out.read_bytes() == b"old\n" * 1000  # the old file, whole
    left = temps(out)
    if how == signal.SIGKILL:
        assert len(left) == 1 and left[0].stat().st_size >= 1 << 20  # nobody could clean up after kill -9
    else:
        assert left == [], "SIGTERM goes through the normal exit path, which removes the temp file"
    atomic_write_bytes(out, b"new\n")
    assert out.read_bytes() == b"new\n"
    assert temps(out) == [], "the next successful write removes what the killed one left"


def test_killed_writer_after_replace_leaves_the_new_file(tmp_path):
    out = tmp_path / "scores.csv"
    out.write_bytes(b"old")
    child = writer(out, 2 << 20, "z", 0.0)
    child.wait(timeout=60)
    assert out.read_bytes() == b"z" * (2 << 20) and temps(out) == []


def test_concurrent_writers_of_one_output_give_one_complete_version(tmp_path):
    out = tmp_path / "list.csv"
    fills = "abc"
    children = [writer(out, 8 << 20, f, 0.1) for f in fills]  # ~1 s each: they overlap
    for child in children:
        assert child.wait(timeout=120) == 0
    data = out.read_bytes()
    assert len(data) == 8 << 20 and data[:1].decode() in fills
    assert data == data[:1] * len(data), "the result mixes the content of two writers"
    assert temps(out) == [], "a writer removed another's live temp file, or its own stayed"


def test_a_live_writers_temp_is_not_removed_by_the_cleanup(tmp_path):
    out = tmp_path / "list.csv"
    child = writer(out, 4 << 20, "w", 0.4)
    try:
        assert child.stdout.readline().strip() == "started"
        atomic_write_bytes(out, b"mine")  # another writer finishes first...
        assert len(temps(out)) == 1  # ...and leaves the running writer's temp alone
    finally:
        child.wait(timeout=60)
    assert out.read_bytes() == b"w" * (4 << 20) and temps(out) == []


def test_stale_temp_of_this_process_is_removed_but_not_a_foreign_file(tmp_path):
    out = tmp_path / "a.csv"
    stale = tmp_path / f".a.csv{TMP_MARK}{os.getpid()}-xyz"
    stale.write_bytes(b"half")
    unrelated = tmp_path / ".a.csv.notes"
    unrelated.write_bytes(b"keep")
    assert remove_stale_temps(out) == [stale]
    assert unrelated.exists()


def test_failed_write_removes_its_temp_and_keeps_the_old_file(tmp_path):
    out = tmp_path / "x.bin"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(out) as fh:
        fh.write(b"new")
        raise RuntimeError("boom")
    assert out.read_bytes() == b"old" and temps(out) == []


# ---------------------------------------------------------------------------------------------------------------
# the output guard
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def tree(tmp_path) -> dict[str, Path]:
    data = tmp_path / "campaign.csv"
    data.write_text("a,b\n1,2\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    return {"root": tmp_path, "data": data, "model": model}


ALIASES = [
    pytest.param(lambda t: t["data"], "refusing to overwrite the input file", id="same-path"),
    pytest.param(lambda t: t["root"] / "sub" / ".." / "campaign.csv", "refusing to overwrite", id="dot-dot"),
    pytest.param(lambda t: _link(t, "symlink"), "refusing to overwrite", id="symlink-to-input"),
    pytest.param(lambda t: _link(t, "hardlink"), "refusing to overwrite", id="hard-link-to-input"),
    pytest.param(lambda t: _link(t, "dangling-dir"), "refusing to overwrite", id="symlinked-folder"),
    pytest.param(lambda t: t["model"] / "manifest.json", "inside", id="file-in-model-dir"),
    pytest.param(lambda t: t["model"] / "new.csv", "inside", id="new-file-in-model-dir"),
    pytest.param(lambda t: t["model"], "refusing to overwrite", id="the-model-dir-itself"),
    pytest.param(lambda t: t["root"] / "sub", "is a directory", id="existing-directory"),
    pytest.param(lambda t: t["root"] / "none" / "x.csv", "does not exist", id="missing-folder"),
]


def _link(t: dict, kind: str) -> Path:
    if kind == "symlink":
        (t["root"] / "out.csv").symlink_to(t["data"])
        return t["root"] / "out.csv"
    if kind == "hardlink":
        os.link(t["data"], t["root"] / "hard.csv")
        return t["root"] / "hard.csv"
    (t["root"] / "alias").symlink_to(t["root"], target_is_directory=True)
    return t["root"] / "alias" / "campaign.csv"


@pytest.mark.parametrize(("where", "needle"), ALIASES)
def test_output_that_would_destroy_an_input_is_refused(tree, where, needle):
    out = where(tree)
    before = tree["data"].read_bytes()
    with pytest.raises(UpliftInputError, match=needle):
        atomic_write_bytes(out, b"<html>", protect=[tree["data"], tree["model"], None])
    assert tree["data"].read_bytes() == before and (tree["model"] / "manifest.json").read_text() == "{}"


def test_an_output_directory_may_not_contain_an_input(tree):
    check_output_path(tree["model"], protect=[tree["data"]], directory=True)  # a model dir by contract: fine
    inner = tree["model"] / "campaign.csv"
    inner.write_text("a\n1\n")
    with pytest.raises(UpliftInputError, match="is inside it"):
        check_output_path(tree["model"], protect=[inner], directory=True)


def test_plain_json_handles_numpy_pandas_and_nan():
    doc = {"arr": np.array([[1, 2], [3, 4]], dtype=np.int32), "nan": np.float32("nan"), "inf": -np.inf,
           "series": pd.Series([1.5, np.nan]), "frame": pd.DataFrame({"t": pd.to_datetime(["2024-01-02"])}),
           "bool": np.bool_(True), "path": Path("a/b"), "keyed": pd.Series({"x": np.int64(2)})}
    assert plain_json(doc) == {"arr": [[1, 2], [3, 4]], "nan": None, "inf": None, "series": [1.5, None],
                               "frame": [{"t": "2024-01-02T00:00:00"}], "bool": True, "path": "a/b",
                               "keyed": {"x": 2}}
    assert "NaN" not in json_text(doc)


def test_temp_name_is_recognisable(tmp_path):
    out = tmp_path / "report.html"
    with atomic_file(out) as fh:
        fh.write(b"x")
        (live,) = temps(out)
        assert live.name.startswith(f".report.html{TMP_MARK}{os.getpid()}-")
    assert temps(out) == []

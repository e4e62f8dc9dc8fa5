"""Every file the toolkit reads or writes goes through this module.

* :func:`read_table` reads a user's CSV/TSV (optionally gzipped) or Parquet table and turns each way a
  table can be subtly wrong (empty, header only, wrong delimiter, not UTF-8, duplicate column names, a
  ``.parquet`` that is not Parquet, missing columns) into one :class:`~uplift.errors.UpliftInputError`
  line that names the file or column and says what to do. CSV is strict UTF-8: there is no silent
  latin-1 fallback, because guessing an encoding quietly changes category labels (``café`` vs
  ``cafÃ©``) and with them the model's segments.
* :func:`write_table`, :func:`atomic_write_bytes` and :func:`atomic_write_text` write atomically: a
  hidden temp file (``.<name>.<random>.tmp``) in the target's directory is written, fsynced and
  ``os.replace``-d onto the target, so a crash leaves the old file or the new one, never half of one.
  Writes are deterministic: the same frame gives byte-identical files (CSV floats use Python's shortest
  round-trip ``repr`` so reading the file back gives the exact same numbers; gzip and Parquet carry no
  timestamps; Parquet compression is fixed to snappy).
* :func:`write_model_dir` / :func:`read_model_dir` store a fitted model as a directory of plain bytes
  plus a ``manifest.json`` with a format name, a format version and the sha256 of every file. The
  directory is swapped in whole; reading checks format, version and every hash before handing out a
  single byte. Nothing here unpickles anything.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import ctypes
import difflib
import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from uplift.errors import UpliftInputError

__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_model_dir",
    "read_table",
    "write_model_dir",
    "write_table",
]

PathLike = str | os.PathLike

#: Value of ``manifest.json["format"]`` in every model directory this package writes.
MODEL_FORMAT = "uplift-study"
#: Bump when a saved model can no longer be read by older code; readers refuse anything newer.
MODEL_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Keys of ``manifest.json`` that :func:`write_model_dir` owns; callers may not set them.
RESERVED_KEYS = ("format", "format_version", "sha256", "uplift_version")
#: Files an operating system drops into any folder it displays. They are never read, so ignoring them
#: costs no safety, and refusing them would break a model directory merely opened in Finder/Explorer.
OS_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

_CSV_SEPARATORS = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET = (".parquet", ".pq")
_SUPPORTED = ", ".join([*_CSV_SEPARATORS, *_PARQUET])
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------------------
# reading tables
# ---------------------------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in (*_CSV_SEPARATORS, *_PARQUET):  # ".csv.gz" is checked before a bare ".gz" could match
        if name.endswith(ext):
            return ext
    raise UpliftInputError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
                           f"use one of {_SUPPORTED}")


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig drops the byte-order mark Excel puts in front of "CSV UTF-8" files.
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _utf8_error(path: Path) -> UpliftInputError:
    """Locate the first byte that is not UTF-8 (offset and line), streaming so big files cost no memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = newlines = 0
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            pending = decoder.getstate()[0]  # an unfinished multi-byte character carried over
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                offset = consumed - len(pending) + err.start
                line = newlines + err.object[: err.start].count(b"\n") + 1
                bad = err.object[err.start: err.start + 1].hex()
                where = "of the decompressed text " if opener is gzip.open else ""
                return UpliftInputError(
                    f"{path} is not valid UTF-8: byte 0x{bad} at offset {offset} {where}(line {line}); "
                    "re-save it as UTF-8 (Excel: 'CSV UTF-8'; or `iconv -f latin1 -t utf-8`)")
            consumed += len(chunk)
            newlines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return UpliftInputError(f"{path} is not valid UTF-8: it ends inside a multi-byte character "
                                    f"(offset {consumed}); re-save it as UTF-8")
    return UpliftInputError(f"{path} is not valid UTF-8; re-save it as UTF-8")


def _csv_head(path: Path, sep: str) -> tuple[list[str], list[str]]:
    """The header and the first data record (empty lists where the file has none)."""
    try:
        with _open_text(path) as fh:
            # csv.reader, not str.split: a quoted value may itself contain the separator or a line break.
            reader = csv.reader(fh, delimiter=sep)
            return next(reader, []), next(reader, [])
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as err:
        if isinstance(err, FileNotFoundError | PermissionError):
            raise UpliftInputError(f"{path} cannot be opened ({err.strerror}); check the path and "
                                   "its permissions") from None
        raise UpliftInputError(f"{path} is not a valid gzip file ({err}); re-compress it or drop the "
                               "'.gz' from its name") from None
    except csv.Error as err:
        raise UpliftInputError(f"{path}: the header line cannot be parsed ({err}); check its "
                               "quoting") from None


def _check_header(path: Path, names: Sequence[str], sep: str) -> None:
    if not names or all(not n.strip() for n in names):
        raise UpliftInputError(f"{path} has no header line (the first line is blank); put the column "
                               "names on the first line")
    line = sep.join(names)
    for other, label in _SEP_NAMES.items():
        # Another separator at least once per parsed column means the columns were never split (a single
        # column 'id;spend;coupon', or 'id;spend, EUR;coupon' split only at the stray comma).
        if other != sep and line.count(other) >= len(names):
            raise UpliftInputError(
                f"{path} looks like {other!r}-separated ({label}), not {_SEP_NAMES[sep]}-separated: its "
                f"header {line[:60]!r} parsed as {len(names)} column(s); re-save it with "
                f"{_SEP_NAMES[sep]}s (or convert: pandas.read_csv(path, sep={other!r}).to_csv(...))")
    _reject_duplicates(path, names)


def _reject_duplicates(path: Path, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UpliftInputError(f"{path} has two columns named {name!r}; rename one so every column "
                                   "name is unique")
        seen.add(name)


def _select(path: Path, available: Sequence[str], columns: Sequence[str] | None) -> list[str] | None:
    if columns is None:
        return None
    wanted = [columns] if isinstance(columns, str) else list(dict.fromkeys(columns))
    if not wanted:
        raise UpliftInputError(f"reading {path}: columns=[] asks for no columns; pass None to read them all")
    missing = [c for c in wanted if c not in available]
    if missing:
        hints = []
        for name in missing:
            close = difflib.get_close_matches(str(name), [str(a) for a in available], n=3, cutoff=0.6)
            hints.append(f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        listed = ", ".join(map(str, available[:20])) + (", ..." if len(available) > 20 else "")
        raise UpliftInputError(f"{path} has no column {'; no column '.join(hints)}; its columns are: "
                               f"{listed}")
    return wanted


def _read_csv(path: Path, ext: str, columns: Sequence[str] | None) -> pd.DataFrame:
    sep = _CSV_SEPARATORS[ext]
    header, first_row = _csv_head(path, sep)
    _check_header(path, header, sep)
    if len(first_row) > len(header):
        # pandas would quietly turn the surplus leading field(s) into the index, shifting every value one
        # column away from its name; later long rows at least raise a ParserError.
        raise UpliftInputError(f"{path}: the first data row has {len(first_row)} fields but the header has "
                               f"{len(header)} names; add the missing column names or remove trailing "
                               "separators")
    wanted = _select(path, header, columns)
    try:
        frame = pd.read_csv(path, sep=sep, usecols=wanted, encoding="utf-8", encoding_errors="strict",
                            compression="gzip" if ext.endswith(".gz") else None,
                            low_memory=False)  # one dtype per column, not one per internal chunk
    except UnicodeDecodeError:
        raise _utf8_error(path) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise UpliftInputError(f"{path} is not a valid gzip file ({err}); re-compress it or drop the "
                               "'.gz' from its name") from None
    except pd.errors.EmptyDataError:
        raise UpliftInputError(f"{path} is empty; export the table again with its rows") from None
    except pd.errors.ParserError as err:
        detail = str(err).strip().splitlines()[-1].replace("C error: ", "")
        raise UpliftInputError(f"{path} cannot be parsed as {_SEP_NAMES[sep]}-separated text ({detail}); "
                               "check for unquoted separators or line breaks inside values") from None
    return frame


def _read_parquet(path: Path, columns: Sequence[str] | None) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(path.stat().st_size - 4, 0))
        tail = fh.read(4)
    if head != b"PAR1" or tail != b"PAR1" or path.stat().st_size < 12:
        kind = " (it looks like text, perhaps a CSV)" if head.isascii() and head.strip() else ""
        raise UpliftInputError(f"{path} is not a Parquet file{kind}; give it the extension of its real "
                               "format (e.g. .csv) or re-export it as Parquet")
    try:
        meta = pq.ParquetFile(path)
        names = [n for n in meta.schema_arrow.names if not re.fullmatch(r"__index_level_\d+__", n)]
        _reject_duplicates(path, names)
        wanted = _select(path, names, columns)
        if meta.metadata.num_rows == 0:
            raise UpliftInputError(f"{path} has columns but no rows; export the table again with its rows")
        # self_destruct frees each Arrow column once converted, and release_unused hands the decoded pages back
        # to the OS: otherwise Arrow's allocator keeps about twice the table's size resident afterwards.
        frame = pq.read_table(path, columns=wanted).to_pandas(self_destruct=True)
        pa.default_memory_pool().release_unused()
    except (pa.ArrowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UpliftInputError(f"{path} is damaged and cannot be read as Parquet ({first}); "
                               "re-export it") from None
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or frame.index.step != 1:
        # A named pandas index stored in the file (e.g. customer_id) is data the analyst expects as a column.
        frame = frame.reset_index(drop=all(n is None for n in frame.index.names))
    return frame


def read_table(path: PathLike, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV (optionally ``.gz``) or Parquet table, refusing anything subtly wrong.

    The format follows the extension: ``.csv``, ``.csv.gz`` (comma), ``.tsv``, ``.tsv.gz`` (tab),
    ``.parquet``/``.pq`` (read with pyarrow, only the requested columns). CSV must be UTF-8 (a leading
    byte-order mark is fine); there is deliberately no fallback to latin-1.

    Parameters
    ----------
    path : str or path-like
        The table file.
    columns : sequence of str, optional
        Columns to read, in the order returned. Default: all columns in file order.

    Returns
    -------
    pandas.DataFrame
        With a fresh ``RangeIndex`` and at least one row.

    Raises
    ------
    UpliftInputError
        One line naming the file (and column) for: a missing file, an unsupported extension, an empty or
        header-only file, a file that looks separated by another delimiter, bytes that are not UTF-8 (with
        their offset and line), duplicate column names, a ``.parquet`` that is not Parquet, rows that do
        not match the header, and requested columns that are missing (with close matches).

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "campaign.csv"
    >>> _ = p.write_text("customer,spend,coupon\\nA,10.5,1\\nB,0,0\\n")
    >>> read_table(p, columns=["coupon", "spend"])
       coupon  spend
    0       1   10.5
    1       0    0.0
    >>> read_table(p, columns=["spnd"])
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: ... has no column 'spnd' (did you mean 'spend'?); its columns are: ...
    """
    path = Path(path)
    if not path.exists():
        parent = path.parent if path.parent.is_dir() else None
        hint = ""
        if parent is not None:
            close = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UpliftInputError(f"{path} does not exist{hint}; check the path")
    if path.is_dir():
        raise UpliftInputError(f"{path} is a directory, not a table file; give a {_SUPPORTED} file")
    ext = _suffix(path)
    if path.stat().st_size == 0:
        raise UpliftInputError(f"{path} is empty (0 bytes); export the table again")
    frame = _read_parquet(path, columns) if ext in _PARQUET else _read_csv(path, ext, columns)
    if len(frame) == 0:
        raise UpliftInputError(f"{path} has a header but no rows; export the table again with its rows")
    if columns is not None:
        frame = frame[_select(path, list(frame.columns), columns)]
    return frame


# ---------------------------------------------------------------------------------------------------------
# atomic writes
# ---------------------------------------------------------------------------------------------------------
_umask_lock = threading.Lock()


def _umask() -> int:
    # Read without changing it where the kernel allows; os.umask can only be read by setting it.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    return False


def _check_target(path: Path, protect: PathLike | Iterable[PathLike] | None) -> None:
    if protect is not None:
        guarded = [protect] if isinstance(protect, str | os.PathLike) else list(protect)
        for inp in guarded:
            if _same_file(path, Path(inp)):
                raise UpliftInputError(f"refusing to overwrite the input file {path} with output; choose a "
                                       "different output path")
    parent = path.parent
    if not parent.is_dir():
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} does not exist; "
                               "create it first")
    if path.is_dir():
        raise UpliftInputError(f"cannot write {path}: it is a directory; give a file name")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UpliftInputError(f"cannot write {path.name}: directory {parent} is not writable; choose "
                               "another output directory")


def check_output_path(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Fail early (before any work) when ``path`` cannot be written or would overwrite an input file."""
    _check_target(Path(path), protect)


@contextlib.contextmanager
def _atomic_file(path: PathLike, protect: PathLike | Iterable[PathLike] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only once it is completely written and fsynced."""
    path = Path(path)
    _check_target(path, protect)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise UpliftInputError(f"cannot write {path.name}: directory {path.parent} is not writable "
                               f"({err.strerror}); choose another output directory") from None
    tmp = Path(tmp_name)
    try:
        # mkstemp creates the file 0600; give the result the permissions a plain open() would have, or keep
        # those of the file being replaced.
        with os.fdopen(fd, "wb") as fh:
            mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
            if os.chmod in os.supports_fd:
                os.chmod(fh.fileno(), mode)
            else:
                os.chmod(tmp, mode)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: PathLike, data: bytes, *,
                       protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``).

    Parameters
    ----------
    path : str or path-like
        Target file; its directory must exist and be writable.
    data : bytes
        The complete new content.
    protect : path-like or iterable of path-like, optional
        Input files that must never be overwritten (an error is raised if ``path`` is one of them).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "note.bin"
    >>> atomic_write_bytes(p, b"\\x00\\x01")
    >>> p.read_bytes()
    b'\\x00\\x01'
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"atomic_write_bytes needs bytes, got {type(data).__name__}")
    with _atomic_file(path, protect) as fh:
        fh.write(data)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8",
                      protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Write ``text`` atomically, encoded as ``encoding``, with no newline translation.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> atomic_write_text(p, "<p>café</p>\\n")
    >>> p.read_bytes()
    b'<p>caf\\xc3\\xa9</p>\\n'
    """
    atomic_write_bytes(path, text.encode(encoding), protect=protect)


def _write_csv(frame: pd.DataFrame, fh: BinaryIO, sep: str, gz: bool, index: bool) -> None:
    # mtime=0 and no stored file name: a timestamp in the gzip header would break byte-identical output.
    raw = gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="", compresslevel=6) if gz else fh
    with contextlib.ExitStack() as stack:
        if gz:
            stack.enter_context(raw)
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        # float_format stays None: pandas then writes repr(), the shortest text that reads back exactly.
        frame.to_csv(text, sep=sep, index=index, lineterminator="\n", na_rep="")
        text.flush()
        text.detach()


def _write_parquet(frame: pd.DataFrame, fh: BinaryIO, index: bool, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(frame, preserve_index=bool(index))
    except (pa.ArrowException, TypeError, ValueError) as err:
        first = str(err).strip().splitlines()[0]
        raise UpliftInputError(f"cannot write {path} as Parquet ({first}); give the column one type or "
                               "write .csv instead") from None
    # Every option pinned so the bytes do not depend on pyarrow's changing defaults; no option writes a
    # timestamp (the footer's created_by names the pyarrow version only).
    pq.write_table(table, fh, compression="snappy", version="2.6", use_dictionary=True,
                   write_statistics=True, data_page_version="1.0")


def write_table(frame: pd.DataFrame, path: PathLike, *, index: bool = False,
                protect: PathLike | Iterable[PathLike] | None = None) -> None:
    """Write ``frame`` as CSV/TSV (optionally ``.gz``) or Parquet by extension, atomically and reproducibly.

    The same frame always gives byte-identical files: CSV is UTF-8 with ``\\n`` line ends, floats in
    Python's shortest round-trip form (lossless: :func:`read_table` gives back the exact floats) and
    missing values as empty fields; ``.gz`` output has no timestamp; Parquet uses fixed options (snappy)
    and stores no time.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table to write; column names must be unique.
    path : str or path-like
        ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz``, ``.parquet`` or ``.pq``. Its directory must exist.
    index : bool, default False
        Also write the frame's index.
    protect : path-like or iterable of path-like, optional
        Input file(s) that must not be overwritten, e.g. the table the predictions were made from.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "targets.csv"
    >>> write_table(pd.DataFrame({"customer": ["A"], "uplift": [0.1]}), out)
    >>> out.read_text()
    'customer,uplift\\nA,0.1\\n'
    """
    path = Path(path)
    ext = _suffix(path)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"write_table needs a pandas DataFrame, got {type(frame).__name__}")
    dup = frame.columns[frame.columns.duplicated()]
    if len(dup):
        raise UpliftInputError(f"cannot write {path}: two columns are named {dup[0]!r}; rename one")
    with _atomic_file(path, protect) as fh:
        if ext in _PARQUET:
            _write_parquet(frame, fh, index, path)
        else:
            _write_csv(frame, fh, _CSV_SEPARATORS[ext], ext.endswith(".gz"), index)


# ---------------------------------------------------------------------------------------------------------
# model directories
# ---------------------------------------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0  # EINVAL/ENOSYS (file system or kernel without exchange): use the two-rename fallback


def _check_name(name: object, where: str) -> str:
    bad = (not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name
           or any(part in ("", ".", "..") or part.startswith(".") for part in name.split("/"))
           or name == MANIFEST or re.match(r"^[A-Za-z]:", name) is not None)
    if bad:
        raise UpliftInputError(f"{where}: invalid model file name {name!r}; use relative names like "
                               "'fold0/model.txt' without '..', leading dots or backslashes")
    return name


def _chunks(data: bytes | tuple) -> tuple:
    return data if isinstance(data, tuple) else (data,)


def _sha256(data: bytes | tuple) -> str:
    h = hashlib.sha256()
    for chunk in _chunks(data):
        h.update(chunk)
    return h.hexdigest()


def _is_model_dir(directory: Path) -> bool:
    if not any(directory.iterdir()):
        return True  # an empty directory holds nothing to lose
    try:
        manifest = json.loads((directory / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == MODEL_FORMAT


def write_model_dir(directory: PathLike, files: Mapping[str, bytes], manifest: Mapping[str, object]) -> None:
    """Write a model directory in one step: every file, plus ``manifest.json`` with their sha256.

    The files are written into a hidden sibling ``.<name>.<random>.tmp``, fsynced, and swapped in for
    ``directory`` by rename (on Linux one atomic exchange; elsewhere the old directory is first renamed
    aside, so at any instant ``directory`` is the old model, the new one, or absent with the old model
    kept as ``.<name>.*.tmp``). The old directory is deleted only once the new one is in place. An
    existing ``directory`` that is not a model directory written by this function is never replaced.

    Parameters
    ----------
    directory : str or path-like
        Model directory to create or replace; its parent must exist.
    files : mapping of str to bytes
        Relative POSIX file names (``"fold0/mu0.txt"``) to their content: bytes, or a tuple of bytes-like
        chunks written one after the other (e.g. a header and a memoryview of a large array, never copied).
    manifest : mapping
        JSON-serialisable fields stored in ``manifest.json`` next to ``format``, ``format_version``,
        ``uplift_version`` and ``sha256`` (which are set here and may not be passed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> write_model_dir(d, {"weights/a.txt": b"0.5"}, {"learner": "t"})
    >>> manifest, files = read_model_dir(d)
    >>> manifest["learner"], files
    ('t', {'weights/a.txt': b'0.5'})
    """
    import uplift

    directory = Path(directory)
    where = f"saving model to {directory}"
    clash = [k for k in manifest if k in RESERVED_KEYS]
    if clash:
        raise UpliftInputError(f"{where}: manifest field {clash[0]!r} is set by write_model_dir; rename it")
    for name, data in files.items():
        _check_name(name, where)
        if not (isinstance(data, bytes) or (isinstance(data, tuple) and all(isinstance(c, bytes | memoryview)
                                                                             for c in data))):
            raise TypeError(f"{where}: content of {name!r} must be bytes (or a tuple of bytes-like chunks), got "
                            f"{type(data).__name__}")
    names = sorted(files)
    # Names that differ only in case collide on macOS/Windows; a file cannot also be a folder.
    seen: dict[str, str] = {}
    folders = {n.lower().rsplit("/", k)[0] for n in names for k in range(1, n.count("/") + 1)}
    for name in names:
        key = name.lower()
        if key in seen or key in folders:
            raise UpliftInputError(f"{where}: model file name {name!r} collides with another file or "
                                   "folder name (ignoring case); rename one")
        seen[key] = name
    full = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
            "uplift_version": getattr(uplift, "__version__", "unknown"), **manifest,
            "sha256": {n: _sha256(files[n]) for n in names}}
    try:
        manifest_bytes = (json.dumps(full, sort_keys=True, indent=1, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as err:
        raise UpliftInputError(f"{where}: the manifest is not plain JSON ({err})") from None

    parent = directory.parent
    if directory.is_symlink():
        raise UpliftInputError(f"{directory} is a symbolic link; save the model to a real directory")
    if directory.exists():
        if not directory.is_dir():
            raise UpliftInputError(f"cannot save the model to {directory}: it is a file; choose a new path")
        if not _is_model_dir(directory):
            raise UpliftInputError(f"{directory} exists and is not an uplift model directory; refusing to "
                                   "replace it - choose a new path or remove it yourself")
    elif not parent.is_dir():
        raise UpliftInputError(f"cannot save the model to {directory}: directory {parent} does not exist; "
                               "create it first")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
    except OSError as err:
        raise UpliftInputError(f"cannot save the model: directory {parent} is not writable ({err.strerror}); "
                               "choose another location") from None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a model dir is as shareable as any dir
        for name in [*names, MANIFEST]:  # the manifest last: a directory with one is complete
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as fh:
                for chunk in _chunks(manifest_bytes if name == MANIFEST else files[name]):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        for sub in sorted({(tmp / n).parent for n in names}, key=lambda p: -len(p.parts)):
            _fsync_dir(sub)
        _fsync_dir(tmp)
        if not directory.exists():
            os.rename(tmp, directory)
            old = None
        elif _exchange(tmp, directory):
            old = tmp  # the swap left the previous model under the temp name
        else:
            old = tmp.with_name(tmp.name[: -len(".tmp")] + ".old.tmp")  # unique because tmp's name is
            os.rename(directory, old)
            try:
                os.rename(tmp, directory)
            except OSError:
                os.rename(old, directory)
                raise
        _fsync_dir(parent)
    except BaseException:
        if tmp.exists():  # the unfinished new model, or after a swap the old one: neither is needed
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _leftovers(directory: Path) -> str:
    if not directory.parent.is_dir():
        return ""
    found = sorted(directory.parent.glob(f".{glob.escape(directory.name)}.*.tmp"))
    if not found:
        return ""
    return f" (an interrupted save left {found[0].name} next to it; it may hold a previous model)"


def read_model_dir(directory: PathLike) -> tuple[dict, dict[str, bytes]]:
    """Read a directory written by :func:`write_model_dir`, verifying it completely first.

    Checks, in order: ``manifest.json`` exists and is JSON; ``format`` is ``"uplift-study"``;
    ``format_version`` is one this code reads (a newer one names the uplift version that wrote it);
    the files on disk are exactly those listed (no extra, none missing, no symbolic links); every
    sha256 matches. Only then are any bytes returned. Nothing is unpickled.

    Returns
    -------
    manifest : dict
        The whole manifest, including ``format``, ``format_version``, ``uplift_version`` and ``sha256``.
    files : dict of str to bytes
        Every listed file's content, keyed by its relative POSIX name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> write_model_dir(d, {"a.json": b"{}"}, {})
    >>> (d / "a.json").write_bytes(b"[]")
    2
    >>> read_model_dir(d)
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: model file 'a.json' in ... does not match its sha256 ...
    """
    import uplift

    directory = Path(directory)
    if not directory.exists():
        raise UpliftInputError(f"model directory {directory} does not exist{_leftovers(directory)}; check "
                               "the path")
    if not directory.is_dir():
        raise UpliftInputError(f"{directory} is a file, not a model directory; give the directory "
                               "written by `uplift fit`")
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        raise UpliftInputError(f"{directory} is not an uplift model directory (no {MANIFEST}); give the "
                               "directory written by `uplift fit`")
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise UpliftInputError(f"{manifest_path} is not valid JSON ({err}); the model directory is "
                               "damaged - save the model again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MODEL_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise UpliftInputError(f"{directory} holds format {found!r}, not {MODEL_FORMAT!r}; it was not "
                               "written by uplift - give a directory saved by `uplift fit`")
    version = manifest.get("format_version")
    ours = getattr(uplift, "__version__", "unknown")
    if type(version) is not int or version < 1:
        raise UpliftInputError(f"{directory} has an unknown model format version {version!r}; it is damaged "
                               "or foreign - save the model again")
    if version > MODEL_FORMAT_VERSION:
        writer = manifest.get("uplift_version")
        plain = isinstance(writer, str) and re.fullmatch(r"[\w.+-]+", writer)
        need = f"uplift>={writer}" if plain else "uplift"
        raise UpliftInputError(f"{directory} uses model format version {version}, written by uplift "
                               f"{writer or '(unknown)'}; this uplift {ours} reads format version "
                               f"{MODEL_FORMAT_VERSION} or older - upgrade with `pip install -U '{need}'`")
    hashes = manifest.get("sha256")
    if not isinstance(hashes, dict) or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values()):
        raise UpliftInputError(f"{manifest_path} has no valid sha256 list; the model directory is damaged - "
                               "save the model again")
    where = f"reading model {directory}"
    for name in hashes:
        _check_name(name, where)

    on_disk: set[str] = set()
    for root, dirs, names in os.walk(directory, followlinks=False):
        for entry in [*dirs, *names]:
            full = Path(root, entry)
            if full.is_symlink():
                raise UpliftInputError(f"{directory} contains a symbolic link {full.relative_to(directory)}; "
                                       "model directories may hold only plain files")
        on_disk.update(Path(root, n).relative_to(directory).as_posix() for n in names if n not in OS_CLUTTER)
    on_disk.discard(MANIFEST)
    extra = sorted(on_disk - set(hashes))
    if extra:
        raise UpliftInputError(f"{directory} contains {extra[0]!r}, which its manifest does not list; "
                               "remove it or save the model again")
    missing = sorted(set(hashes) - on_disk)
    if missing:
        raise UpliftInputError(f"{directory} is missing {missing[0]!r}, which its manifest lists; the model "
                               "is incomplete - save it again")

    files: dict[str, bytes] = {}
    for name in sorted(hashes):
        data = (directory / name).read_bytes()
        if _sha256(data) != hashes[name]:
            raise UpliftInputError(f"model file {name!r} in {directory} does not match its sha256 in "
                                   f"{MANIFEST}: it was edited or corrupted - save the model again")
        files[name] = data
    return manifest, files

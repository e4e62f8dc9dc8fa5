"""Reading and writing the user's tables.

* :func:`read_table` reads a user's CSV/TSV (optionally gzipped) or Parquet table and turns each way a
  table can be subtly wrong (empty, header only, wrong delimiter, not UTF-8, duplicate column names, a
  ``.parquet`` that is not Parquet, missing columns) into one :class:`~uplift.errors.UpliftInputError`
  line that names the file or column and says what to do. CSV is strict UTF-8: there is no silent
  latin-1 fallback, because guessing an encoding quietly changes category labels (``café`` vs
  ``cafÃ©``) and with them the model's segments.
* :func:`write_table` writes atomically (see :mod:`uplift._files`) and deterministically: the same frame gives
  byte-identical files (CSV floats use Python's shortest round-trip ``repr`` so reading the file back gives the
  exact same numbers; gzip and Parquet carry no timestamps; Parquet compression is fixed to snappy).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from uplift._files import PathLike, atomic_file
from uplift.errors import UpliftInputError

__all__ = ["read_table", "write_table"]



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
    with atomic_file(path, protect) as fh:
        if ext in _PARQUET:
            _write_parquet(frame, fh, index, path)
        else:
            _write_csv(frame, fh, _CSV_SEPARATORS[ext], ext.endswith(".gz"), index)

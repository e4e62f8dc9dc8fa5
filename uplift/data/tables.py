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
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from uplift._files import PathLike, atomic_file
from uplift.errors import UpliftInputError

__all__ = ["NA_TOKENS", "file_kind", "locate", "mark_source", "read_table", "read_table_batches", "select_columns",
           "typed_frame", "write_table"]


_CSV_SEPARATORS = {".csv": ",", ".csv.gz": ",", ".tsv": "\t", ".tsv.gz": "\t"}
_PARQUET = (".parquet", ".pq")
_SUPPORTED = ", ".join([*_CSV_SEPARATORS, *_PARQUET])
_SEP_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_CHUNK = 1 << 20
#: Text read as missing in a numeric or category column (pandas' own list). Text-role columns (ids, arm labels,
#: the saved schema's category codes) are read byte for byte instead: only an empty field is missing there, so
#: an arm called ``None`` or a customer called ``NA`` keeps its name.
NA_TOKENS = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
             "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
#: The first bytes of formats a campaign file is often in, whatever its name says.
_MAGIC = {b"\x1f\x8b": "gzip", b"PAR1": "parquet", b"PK\x03\x04": "zip", b"\xd0\xcf\x11\xe0": "ole"}


# ---------------------------------------------------------------------------------------------------------
# reading tables
# ---------------------------------------------------------------------------------------------------------
def _suffix(path: Path) -> str:
    name = path.name.lower()
    for ext in (*_CSV_SEPARATORS, *_PARQUET):  # ".csv.gz" is checked before a bare ".gz" could match
        if name.endswith(ext):
            return ext
    excel = " (an Excel workbook: save the sheet as 'CSV UTF-8')" if name.endswith((".xlsx", ".xls", ".xlsm")) else ""
    raise UpliftInputError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}{excel}; "
                           f"use one of {_SUPPORTED}")


def file_kind(path: PathLike) -> str:
    """What a file's first bytes say it is: ``"gzip"``, ``"parquet"``, ``"zip"`` (also .xlsx), ``"ole"``
    (an old .xls) or ``"text"``.

    Examples
    --------
    >>> import gzip, pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "export.csv"
    >>> _ = p.write_bytes(gzip.compress(b"a,b\\n1,2\\n"))
    >>> file_kind(p)
    'gzip'
    """
    with open(path, "rb") as fh:
        head = fh.read(4)
    return next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), "text")


def _real_format(path: Path, ext: str) -> tuple[str, bool]:
    """The extension to read ``path`` as (by its bytes) and whether its CSV text is gzipped."""
    kind = file_kind(path)
    if kind in ("zip", "ole"):
        raise UpliftInputError(f"{path} is an Excel workbook (or another zip/OLE archive), not a table file; "
                               "save the sheet as 'CSV UTF-8' (or export Parquet) and pass that file")
    if kind == "parquet":
        return ".parquet", False
    if ext in _PARQUET:
        return ext, False  # _read_parquet names what the file looks like instead
    return ext, kind == "gzip"


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig drops the byte-order mark Excel puts in front of "CSV UTF-8" files.
    if file_kind(path) == "gzip":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _utf8_error(path: Path) -> UpliftInputError:
    """Locate the first byte that is not UTF-8 (offset and line), streaming so big files cost no memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    consumed = newlines = 0
    opener = gzip.open if file_kind(path) == "gzip" else open
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


def _csv_options(path: Path, names: Sequence[str], text: Sequence[str], na_values: Sequence[str],
                 strings: Sequence[str] = ()) -> dict:
    """pandas options that read ``text`` columns byte for byte (only an empty field is missing), ``strings``
    columns as strings and every other column as pandas guesses, with the usual missing-value markers plus the
    analyst's ``na_values``."""
    text, strings = set(text), set(strings)
    extra = [str(v) for v in na_values]
    return {"dtype": {c: str for c in names if c in text or c in strings}, "keep_default_na": False,
            "na_values": {c: ([""] if c in text else [*NA_TOKENS, *extra]) for c in names}}


def _pandas_csv_error(path: Path, sep: str, err: Exception) -> UpliftInputError:
    if isinstance(err, UnicodeDecodeError):
        return _utf8_error(path)
    if isinstance(err, gzip.BadGzipFile | EOFError | zlib.error):
        return UpliftInputError(f"{path} is not a valid gzip file ({err}); re-compress it or drop the "
                                "'.gz' from its name")
    if isinstance(err, pd.errors.EmptyDataError):
        return UpliftInputError(f"{path} is empty; export the table again with its rows")
    detail = str(err).strip().splitlines()[-1].replace("C error: ", "")
    return UpliftInputError(f"{path} cannot be parsed as {_SEP_NAMES[sep]}-separated text ({detail}); "
                            "check for unquoted separators or line breaks inside values")


_PANDAS_CSV_ERRORS = (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, pd.errors.EmptyDataError,
                      pd.errors.ParserError)


def _csv_reader_args(path: Path, ext: str, gz: bool, columns: Sequence[str] | None, text: Sequence[str],
                     na_values: Sequence[str], strings: Sequence[str] = ()) -> tuple[str, dict]:
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
    return sep, {"sep": sep, "usecols": wanted, "encoding": "utf-8-sig", "encoding_errors": "strict",
                 "compression": "gzip" if gz else None,
                 **_csv_options(path, wanted or header, text, na_values, strings)}


def _read_csv(path: Path, ext: str, gz: bool, columns: Sequence[str] | None, text: Sequence[str],
              na_values: Sequence[str], strings: Sequence[str]) -> pd.DataFrame:
    sep, args = _csv_reader_args(path, ext, gz, columns, text, na_values, strings)
    try:
        return pd.read_csv(path, **args, low_memory=False)  # one dtype per column, not one per internal chunk
    except _PANDAS_CSV_ERRORS as err:
        raise _pandas_csv_error(path, sep, err) from None


def _parquet_columns(path: Path, columns: Sequence[str] | None) -> tuple[pq.ParquetFile, list[str] | None]:
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
    except (pa.ArrowException, OSError) as err:
        raise _damaged(path, err) from None
    names = [n for n in meta.schema_arrow.names if not re.fullmatch(r"__index_level_\d+__", n)]
    _reject_duplicates(path, names)
    return meta, _select(path, names, columns)


def _damaged(path: Path, err: Exception) -> UpliftInputError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UpliftInputError(f"{path} is damaged and cannot be read as Parquet ({first}); re-export it")


def _typed(frame: pd.DataFrame, text: Sequence[str], na_values: Sequence[str]) -> pd.DataFrame:
    """Parquet columns as the CSV reader gives them: ``text`` columns as strings, ``na_values`` missing (in the
    other columns)."""
    text = [c for c in text if c in frame.columns]
    for name in text:
        col = frame[name]
        if col.dtype.kind in "iu":  # numpy integers (no missing value): Arrow's decimal text is str()'s, 2x faster
            frame[name] = pd.Series(pa.array(col.to_numpy()).cast(pa.string()).to_numpy(zero_copy_only=False),
                                    index=frame.index, dtype=object)
        elif not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            frame[name] = col.astype(object).where(col.isna(), col.astype(str)).astype(object)
    if na_values:
        tokens = [str(v) for v in na_values]
        numbers = pd.to_numeric(pd.Series(tokens), errors="coerce").dropna().tolist()
        for name in frame.columns:
            if name in text:
                continue
            col = frame[name]
            marker = numbers if pd.api.types.is_numeric_dtype(col) else tokens
            if marker:
                hit = col.isin(marker)
                if hit.any():
                    frame[name] = col.mask(hit)
    return frame


def _parquet_frame(meta: pq.ParquetFile, columns: list[str] | None) -> pd.DataFrame:
    """``pq.read_table(path, columns=columns).to_pandas()``, read and converted one column at a time.

    Reading the whole table first holds every column twice at the peak, once decoded by Arrow and once converted
    by pandas (a 1M-row campaign file: 238 MB above the start for a 93 MB frame); one column at a time the peak
    is the frame and one column (142 MB). Each column is converted with the file's pandas metadata, so dtypes
    (categoricals, nullable integers, time zones) come back as a whole-table read gives them; the index columns
    the metadata names are read together and become the frame's index, as there.
    """
    schema = meta.schema_arrow
    names = list(schema.names) if columns is None else list(columns)
    try:
        pandas_meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}"))
    except ValueError:
        pandas_meta = {}
    stored_index = [c for c in pandas_meta.get("index_columns", []) if isinstance(c, str) and c in names]

    def convert(part: list[str]) -> pd.DataFrame:
        table = meta.read(columns=part, use_pandas_metadata=False).replace_schema_metadata(schema.metadata)
        out = table.to_pandas(self_destruct=True)
        del table
        pa.default_memory_pool().release_unused()  # Arrow's allocator would keep the decoded pages otherwise
        return out

    index = convert(stored_index).index if stored_index else None
    # float32 columns (a campaign's features, as the model takes them) are filled into one block as they are
    # read, so the study's feature matrix is a view of the frame's memory (uplift.data.campaign._float32_matrix)
    # and the features are held once: a 14M-row file of 12 such columns held them twice, 672 MB more.
    float32_names = [name for name in names if name not in stored_index and schema.field(name).type == pa.float32()]
    n_rows = meta.metadata.num_rows
    block = np.empty((len(float32_names), n_rows), np.float32) if len(float32_names) > 1 else None
    in_block: list[str] = []
    data = {}
    rows = pd.RangeIndex(n_rows)  # or the index the file's pandas metadata gives every column (a RangeIndex(5, 10))
    for name in names:
        if name in stored_index:
            continue
        col = convert([name])[name]
        rows = col.index
        if block is not None and name in float32_names and col.dtype == np.float32:
            block[len(in_block)] = col.to_numpy()
            in_block.append(name)
            del col
        else:
            data[name] = col
    if not in_block:
        frame = pd.DataFrame(data, copy=False) if data else pd.DataFrame(index=pd.RangeIndex(n_rows))
    else:  # a column taken as another dtype (a nullable Float32) leaves its row of the block unused: trimmed
        values = block[:len(in_block)] if len(in_block) == len(float32_names) else block[:len(in_block)].copy()
        del block
        frame = pd.concat([pd.DataFrame(values.T, columns=in_block, index=rows, copy=False),
                           pd.DataFrame(data, index=rows, copy=False)], axis=1)[
            [name for name in names if name not in stored_index]]
    if index is not None:
        frame.index = index
    return frame


def _read_parquet(path: Path, columns: Sequence[str] | None, text: Sequence[str],
                  na_values: Sequence[str]) -> pd.DataFrame:
    meta, wanted = _parquet_columns(path, columns)
    try:
        if meta.metadata.num_rows == 0:
            raise UpliftInputError(f"{path} has columns but no rows; export the table again with its rows")
        frame = _parquet_frame(meta, wanted)
    except (pa.ArrowException, OSError) as err:
        raise _damaged(path, err) from None
    return typed_frame(frame, text=text, na_values=na_values)


def typed_frame(frame: pd.DataFrame, *, text: Sequence[str] = (), na_values: Sequence[str] = ()) -> pd.DataFrame:
    """A frame from a typed source (Parquet, a SQL query) under the reader's rules: a stored index becomes a
    column, ``text`` columns become strings (category codes ``'01'``, raw dates) and ``na_values`` are missing.

    The one post-processing of every typed source, so a table reads the same whether it arrives as a Parquet
    file or as the result of a query (see :mod:`uplift.data.sql`).

    Examples
    --------
    >>> import pandas as pd
    >>> typed_frame(pd.DataFrame({"store": [1, 2], "spend": [-999, 5]}), text=["store"], na_values=["-999"])
      store  spend
    0     1    NaN
    1     2    5.0
    """
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.start != 0 or frame.index.step != 1:
        # A named pandas index stored in the file (e.g. customer_id) is data the analyst expects as a column.
        frame = frame.reset_index(drop=all(n is None for n in frame.index.names))
    return _typed(frame, text, na_values)


def select_columns(frame: pd.DataFrame, source: str, columns: Sequence[str] | None) -> pd.DataFrame:
    """``frame``'s ``columns`` in that order, or one error naming ``source`` and the close matches of a missing
    column (the check of :func:`read_table`'s ``columns``)."""
    if columns is None:
        return frame
    return frame[_select(Path(source), list(frame.columns), columns)]


def mark_source(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Remember where ``frame`` came from (a file or a query), so messages can name it (see :func:`locate`)."""
    return _mark(frame, Path(source), None)


def locate(frame: pd.DataFrame, row: int) -> str:
    """Where row ``row`` (0-based position) of ``frame`` is, in the analyst's terms: the line of the CSV file it
    was read from (the header is line 1), else its row position.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = p.write_text("id,x\\nA,1\\nB,2\\n")
    >>> locate(read_table(p), 1), locate(pd.DataFrame({"x": [1, 2]}), 1)
    ('line 3 of c.csv', 'row 1')
    """
    first = frame.attrs.get("uplift_first_line")
    source = frame.attrs.get("uplift_source")
    if first is not None and not _one_line_records(frame.iloc[:row]):
        first = None  # a quoted line break above the row: its line number is not its position plus one
    if first is None:  # a batch of a file counts its rows from the file's first
        return f"row {frame.attrs.get('uplift_first_row', 0) + row}" + (f" of {Path(source).name}" if source else "")
    return f"line {first + row} of {Path(source).name}"


def _mark(frame: pd.DataFrame, path: Path, first_line: int | None) -> pd.DataFrame:
    frame.attrs["uplift_source"] = str(path)
    # The file line of the first data row; locate() checks, only when a message needs it, that no quoted line
    # break above the row shifts the count.
    frame.attrs["uplift_first_line"] = first_line
    return frame


def _checked_path(path: PathLike) -> tuple[Path, str, bool]:
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
    ext, gz = _real_format(path, ext)
    return path, ext, gz


def _one_line_records(frame: pd.DataFrame) -> bool:
    text = frame.select_dtypes(include=["object", "string"])
    return not any(text[c].astype(str).str.contains("\n", regex=False).any() for c in text.columns)



def read_table(path: PathLike, *, columns: Sequence[str] | None = None, text: Sequence[str] = (),
               na_values: Sequence[str] = (), strings: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV/TSV (optionally gzipped) or Parquet table, refusing anything subtly wrong.

    The format follows the file's bytes where they say (gzip, Parquet; an Excel workbook is named as such),
    else its extension: ``.csv``, ``.csv.gz`` (comma), ``.tsv``, ``.tsv.gz`` (tab), ``.parquet``/``.pq``
    (read with pyarrow, only the requested columns). CSV must be UTF-8 (a leading byte-order mark is fine);
    there is deliberately no fallback to latin-1.

    Parameters
    ----------
    path : str or path-like
        The table file.
    columns : sequence of str, optional
        Columns to read, in the order returned. Default: all columns in file order.
    text : sequence of str, optional
        Columns read as text exactly as written (``000120`` stays ``"000120"``, ``None`` stays ``"None"``; only
        an empty field is missing): ids, arm labels and the category codes of a saved model.
    na_values : sequence of str, optional
        Extra values that mean "missing" in the other columns, e.g. ``["-999"]``.
    strings : sequence of str, optional
        Columns read as strings (never guessed as numbers) with the usual missing-value markers: a saved
        model's category codes (``'01'`` stays ``'01'``) and raw dates.

    Returns
    -------
    pandas.DataFrame
        With a fresh ``RangeIndex`` and at least one row. ``frame.attrs`` remembers the file, so messages
        can name the line of a row (see :func:`locate`).

    Raises
    ------
    UpliftInputError
        One line naming the file (and column) for: a missing file, an unsupported extension or an Excel
        workbook, an empty or header-only file, a file that looks separated by another delimiter, bytes that
        are not UTF-8 (with their offset and line), duplicate column names, a ``.parquet`` that is not
        Parquet, rows that do not match the header, and requested columns that are missing (with close
        matches).

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "campaign.csv"
    >>> _ = p.write_text("customer,spend,coupon\\n007,10.5,1\\n042,-999,0\\n")
    >>> read_table(p, columns=["coupon", "spend"])
       coupon  spend
    0       1   10.5
    1       0 -999.0
    >>> read_table(p, text=["customer"], na_values=["-999"])["customer"].tolist()
    ['007', '042']
    >>> read_table(p, columns=["spnd"])
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: ... has no column 'spnd' (did you mean 'spend'?); its columns are: ...
    """
    path, ext, gz = _checked_path(path)
    if ext in _PARQUET:
        # Parquet stores each column's type, so nothing was guessed: ids keep theirs; category codes are compared
        # with the training levels as strings.
        frame = _mark(_read_parquet(path, columns, strings, na_values), path, None)
    else:
        frame = _mark(_read_csv(path, ext, gz, columns, text, na_values, strings), path, 2)
    if len(frame) == 0:
        raise UpliftInputError(f"{path} has a header but no rows; export the table again with its rows")
    if columns is not None:
        frame = frame[_select(path, list(frame.columns), columns)]
    return frame


def read_table_batches(path: PathLike, *, columns: Sequence[str], batch_rows: int, text: Sequence[str] = (),
                       na_values: Sequence[str] = (), strings: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
    """:func:`read_table` in batches of at most ``batch_rows`` rows, for files too large to hold at once.

    The same checks and types as :func:`read_table`; each batch's ``attrs`` locate its rows in the file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
    >>> _ = p.write_text("id,x\\n01,1\\n02,2\\n03,3\\n")
    >>> [(b["id"].tolist(), locate(b, 0)) for b in read_table_batches(p, columns=["id"], batch_rows=2, text=["id"])]
    [(['01', '02'], 'line 2 of c.csv'), (['03'], 'line 4 of c.csv')]
    """
    path, ext, gz = _checked_path(path)
    if ext in _PARQUET:
        meta, wanted = _parquet_columns(path, columns)
        done = 0
        try:
            for batch in meta.iter_batches(batch_size=batch_rows, columns=wanted):
                frame = _typed(batch.to_pandas(), strings, na_values)[wanted]
                frame.index = pd.RangeIndex(len(frame))
                frame.attrs["uplift_first_row"] = done
                yield _mark(frame, path, None)
                done += len(frame)
        except (pa.ArrowException, OSError) as err:
            raise _damaged(path, err) from None
        return
    sep, args = _csv_reader_args(path, ext, gz, columns, text, na_values, strings)
    line, done = 2, 0
    try:
        for frame in pd.read_csv(path, **args, chunksize=batch_rows):
            frame = frame[list(args["usecols"])].reset_index(drop=True)
            one_line = line is not None and _one_line_records(frame)
            frame.attrs["uplift_first_row"] = done
            yield _mark(frame, path, line if one_line else None)
            line = line + len(frame) if one_line else None
            done += len(frame)
    except _PANDAS_CSV_ERRORS as err:
        raise _pandas_csv_error(path, sep, err) from None


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

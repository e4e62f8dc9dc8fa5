"""Tables from SQL: DuckDB queries over Parquet/CSV files, DuckDB database tables, and lists written back.

* :func:`read_sql` runs a DuckDB query (``SELECT ... FROM read_parquet('events/*.parquet')``) or reads a table
  of a DuckDB database file and hands the result to the same typed reader as a Parquet file
  (:func:`uplift.data.tables.typed_frame`): the same column selection, text columns, missing-value codes and
  "no rows" check, so a study reads the same from a query as from the exported file.
* :class:`SqlSource` names such a source once (query and/or database and table) so that every command can take
  it where it takes a file, and knows which files it reads (an output may not replace them).
* :func:`write_sql_table` writes a list back into a DuckDB table atomically: the rows go into a new table, which
  replaces the old one inside one transaction, so a reader sees the old list or the new one, never half.

DuckDB is an optional dependency (``pip install 'uplift[sql]'``), imported only here and only when used.
PostgreSQL and other warehouses are reached through DuckDB's own extensions: ``ATTACH 'dbname=shop'
AS pg (TYPE postgres)`` needs the ``postgres`` extension, which DuckDB downloads on first use (offline, install it
beforehand or it fails); only the DuckDB path (files and database files) is tested here.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from uplift.data.tables import mark_source, read_table, read_table_batches, select_columns, typed_frame
from uplift.errors import UpliftInputError

__all__ = ["SqlSource", "import_duckdb", "quote_name", "read_source", "read_source_batches", "read_sql",
           "read_sql_batches", "write_sql_table"]

#: File names a query reads, as its quoted literals (``read_parquet('events/*.parquet')``).
_LITERAL = re.compile(r"'((?:[^']|'')+)'")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def import_duckdb():
    """The duckdb module, or one error saying how to install it."""
    try:
        import duckdb
    except ImportError:
        raise UpliftInputError("SQL sources need DuckDB: pip install 'uplift[sql]' (or pip install duckdb)") from None
    return duckdb


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def quote_name(name: str) -> str:
    """``name`` as a quoted SQL identifier (``schema.table`` keeps its dot).

    Examples
    --------
    >>> quote_name("campaign"), quote_name("main.sent list")
    ('"campaign"', '"main"."sent list"')
    """
    parts = name.split(".", 1) if "." in name and not name.startswith('"') else [name]
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


@dataclass(frozen=True)
class SqlSource:
    """Where a table comes from when it is not a file: a DuckDB ``query``, or ``table`` of the database file ``db``
    (a query may also run inside ``db``).

    Examples
    --------
    >>> SqlSource(query="SELECT 1 AS x").label
    'the SQL query'
    >>> SqlSource(db="shop.duckdb", table="campaign").label
    'table campaign of shop.duckdb'
    """

    query: str | None = None
    db: str | os.PathLike | None = None
    table: str | None = None

    def __post_init__(self) -> None:
        if self.query is not None and not self.query.strip():
            raise UpliftInputError("the SQL query is empty; give a SELECT statement")
        if self.query is not None and self.table is not None:
            raise UpliftInputError("give a SQL query or a table, not both (a query can name the table itself)")
        if self.query is None and (self.db is None or self.table is None):
            raise UpliftInputError("a SQL source needs a query, or a database file and a table name")

    @property
    def label(self) -> str:
        """The source in a message: ``table NAME of FILE`` or ``the SQL query``."""
        if self.table is not None:
            return f"table {self.table} of {Path(self.db).name}"
        return "the SQL query" + (f" on {Path(self.db).name}" if self.db is not None else "")

    @property
    def name(self) -> str:
        """A short name (for messages that name a file)."""
        return self.label

    def inputs(self) -> list[Path]:
        """The files this source reads: the database file and every existing file a quoted literal of the query
        names (globs expanded), so that an output never replaces one of them."""
        found = [Path(self.db)] if self.db is not None else []
        for literal in _LITERAL.findall(self.query or ""):
            literal = literal.replace("''", "'")
            if len(literal) > 4096:
                continue
            with contextlib.suppress(OSError, ValueError):
                matches = glob.glob(literal) if glob.has_magic(literal) else [literal] if os.path.exists(literal) \
                    else []
                found.extend(Path(m) for m in matches)
        return found

    def connect(self):
        """A DuckDB connection to run the source in: its database file read-only, else an in-memory one."""
        duckdb = import_duckdb()
        if self.db is None:
            return duckdb.connect(":memory:")
        db = Path(self.db)
        if not db.is_file():
            raise UpliftInputError(f"{db} does not exist (or is not a file); give an existing DuckDB database file")
        try:
            return duckdb.connect(str(db), read_only=True)
        except duckdb.Error as err:
            raise UpliftInputError(f"{db} cannot be opened as a DuckDB database ({_first_line(err)})") from None

    def _statement(self, con) -> str:
        if self.query is not None:
            return self.query
        if not _NAME.match(self.table) and not self.table.startswith('"'):
            raise UpliftInputError(f"--table {self.table!r} is not a table name; give NAME or SCHEMA.NAME")
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        if self.table.split(".")[-1].strip('"') not in tables:
            close = difflib.get_close_matches(self.table, tables, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            listed = ", ".join(tables[:20]) or "none"
            raise UpliftInputError(f"{Path(self.db).name} has no table {self.table!r}{hint}; its tables are: {listed}")
        return f"SELECT * FROM {quote_name(self.table)}"

    @contextlib.contextmanager
    def _relation(self) -> Iterator:
        """The statement's DuckDB relation on a connection closed afterwards; a DuckDB error (also one raised
        while the relation is read) becomes a one-line input error naming the source."""
        duckdb = import_duckdb()
        con = self.connect()
        try:
            statement = self._statement(con)
            try:
                relation = con.sql(statement)
                if relation is None:
                    raise UpliftInputError(f"{self.label} returns no table; give a SELECT statement")
                yield relation
            except duckdb.Error as err:
                raise UpliftInputError(f"{self.label} failed: {_first_line(err)}") from None
        finally:
            con.close()

    def arrow(self) -> pa.Table:
        """The result as one Arrow table (DuckDB's native hand-over)."""
        with self._relation() as relation:
            table = _arrow_table(relation)
        return _plain_types(table)

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """The result in Arrow batches of at most ``batch_rows`` rows, streamed from DuckDB."""
        with self._relation() as relation:
            for batch in _arrow_reader(relation, batch_rows):
                yield _plain_types(pa.Table.from_batches([batch]))

def _arrow_table(result) -> pa.Table:
    # DuckDB 2 renamed fetch_arrow_table / fetch_record_batch to to_arrow_table / to_arrow_reader.
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch()


def _arrow_reader(result, batch_rows: int):
    fetch = getattr(result, "to_arrow_reader", None) or result.fetch_record_batch
    return fetch(batch_rows)


def _plain_types(table: pa.Table) -> pa.Table:
    """DuckDB's exact decimals (``SUM`` of integers is a HUGEINT, money columns DECIMAL) as the numbers a
    Parquet export would hold: whole decimals as int64 when they fit, others as float64. Otherwise pandas gets
    Python ``Decimal`` objects, which are neither numbers nor text to the reader."""
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            col = table.column(i)
            target = pa.float64()
            if field.type.scale == 0:
                with contextlib.suppress(pa.ArrowInvalid):
                    table = table.set_column(i, field.name, col.cast(pa.int64()))
                    continue
            table = table.set_column(i, field.name, col.cast(target, safe=False))
    return table


def _to_frame(table: pa.Table, source: SqlSource, columns: Sequence[str] | None, strings: Sequence[str],
              na_values: Sequence[str]) -> pd.DataFrame:
    names = table.column_names
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UpliftInputError(f"{source.label} returns two columns named {dup[0]!r}; alias one (AS ...) so every "
                               "column name is unique")
    frame = typed_frame(table.to_pandas(self_destruct=True), text=strings, na_values=na_values)
    return mark_source(select_columns(frame, source.label, columns), source.label)


def read_sql(query: str | None = None, *, db: str | os.PathLike | None = None, table: str | None = None,
             columns: Sequence[str] | None = None, text: Sequence[str] = (), na_values: Sequence[str] = (),
             strings: Sequence[str] = ()) -> pd.DataFrame:
    """Read the result of a DuckDB query, or a table of a DuckDB database file, as :func:`read_table` reads a
    Parquet file.

    Parameters
    ----------
    query : str, optional
        DuckDB SQL, e.g. ``"SELECT * FROM read_parquet('sent/*.parquet') WHERE wave = 3"``; run in ``db`` when
        given, else in a fresh in-memory database.
    db : str or path-like, optional
        A DuckDB database file, opened read-only.
    table : str, optional
        A table (``NAME`` or ``SCHEMA.NAME``) of ``db`` to read whole.
    columns, text, na_values, strings
        As for :func:`uplift.data.read_table`. The result is typed, as a Parquet file is: ``text`` columns keep
        their SQL type (as in Parquet), ``strings`` become text, ``na_values`` are missing.

    Returns
    -------
    pandas.DataFrame
        At least one row; ``frame.attrs`` name the source for messages.

    Raises
    ------
    UpliftInputError
        One line for a query DuckDB rejects (its first line of error), a missing database file or table (with
        close matches), duplicate column names, no rows, or a missing requested column.

    Examples
    --------
    >>> read_sql("SELECT * FROM (VALUES ('007', 10.5, 1), ('042', -999, 0)) t(customer, spend, coupon)",
    ...          na_values=["-999"])
      customer  spend  coupon
    0      007   10.5       1
    1      042    NaN       0
    >>> read_sql("SELEC 1")
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: the SQL query failed: Parser Error: syntax error at or near "SELEC"
    """
    source = SqlSource(query=query, db=db, table=table)
    del text  # typed like Parquet: an id column keeps the type the query gives it
    frame = _to_frame(source.arrow(), source, columns, strings, na_values)
    if len(frame) == 0:
        raise UpliftInputError(f"{source.label} returns no rows; check its WHERE clause and the tables it reads")
    return frame


def read_sql_batches(source: SqlSource, *, columns: Sequence[str], batch_rows: int, text: Sequence[str] = (),
                     na_values: Sequence[str] = (), strings: Sequence[str] = ()) -> Iterator[pd.DataFrame]:
    """:func:`read_sql` in batches of at most ``batch_rows`` rows, streamed (for scoring large customer bases)."""
    del text
    rows = 0
    for table in source.batches(batch_rows):
        if table.num_rows:
            rows += table.num_rows
            yield _to_frame(table, source, columns, strings, na_values)
    if rows == 0:
        raise UpliftInputError(f"{source.label} returns no rows; check its WHERE clause and the tables it reads")


def read_source(source: str | os.PathLike | SqlSource, **options) -> pd.DataFrame:
    """A table from a file (:func:`~uplift.data.tables.read_table`) or a :class:`SqlSource` (:func:`read_sql`),
    with the same reading options.

    Examples
    --------
    >>> read_source(SqlSource(query="SELECT 1 AS x")).x.tolist()
    [1]
    """
    if isinstance(source, SqlSource):
        return read_sql(source.query, db=source.db, table=source.table, **options)
    return read_table(source, **options)


def read_source_batches(source: str | os.PathLike | SqlSource, **options) -> Iterator[pd.DataFrame]:
    """:func:`read_source` in batches (``columns`` and ``batch_rows`` required)."""
    if isinstance(source, SqlSource):
        return read_sql_batches(source, **options)
    return read_table_batches(source, **options)


def write_sql_table(frame: pd.DataFrame, db: str | os.PathLike, table: str) -> None:
    """Write ``frame`` into ``table`` of the DuckDB database file ``db`` (created if missing), atomically.

    The rows are loaded into a new table first; the old table is dropped and the new one renamed in its place
    in one transaction, so a reader (or a crash) sees the old table or the new one, never a partial list.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> db = pathlib.Path(tempfile.mkdtemp()) / "shop.duckdb"
    >>> write_sql_table(pd.DataFrame({"customer": ["A", "B"], "uplift": [0.1, 0.2]}), db, "targets")
    >>> read_sql(db=db, table="targets").uplift.tolist()
    [0.1, 0.2]
    """
    duckdb = import_duckdb()
    if not _NAME.match(table):
        raise UpliftInputError(f"--out-table {table!r} is not a table name; give NAME or SCHEMA.NAME")
    db = Path(db)
    if not db.parent.is_dir():
        raise UpliftInputError(f"cannot write {db.name}: directory {db.parent} does not exist; create it first")
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError) as err:
        raise UpliftInputError(f"cannot write table {table} of {db.name} ({_first_line(err)}); give each column "
                               "one type") from None
    final = quote_name(table)
    staging = quote_name(f"{table}__uplift_new_{os.getpid()}")
    try:
        con = duckdb.connect(str(db))
    except duckdb.Error as err:
        raise UpliftInputError(f"cannot open {db} to write table {table} ({_first_line(err)})") from None
    try:
        con.register("uplift_rows", arrow)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"CREATE TABLE {staging} AS SELECT * FROM uplift_rows")
            swap_in(con, staging, final, table)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except duckdb.Error as err:
        raise UpliftInputError(f"cannot write table {table} of {db.name} ({_first_line(err)})") from None
    finally:
        con.close()


def swap_in(con, staging: str, final: str, table: str) -> None:
    """Inside the caller's transaction: drop ``final`` and rename ``staging`` to it."""
    con.execute(f"DROP TABLE IF EXISTS {final}")
    con.execute(f"ALTER TABLE {staging} RENAME TO {quote_name(table.split('.')[-1])}")

"""Where a command's table comes from: a file, a DuckDB query (``--sql``) or a database table (``--db --table``).

Every command that reads a campaign or customer table takes the same three options beside the file argument;
:func:`table_source` turns them into one source (a path or a :class:`~uplift.data.sql.SqlSource`) that the
readers of :mod:`uplift.data` accept, and :func:`source_inputs` lists the files it reads, which no output of the
command may replace. A DuckDB database is an input like a file; writing a list back into it is the one
explicit exception (:func:`check_table_output`): another table of the same database, never the table read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from uplift.data.sql import SqlSource
from uplift.errors import UpliftInputError

__all__ = ["DbOpt", "OutTableOpt", "SqlOpt", "TableOpt", "TrainingDataArg", "check_table_output", "source_inputs",
           "table_source"]

SqlOpt = Annotated[str | None, typer.Option("--sql", metavar="QUERY", help="Read the table from a DuckDB query "
                                            "instead of a file, e.g. \"SELECT * FROM read_parquet('sent/*.parquet')\""
                                            " (run in --db when given); needs the sql extra: pip install "
                                            "'uplift\\[sql]'.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="DuckDB database file (opened read-only) that --table or "
                                            "--sql reads.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="Table of --db to read instead of a file.")]
TrainingDataArg = Annotated[Path | None, typer.Argument(help="The training data the model was fitted on (verified by "
                                                      "hash); or --sql / --db --table.")]
OutTableOpt = Annotated[str | None, typer.Option("--out-table", help="Write the list into this table of the DuckDB "
                                                 "database --out (created if missing; the table is replaced "
                                                 "atomically) instead of a file.")]


def table_source(path: Path | None, sql: str | None, db: Path | None, table: str | None,
                 what: str = "DATA") -> Path | SqlSource:
    """The one table source of a command: ``path``, or ``--sql`` (in ``--db``), or ``--db`` and ``--table``.

    Examples
    --------
    >>> table_source(Path("c.csv"), None, None, None)
    PosixPath('c.csv')
    >>> table_source(None, "SELECT 1", None, None).query
    'SELECT 1'
    >>> table_source(Path("c.csv"), "SELECT 1", None, None)
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: give the table once: the file DATA, --sql QUERY or --db FILE --table NAME
    """
    given = sum(x is not None for x in (path, sql, table))
    if given != 1:
        if given == 0 and db is not None:
            raise UpliftInputError(f"--db {db}: name the table to read with --table NAME (or give --sql QUERY)")
        how = "the file " + what + ", --sql QUERY or --db FILE --table NAME"
        raise UpliftInputError(f"give the table once: {how}" if given else f"no table given: give {how}")
    if path is not None:
        if db is not None:
            raise UpliftInputError(f"--db {db} is read with --table or --sql, not with the file {path}")
        return path
    if table is not None and db is None:
        raise UpliftInputError(f"--table {table}: give the DuckDB database file with --db FILE")
    return SqlSource(query=sql, db=db, table=table)


def source_inputs(source: Path | SqlSource | None) -> list[Path]:
    """The files ``source`` reads (a path itself; a database file and the files a query names)."""
    if source is None:
        return []
    return source.inputs() if isinstance(source, SqlSource) else [source]


def check_table_output(out: Path, out_table: str, source: Path | SqlSource) -> list[Path]:
    """Check a write-back of a list into table ``out_table`` of the database ``out``; return the inputs that
    ``out`` must still not be (every input except that database, when it is the one read)."""
    if not out.name.lower().endswith((".duckdb", ".db", ".ddb")):
        raise UpliftInputError(f"--out-table writes into a DuckDB database: give --out a .duckdb file (got {out})")
    inputs = source_inputs(source)
    db = source.db if isinstance(source, SqlSource) else None
    if db is not None and Path(db).resolve() == out.resolve():
        read = source.table is not None and source.table.lower() == out_table.lower()
        if read or (source.query and re.search(rf"\b{re.escape(out_table)}\b", source.query, re.IGNORECASE)):
            raise UpliftInputError(f"refusing to replace table {out_table} of {out.name}: this command reads it; "
                                   "choose another --out-table")
        return [p for p in inputs if p.resolve() != out.resolve()]
    return inputs

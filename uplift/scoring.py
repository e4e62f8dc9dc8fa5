"""Streamed scoring of large customer files: memory stays flat however big the file is.

Parquet is read one row group batch at a time (only the feature and id columns, via pyarrow column
projection), CSV in chunks; each batch is encoded with the study's feature schema, scored, and appended to
a temporary output that replaces the target only when every batch succeeded (atomic, nothing half-written).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult

#: Rows per scoring batch: large enough for LightGBM to use its threads, small enough to bound memory.
BATCH_ROWS = 500_000


def _batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not parquet
            raise UpliftInputError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
        present = set(pf.schema_arrow.names)
        missing = [c for c in columns if c not in present]
        if missing:
            raise UpliftInputError(f"{path}: column(s) {', '.join(map(repr, missing))} missing; the model needs "
                                   f"{', '.join(columns)}")
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()
        return
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        sep = "\t" if ".tsv" in name else ","
        try:
            header = pd.read_csv(path, sep=sep, nrows=0).columns
        except (pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
            raise UpliftInputError(f"{path}: cannot read the header ({exc})") from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise UpliftInputError(f"{path}: column(s) {', '.join(map(repr, missing))} missing; the model needs "
                                   f"{', '.join(columns)}")
        yield from pd.read_csv(path, sep=sep, usecols=columns, chunksize=batch_rows)
        return
    raise UpliftInputError(f"{path}: unsupported file type; use .csv, .csv.gz, .tsv or .parquet")


def score_file(result: FitResult, data: str | Path, out: str | Path, *, learner: str | None = None,
               batch_rows: int = BATCH_ROWS, drift: dict | None = None) -> int:
    """Score every row of ``data`` into ``out`` (CSV or Parquet), batch by batch. Returns the row count.

    When ``drift`` is a dict, it receives the drift report of the first batch (up to ``batch_rows``
    customers) against the training profile. ``learner="fast"`` scores with the distilled scorer
    (see :meth:`uplift.fit.result.FitResult.predict_uplift`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(3000, seed=4)
    >>> truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    >>> s = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
    ...     learners=["t"], n_folds=3, n_boot=20)
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> df.to_parquet(d / "c.parquet")
    >>> score_file(s.result, d / "c.parquet", d / "scores.parquet", batch_rows=1000)
    3000
    """
    data, out = Path(data), Path(out)
    if out.exists() and data.exists() and os.path.samefile(out, data):
        raise UpliftInputError(f"output {out} is the input file; choose another path")
    if not out.parent.is_dir():
        raise UpliftInputError(f"output directory {out.parent} does not exist; create it first")
    id_col = result.id_column
    columns = list(result.schema.names) + ([id_col] if id_col else [])
    out_name = out.name.lower()
    parquet = out_name.endswith((".parquet", ".pq"))
    if not parquet and not out_name.endswith(".csv"):
        raise UpliftInputError(f"output {out}: use a .csv or .parquet file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise UpliftInputError(f"cannot write to {out.parent}: {exc.strerror}") from None
    os.close(fd)
    rows = 0
    writer = None
    try:
        for i, batch in enumerate(_batches(data, columns, batch_rows)):
            pred = result.predict_uplift(batch, learner=learner)
            if i == 0 and drift is not None:
                drift.update(result.drift(batch, uplift=pred))
            rows += len(pred)
            if parquet:
                table = pa.Table.from_pandas(pred, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="snappy")
                writer.write_table(table)
            else:
                pred.to_csv(tmp, mode="w" if i == 0 else "a", header=i == 0, index=False, float_format="%.10g")
        if writer is not None:
            writer.close()
            writer = None
        if rows == 0:
            raise UpliftInputError(f"{data}: no rows to score")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return rows

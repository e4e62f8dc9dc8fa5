"""Scoring and targeting lists on Apache Spark, for customer bases too large for one machine.

Install with ``pip install 'uplift[spark]'``. Fit the study on one machine (on a sample) and save it; Spark then
applies it to every customer:

* :func:`score_spark` — predicted uplift of every row of a Spark DataFrame, with the columns of
  :meth:`Study.predict_uplift <uplift.study.Study.predict_uplift>`.
* :func:`target_spark` — the targeting list of :meth:`Study.target <uplift.study.Study.target>` (same columns,
  order and numbers), written atomically as Parquet, with the same summary (expected value with 95% CI from the
  study's out-of-fold rows, and the baselines; shared code in :func:`uplift.targeting.lists.list_summary`).

How. The saved model directory travels to the executors once, as a tar archive in a broadcast variable; each Python
worker unpacks it and loads it with :func:`uplift.persist.load_result` (which verifies every file's sha256) once,
into a cache keyed by the archive's sha256, then scores row batches with ``mapInPandas``. Per-customer economics
(profit of every coupon, eligibility, each customer's best coupon) call :mod:`uplift.targeting.allocation`'s own
functions on each batch. The global ranking and the budget cut are a sort and a running sum in Spark SQL windows,
one per range of the ranking key, so no step moves every customer to one machine. For several coupons under a
budget, the local search of :func:`uplift.targeting.allocate` touches only the few thousand customers near the
greedy's break point: they are collected and improved on the driver with the same function.

Ties in expected profit are broken by input order, as in pandas: the order Spark reads the rows in (partition by
partition). That is the file order for one file or a DataFrame made from pandas; several files are read in Spark's
own order (largest first), which only matters between customers with exactly the same expected profit.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import sys
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from uplift.data.campaign import FeatureSchema
from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult
from uplift.persist.container import MANIFEST
from uplift.persist.store import load_result, save_result
from uplift.targeting.allocation import (
    CORE,
    TargetingRule,
    check_rule,
    eligible,
    hull_increments,
    hull_top,
    least_bad_coupon,
    local_search,
)
from uplift.targeting.economics import costs_and_value, exclusion_keys, exclusion_mask
from uplift.targeting.lists import list_summary, uplift_columns

__all__ = ["SparkTargetingResult", "read_customers", "score_spark", "spark_session", "target_spark"]

#: Rows per range of the ranking key. Up to this many rows the ranking is one window (the running spend is summed
#: row after row, like numpy's cumulative sum); beyond it each range has its own window, offset by the totals of the
#: ranges ranked before it (the same sums up to rounding in the last bits).
ROWS_PER_RANGE = 2_000_000
#: Customers sampled for the drift check against the training profile.
DRIFT_ROWS = 50_000
#: Studies kept loaded per Python worker, keyed by the sha256 of their archive.
_CACHE_SIZE = 4
_MODELS: dict[str, object] = {}
#: Driver side: one broadcast per (Spark application, model archive), reused by later calls.
_BROADCASTS: dict[tuple[str, str], object] = {}


def _pyspark():
    """pyspark's SQL modules, imported on first use so that ``import uplift`` never needs Spark."""
    try:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T
        from pyspark.sql.window import Window
    except ImportError:
        raise UpliftInputError("the Spark engine needs pyspark: pip install 'uplift[spark]'") from None
    return F, T, Window


def _col(name: str):
    """A column by its exact name (dots and spaces in user column names are not struct access)."""
    F, _, _ = _pyspark()
    return F.col("`" + name.replace("`", "``") + "`")


@contextlib.contextmanager
def _spark_errors(what: str = "spark"):
    """Input errors raised inside Spark jobs (or by Spark on bad input) as one-line UpliftInputErrors."""
    try:
        yield
    except UpliftInputError:
        raise
    except Exception as exc:
        text = str(exc)
        found = re.search(r"UpliftInputError: (.+)", text)
        if found:  # raised by our code in a Python worker; Spark wraps it in its own exception and traceback
            raise UpliftInputError(found.group(1).strip()) from None
        if type(exc).__name__ == "AnalysisException":  # missing path, unreadable file, unknown column
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise UpliftInputError(f"{what}: {first}") from None
        raise


# ------------------------------------------------------------------------------------------------------------
# sessions and input

@contextlib.contextmanager
def spark_session(master: str = "local[*]", app_name: str = "uplift"):
    """The active Spark session, or a new one on ``master`` that is stopped on exit.

    Examples
    --------
    >>> with spark_session("local[2]") as spark:  # doctest: +SKIP
    ...     customers = read_customers(spark, "customers.parquet")
    """
    _pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if master.startswith("local"):
        # Local Python workers must run this interpreter (where uplift is installed), not any `python3` on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        spark = SparkSession.builder.master(master).appName(app_name).getOrCreate()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UpliftInputError(f"cannot start Spark on {master!r} ({first}); Spark needs Java 17 or newer "
                               "(java on PATH or JAVA_HOME set)") from None
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def read_customers(spark, path: str | os.PathLike, *, schema: FeatureSchema | None = None):
    """Read a customer table with Spark: Parquet (a file or a directory of files; recommended), or CSV/TSV with
    a header, optionally gzipped.

    With the model's ``schema`` (``study.schema``), a CSV is read as the pandas reader of
    :mod:`uplift.data.tables` reads it for that model: every column as text (ids and category codes byte for
    byte: ``000120`` stays ``"000120"``), and only the numeric features cast to numbers (a value that is not a
    number, such as ``NA``, becomes missing); dates and missing-value codes are then converted per batch by the
    schema, as on the pandas engine. Without it, Spark infers the CSV's types: prefer passing the schema, or
    Parquet.
    """
    text = str(path)
    name = text.rstrip("/").lower()
    if "://" not in text and not Path(text).exists():
        raise UpliftInputError(f"{path} does not exist; check the path")
    if name.endswith((".parquet", ".pq")):
        with _spark_errors(text):
            return spark.read.parquet(text)
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        with _spark_errors(text):
            sdf = spark.read.csv(text, header=True, inferSchema=schema is None, sep="\t" if ".tsv" in name else ",",
                                 mode="FAILFAST")
        if schema is None:
            return sdf
        numeric = [n for n in schema.names if n not in schema.categories and n not in schema.dates]
        return sdf.select(*[_col(c).try_cast("double").alias(c) if c in numeric else _col(c) for c in sdf.columns])
    raise UpliftInputError(f"{path}: unsupported file type; use .parquet (recommended), .csv, .csv.gz, .tsv "
                           "or .tsv.gz")


def _id_column(result: FitResult) -> str:
    id_col = result.id_column
    if not id_col:
        raise UpliftInputError("the Spark engine needs the study's customer id column (fit with id=..., CLI --id): "
                               "rows of a Spark DataFrame have no fixed order to identify customers by")
    return id_col


def _inputs(result: FitResult, sdf, id_col: str, *, row: bool):
    """The id and feature columns of ``sdf`` (and, with ``row``, the input position ``__row``)."""
    F, _, _ = _pyspark()
    needed = list(dict.fromkeys([id_col, *result.schema.source_columns]))
    missing = [c for c in needed if c not in sdf.columns]
    if missing:
        raise UpliftInputError(f"column(s) {', '.join(map(repr, missing))} missing from the customers; the model "
                               f"needs {', '.join(needed)}")
    frame = sdf.select(*[_col(c) for c in needed])
    # Assigned before any shuffle: increasing in the order Spark reads the rows, the pandas path's row index.
    return frame.withColumn("__row", F.monotonically_increasing_id()) if row else frame


def _template(result: FitResult, inputs, learner: str | None) -> pd.DataFrame:
    """``predict_uplift`` of the first customer on the driver: its columns, and clean errors before any job."""
    with _spark_errors():
        head = inputs.drop("__row").limit(1).toPandas()
    if head.empty:
        raise UpliftInputError("no customers to score: the DataFrame is empty")
    return result.predict_uplift(head, learner=learner)


# ------------------------------------------------------------------------------------------------------------
# shipping the model to the executors

@dataclass(frozen=True)
class _Model:
    """A saved study as the executors receive it: the sha256 of its archive and the archive, shared."""

    digest: str
    archive: object  # a pyspark Broadcast of the tar bytes, or _Inline


class _Inline:
    """Stand-in for a broadcast where the session has none (Spark Connect): the value travels with each task."""

    def __init__(self, value) -> None:
        self.value = value

    def unpersist(self) -> None:
        pass


def _share(spark, value):
    try:
        sc = spark.sparkContext
    except Exception:  # Spark Connect sessions have no SparkContext and no broadcast variables
        return _Inline(value)
    return sc.broadcast(value)


def _archive(directory: Path) -> bytes:
    """Deterministic tar of a model directory (the files its manifest lists, and the manifest)."""
    manifest = json.loads((directory / MANIFEST).read_bytes())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in [*sorted(manifest["sha256"]), MANIFEST]:
            data = (directory / name).read_bytes()
            info = tarfile.TarInfo(f"model/{name}")
            info.size, info.mode = len(data), 0o644  # no time or owner: the same model gives the same archive
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _ship(study_or_model_dir, spark) -> tuple[FitResult, _Model]:
    """The fitted result on the driver, and the model shipped to the executors (once per application and model).

    ``study_or_model_dir``: a fitted :class:`~uplift.study.Study` or :class:`~uplift.fit.result.FitResult` (saved
    to a temporary directory first), or a model directory (verified before anything is shipped).
    """
    fitted = getattr(study_or_model_dir, "result", study_or_model_dir)
    if fitted is None:
        raise UpliftInputError("the study is not fitted yet: call .fit() first")
    if isinstance(fitted, FitResult):
        result = fitted
        with tempfile.TemporaryDirectory(prefix="uplift-spark-") as tmp:
            archive = _archive(save_result(result, Path(tmp) / "model"))
    else:
        directory = Path(fitted)
        result = load_result(directory)  # verifies format and hashes before anything is shipped
        archive = _archive(directory)
    digest = hashlib.sha256(archive).hexdigest()
    try:
        key = (spark.sparkContext.applicationId, digest)
    except Exception:  # Spark Connect
        return result, _Model(digest, _Inline(archive))
    if key not in _BROADCASTS:
        _BROADCASTS[key] = _share(spark, archive)
    return result, _Model(digest, _BROADCASTS[key])


def _worker_result(model: _Model) -> FitResult:
    """The fitted result of ``model`` in this Python worker: unpacked and loaded (hashes verified) on first use."""
    result = _MODELS.get(model.digest)
    if result is None:
        with tempfile.TemporaryDirectory(prefix="uplift-model-") as tmp:
            with tarfile.open(fileobj=io.BytesIO(model.archive.value)) as tar:
                tar.extractall(tmp, filter="data")
            # trust: the driver shipped these bytes after loading them itself (a directory it was given is
            # loaded without trust, so pickles only arrive from a result the caller already trusted)
            result = load_result(Path(tmp) / "model", trust=True)  # reads every file into memory
        while len(_MODELS) >= _CACHE_SIZE:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[model.digest] = result
    return result


# ------------------------------------------------------------------------------------------------------------
# scoring

def _prediction_schema(template: pd.DataFrame, input_schema, id_col: str):
    _, T, _ = _pyspark()
    fields = []
    for name in template.columns:
        if name == id_col:
            fields.append(input_schema[id_col])
        elif pd.api.types.is_float_dtype(template[name]):
            fields.append(T.StructField(name, T.DoubleType()))
        else:
            fields.append(T.StructField(name, T.StringType()))
    return T.StructType(fields)


def score_spark(study_or_model_dir, sdf, *, learner: str | None = None):
    """Predicted uplift of every customer of a Spark DataFrame, scored on the executors.

    Parameters
    ----------
    study_or_model_dir : Study or path
        A fitted :class:`~uplift.study.Study` (saved to a temporary directory first) or a model directory
        written by ``Study.save`` / ``uplift fit``. The study needs a customer id column.
    sdf : pyspark.sql.DataFrame
        Customers: the id column and every feature the model was trained on (other columns are ignored).
    learner : str, optional
        Learner to use (default: the study's chosen one).

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; one row per input row with exactly the columns of ``Study.predict_uplift``: the id,
        ``uplift`` (several coupons: ``uplift_<arm>`` per arm, ``best_arm`` and ``uplift``) and
        ``uplift_lower``/``uplift_upper`` for learners with per-customer intervals.

    Examples
    --------
    >>> scores = score_spark("model/", spark.read.parquet("customers.parquet"))  # doctest: +SKIP
    >>> scores.write.parquet("scores.parquet")  # doctest: +SKIP
    """
    _pyspark()
    result, model = _ship(study_or_model_dir, sdf.sparkSession)
    id_col = _id_column(result)
    inputs = _inputs(result, sdf, id_col, row=False)
    template = _template(result, inputs, learner)
    learner = learner or result.best_learner

    def score(batches):
        worker = _worker_result(model)
        for batch in batches:
            yield worker.predict_uplift(batch, learner=learner)

    return inputs.mapInPandas(score, _prediction_schema(template, sdf.schema, id_col))


# ------------------------------------------------------------------------------------------------------------
# targeting: per-customer economics (executors), ranking and cut (Spark SQL), local search (driver)

@dataclass
class SparkTargetingResult:
    """A targeting list written by Spark: the list (read back from ``out``; sort by ``rank`` to read it in
    order), its summary (the keys of :class:`uplift.targeting.lists.TargetingResult`'s), and where it is."""

    list: object
    summary: dict
    out: str


def _economics_schema(input_schema, id_col: str, n_arms: int, bounds: bool):
    _, T, _ = _pyspark()
    fields = [input_schema[id_col], T.StructField("__row", T.LongType())]
    for a in range(n_arms):
        fields += [T.StructField(f"__u{a}", T.DoubleType()), T.StructField(f"__p{a}", T.DoubleType()),
                   T.StructField(f"__ok{a}", T.BooleanType())]
        if bounds:
            fields += [T.StructField(f"__lo{a}", T.DoubleType()), T.StructField(f"__hi{a}", T.DoubleType())]
    fields += [T.StructField(c, T.IntegerType()) for c in ("__top", "__lb", "__argmax")]
    return T.StructType(fields)


def _economics(model: _Model, learner: str, columns: tuple[list[str], list[str], list[str]], rule: TargetingRule,
               excluded, id_col: str, bounds: bool):
    """The mapInPandas function: per customer, uplift and profit of every coupon, eligibility, and the coupon
    each step of :func:`uplift.targeting.allocation.allocate` would offer her."""
    up_cols, lo_cols, hi_cols = columns
    costs = rule.cost

    def rows(batches):
        study = _worker_result(model)
        keys = None if excluded is None else excluded.value
        for batch in batches:
            n = len(batch)
            if n == 0:
                continue
            pred = study.predict_uplift(batch.drop(columns="__row"), learner=learner)
            up = pred[up_cols].to_numpy(dtype=float)
            bad = ~np.isfinite(up).all(axis=1)
            if bad.any():
                who = batch[id_col].iloc[int(np.flatnonzero(bad)[0])]
                raise UpliftInputError(f"the model predicted a missing/infinite uplift for customer {who!r}; "
                                       "check that customer's feature values")
            ex = None if keys is None else exclusion_mask(batch[id_col], keys)
            profit = up * rule.value - costs
            ok = eligible(profit, rule, ex)
            _, reached = hull_increments(profit, costs, ok & (profit > 0))
            top = hull_top(reached)  # the greedy's coupon for her when everything fits
            least_bad, _ = least_bad_coupon(profit, costs, ok)  # where allow_negative appends her
            out = {id_col: batch[id_col].to_numpy(), "__row": batch["__row"].to_numpy()}
            for a in range(len(costs)):
                out[f"__u{a}"], out[f"__p{a}"], out[f"__ok{a}"] = up[:, a], profit[:, a], ok[:, a]
                if bounds:
                    out[f"__lo{a}"] = pred[lo_cols[a]].to_numpy(dtype=float)
                    out[f"__hi{a}"] = pred[hi_cols[a]].to_numpy(dtype=float)
            out["__top"], out["__lb"] = top.astype(np.int32), least_bad.astype(np.int32)
            out["__argmax"] = up.argmax(axis=1).astype(np.int32)
            yield pd.DataFrame(out)

    return rows


def _pick(prefix: str, n_arms: int, index):
    """Per row, column ``<prefix><index>`` (null where the index is -1)."""
    F, _, _ = _pyspark()
    index = F.col(index) if isinstance(index, str) else index
    return F.when(index >= 0, F.array(*[F.col(f"{prefix}{a}") for a in range(n_arms)])[index])


def _lookup(values, index):
    """Per row, ``values[index]`` for a short Python list (coupon names or costs); null where index is -1."""
    F, _, _ = _pyspark()
    index = F.col(index) if isinstance(index, str) else index
    return F.when(index >= 0, F.array(*[F.lit(v) for v in values])[index])


def _ranked(frame, key: str, ties: list[str], cost: str, n: int):
    """``frame`` with its position ``__pos`` (0-based) in the order ``key`` descending, then ``ties`` ascending,
    and ``__cum``, the running total of ``cost`` along that order.

    Rows are cut into ranges of ``key`` (approximate quantiles, :data:`ROWS_PER_RANGE` rows each); each range is
    ordered and summed in its own window and offset by the ranges before it. Equal keys share a range, so
    the order is exactly the global one.
    """
    F, _, Window = _pyspark()
    n_ranges = max(1, math.ceil(n / ROWS_PER_RANGE))
    splits = []
    if n_ranges > 1:
        with _spark_errors():
            qs = frame.approxQuantile(key, [i / n_ranges for i in range(1, n_ranges)], 0.25 / n_ranges)
        splits = sorted({q for q in qs if math.isfinite(q)}, reverse=True)
    if splits:  # range 0 holds the highest keys
        frame = frame.withColumn("__range", F.size(F.filter(F.array(*[F.lit(s) for s in splits]),
                                                            lambda s: s >= F.col(key))))
    else:
        frame = frame.withColumn("__range", F.lit(0))
    order = Window.partitionBy("__range").orderBy(F.col(key).desc(), *[F.col(t).asc() for t in ties])
    running = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ranked = (frame.withColumn("__pos", (F.row_number().over(order) - 1).cast("long"))
              .withColumn("__cum", F.sum(cost).over(running)))
    if not splits:
        return ranked.drop("__range")
    with _spark_errors():
        totals = frame.groupBy("__range").agg(F.count("*").alias("n"), F.sum(cost).alias("s")).collect()
    offsets, before_n, before_s = [], 0, 0.0
    for r in sorted(totals, key=lambda r: r["__range"]):
        offsets.append((int(r["__range"]), before_n, before_s))
        before_n, before_s = before_n + int(r["n"]), before_s + float(r["s"])
    offsets = frame.sparkSession.createDataFrame(offsets, "__range int, __off_n long, __off_s double")
    return (ranked.join(F.broadcast(offsets), "__range")
            .withColumn("__pos", F.col("__pos") + F.col("__off_n"))
            .withColumn("__cum", F.col("__cum") + F.col("__off_s"))
            .drop("__range", "__off_n", "__off_s"))


def _first_pos(ranked, condition, default: int) -> int:
    """The first position where ``condition`` holds (``default`` if none): the end of a prefix."""
    F, _, _ = _pyspark()
    with _spark_errors():
        first = ranked.filter(condition).agg(F.min("__pos")).first()[0]
    return default if first is None else int(first)


def _count(frame) -> int:
    with _spark_errors():
        return frame.count()


def _greedy_with_budget(scored, rule: TargetingRule, k: int, keep):
    """Several coupons under a budget: ``scored`` with ``__chosen``, as :func:`uplift.targeting.allocate` does it.

    1. LP-greedy: every customer's hull increments, ranked by efficiency (ties: input order, then hull step),
       taken while the running spend fits: a sort and a running sum.
    2. Local search near the break point (:func:`uplift.targeting.allocation.local_search`) on the driver, over
       the same "core" of customers pandas uses; everyone else keeps the greedy's coupon.
    3. With ``allow_negative``, the others at their least-bad coupon, best first, while budget and cap allow.
    """
    F, T, _ = _pyspark()
    costs, budget, slack = rule.cost, rule.budget, rule.budget_slack
    n_arms = len(costs)
    p_cols, ok_cols = [f"__p{a}" for a in range(n_arms)], [f"__ok{a}" for a in range(n_arms)]
    has = scored.filter(F.col("__top") >= 0)
    n_pos = _count(has)
    if k < n_pos:
        raise UpliftInputError(
            f"several coupons with both a budget and a binding max_customers ({k} of {n_pos} customers with a "
            "profitable coupon) is not supported by the Spark engine; drop one of the two limits, or use the "
            "pandas engine (study.target / --engine pandas)")

    def increments(batches):
        for b in batches:
            profit = b[p_cols].to_numpy(dtype=float)
            allowed = b[ok_cols].to_numpy(dtype=bool) & (profit > 0)
            (row, step, to, d_cost, eff), _ = hull_increments(profit, costs, allowed)
            yield pd.DataFrame({"__row": b["__row"].to_numpy()[row], "__step": step.astype(np.int32),
                                "__to": to.astype(np.int32), "__dcost": d_cost, "__eff": eff})

    schema = T.StructType([T.StructField("__row", T.LongType()), T.StructField("__step", T.IntegerType()),
                           T.StructField("__to", T.IntegerType()), T.StructField("__dcost", T.DoubleType()),
                           T.StructField("__eff", T.DoubleType())])
    incs = keep(has.select("__row", *p_cols, *ok_cols).mapInPandas(increments, schema))
    n_inc = _count(incs)
    ranked = keep(_ranked(incs, "__eff", ["__row", "__step"], "__dcost", n_inc))
    brk = _first_pos(ranked, F.col("__cum") > budget + slack, n_inc)
    reached = (ranked.filter(F.col("__pos") < brk).groupBy("__row")
               .agg(F.max_by("__to", "__step").alias("__chosen")))
    armed = keep(scored.join(reached, "__row", "left").fillna({"__chosen": -1}))

    if brk < n_inc:  # the budget binds: repair near the break point, exactly as allocate's greedy (step 3)
        half = CORE // 2
        chosen = F.col("__chosen")
        near = ranked.filter((F.col("__pos") >= max(0, brk - half)) & (F.col("__pos") < brk + half))
        weakest = (armed.filter(chosen >= 0).orderBy(_pick("__p", n_arms, chosen).asc(), F.col("__row").asc())
                   .limit(half))
        strongest = (armed.filter((chosen < 0) & (F.col("__top") >= 0))
                     .orderBy(_pick("__p", n_arms, "__top").desc(), F.col("__row").asc()).limit(half))
        with _spark_errors():
            core_rows = sorted({r[0] for r in near.select("__row").union(weakest.select("__row"))
                                .union(strongest.select("__row")).collect()})
            in_core = F.col("__row").isin(core_rows)
            core = (armed.filter(in_core).select("__row", "__chosen", *p_cols, *ok_cols).toPandas()
                    .sort_values("__row", kind="stable"))
            fixed = armed.filter((chosen >= 0) & ~in_core).agg(
                F.count("*"), F.sum(_lookup(costs.tolist(), chosen))).first()
        spent_fixed = float(fixed[1] or 0.0)
        profit = core[p_cols].to_numpy(dtype=float)
        allowed = core[ok_cols].to_numpy(dtype=bool) & (profit > 0)
        improved = local_search(core["__chosen"].to_numpy(dtype=int), profit, costs, allowed, budget - spent_fixed,
                                slack, k - int(fixed[0]))
        changes = scored.sparkSession.createDataFrame(
            pd.DataFrame({"__row": core["__row"].to_numpy(dtype=np.int64), "__new": improved.astype(np.int32)}))
        armed = keep(armed.join(F.broadcast(changes), "__row", "left")
                     .withColumn("__chosen", F.coalesce("__new", "__chosen")).drop("__new"))
    if rule.allow_negative:
        armed = _append_losers(armed, costs, budget + slack, k, keep)
    return armed


def _append_losers(armed, costs, cap: float, k: int, keep):
    """allow_negative after a budgeted greedy: the rest at their least-bad coupon, best first, while the
    budget and ``k`` allow (a prefix, as :func:`uplift.targeting.allocate` appends them)."""
    F, _, _ = _pyspark()
    n_arms = len(costs)
    chosen = F.col("__chosen")
    with _spark_errors():
        n_sel, spent = armed.filter(chosen >= 0).agg(F.count("*"), F.sum(_lookup(costs.tolist(), chosen))).first()
    spent = float(spent or 0.0)
    losers = (armed.filter((chosen < 0) & (F.col("__lb") >= 0))
              .select("__row", "__lb", _pick("__p", n_arms, "__lb").alias("__lbp"),
                      _lookup(costs.tolist(), "__lb").alias("__lbc")))
    n_losers = _count(losers)
    if n_losers == 0 or k - n_sel <= 0:
        return armed
    ranked = keep(_ranked(losers, "__lbp", ["__row"], "__lbc", n_losers))
    stop = _first_pos(ranked, (F.lit(spent) + F.col("__cum") > cap) | (F.col("__pos") + 1 > k - n_sel), n_losers)
    take = ranked.filter(F.col("__pos") < stop).select("__row", F.col("__lb").alias("__new"))
    return keep(armed.join(take, "__row", "left").withColumn("__chosen", F.coalesce("__new", "__chosen"))
                .drop("__new"))


def _list_frame(listed, rest, *, id_col: str, arms, costs: np.ndarray, value: float, kind: str, bounds: bool):
    """The columns of the pandas targeting list, in its order (``rest``: the others, for ``include_all``)."""
    F, _, _ = _pyspark()
    n_arms = len(costs)
    names, prices = [str(a) for a in arms[1:]], costs.tolist()
    uplift = _pick("__u", n_arms, "__chosen")
    cols = [_col(id_col), (F.col("__pos") + 1).alias("rank"), _lookup(names, "__chosen").alias("coupon"),
            uplift.alias("uplift")]
    if bounds:
        cols += [_pick("__lo", n_arms, "__chosen").alias("uplift_lower"),
                 _pick("__hi", n_arms, "__chosen").alias("uplift_upper")]
    expected = "expected_incremental_conversions" if kind == "binary" else "expected_incremental_outcome"
    cols += [uplift.alias(expected), (uplift * F.lit(value)).alias("expected_incremental_revenue"),
             _lookup(prices, "__chosen").alias("cost"), _pick("__p", n_arms, "__chosen").alias("expected_profit"),
             F.col("__cum").alias("cumulative_cost")]
    if rest is None:
        return listed.select(*cols).orderBy("rank")
    frame = listed.select(*cols, F.lit(0).alias("__part"), F.col("__row"))
    # include_all: the others after the list, in input order, at the coupon with the highest uplift
    best_uplift = _pick("__u", n_arms, "__argmax")
    others = rest.select(
        _col(id_col), F.lit(-1).cast("long").alias("rank"), _lookup(names, "__argmax").alias("coupon"),
        best_uplift.alias("uplift"),
        (best_uplift * F.lit(value) - _lookup(prices, "__argmax")).alias("expected_profit"),
        F.lit(False).alias("selected"), F.lit(1).alias("__part"), F.col("__row"))
    frame = frame.withColumn("selected", F.lit(True)).unionByName(others, allowMissingColumns=True)
    return frame.orderBy("__part", "rank", "__row").drop("__part", "__row")


# ------------------------------------------------------------------------------------------------------------
# writing

def _hadoop_path(spark, path: str):
    """Hadoop's FileSystem and Path for ``path``: the file system Spark itself writes to (local, HDFS, S3...)."""
    try:
        sc = spark.sparkContext
    except Exception:
        raise UpliftInputError("target_spark needs a classic Spark session (it moves the finished list into place "
                               "with Hadoop's FileSystem); Spark Connect sessions are not supported") from None
    p = sc._jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(sc._jsc.hadoopConfiguration()), p


def _check_output(spark, out: str, inputs: list[str]) -> None:
    name = out.rstrip("/").rsplit("/", 1)[-1]
    if not name.lower().endswith((".parquet", ".pq")):
        raise UpliftInputError(f"output {out}: use a .parquet name (Spark writes the list as a Parquet directory)")
    target = urlparse(out).path.rstrip("/")
    for f in inputs:
        path = urlparse(f).path
        if path == target or path.startswith(target + "/"):
            raise UpliftInputError(f"output {out} is (or holds) the customer data; choose another path")
    fs, dst = _hadoop_path(spark, out)
    if not fs.exists(dst.getParent()):
        raise UpliftInputError(f"output directory {dst.getParent().toString()} does not exist; create it first")
    written_by_spark = fs.exists(_hadoop_path(spark, out.rstrip("/") + "/_SUCCESS")[1])
    if fs.exists(dst) and fs.getFileStatus(dst).isDirectory() and not written_by_spark:
        raise UpliftInputError(f"{out} exists and is not a Parquet list written by Spark; refusing to replace it - "
                               "choose a new path or remove it yourself")


def _write_parquet(frame, out: str) -> None:
    """Write ``frame`` as a Parquet directory at ``out`` atomically: into a hidden sibling first, then renamed.

    An existing list at ``out`` is moved aside and deleted only once the new one is in place. On a local or
    HDFS file system the rename is atomic; on object stores (S3, GCS) a "rename" is a copy, so readers may
    briefly see no list there.
    """
    spark = frame.sparkSession
    fs, dst = _hadoop_path(spark, out)
    hpath = spark.sparkContext._jvm.org.apache.hadoop.fs.Path
    parent, name = dst.getParent(), dst.getName()
    tmp = hpath(parent, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with _spark_errors(out):
            frame.write.parquet(tmp.toString())
        old = None
        if fs.exists(dst):
            old = hpath(parent, f".{name}.{uuid.uuid4().hex}.old.tmp")
            if not fs.rename(dst, old):
                raise UpliftInputError(f"cannot move the previous list at {out} aside; check permissions")
        if not fs.rename(tmp, dst):
            if old is not None:
                fs.rename(old, dst)
            raise UpliftInputError(f"cannot move the finished list into place at {out}; check permissions")
        if old is not None:
            fs.delete(old, True)
    finally:
        if fs.exists(tmp):
            fs.delete(tmp, True)


# ------------------------------------------------------------------------------------------------------------
# the targeting list

def target_spark(study, sdf, *, out: str | os.PathLike, cost: float | dict | list = 0.0, value: float | None = None,
                 budget: float | None = None, max_customers: int | None = None, min_roi: float | None = None,
                 exclude=None, allow_negative: bool = False, learner: str | None = None, include_all: bool = False,
                 random_state: int = 0, drift: dict | None = None) -> SparkTargetingResult:
    """The targeting list of :meth:`Study.target <uplift.study.Study.target>`, computed with Spark and written
    to ``out`` as Parquet: the same columns, order and numbers, and the same summary.

    Parameters
    ----------
    study : Study or path
        A fitted study (with a customer id column) or its model directory.
    sdf : pyspark.sql.DataFrame
        Customers to target: the id column and the model's features. Ids must be unique.
    out : str or path
        Parquet output (a directory, as Spark writes it; the name must end in ``.parquet``). Any file system
        Spark writes to; written to a hidden sibling and renamed into place.
    cost, value, budget, max_customers, min_roi, allow_negative, learner, include_all, random_state
        As in :func:`uplift.targeting.lists.targeting_list`. With several coupons, ``budget`` and a binding
        ``max_customers`` cannot be combined (an error says so).
    exclude : iterable of ids, optional
        Customers never to contact, matched as the pandas path matches them
        (:func:`uplift.targeting.economics.exclusion_mask`). The set is broadcast to every executor: for tens of
        millions of ids, anti-join them out of ``sdf`` instead.
    drift : dict, optional
        Receives the drift report of a random sample of up to :data:`DRIFT_ROWS` customers against the
        training profile.

    Returns
    -------
    SparkTargetingResult
        ``list`` (the written Parquet, read back), ``summary`` (as ``Study.target(...).summary``) and ``out``.
        There is no profit curve: it has one point per customer; compute one from ``list`` if needed.

    Examples
    --------
    >>> res = target_spark("model/", spark.read.parquet("customers.parquet"), out="list.parquet",
    ...                    cost=0.5, value=40.0, budget=10_000)  # doctest: +SKIP
    >>> res.summary["estimated"]["profit_lower"]  # doctest: +SKIP
    """
    F, _, _ = _pyspark()
    spark = sdf.sparkSession
    result, model = _ship(study, spark)
    id_col = _id_column(result)
    learner = learner or result.best_learner
    costs, value = costs_and_value(result, cost, value)
    arms = result.arms
    n_arms = len(arms) - 1
    # the allocation's own checks, on the driver, before any job
    rule = check_rule(costs, value, n_arms, budget=budget, max_customers=max_customers, min_roi=min_roi,
                      allow_negative=allow_negative)
    costs, b, slack = rule.cost, rule.budget, rule.budget_slack
    out = str(out) if "://" in str(out) else os.path.abspath(out)
    with _spark_errors():
        input_files = sdf.inputFiles()
    _check_output(spark, out, input_files)

    inputs = _inputs(result, sdf, id_col, row=True)
    with _spark_errors():
        dup = sdf.groupBy(_col(id_col)).count().filter(F.col("count") > 1).limit(1).collect()
    if dup:
        raise UpliftInputError(f"id column {id_col!r} has a duplicate customer {dup[0][0]!r} in the customer file; "
                               "a customer can be on a targeting list only once")
    template = _template(result, inputs, learner)
    columns = uplift_columns(result)
    bounds = all(c in template for c in columns[1])
    shared_ids = None
    if exclude is not None:  # matched as the pandas path matches them; integer ids as integers
        _, T, _ = _pyspark()
        integer_ids = isinstance(sdf.schema[id_col].dataType, T.IntegralType)
        shared_ids = _share(spark, exclusion_keys(exclude, integer_ids=integer_ids))

    cached = []

    def keep(frame):
        frame = frame.persist()
        cached.append(frame)
        return frame

    try:
        rows = _economics(model, learner, columns, rule, shared_ids, id_col, bounds)
        scored = keep(inputs.mapInPandas(rows, _economics_schema(sdf.schema, id_col, n_arms, bounds)))
        n = _count(scored)
        if n == 0:
            raise UpliftInputError("no customers to target: the DataFrame is empty")
        k = rule.customer_cap(n)
        if drift is not None:
            with _spark_errors():
                sample = (inputs.drop("__row").sample(fraction=min(1.0, 2.0 * DRIFT_ROWS / n), seed=random_state)
                          .limit(DRIFT_ROWS).toPandas())
            drift.update(result.drift(sample, uplift=None) if len(sample) else {})

        if n_arms > 1 and np.isfinite(b):
            armed = _greedy_with_budget(scored, rule, k, keep)
            selected = armed.filter(F.col("__chosen") >= 0).withColumn("__cp", _pick("__p", n_arms, "__chosen"))
            selected = selected.withColumn("__cc", _lookup(costs.tolist(), "__chosen"))
            listed = keep(_ranked(selected, "__cp", ["__row"], "__cc", _count(selected)))
        else:
            # One coupon, or no budget: each customer's candidate coupon (her best; with allow_negative, the
            # least-bad for the others), ranked by its profit; the list is the longest prefix within the cap and
            # the budget. This is what allocate's greedy and its repairs come to in these cases.
            candidate = F.when(F.col("__top") >= 0, F.col("__top"))
            if allow_negative:
                candidate = candidate.when(F.col("__lb") >= 0, F.col("__lb"))
            cand = (scored.withColumn("__chosen", candidate.otherwise(F.lit(-1))).filter(F.col("__chosen") >= 0)
                    .withColumn("__cp", _pick("__p", n_arms, "__chosen"))
                    .withColumn("__cc", _lookup(costs.tolist(), "__chosen")))
            n_cand = _count(cand)
            ranked = keep(_ranked(cand, "__cp", ["__row"], "__cc", n_cand))
            brk = _first_pos(ranked, (F.col("__pos") >= k) | (F.col("__cum") > b + slack), n_cand)
            listed = ranked.filter(F.col("__pos") < brk)
        rest = scored.join(listed.select("__row"), "__row", "left_anti") if include_all else None
        frame = _list_frame(listed, rest, id_col=id_col, arms=arms, costs=costs, value=value,
                            kind=result.kind, bounds=bounds)
        _write_parquet(frame, out)
    finally:
        for frame in cached:
            frame.unpersist()
        if shared_ids is not None:
            shared_ids.unpersist()

    lst = spark.read.parquet(out)
    chosen = lst.filter(F.col("selected")) if include_all else lst
    with _spark_errors():
        totals = chosen.agg(F.count("*"), F.sum("cost"), F.sum("uplift"), F.sum("expected_profit")).first()
        per_coupon = dict(chosen.groupBy("coupon").count().collect())
    summary = list_summary(result, learner, costs, value, n_list=n, n_selected=totals[0], spend=totals[1] or 0.0,
                           incremental_outcome=totals[2] or 0.0, profit=totals[3] or 0.0,
                           by_coupon=[per_coupon.get(str(a), 0) for a in arms[1:]], budget=budget,
                           max_customers=max_customers, min_roi=min_roi, allow_negative=allow_negative,
                           random_state=random_state)
    return SparkTargetingResult(lst, summary, out)

"""The Spark engine gives the pandas answers: same scores, same targeting list (ids, order, numbers), same summary."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'uplift[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is not installed: Spark needs a JVM (Java 17+)", allow_module_level=True)

from typer.testing import CliRunner  # noqa: E402

from tests.conftest import truth_columns  # noqa: E402
from uplift import Study, simulate_campaign  # noqa: E402
from uplift import spark as uspark  # noqa: E402
from uplift.cli import app  # noqa: E402
from uplift.errors import UpliftInputError  # noqa: E402

TOL = {"rtol": 1e-9, "atol": 1e-9}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("uplift-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2")
               # several Arrow batches per partition, so batch boundaries are exercised too
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "700")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def fit(df: pd.DataFrame, outcome: str, learner: str = "t") -> Study:
    other = "revenue" if outcome == "conversion" else "conversion"
    return Study(df, "treatment", outcome, id="customer_id", exclude=truth_columns(df) + [other]).fit(
        learners=[learner], n_folds=3, n_boot=20)


def customers_of(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """New customers to target: features and id only, categories as plain text (as read from a file).

    One in ten has a twin (same features, another id) somewhere else in the file: twins have exactly the same
    expected profit, so the list must break ties by input order as pandas does.
    """
    out = df.drop(columns=truth_columns(df) + ["treatment", "conversion", "revenue"])
    out = out.astype({c: str for c in out.columns if isinstance(out[c].dtype, pd.CategoricalDtype)})
    rng = np.random.default_rng(seed)
    twins = out.sample(len(out) // 10, random_state=seed).assign(customer_id=lambda d: d["customer_id"] + 10**6)
    both = pd.concat([out, twins], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


@pytest.fixture(scope="module")
def studies():
    single = simulate_campaign(3000, seed=21)
    multi = simulate_campaign(3000, n_arms=2, seed=22)
    return {"binary": fit(single, "conversion"), "revenue": fit(single, "revenue"),
            "multi": fit(multi, "conversion"),
            "forest": fit(single, "conversion", "causal_forest")}  # per-customer CIs: uplift_lower/upper


@pytest.fixture(scope="module")
def customers():
    return {"single": customers_of(simulate_campaign(3000, seed=31), seed=1),
            "multi": customers_of(simulate_campaign(3000, n_arms=2, seed=32), seed=2)}


def assert_same_list(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert got["customer_id"].tolist() == expected["customer_id"].tolist()  # same customers, same order
    for col in expected.columns:
        if pd.api.types.is_numeric_dtype(expected[col]) and not pd.api.types.is_bool_dtype(expected[col]):
            np.testing.assert_allclose(got[col].to_numpy(dtype=float), expected[col].to_numpy(dtype=float),
                                       err_msg=col, **TOL)
        else:
            assert got[col].astype(str).tolist() == expected[col].astype(str).tolist(), col


def assert_same_summary(got: dict, expected: dict) -> None:
    assert got["customers_scored"] == expected["customers_scored"]
    assert got["customers_selected"] == expected["customers_selected"]
    assert got["by_coupon"] == expected["by_coupon"]
    for key in ("model_expected", "estimated", *(f"baselines/{b}" for b in expected["baselines"])):
        a = got["baselines"][key[10:]] if key.startswith("baselines/") else got[key]
        b = expected["baselines"][key[10:]] if key.startswith("baselines/") else expected[key]
        assert a.keys() == b.keys()
        values = [[np.nan if d[k] is None else d[k] for k in b] for d in (a, b)]  # JSON writes NaN as null
        np.testing.assert_allclose(*values, err_msg=key, **TOL)
    np.testing.assert_allclose(got["spend"], expected["spend"], **TOL)


CASES = {
    "budget": ("binary", {"cost": 0.5, "value": 40.0, "budget": 200.0}),
    "no budget": ("binary", {"cost": 0.5, "value": 40.0}),
    "max_customers": ("binary", {"cost": 0.5, "value": 40.0, "max_customers": 150}),
    "exclude, budget under a cap": ("binary", {"cost": 0.5, "value": 40.0, "budget": 90.0, "max_customers": 200,
                                               "exclude": "top"}),
    "CI columns (causal forest)": ("forest", {"cost": 0.5, "value": 40.0, "budget": 60.0}),
    "revenue, min_roi": ("revenue", {"cost": 1.0, "budget": 150.0, "min_roi": 0.5}),
    "allow_negative": ("binary", {"cost": 0.5, "value": 40.0, "budget": 1400.0, "allow_negative": True}),
    # the greedy leaves money unspent here, and the local search near the break point changes the list
    "multi, budget": ("multi", {"cost": ["coupon_a=0.45", "coupon_b=1.3"], "value": 40.0, "budget": 151.1}),
    "multi, budget, allow_negative": ("multi", {"cost": ["coupon_a=0.5", "coupon_b=1.5"], "value": 40.0,
                                                "budget": 1200.0, "allow_negative": True}),
    "multi, no budget, cap": ("multi", {"cost": ["coupon_a=0.5", "coupon_b=1.5"], "value": 40.0,
                                        "max_customers": 300}),
    "fast scorer": ("binary", {"cost": 0.5, "value": 40.0, "budget": 200.0, "learner": "fast"}),
    "multi, fast scorer": ("multi", {"cost": ["coupon_a=0.45", "coupon_b=1.3"], "value": 40.0, "budget": 151.1,
                                     "learner": "fast"}),
}


def run_both(spark, study, frame, kwargs, out):
    kwargs = dict(kwargs)
    if kwargs.get("exclude") == "top":  # the ten best customers without exclusion, and an unknown id
        best = study.target(frame, **{k: v for k, v in kwargs.items() if k != "exclude"}).list
        kwargs["exclude"] = [*best["customer_id"].head(10).tolist(), "no-such-customer"]
    expected = study.target(frame, **kwargs)
    got = uspark.target_spark(study, spark.createDataFrame(frame), out=out, **kwargs)
    return got, expected


@pytest.mark.parametrize("case", list(CASES))
def test_spark_list_equals_pandas_list(spark, studies, customers, tmp_path, case):
    name, kwargs = CASES[case]
    frame = customers["multi" if name == "multi" else "single"]
    got, expected = run_both(spark, studies[name], frame, kwargs, tmp_path / "list.parquet")
    assert len(expected.list) > 20  # a real list, cut somewhere in the middle
    assert_same_list(pd.read_parquet(got.out), expected.list)  # the file itself is in list order
    assert_same_summary(got.summary, expected.summary)


def test_running_sums_over_several_key_ranges(spark, studies, customers, tmp_path, monkeypatch):
    # Large lists are ranked in ranges of the key, each offset by the ones before: same list.
    monkeypatch.setattr(uspark, "ROWS_PER_RANGE", 250)
    for case in ("budget", "multi, budget"):
        name, kwargs = CASES[case]
        frame = customers["multi" if name == "multi" else "single"]
        got, expected = run_both(spark, studies[name], frame, kwargs, tmp_path / f"{name}.parquet")
        assert_same_list(pd.read_parquet(got.out), expected.list)


def test_include_all_and_replacing_a_previous_list(spark, studies, customers, tmp_path):
    frame, study = customers["single"], studies["binary"]
    out = tmp_path / "all.parquet"
    for budget in (300.0, 100.0):  # the second run replaces the first list
        got = uspark.target_spark(study, spark.createDataFrame(frame), out=out, cost=0.5, value=40.0,
                                  budget=budget, include_all=True)
    expected = study.target(frame, cost=0.5, value=40.0, budget=100.0, include_all=True).list
    assert_same_list(pd.read_parquet(got.out), expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary directories left


def test_score_spark_equals_predict_uplift(spark, studies, customers, tmp_path):
    for name, frame in (("binary", customers["single"]), ("multi", customers["multi"]),
                        ("forest", customers["single"])):
        study = studies[name]
        model_dir = study.save(tmp_path / name)
        if name == "forest":  # a forest directory holds pickles: as a path it is refused, loaded with trust it works
            with pytest.raises(UpliftInputError, match="trust=True"):
                uspark.score_spark(model_dir, spark.createDataFrame(frame))
            model_dir = Study.load(model_dir, trust=True)
        for source in (study, model_dir):  # a fitted study, or its saved directory
            got = uspark.score_spark(source, spark.createDataFrame(frame)).toPandas()
            expected = study.predict_uplift(frame)
            assert list(got.columns) == list(expected.columns)
            got = got.set_index("customer_id").loc[expected["customer_id"]].reset_index()
            for col in expected.columns[1:]:
                if col == "best_arm":
                    assert got[col].tolist() == expected[col].tolist()
                else:
                    np.testing.assert_allclose(got[col], expected[col], err_msg=col, **TOL)


def test_input_errors(spark, studies, customers, tmp_path):
    study, frame = studies["multi"], customers["multi"]
    sdf = spark.createDataFrame(frame)
    with pytest.raises(UpliftInputError, match="binding max_customers"):
        uspark.target_spark(study, sdf, out=tmp_path / "l.parquet", cost=["coupon_a=0.5", "coupon_b=1.5"],
                            value=40.0, budget=250.0, max_customers=10)
    with pytest.raises(UpliftInputError, match="duplicate customer"):
        uspark.target_spark(study, spark.createDataFrame(pd.concat([frame, frame.head(1)])),
                            out=tmp_path / "l.parquet", cost=0.5, value=40.0)
    with pytest.raises(UpliftInputError, match="'channel'.* missing"):
        uspark.score_spark(study, sdf.drop("channel"))
    with pytest.raises(UpliftInputError, match="use a .parquet name"):
        uspark.target_spark(study, sdf, out=tmp_path / "l.csv", cost=0.5, value=40.0)
    (tmp_path / "mine.parquet").mkdir()
    (tmp_path / "mine.parquet" / "notes.txt").write_text("keep me")
    with pytest.raises(UpliftInputError, match="refusing to replace"):
        uspark.target_spark(study, sdf, out=tmp_path / "mine.parquet", cost=0.5, value=40.0)
    assert (tmp_path / "mine.parquet" / "notes.txt").exists()


def test_missing_pyspark_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(UpliftInputError, match=r"pip install 'uplift\[spark\]'"):
        uspark._pyspark()


def test_cli_engine_spark(spark, studies, customers, tmp_path):
    runner = CliRunner()
    study = studies["binary"]
    model_dir = study.save(tmp_path / "model")
    data = tmp_path / "customers.parquet"
    customers["single"].to_parquet(data)
    (tmp_path / "optout.txt").write_text("\n".join(map(str, customers["single"]["customer_id"].head(50))))
    args = ["target", str(model_dir), str(data), "--cost", "0.5", "--value", "40", "--budget", "200",
            "--exclude", str(tmp_path / "optout.txt")]
    out = tmp_path / "list.parquet"
    res = runner.invoke(app, [*args, "--engine", "spark", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    pandas_out = tmp_path / "list_pandas.parquet"
    res_pandas = runner.invoke(app, [*args, "--out", str(pandas_out), "--json"])
    assert res_pandas.exit_code == 0, res_pandas.output
    assert_same_list(pd.read_parquet(out), pd.read_parquet(pandas_out))
    assert_same_summary(doc["summary"], json.loads(res_pandas.stdout)["summary"])
    assert doc["drift"] and not doc["drift"]["drifted"]

    res = runner.invoke(app, [*args, "--engine", "spark", "--out", str(tmp_path / "list.csv")])
    assert res.exit_code == 2 and ".parquet" in res.output
    res = runner.invoke(app, [*args, "--engine", "spark", "--holdout", "0.1", "--out", str(out)])
    assert res.exit_code == 2 and "--holdout" in res.output
    res = runner.invoke(app, [*args, "--engine", "dask", "--out", str(out)])
    assert res.exit_code == 2 and "pandas or spark" in res.output

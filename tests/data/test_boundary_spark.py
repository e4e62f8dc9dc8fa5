"""Spark reads a customer CSV with the model's schema as the pandas reader does (issue 15): ids with leading zeros
and category codes stay text, dates become the same days_since features, so both engines give the same scores."""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'uplift[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is not installed: Spark needs a JVM (Java 17+)", allow_module_level=True)

from tests.shop import shop_campaign  # noqa: E402
from uplift import Study  # noqa: E402
from uplift import spark as uspark  # noqa: E402


def test_spark_scores_a_csv_read_with_the_schema_like_pandas(tmp_path):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    export, _ = shop_campaign(2000, seed=5)
    export["store"] = np.random.default_rng(5).choice(["01", "02", "other"], len(export))
    study = Study(export, "coupon", "revenue", id="customer_id", exclude=["converted"]).fit(
        learners=["t"], n_folds=2, n_boot=10, allow_srm=True)
    customers = export.drop(columns=["coupon", "converted", "revenue"])
    customers = customers[customers["store"] != "other"].head(300)
    customers.to_csv(tmp_path / "c.csv", index=False)
    expected = study.predict_uplift(study.schema.read(tmp_path / "c.csv", text=["customer_id"]))
    spark = (SparkSession.builder.master("local[1]").appName("uplift-boundary")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate())
    try:
        sdf = uspark.read_customers(spark, tmp_path / "c.csv", schema=study.schema)
        got = uspark.score_spark(study, sdf).toPandas()
    finally:
        spark.stop()
    got = got.set_index("customer_id").loc[expected["customer_id"]].reset_index()
    assert got["customer_id"].str.len().eq(6).all()
    cols = study.result.uplift_columns()
    np.testing.assert_allclose(got[cols].to_numpy(float), expected[cols].to_numpy(float), rtol=1e-9, atol=1e-9)
    pd.testing.assert_series_equal(got["best_arm"], expected["best_arm"], check_names=False)

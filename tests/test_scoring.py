"""Streamed scoring: batch by batch equals scoring the whole frame; outputs are atomic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import truth_columns
from uplift import Study
from uplift.errors import UpliftInputError
from uplift.scoring import score_file


@pytest.fixture(scope="module")
def study_and_frame(rct_df):
    df = rct_df.head(3000)
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_columns(df), "revenue"], design="rct").fit(learners=["t", "x"], n_folds=3, n_boot=20)
    return study, df


@pytest.mark.parametrize("src, dst", [("c.parquet", "s.parquet"), ("c.csv", "s.csv")])
def test_batches_equal_whole_frame(study_and_frame, tmp_path, src, dst):
    study, df = study_and_frame
    path = tmp_path / src
    (df.to_parquet if src.endswith("parquet") else df.to_csv)(path, index=False)
    n = score_file(study.result, path, tmp_path / dst, batch_rows=700)
    assert n == len(df)
    got = pd.read_parquet(tmp_path / dst) if dst.endswith("parquet") else pd.read_csv(tmp_path / dst)
    want = study.predict_uplift(df)
    np.testing.assert_array_equal(got["customer_id"].to_numpy(), want["customer_id"].to_numpy())
    np.testing.assert_allclose(got["uplift"].to_numpy(), want["uplift"].to_numpy(), rtol=1e-9, atol=1e-12)


def test_failure_mid_file_leaves_existing_output_untouched(study_and_frame, tmp_path):
    study, df = study_and_frame
    bad = df.copy().astype({"recency_days": object})
    bad.loc[2500, "recency_days"] = "not a number"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "scores.csv"
    out.write_text("previous list\n")
    with pytest.raises(UpliftInputError, match="recency_days"):
        score_file(study.result, tmp_path / "bad.csv", out, batch_rows=1000)
    assert out.read_text() == "previous list\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_id_repeated_in_a_later_batch_is_refused_at_its_row(study_and_frame, tmp_path):
    study, df = study_and_frame
    bad = df.copy()
    bad.loc[2600, "customer_id"] = bad.loc[12, "customer_id"]  # batch 4 repeats an id of batch 1
    bad.loc[2900, "customer_id"] = bad.loc[700, "customer_id"]
    bad.to_parquet(tmp_path / "c.parquet")
    with pytest.raises(UpliftInputError, match=r"repeats .13. at row 2600 of c.parquet; ids must be unique"):
        score_file(study.result, tmp_path / "c.parquet", tmp_path / "s.parquet", batch_rows=700)
    assert not (tmp_path / "s.parquet").exists()

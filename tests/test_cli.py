"""The CLI as a user runs it: fit → evaluate → predict, --json, and input errors without tracebacks."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import truth_columns
from uplift.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def campaign_csv(tmp_path_factory, rct_df):
    path = tmp_path_factory.mktemp("cli") / "campaign.csv"
    rct_df.drop(columns=truth_columns(rct_df)).head(4000).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model_dir(campaign_csv):
    out = campaign_csv.parent / "model"
    res = runner.invoke(app, ["fit", str(campaign_csv), "--treatment", "treatment", "--outcome", "conversion",
                              "--outcome", "revenue", "--id", "customer_id", "--learners", "t,dr",
                              "--folds", "3", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["chosen_learner"] in {"t", "dr", "ensemble"} and doc["ate"]
    return out


def test_evaluate_json_and_tables(model_dir):
    res = runner.invoke(app, ["evaluate", str(model_dir), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert {"leaderboard", "ate", "calibration"} <= set(doc)
    res = runner.invoke(app, ["evaluate", str(model_dir)])
    assert res.exit_code == 0 and "Leaderboard" in res.stdout and "Average effect" in res.stdout


def test_predict_writes_one_row_per_input(model_dir, campaign_csv, tmp_path):
    out = tmp_path / "scores.parquet"
    res = runner.invoke(app, ["predict", str(model_dir), str(campaign_csv), "--out", str(out)])
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out)
    assert len(scores) == 4000 and list(scores.columns[:2]) == ["customer_id", "uplift"]


def test_input_error_is_one_line_exit_2_no_traceback(campaign_csv, tmp_path):
    res = runner.invoke(app, ["fit", str(campaign_csv), "--treatment", "treatmnt", "--outcome", "conversion",
                              "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "did you mean 'treatment'" in res.output
    assert not (tmp_path / "m").exists()


def test_predict_refuses_to_overwrite_its_input(model_dir, campaign_csv):
    before = campaign_csv.read_bytes()
    res = runner.invoke(app, ["predict", str(model_dir), str(campaign_csv), "--out", str(campaign_csv)])
    assert res.exit_code == 2 and campaign_csv.read_bytes() == before


def test_predict_missing_feature_column(model_dir, campaign_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    pd.read_csv(campaign_csv).drop(columns=["channel"]).to_csv(bad, index=False)
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(bad), "--out", str(out)])
    assert res.exit_code == 2 and "channel" in res.output and not out.exists()

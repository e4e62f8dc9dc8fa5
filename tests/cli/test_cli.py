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
    phases = [r["phase"] for r in doc["timings"]]  # time per phase, in the order they ran
    assert phases[:3] == ["read", "validate", "design checks"] and "learner dr" in phases and "save" in phases
    assert all(r["seconds"] >= 0 for r in doc["timings"])
    saved = json.loads((out / "study.json").read_text())["timings"]
    assert [name for name, _ in saved] == phases[:phases.index("save") + 1]
    return out


def test_fit_prints_time_per_phase_in_80_columns(campaign_csv, tmp_path):
    res = runner.invoke(app, ["fit", str(campaign_csv), "--treatment", "treatment", "--outcome", "conversion",
                              "--id", "customer_id", "--exclude", "revenue", "--learners", "t,x", "--folds", "2",
                              "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    table = res.stdout[res.stdout.index("Time per phase"):res.stdout.index("saved study to")]
    assert "learner x" in table and "nuisance mu1" in table and "total" in table
    assert max(len(line) for line in table.splitlines()) <= 80


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


def test_target_segments_explain_report_commands(model_dir, campaign_csv, tmp_path):
    out = tmp_path / "list.csv"
    args = ["target", str(model_dir), str(campaign_csv), "--cost", "0.5", "--value", "40", "--budget", "300",
            "--out", str(out), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["summary"]
    lst = pd.read_csv(out)
    assert summary["spend"] <= 300 and lst["cost"].sum() <= 300 + 1e-9
    assert (lst["expected_profit"] > 0).all() and lst["rank"].is_monotonic_increasing
    est = summary["estimated"]
    assert est["profit_lower"] <= est["profit"] <= est["profit_upper"]
    # Deterministic: the same inputs give a byte-identical list.
    out2 = tmp_path / "list2.csv"
    assert runner.invoke(app, [*args[:-3], "--out", str(out2)]).exit_code == 0
    assert out.read_bytes() == out2.read_bytes()

    res = runner.invoke(app, ["segments", str(model_dir), str(campaign_csv), "--by", "channel", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["segments"] and doc["discovered"]

    res = runner.invoke(app, ["explain", str(model_dir), str(campaign_csv), "--max-rows", "500", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["importance"]

    html = tmp_path / "r.html"
    res = runner.invoke(app, ["report", str(model_dir), "--data", str(campaign_csv), "--out", str(html)])
    assert res.exit_code == 0, res.output
    assert html.read_text().count("data:image/png;base64") >= 3


def test_segments_refuses_data_it_was_not_trained_on(model_dir, campaign_csv, tmp_path):
    other = tmp_path / "other.csv"
    pd.read_csv(campaign_csv).iloc[::-1].to_csv(other, index=False)
    res = runner.invoke(app, ["segments", str(model_dir), str(other), "--by", "channel"])
    assert res.exit_code == 2 and "not the data the model was trained on" in res.output


def test_holdout_readout_and_strict_drift(model_dir, campaign_csv, tmp_path):
    import numpy as np

    sent = tmp_path / "sent.csv"
    res = runner.invoke(app, ["target", str(model_dir), str(campaign_csv), "--cost", "0.5", "--value", "40",
                              "--budget", "300", "--holdout", "0.2", "--explore", "0.05", "--out", str(sent)])
    assert res.exit_code == 0, res.output
    lst = pd.read_csv(sent)
    assert lst["holdout"].sum() > 0 and lst["explore"].sum() > 0
    assert not (lst["holdout"] & lst["send"]).any()
    rng = np.random.default_rng(0)
    results = pd.DataFrame({"customer_id": lst["customer_id"],
                            "converted": (rng.random(len(lst)) < 0.03 + 0.05 * lst["send"]).astype(int)})
    results.to_csv(tmp_path / "results.csv", index=False)
    res = runner.invoke(app, ["readout", str(sent), str(tmp_path / "results.csv"), "--outcome", "converted",
                              "--id", "customer_id", "--value", "40", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["summary"]
    assert summary["realised_uplift_lower"] <= summary["realised_uplift"] <= summary["realised_uplift_upper"]

    # Customers from another population: the drift warning becomes an error with --strict-drift.
    shifted = pd.read_csv(campaign_csv)
    shifted["recency_days"] = shifted["recency_days"] * 5 + 400
    shifted["channel"] = "store"
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    out = tmp_path / "p.csv"
    res = runner.invoke(app, ["predict", str(model_dir), str(tmp_path / "shifted.csv"), "--out", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["drift"]["drifted"]
    res = runner.invoke(app, ["predict", str(model_dir), str(tmp_path / "shifted.csv"), "--out", str(out),
                              "--strict-drift"])
    assert res.exit_code == 2 and "drift" in res.output
    res = runner.invoke(app, ["predict", str(model_dir), str(campaign_csv), "--out", str(out), "--json"])
    assert res.exit_code == 0 and not json.loads(res.stdout)["drift"]["drifted"]

"""An observational study's answers carry the propensity and the `overlap` flag of `uplift predict`, and
`skip_extrapolated` withholds coupons from customers outside the overlap exactly as `uplift target
--skip-extrapolated` does (issue 20: a list can exclude customers whose uplift is an extrapolation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.serving.conftest import fit_saved_study
from uplift.cli import app
from uplift.serving import create_app
from uplift.serving.requests import DecisionOptions, parse_customers
from uplift.serving.service import ModelService

ECONOMICS = {"cost": 0.5, "value": 40.0}


@pytest.fixture(scope="module")
def observational(tmp_path_factory):
    """(model directory, customers): a strongly targeted campaign, so that some customers lie outside the
    overlap (propensity clipped near 0.05 or 0.95, beyond the study's trimming bounds)."""
    model_dir, _, customers = fit_saved_study(tmp_path_factory, "observational", 5, design="observational",
                                              confounding=4)
    return model_dir, customers


def cli(*args) -> None:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


def test_scores_carry_the_propensity_and_overlap_of_uplift_predict(observational, tmp_path):
    model_dir, customers = observational
    customers.to_parquet(tmp_path / "c.parquet")
    cli("predict", model_dir, tmp_path / "c.parquet", "--out", tmp_path / "p.parquet", "--fast")
    expected = pd.read_parquet(tmp_path / "p.parquet")
    assert {"propensity", "overlap"} <= set(expected.columns)
    assert 0 < (~expected["overlap"]).sum() < len(expected)  # both kinds of customer are here
    service = ModelService(model_dir)
    parsed = parse_customers({"customers": customers.to_dict(orient="records")}, service.result.schema,
                             "customer_id")
    scores = service.scores(parsed)
    np.testing.assert_array_equal(scores.overlap, expected["overlap"].to_numpy())
    np.testing.assert_allclose(scores.propensity[:, 0], expected["propensity"], rtol=1e-12)
    table = pd.DataFrame(service.uplift_table(parsed.ids, scores)).rename(columns={"id": "customer_id"})
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-12)


@pytest.mark.parametrize("skip", [False, True])
def test_skip_extrapolated_decides_as_uplift_target(observational, tmp_path, skip):
    model_dir, customers = observational
    customers.to_parquet(tmp_path / "c.parquet")
    cli("target", model_dir, tmp_path / "c.parquet", "--out", tmp_path / "list.parquet", "--all", "--fast",
        "--cost", "0.5", "--value", "40", *(["--skip-extrapolated"] if skip else []))
    listed = pd.read_parquet(tmp_path / "list.parquet").set_index("customer_id").loc[customers["customer_id"]]
    service = ModelService(model_dir)
    parsed = parse_customers({"customers": customers.to_dict(orient="records")}, service.result.schema,
                             "customer_id")
    decisions, rule = service.decide(parsed.ids, service.scores(parsed),
                                     DecisionOptions(**ECONOMICS, skip_extrapolated=skip))
    got = pd.DataFrame(decisions).set_index("id")
    assert rule["skip_extrapolated"] is skip
    np.testing.assert_array_equal(got["overlap"], listed["overlap"])
    np.testing.assert_array_equal(got["arm"].notna(), listed["selected"])
    outside_targeted = (~got["overlap"] & got["arm"].notna()).sum()
    if skip:
        assert outside_targeted == 0
    else:  # without the option some extrapolated customers get a coupon: the option changes something
        assert outside_targeted > 0


def test_the_api_answers_overlap_and_refuses_a_bad_flag(observational):
    model_dir, customers = observational
    rows = customers.to_dict(orient="records")
    with TestClient(create_app(model_dir)) as client:
        up = client.post("/v1/uplift", json={"customers": rows}).json()["customers"]
        assert set(up[0]) == {"id", "uplift", "best_arm", "propensity", "overlap"}
        outside = [c["id"] for c in up if not c["overlap"]]
        assert outside and all(0 < c["propensity"]["1"] < 1 for c in up)
        decided = client.post("/v1/decide", json={"customers": rows, **ECONOMICS, "skip_extrapolated": True})
        assert decided.status_code == 200, decided.text
        by_id = {c["id"]: c for c in decided.json()["customers"]}
        assert all(by_id[i]["arm"] is None and by_id[i]["overlap"] is False for i in outside)
        columns = client.post("/v1/decide", json={"columns": customers.to_dict(orient="list"), **ECONOMICS})
        assert columns.json()["columns"]["overlap"] == [c["overlap"] for c in up]
        bad = client.post("/v1/decide", json={"customers": rows[:1], **ECONOMICS, "skip_extrapolated": "yes"})
        assert bad.status_code == 422 and bad.json()["error"].startswith("skip_extrapolated: expected true or false")


def test_the_service_default_applies_unless_a_request_says_otherwise(observational):
    # uplift serve --skip-extrapolated: the default of every /v1/decide; a request's own false overrides it.
    model_dir, customers = observational
    rows = customers.to_dict(orient="records")
    with TestClient(create_app(model_dir, skip_extrapolated=True)) as client:
        by_default = client.post("/v1/decide", json={"customers": rows, **ECONOMICS}).json()
        overridden = client.post("/v1/decide", json={"customers": rows, **ECONOMICS,
                                                     "skip_extrapolated": False}).json()
        assert client.get("/v1/model").json()["default_skip_extrapolated"] is True
    assert by_default["skip_extrapolated"] is True and overridden["skip_extrapolated"] is False
    outside = [c for c in by_default["customers"] if not c["overlap"]]
    assert outside and all(c["arm"] is None for c in outside)
    assert any(c["arm"] is not None for c in overridden["customers"] if not c["overlap"])


def test_a_randomised_study_has_no_overlap_fields(fitted):
    model_dir, _, customers = fitted
    service = ModelService(model_dir)
    parsed = parse_customers({"customers": customers.head(5).to_dict(orient="records")}, service.result.schema,
                             "customer_id")
    scores = service.scores(parsed)
    assert scores.overlap is None and scores.propensity is None
    decisions, _ = service.decide(parsed.ids, scores, DecisionOptions(cost=0.5, value=40.0, skip_extrapolated=True))
    assert "overlap" not in decisions and "overlap" not in service.uplift_records(parsed, scores)[0]

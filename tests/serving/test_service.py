"""The service answers what the command line answers: the uplift of `uplift predict` and the coupons of
`uplift target` (no budget) for the same customers; the model is verified and pinned by its digest; the
holdout and exploration draws follow the customer id."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift.cli import app
from uplift.errors import UpliftInputError
from uplift.serving.drift import DriftWindow
from uplift.serving.requests import DecisionOptions, RequestError, parse_customers
from uplift.serving.service import ModelService, Scores, as_records, model_digest, unit_draws

runner = CliRunner()
COSTS = ["--cost", "coupon_a=0.5", "--cost", "coupon_b=1.5", "--value", "40"]


def body(customers: pd.DataFrame) -> dict:
    return {"customers": customers.to_dict(orient="records")}


def cli(*args) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("learner, flag", [(None, ["--fast"]), ("t", [])])
def test_uplift_equals_uplift_predict(fitted, tmp_path, learner, flag):
    model_dir, _, customers = fitted
    customers.to_parquet(tmp_path / "c.parquet")
    cli("predict", model_dir, tmp_path / "c.parquet", "--out", tmp_path / "p.parquet", *flag)
    expected = pd.read_parquet(tmp_path / "p.parquet")
    service = ModelService(model_dir, learner=learner)
    assert service.learner == (learner or "fast")
    parsed = parse_customers(body(customers), service.result.schema, "customer_id")
    records = service.uplift_records(parsed, service.scores(parsed.frame))
    got = pd.DataFrame([{"customer_id": r["id"], **{f"uplift_{a}": u for a, u in r["uplift"].items()},
                         "best_arm": r["best_arm"]} for r in records])
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False, rtol=1e-12)
    # column by column, the answer is the `uplift predict` table itself
    table = pd.DataFrame(service.uplift_table(parsed.ids, service.scores(parsed.frame)))
    pd.testing.assert_frame_equal(table.rename(columns={"id": "customer_id"}), expected, check_dtype=False,
                                  rtol=1e-12)


@pytest.mark.parametrize("learner, flag", [(None, ["--fast"]), ("t", [])])
def test_decisions_equal_uplift_target_for_the_same_customers(fitted, tmp_path, learner, flag):
    model_dir, _, customers = fitted
    customers.to_parquet(tmp_path / "c.parquet")
    cli("target", model_dir, tmp_path / "c.parquet", "--out", tmp_path / "list.parquet", "--all", *COSTS, *flag)
    listed = pd.read_parquet(tmp_path / "list.parquet").set_index("customer_id").loc[customers["customer_id"]]
    service = ModelService(model_dir, learner=learner)
    parsed = parse_customers(body(customers), service.result.schema, "customer_id")
    decisions, rule = service.decide(parsed.ids, service.scores(parsed.frame),
                                     DecisionOptions(cost={"coupon_a": 0.5, "coupon_b": 1.5}, value=40.0))
    got = pd.DataFrame(decisions).set_index("id")
    selected = listed["selected"].to_numpy()
    assert 0 < selected.sum() < len(selected)  # the rule both sends and withholds coupons here
    assert (got["arm"].notna().to_numpy() == selected).all()
    np.testing.assert_array_equal(got["arm"][selected], listed["coupon"][selected])
    np.testing.assert_allclose(got["expected_profit"][selected], listed["expected_profit"][selected], rtol=1e-12)
    np.testing.assert_allclose(got["cost"][selected], listed["cost"][selected])
    assert (got.loc[~selected, ["cost", "expected_profit"]] == 0).all().all()
    assert rule["cost"] == {"coupon_a": 0.5, "coupon_b": 1.5} and rule["value"] == 40.0


def test_default_economics_and_their_errors(fitted):
    model_dir, _, customers = fitted
    service = ModelService(model_dir, cost=["coupon_a=0.5", "coupon_b=1.5"], value=40.0)
    parsed = parse_customers(body(customers.head(50)), service.result.schema, "customer_id")
    scores = service.scores(parsed.frame)
    by_default, _ = service.decide(parsed.ids, scores, DecisionOptions())
    explicit, _ = service.decide(parsed.ids, scores, DecisionOptions(cost={"coupon_a": 0.5, "coupon_b": 1.5},
                                                                      value=40))
    assert by_default == explicit and len(by_default["arm"]) == 50
    bare = ModelService(model_dir)
    for options, message in [(DecisionOptions(value=40.0), "cost: give the cost per coupon"),
                             (DecisionOptions(cost=0.5), "value: give the value of one conversion"),
                             (DecisionOptions(cost={"coupon_c": 1.0, "coupon_a": 1, "coupon_b": 1}, value=1.0),
                              "cost: cost given for unknown coupon 'coupon_c'"),
                             (DecisionOptions(cost={"coupon_a": 1.0}, value=1.0),
                              "cost: no cost given for coupon 'coupon_b'")]:
        with pytest.raises(RequestError, match=message.replace("(", r"\(")):
            bare.decide(parsed.ids, scores, options)
    with pytest.raises(UpliftInputError, match="unknown coupon 'gold'"):
        ModelService(model_dir, cost=["gold=1"], value=1.0)  # a bad default stops the start


def test_holdout_and_exploration_follow_the_customer_id(fitted):
    model_dir, _, customers = fitted
    service = ModelService(model_dir)
    options = DecisionOptions(cost=0.8, value=40.0, holdout=0.3, explore=0.2, seed=5)
    parsed = parse_customers(body(customers), service.result.schema, "customer_id")
    decisions, _ = service.decide(parsed.ids, service.scores(parsed.frame), options)
    one = pd.DataFrame(decisions).set_index("id")
    # the same customers in another order and in small batches get the same groups
    again = []
    shuffled = customers.sample(frac=1.0, random_state=1)
    for start in range(0, len(shuffled), 57):
        p = parse_customers(body(shuffled.iloc[start:start + 57]), service.result.schema, "customer_id")
        again += as_records(service.decide(p.ids, service.scores(p.frame), options)[0])
    pd.testing.assert_frame_equal(pd.DataFrame(again).set_index("id").loc[one.index], one)
    groups = one["group"].value_counts()
    targeted = one["rule_arm"].notna()
    assert set(groups.index) == {"targeted", "holdout", "explore", "not_targeted"}
    assert abs(groups["holdout"] / targeted.sum() - 0.3) < 0.1
    assert abs(groups["explore"] / (~targeted).sum() - 0.2) < 0.1
    assert one.loc[one["group"] == "holdout", "arm"].isna().all()
    assert one.loc[one["group"] == "explore", "arm"].notna().all()
    # another seed draws others
    other, _ = service.decide(parsed.ids, service.scores(parsed.frame), DecisionOptions(cost=0.8, value=40.0,
                                                                                    holdout=0.3, seed=6))
    assert other["group"] != decisions["group"]
    with pytest.raises(RequestError, match="holdout: the draw is seeded by the customer id"):
        service.decide(None, service.scores(parsed.frame), options)


def test_unit_draws_are_uniform_and_stable():
    u = unit_draws(list(range(20_000)), seed=0)
    assert ((u >= 0) & (u < 1)).all()
    assert np.histogram(u, bins=10, range=(0, 1))[0].min() > 1800
    assert unit_draws([12345], 0)[0] == unit_draws(["12345"], 0)[0]


def test_the_model_is_verified_and_pinned_by_its_digest(fitted, tmp_path):
    model_dir, _, _ = fitted
    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    digest = model_digest(copy)
    assert digest == model_digest(model_dir) and len(digest) == 64
    assert ModelService(copy, expect_digest=digest.upper()).digest == digest
    with pytest.raises(UpliftInputError, match="not the expected"):
        ModelService(copy, expect_digest="f" * 64)
    scorer = copy / "scorer" / "arm1.txt"
    scorer.write_bytes(scorer.read_bytes().replace(b"Tree=0", b"Tree=0 "))
    assert model_digest(copy) == digest  # the manifest still lists the old hash ...
    with pytest.raises(UpliftInputError, match="does not match its sha256"):
        ModelService(copy)  # ... and the changed file is refused on load


def test_unknown_learner_is_refused(fitted):
    with pytest.raises(UpliftInputError, match="learner 'x' was not fitted"):
        ModelService(fitted[0], learner="x")


def test_intervals_are_returned_where_the_learner_has_them(fitted):
    model_dir, _, customers = fitted
    service = ModelService(model_dir)
    parsed = parse_customers(body(customers.head(2)), service.result.schema, "customer_id")
    up = np.array([[0.1, 0.2], [0.3, -0.1]])
    records = service.uplift_records(parsed, Scores(up, up - 0.05, up + 0.05))
    assert records[1] == {"id": parsed.ids[1], "uplift": {"coupon_a": 0.3, "coupon_b": -0.1},
                          "uplift_lower": {"coupon_a": pytest.approx(0.25), "coupon_b": pytest.approx(-0.15)},
                          "uplift_upper": {"coupon_a": pytest.approx(0.35), "coupon_b": pytest.approx(-0.05)},
                          "best_arm": "coupon_a"}


def test_the_drift_window_reports_what_uplift_predict_would(fitted):
    model_dir, _, customers = fitted
    service = ModelService(model_dir)
    result = service.result
    window = DriftWindow(result.schema, 2, size=300)
    parsed = parse_customers(body(customers), result.schema, "customer_id")
    scores = service.scores(parsed.frame)
    for chunk in range(0, len(customers), 64):
        sub = parse_customers(body(customers.iloc[chunk:chunk + 64]), result.schema, "customer_id")
        window.add(sub.frame, service.scores(sub.frame).uplift)
    assert len(window) == 300  # the last 300 of 400
    report = window.report(result)
    expected = result.drift(customers.iloc[-300:], uplift=scores.uplift[-300:])
    pd.testing.assert_frame_equal(report["features"], expected["features"])
    assert DriftWindow(result.schema, 2, size=300).report(result) is None  # empty: nothing to report


def test_import_uplift_and_the_cli_do_not_import_the_web_packages():
    import subprocess
    import sys

    code = ("import sys, uplift, uplift.cli, uplift.serving, uplift.mlflow; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'prometheus_client', 'mlflow', 'orjson') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

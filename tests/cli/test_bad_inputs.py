"""Bad-input corpus: the ways an analyst's table, options or paths go wrong, and what `uplift` does then.

"error" means :class:`~uplift.errors.UpliftInputError` through the Python API, or, through the CLI
(``typer.testing.CliRunner`` on ``uplift.cli.app``), exit code 2 with exactly one line ``error: ...``, no
traceback and no output file; the message must contain the listed words (the column, row or problem).
"graceful" is the documented behaviour asserted instead. Rows once marked XFAIL were real bugs found by this corpus
(strict xfail: the test turns red once the bug is fixed, so the marker can be removed).

============================================  =====  ===================================================
case (pytest id)                              via    expected
============================================  =====  ===================================================
**campaign table and column roles** (``Study(...)``; no fitting)
missing-treatment-column                      API    error: "treatment column 'treatment' not found"
misspelled-outcome                            API    error: "'convertion'", "did you mean 'conversion'"
misspelled-id                                 API    error: "id column 'customerid'", "'customer_id'"
misspelled-feature                            API    error: "feature column 'recency'", "'recency_days'"
treatment-one-arm                             API    error: "'treatment'", "only one arm"
treatment-three-labels-no-control             API    error: the three labels, "control="
treatment-nan                                 API    error: "'treatment'", "1 missing", "row 5"
treatment-ambiguous-labels (A/B)              API    error: "'A'", "'B'", "control="
control-label-not-found                       API    error: "'ctrl'", "labels: 0, 1"
outcome-nan / outcome-inf                     API    error: "'conversion'", "row 7"
outcome-non-numeric                           API    error: "'conversion'", "not numeric", "'yes'"
outcome-constant                              API    error: "'conversion'", "constant"
treatment-is-outcome                          API    error: "both the treatment and an outcome"
feature-is-treatment                          API    error: "'treatment'", "both a feature"
explicit-feature-all-nan                      API    error: "'flag'", "empty"
feature-inf                                   API    error: "'monetary'", "row 17", "infinite"
feature-1e300                                 API    error: "'monetary'", "row 17", "too large"
duplicate-ids                                 API    error: "'customer_id'", "duplicated", "row 11"
duplicate-column-names                        API    error: "'age'", "more than once"
no-rows                                       API    error: "no rows"
two-row-dataset                               API    error: "has 1 rows", "at least 30"
arm-with-8-rows                               API    error: "arm '1'", "8 rows"
propensity-zero / propensity-one              API    error: "'p'", "row 4", "strictly between 0 and 1"
no-usable-features                            API    error: "no usable feature columns"
yes-no / Yes-No / treated-control labels      API    graceful: accepted, control = the control word
all-nan-feature                               API    graceful: dropped, with a note and a warning
constant-feature                              API    graceful: dropped, with a note
int64-near-overflow-feature (2**62)           API    graceful: accepted (float32 holds it), finite
error-messages-show-numpy-reprs               API    error: plain values, no numpy reprs
huge-outcome (revenue x 1e300)                API    error: outcome beyond 1e12 refused
**fitting and design checks**
perfect-separation-observational              API    DesignCheckError naming 'got_coupon_email'
perfect-separation-allow-leakage              API    graceful: fits, note "leakage ignored on request"
**scoring with a fitted study**
unseen-category                               API    graceful: scored like a missing level, finite
missing-feature-at-scoring                    API    error: "'frequency'", "missing"
text-in-numeric-feature-at-scoring            API    error: "'frequency'", "row 3", "'many'"
inf-feature-at-scoring                        API    error: "'monetary'", "infinite", "row 2"
not-a-dataframe                               API    error: "expected a pandas DataFrame"
**targeting** (``study.target`` and ``uplift target``)
negative-cost / nan-cost                      API    error: "cost", ">= 0"
negative-budget / nan-budget                  API    error: "budget must be >= 0"
budget-below-one-coupon                       API    error: "smaller than the cheapest coupon"
negative-value                                API    error: "value must be positive"
binary-outcome-without-value                  API    error: "value of one conversion"
cost-for-unknown-coupon                       API    error: "'gold'"
budget-of-exactly-one-coupon                  API    graceful: one customer, spend <= budget
non-numeric-cost-string                       API    error: "'abc'" is not a number
duplicate-ids-in-customers                    API    error: duplicate customer id named
target-negative-cost / -budget / -below-one   CLI    exit 2, one line
target-out-equal-to-input                     CLI    "refusing to overwrite the input file"
target-non-numeric-cost                       CLI    exit 2: "'abc'" is not a number
**files and the command line** (``uplift fit`` / ``uplift predict``)
empty-file                                    CLI    "is empty"
header-only-file                              CLI    "header but no rows"
wrong-delimiter (;)                           CLI    "';'-separated"
wrong-extension (.xlsx)                       CLI    "unsupported file type '.xlsx'"
csv-named-parquet                             CLI    "is not a Parquet file"
non-utf8-csv                                  CLI    "not valid UTF-8", "line 2"
duplicate-column-names-csv                    CLI    "two columns named 'age'"
missing-input-file                            CLI    "does not exist"
misspelled-outcome-cli                        CLI    "did you mean 'conversion'"
three-labels-without-control-cli              CLI    "--control"
duplicate-ids-cli                             CLI    "'customer_id'", "duplicated"
folds-more-than-rows                          CLI    exit 2: n_folds above smallest arm
fit-out-equal-to-input                        CLI    "it is a file"
fit-out-in-missing-directory                  CLI    "does not exist"
fit-out-under-a-file                          CLI    "does not exist"
fit-out-checked-before-fitting                CLI    exit 2 before any fitting
predict-out-equal-to-input                    CLI    "input file", input unchanged
predict-out-in-missing-directory              CLI    "does not exist"
predict-out-under-a-file                      CLI    "does not exist"
predict-out-wrong-extension                   CLI    "scores.xlsx", ".csv"
target-out-not-writable (simulated as root)   CLI    "locked" (the directory), exit 2
predict-out-not-writable                      CLI    exit 2: "cannot write to DIR"
predict-missing-feature-column                CLI    "'channel'"
predict-unseen-category                       CLI    graceful: exit 0, one prediction per row
============================================  =====  ===================================================
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift import DesignCheckError, Study, UpliftInputError, simulate_campaign
from uplift.cli import app

runner = CliRunner()
FIT_OPTS = ["--learners", "t", "--folds", "3"]


# ---------------------------------------------------------------------------------------------------------
# shared data: one small campaign, one fitted study (t-learner, 3 folds) for every scoring case
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def campaign() -> pd.DataFrame:
    df = simulate_campaign(1200, seed=5)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    return df.drop(columns=[*truth, "revenue"])


@pytest.fixture(scope="module")
def study(campaign) -> Study:
    return Study(campaign, "treatment", "conversion", id="customer_id").fit(["t"], n_folds=3, n_boot=20)


@pytest.fixture(scope="module")
def files(tmp_path_factory, campaign, study) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    data = root / "campaign.csv"
    campaign.to_csv(data, index=False)
    model = root / "model"
    study.save(model)
    a_file = root / "a_file.txt"
    a_file.write_text("not a directory\n")
    return {"root": root, "data": data, "model": model, "a_file": a_file}


def assert_cli_error(res, *needles: str) -> str:
    """Exit 2, exactly one non-blank line ``error: ...`` containing every needle, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def case(case_id: str, *values, bug: str | None = None):
    """One corpus row as a pytest param; ``bug`` marks a known defect as strict xfail with its description."""
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    return pytest.param(*values, id=case_id, marks=marks)


def fit_cli(data: Path, out: Path, *extra: str, treatment: str = "treatment", outcome: str = "conversion"):
    return runner.invoke(app, ["fit", str(data), "--treatment", treatment, "--outcome", outcome, "--out",
                               str(out), *FIT_OPTS, *extra])


# ---------------------------------------------------------------------------------------------------------
# campaign table and column roles (Study construction validates everything before any fitting)
# ---------------------------------------------------------------------------------------------------------

def _with(frame: pd.DataFrame, col: str, row: int, value) -> pd.DataFrame:
    out = frame.copy()
    if isinstance(value, str):
        out[col] = out[col].astype(object)
    elif isinstance(value, float):  # float64 as a CSV read gives; float32 would turn 1e300 into inf
        out[col] = out[col].astype(float)
    out.loc[row, col] = value
    return out


def _labels(frame: pd.DataFrame, treated: str, control: str) -> pd.DataFrame:
    return frame.assign(treatment=np.where(frame["treatment"] == 1, treated, control))


def _two_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame[frame.treatment == 0].head(1), frame[frame.treatment == 1].head(1)])


Build = Callable[[pd.DataFrame], tuple[pd.DataFrame, dict]]
ROLE_ERRORS: list[tuple[str, Build, list[str]]] = [
    ("missing-treatment-column", lambda d: (d.drop(columns="treatment"), {}),
     ["treatment column 'treatment' not found"]),
    ("misspelled-outcome", lambda d: (d, {"outcome": "convertion"}),
     ["outcome column 'convertion'", "did you mean 'conversion'"]),
    ("misspelled-id", lambda d: (d, {"id": "customerid"}), ["id column 'customerid'", "'customer_id'"]),
    ("misspelled-feature", lambda d: (d, {"features": ["recency", "frequency"]}),
     ["feature column 'recency'", "'recency_days'"]),
    ("treatment-one-arm", lambda d: (d.assign(treatment=1), {}), ["'treatment'", "only one arm"]),
    ("treatment-three-labels-no-control",
     lambda d: (d.assign(treatment=np.array(["email", "sms", "push"])[np.arange(len(d)) % 3]), {}),
     ["'email'", "'push'", "'sms'", "control="]),
    ("treatment-nan", lambda d: (_with(d, "treatment", 5, np.nan), {}),
     ["'treatment'", "1 missing", "row 5"]),
    ("treatment-ambiguous-labels", lambda d: (_labels(d, "A", "B"), {}), ["'A'", "'B'", "control="]),
    ("control-label-not-found", lambda d: (d, {"control": "ctrl"}), ["'ctrl'", "labels: 0, 1"]),
    ("outcome-nan", lambda d: (_with(d, "conversion", 7, np.nan), {}), ["'conversion'", "row 7"]),
    ("outcome-inf", lambda d: (_with(d, "conversion", 7, np.inf), {}), ["'conversion'", "row 7", "infinite"]),
    ("outcome-non-numeric", lambda d: (_with(d, "conversion", 3, "yes"), {}),
     ["'conversion'", "not numeric", "'yes'"]),
    ("outcome-constant", lambda d: (d.assign(conversion=1), {}), ["'conversion'", "constant"]),
    ("treatment-is-outcome", lambda d: (d, {"outcome": "treatment"}), ["both the treatment and an outcome"]),
    ("feature-is-treatment", lambda d: (d, {"features": ["treatment", "age"]}),
     ["'treatment'", "both a feature"]),
    ("explicit-feature-all-nan", lambda d: (d.assign(flag=np.nan), {"features": ["flag", "age"]}),
     ["'flag'", "empty"]),
    ("feature-inf", lambda d: (_with(d, "monetary", 17, np.inf), {}), ["'monetary'", "row 17", "infinite"]),
    ("feature-1e300", lambda d: (_with(d, "monetary", 17, 1e300), {}), ["'monetary'", "row 17", "too large"]),
    ("duplicate-ids",
     lambda d: (_with(d, "customer_id", 11, d.loc[10, "customer_id"]), {"id": "customer_id"}),
     ["'customer_id'", "duplicated", "row 11"]),
    ("duplicate-column-names", lambda d: (d.set_axis([*d.columns[:-1], "age"], axis=1), {}),
     ["'age'", "more than once"]),
    ("no-rows", lambda d: (d.head(0), {}), ["no rows"]),
    ("two-row-dataset", lambda d: (_two_rows(d), {}), ["has 1 rows", "at least 30"]),
    ("arm-with-8-rows", lambda d: (pd.concat([d[d.treatment == 0], d[d.treatment == 1].head(8)]), {}),
     ["arm '1'", "8 rows"]),
    ("propensity-zero", lambda d: (_with(d.assign(p=0.5), "p", 4, 0.0), {"propensity": "p"}),
     ["'p'", "row 4", "strictly between 0 and 1"]),
    ("propensity-one", lambda d: (_with(d.assign(p=0.5), "p", 4, 1.0), {"propensity": "p"}),
     ["'p'", "row 4", "strictly between 0 and 1"]),
    ("no-usable-features", lambda d: (d.assign(region="north")[["treatment", "conversion", "region"]], {}),
     ["no usable feature columns"]),
]


@pytest.mark.parametrize(("build", "needles"), [pytest.param(b, n, id=i) for i, b, n in ROLE_ERRORS])
def test_bad_table_is_refused_in_one_line(campaign, build, needles):
    frame, kwargs = build(campaign)
    kwargs = {"treatment": "treatment", "outcome": "conversion", **kwargs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UpliftInputError) as info:
            Study(frame, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)


NUMPY_REPR_CASES = ["duplicate-ids", "feature-1e300", "propensity-zero"]


@pytest.mark.parametrize("case", NUMPY_REPR_CASES)
def test_error_messages_show_plain_values_not_numpy_reprs(campaign, case):
    build = {i: b for i, b, _ in ROLE_ERRORS}[case]
    frame, kwargs = build(campaign)
    with pytest.raises(UpliftInputError) as info:
        Study(frame, **{"treatment": "treatment", "outcome": "conversion", **kwargs})
    assert "np." not in str(info.value), str(info.value)


@pytest.mark.parametrize(("treated", "control"), [("yes", "no"), ("Yes", "No"), ("treated", "control")],
                         ids=["yes-no", "Yes-No", "treated-control"])
def test_control_word_labels_are_accepted(campaign, treated, control):
    s = Study(_labels(campaign, treated, control), "treatment", "conversion")
    assert s.arms == (control, treated)
    np.testing.assert_array_equal(s.data.treatment, campaign["treatment"].to_numpy())


@pytest.mark.parametrize(("column", "value", "note"), [
    pytest.param("flag", np.nan, "feature 'flag' dropped: every value is missing", id="all-nan-feature"),
    pytest.param("store", "berlin", "feature 'store' dropped: it is constant", id="constant-feature"),
])
def test_useless_feature_is_dropped_with_a_note(campaign, column, value, note):
    with pytest.warns(UserWarning, match=column):
        s = Study(campaign.assign(**{column: value}), "treatment", "conversion", exclude=["customer_id"])
    assert note in s.notes
    assert column not in s.schema.names and "recency_days" in s.schema.names


def test_int64_near_overflow_feature_is_accepted(campaign):
    big = campaign.assign(lifetime_points=np.where(np.arange(len(campaign)) % 2, 2**62, 7).astype(np.int64))
    s = Study(big, "treatment", "conversion", exclude=["customer_id"])
    col = s.data.X[:, s.schema.names.index("lifetime_points")]
    assert np.isfinite(col).all() and col.max() == pytest.approx(2.0**62, rel=1e-6)


def test_outcome_too_large_to_square_is_refused_or_has_finite_ci(campaign):
    df = simulate_campaign(1200, seed=5)
    frame = campaign.assign(revenue=df["revenue"] * 1e300)
    try:
        s = Study(frame, "treatment", "revenue", exclude=["customer_id"]).fit(["t"], n_folds=3, n_boot=20)
    except UpliftInputError as exc:
        assert "'revenue'" in str(exc)
        return
    assert np.isfinite(s.ate()[["se", "lower", "upper"]].to_numpy()).all()


# ---------------------------------------------------------------------------------------------------------
# fitting: design checks
# ---------------------------------------------------------------------------------------------------------

def test_perfect_separation_is_a_leakage_error_unless_allowed(campaign):
    # A column written after the campaign ("got the coupon e-mail") separates the arms perfectly.
    leaky = campaign.assign(got_coupon_email=campaign["treatment"] * 3 + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DesignCheckError) as info:
            Study(leaky, "treatment", "conversion", exclude=["customer_id"], design="observational").fit(
                ["t"], n_folds=3, n_boot=20)
        assert "'got_coupon_email'" in str(info.value) and "allow_leakage=True" in str(info.value)
        s = Study(leaky, "treatment", "conversion", exclude=["customer_id"], design="observational").fit(
            ["t"], n_folds=3, n_boot=20, allow_leakage=True)
    assert any(n.startswith("leakage ignored on request") and "got_coupon_email" in n for n in s.notes)
    assert np.isfinite(s.ate()["estimate"]).all()


# ---------------------------------------------------------------------------------------------------------
# scoring new customers with the fitted study
# ---------------------------------------------------------------------------------------------------------

def test_unseen_category_is_scored_like_a_missing_level(campaign, study):
    new = campaign.head(40).copy()
    new["channel"] = new["channel"].astype(str)
    unseen = new.assign(channel=np.where(np.arange(40) < 10, "tiktok", new["channel"]))
    missing = new.assign(channel=np.where(np.arange(40) < 10, None, new["channel"]))
    pred = study.predict_uplift(unseen)
    assert len(pred) == 40 and np.isfinite(pred["uplift"]).all()
    np.testing.assert_array_equal(pred["uplift"], study.predict_uplift(missing)["uplift"])
    np.testing.assert_array_equal(pred["uplift"][10:], study.predict_uplift(new)["uplift"][10:])


SCORING_ERRORS = [
    ("missing-feature-at-scoring", lambda d: d.drop(columns=["frequency"]), ["'frequency'", "missing"]),
    ("text-in-numeric-feature-at-scoring", lambda d: _with(d, "frequency", 3, "many"),
     ["'frequency'", "row 3", "'many'"]),
    ("inf-feature-at-scoring", lambda d: _with(d, "monetary", 2, -np.inf),
     ["'monetary'", "infinite", "row 2"]),
    ("not-a-dataframe", lambda d: d.to_numpy(), ["expected a pandas DataFrame"]),
]


@pytest.mark.parametrize(("build", "needles"), [pytest.param(b, n, id=i) for i, b, n in SCORING_ERRORS])
def test_bad_scoring_data_is_refused(campaign, study, build, needles):
    with pytest.raises(UpliftInputError) as info:
        study.predict_uplift(build(campaign.head(20).reset_index(drop=True)))
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


# ---------------------------------------------------------------------------------------------------------
# targeting
# ---------------------------------------------------------------------------------------------------------

TARGET_ERRORS = [
    ("negative-cost", {"cost": -1.0, "value": 40.0}, ["cost", ">= 0"]),
    ("nan-cost", {"cost": float("nan"), "value": 40.0}, ["cost", ">= 0"]),
    ("negative-budget", {"cost": 1.0, "value": 40.0, "budget": -5.0}, ["budget must be >= 0"]),
    ("nan-budget", {"cost": 1.0, "value": 40.0, "budget": float("nan")}, ["budget must be >= 0"]),
    ("budget-below-one-coupon", {"cost": 1.0, "value": 40.0, "budget": 0.5},
     ["budget 0.5", "smaller than the cheapest coupon"]),
    ("negative-value", {"cost": 1.0, "value": -4.0}, ["value must be positive"]),
    ("binary-outcome-without-value", {"cost": 1.0}, ["value of one conversion"]),
    ("cost-for-unknown-coupon", {"cost": {"gold": 1.0}, "value": 40.0}, ["'gold'"]),
    ("non-numeric-cost-string", {"cost": ["abc"], "value": 40.0}, ["'abc'"]),
]


@pytest.mark.parametrize(("name", "kwargs", "needles"),
                         [case(c[0], *c[:3], bug=c[3] if len(c) > 3 else None) for c in TARGET_ERRORS])
def test_bad_targeting_options_are_refused(study, name, kwargs, needles):
    try:
        study.target(**kwargs)
    except UpliftInputError as exc:
        for needle in needles:
            assert needle in str(exc), (needle, str(exc))
    except Exception as exc:  # any other exception type is the failure being tested
        raise AssertionError(f"{name}: {type(exc).__name__} instead of UpliftInputError: {exc}") from exc
    else:
        raise AssertionError(f"{name}: accepted")


def test_budget_of_exactly_one_coupon_targets_one_customer(study):
    res = study.target(cost=1.0, value=40.0, budget=1.0)
    assert len(res.list) == 1 and res.summary["spend"] == 1.0
    # ... the most profitable one: the top of the list without a budget
    unlimited = study.target(cost=1.0, value=40.0)
    assert res.list["customer_id"].iloc[0] == unlimited.list["customer_id"].iloc[0]
    assert res.list["expected_profit"].iloc[0] == unlimited.list["expected_profit"].max()


def test_duplicate_customer_ids_in_targeting_data(campaign, study):
    customers = pd.concat([campaign.head(30), campaign.head(30)], ignore_index=True)
    try:
        res = study.target(customers, cost=0.5, value=40.0)
    except UpliftInputError as exc:
        assert "'customer_id'" in str(exc) and "duplicate" in str(exc)
        return
    assert not res.list["customer_id"].duplicated().any(), "a customer appears twice on the targeting list"


@pytest.mark.parametrize(("options", "needles"), [
    case("target-negative-cost", ["--cost", "-1", "--value", "40"], ["cost", ">= 0"]),
    case("target-negative-budget", ["--cost", "1", "--value", "40", "--budget", "-5"],
         ["budget must be >= 0"]),
    case("target-budget-below-one-coupon", ["--cost", "1", "--value", "40", "--budget", "0.5"],
         ["cheapest coupon"]),
    case("target-non-numeric-cost", ["--cost", "abc", "--value", "40"], ["'abc'"]),
])
def test_target_cli_refuses_bad_money(files, tmp_path, options, needles):
    out = tmp_path / "list.csv"
    res = runner.invoke(app, ["target", str(files["model"]), str(files["data"]), *options, "--out", str(out)])
    assert_cli_error(res, *needles)
    assert not out.exists()


def test_target_cli_out_equal_to_input_is_refused(files):
    before = files["data"].read_bytes()
    res = runner.invoke(app, ["target", str(files["model"]), str(files["data"]), "--cost", "1",
                              "--value", "40", "--out", str(files["data"])])
    assert_cli_error(res, "refusing to overwrite the input file")
    assert files["data"].read_bytes() == before


# ---------------------------------------------------------------------------------------------------------
# files and the command line
# ---------------------------------------------------------------------------------------------------------

def _latin1(campaign: pd.DataFrame, path: Path) -> None:
    campaign.head(60).assign(city="Köln").to_csv(path, index=False, encoding="latin-1")


def _dup_header(campaign: pd.DataFrame, path: Path) -> None:
    campaign.head(60).to_csv(path, index=False)
    path.write_text(path.read_text().replace("noise_4", "age", 1))


# (id, file name, writer or None for "no file", extra CLI args, needles)
FILE_ERRORS = [
    ("empty-file", "empty.csv", lambda d, p: p.write_bytes(b""), [], ["is empty"]),
    ("header-only-file", "header.csv", lambda d, p: p.write_text(",".join(d.columns) + "\n"), [],
     ["header but no rows"]),
    ("wrong-delimiter", "semicolon.csv", lambda d, p: d.head(60).to_csv(p, sep=";", index=False), [],
     ["';'-separated", "comma"]),
    ("wrong-extension", "campaign.xlsx", lambda d, p: d.head(60).to_csv(p, index=False), [],
     ["unsupported file type '.xlsx'"]),
    ("csv-named-parquet", "campaign.parquet", lambda d, p: d.head(60).to_csv(p, index=False), [],
     ["is not a Parquet file", "CSV"]),
    ("non-utf8-csv", "latin1.csv", _latin1, [], ["not valid UTF-8", "line 2"]),
    ("duplicate-column-names-csv", "dup.csv", _dup_header, [], ["two columns named 'age'"]),
    ("missing-input-file", "nowhere.csv", None, [], ["nowhere.csv does not exist"]),
    ("misspelled-outcome-cli", "campaign.csv", lambda d, p: d.to_csv(p, index=False),
     ["--outcome", "conversio"], ["'conversio'", "did you mean 'conversion'"]),
    ("three-labels-without-control-cli", "labels.csv",
     lambda d, p: d.assign(treatment=np.array(["email", "sms", "push"])[np.arange(len(d)) % 3]).to_csv(
         p, index=False), [], ["'treatment'", "--control"]),
    ("duplicate-ids-cli", "dupid.csv", lambda d, p: _with(d, "customer_id", 11, 1).to_csv(p, index=False),
     ["--id", "customer_id"], ["'customer_id'", "duplicated"]),
    ("folds-more-than-rows", "campaign.csv", lambda d, p: d.to_csv(p, index=False), ["--folds", "5000"],
     ["5000"]),
]


@pytest.mark.parametrize(("name", "write", "extra", "needles"),
                         [case(c[0], *c[1:5], bug=c[5] if len(c) > 5 else None) for c in FILE_ERRORS])
def test_fit_cli_refuses_bad_file_in_one_line(campaign, tmp_path, name, write, extra, needles):
    data = tmp_path / name
    if write is not None:
        write(campaign, data)
    out = tmp_path / "model"
    if extra[:1] == ["--outcome"]:
        res = fit_cli(data, out, outcome=extra[1])
    else:
        res = fit_cli(data, out, *extra)
    assert_cli_error(res, *needles)
    assert not out.exists()


def test_fit_out_equal_to_input_is_refused(files):
    before = files["data"].read_bytes()
    assert_cli_error(fit_cli(files["data"], files["data"]), "it is a file")
    assert files["data"].read_bytes() == before


@pytest.mark.parametrize("where", ["missing-directory", "under-a-file"])
def test_fit_out_in_a_directory_that_cannot_exist(files, where):
    parent = files["root"] / "no" / "such" if where == "missing-directory" else files["a_file"]
    res = fit_cli(files["data"], parent / "model")
    assert_cli_error(res, "cannot save the model", "does not exist")
    assert not (parent / "model").exists()


def test_fit_out_is_checked_before_fitting(files, monkeypatch):
    calls = []
    original = Study.fit

    def counting_fit(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Study, "fit", counting_fit)
    res = fit_cli(files["data"], files["root"] / "no" / "such" / "model")
    assert res.exit_code == 2
    assert calls == [], "the model was fitted before the unusable output path was refused"


def predict_cli(files, data: Path, out: Path):
    return runner.invoke(app, ["predict", str(files["model"]), str(data), "--out", str(out)])


def test_predict_out_equal_to_input_is_refused(files):
    before = files["data"].read_bytes()
    assert_cli_error(predict_cli(files, files["data"], files["data"]), "input file")
    assert files["data"].read_bytes() == before


@pytest.mark.parametrize(("where", "needles"), [
    pytest.param(lambda f: f["root"] / "no" / "such" / "scores.csv", ["such", "does not exist"],
                 id="predict-out-in-missing-directory"),
    pytest.param(lambda f: f["a_file"] / "scores.csv", ["does not exist"], id="predict-out-under-a-file"),
    pytest.param(lambda f: f["root"] / "scores.xlsx", ["scores.xlsx", ".csv"],
                 id="predict-out-wrong-extension"),
])
def test_predict_out_path_that_cannot_be_written(files, where, needles):
    out = where(files)
    assert_cli_error(predict_cli(files, files["data"], out), *needles)
    assert not out.exists()


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch):
    """A directory this process may not write into (mode 0o500).

    Root ignores file modes, so when running as root the refusals an ordinary user gets are simulated for
    this one directory: ``os.access(.., W_OK)`` is False and ``tempfile.mkstemp``/``open`` for writing in it
    raise ``PermissionError``, exactly what the kernel does for a non-root user.
    """
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.name == "posix" and os.geteuid() == 0:
        real_access, real_mkstemp, real_open = os.access, tempfile.mkstemp, builtins.open

        def denied(path) -> PermissionError:
            return PermissionError(errno.EACCES, "Permission denied", str(path))

        def access(path, mode, *args, **kwargs):
            if mode & os.W_OK and Path(path) == locked:
                return False
            return real_access(path, mode, *args, **kwargs)

        def mkstemp(*args, dir=None, **kwargs):  # `dir`: tempfile's own keyword
            if dir is not None and Path(dir) == locked:
                raise denied(locked)
            return real_mkstemp(*args, dir=dir, **kwargs)

        def open_(file, mode="r", *args, **kwargs):
            if isinstance(file, str | os.PathLike) and set(mode) & set("wax") and Path(file).parent == locked:
                raise denied(file)
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", access)
        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(builtins, "open", open_)
    yield locked
    locked.chmod(0o700)


@pytest.mark.parametrize("command", [
    case("target-out-not-writable", "target"),
    case("predict-out-not-writable", "predict"),
])
def test_out_in_read_only_directory(files, read_only_dir, command):
    out = read_only_dir / "scores.csv"
    money = ["--cost", "1", "--value", "40"] if command == "target" else []
    res = runner.invoke(app, [command, str(files["model"]), str(files["data"]), *money, "--out", str(out)])
    assert_cli_error(res, "locked")
    assert list(read_only_dir.iterdir()) == []


def test_predict_missing_feature_column(files, campaign, tmp_path):
    data = tmp_path / "no_channel.csv"
    campaign.drop(columns=["channel"]).head(50).to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    assert_cli_error(predict_cli(files, data, out), "'channel'", "missing")
    assert not out.exists()


def test_predict_unseen_category_is_graceful(files, campaign, tmp_path):
    data = tmp_path / "new_channel.csv"
    campaign.head(50).assign(channel="tiktok").to_csv(data, index=False)
    out = tmp_path / "scores.csv"
    res = predict_cli(files, data, out)
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out)
    assert len(scores) == 50 and np.isfinite(scores["uplift"]).all()
    assert list(scores["customer_id"]) == list(campaign["customer_id"].head(50))


def test_declared_pre_treatment_feature_is_not_flagged_as_leakage(campaign):
    leaky = campaign.assign(got_coupon_email=campaign["treatment"] * 3 + 1)
    with pytest.raises(UpliftInputError, match="'not_a_column' is not a feature"):
        Study(leaky, "treatment", "conversion", exclude=["customer_id"], pre_treatment=["not_a_column"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Study(leaky, "treatment", "conversion", exclude=["customer_id"], design="observational",
                  pre_treatment=["got_coupon_email"]).fit(["t"], n_folds=3, n_boot=20)
    assert "got_coupon_email" not in set(s.diagnostics()["leakage"]["feature"])
    assert any("declared pre-treatment" in n for n in s.notes)


def test_cli_srm_failure_is_one_line_and_overridable(campaign, tmp_path):
    from typer.testing import CliRunner

    from uplift.cli import app

    # 51.5/48.5 on 20,000 rows is a sample-ratio mismatch at p < 0.001 against a declared 50/50 split.
    rng = np.random.default_rng(1)
    n = 20_000
    df = pd.DataFrame({"x": rng.normal(size=n), "treatment": (rng.random(n) < 0.515).astype(int)})
    df["y"] = (rng.random(n) < 0.1).astype(int)
    path = tmp_path / "srm.csv"
    df.to_csv(path, index=False)
    args = ["fit", str(path), "--treatment", "treatment", "--outcome", "y", "--design", "rct",
            "--learners", "t", "--folds", "2", "--out", str(tmp_path / "m"), "--expected-split", "0=50",
            "--expected-split", "1=50"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "--allow-srm" in res.output and "--expected-split" in res.output
    assert res.output.lower().count("sample-ratio mismatch") == 1
    assert "allow_srm=True" not in res.output and "expected_split=" not in res.output
    assert "Traceback" not in res.output and not (tmp_path / "m").exists()
    res = CliRunner().invoke(app, [*args, "--allow-srm", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["diagnostics"]["srm"]["passed"] is False
    # Said once: in the check's own row, not again as a note.
    assert not any("sample-ratio" in note.lower() for note in doc["notes"])


@pytest.mark.parametrize("shares", [(75, 25), (90, 10), (55, 15, 15, 15)])
def test_cli_fits_unequal_designs_with_the_check_on(tmp_path, shares):
    """75/25 and 90/10 campaigns and a majority-control multi-arm design fit with the check on; declared, the
    check runs and passes; the API gets the same declaration as a dict."""
    from typer.testing import CliRunner

    from uplift.cli import app

    rng = np.random.default_rng(7)
    n = 6000
    arms = np.array(["control", "a", "b", "c"][:len(shares)])
    df = pd.DataFrame({"x": rng.normal(size=n), "arm": rng.choice(arms, n, p=np.asarray(shares) / sum(shares))})
    df["y"] = (rng.random(n) < 0.1).astype(int)
    path = tmp_path / "campaign.csv"
    df.to_csv(path, index=False)
    base = ["fit", str(path), "--treatment", "arm", "--control", "control", "--outcome", "y", "--design", "rct",
            "--learners", "t", "--folds", "2", "--json"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "undeclared")])
    assert res.exit_code == 0, res.output
    srm = json.loads(res.stdout)["diagnostics"]["srm"]
    assert srm["passed"] is None and "needs the declared split" in srm["message"]
    assert "--expected-split ARM=SHARE" in srm["message"]  # the flag of the interface in use, not only Python's
    declared = [f"--expected-split={a}={s}" for a, s in zip(arms, shares, strict=True)]
    res = CliRunner().invoke(app, [*base, *declared, "--out", str(tmp_path / "declared")])
    assert res.exit_code == 0, res.output
    srm = json.loads(res.stdout)["diagnostics"]["srm"]
    assert srm["passed"] is True and srm["declared"]["control"] == pytest.approx(shares[0] / sum(shares))


def test_leakage_refusal_names_cli_flags_on_the_cli_and_python_arguments_in_python(campaign, tmp_path):
    from typer.testing import CliRunner

    from uplift.cli import app

    disguised = campaign.assign(order_value=campaign["conversion"] * 25.0)
    with pytest.raises(DesignCheckError, match="allow_leakage=True") as info:
        Study(disguised, "treatment", "conversion", exclude=["customer_id"]).fit(["t"], n_folds=3, n_boot=20)
    assert "--allow-leakage" not in str(info.value)
    path = tmp_path / "leaky.csv"
    disguised.to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--treatment", "treatment", "--outcome", "conversion",
                                   "--exclude", "customer_id", "--learners", "t", "--folds", "2",
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "--exclude order_value" in res.output and "--allow-leakage" in res.output
    assert "allow_leakage=True" not in res.output and "exclude=[" not in res.output


def test_feature_that_is_the_outcome_in_disguise_is_refused(campaign):
    """Revenue left in as a feature of conversion makes every effect estimate collapse to zero."""
    disguised = campaign.assign(order_value=campaign["conversion"] * 25.0)
    with pytest.raises(DesignCheckError, match="'order_value' looks like the outcome 'conversion'"):
        Study(disguised, "treatment", "conversion", exclude=["customer_id"]).fit(["t"], n_folds=3, n_boot=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = Study(disguised, "treatment", "conversion", exclude=["customer_id"]).fit(
            ["t"], n_folds=3, n_boot=20, allow_leakage=True)
    assert any(n.startswith("outcome proxy ignored on request") for n in s.notes)

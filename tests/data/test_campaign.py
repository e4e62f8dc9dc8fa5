"""The data contract: roles, encoding, and one clear error per problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.data.campaign import FeatureSchema, campaign_data
from uplift.errors import UpliftInputError


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "cid": np.arange(n), "t": rng.integers(0, 2, n), "y": rng.integers(0, 2, n),
        "rev": rng.gamma(2.0, 10.0, n), "age": rng.integers(18, 80, n),
        "channel": rng.choice(["web", "app", "store"], n),
    })


def test_roles_and_defaults():
    d = campaign_data(frame(), "t", ["y", "rev"], id="cid", design="rct")
    assert d.arms == ("0", "1")
    assert d.outcome == "y" and d.outcome_kinds == {"y": "binary", "rev": "continuous"}
    assert d.schema.names == ("age", "channel")  # id, treatment and outcomes are not features
    assert d.schema.categories["channel"] == ("app", "store", "web")
    assert d.X.dtype == np.float32 and d.design == "rct"


def test_unseen_category_and_missing_become_nan():
    s = FeatureSchema.infer(frame()[["age", "channel"]])
    X = s.encode(pd.DataFrame({"age": [30, 40], "channel": ["kiosk", None]}))
    assert np.isnan(X[:, 1]).all() and X[:, 0].tolist() == [30, 40]


def test_design_auto_from_declared_propensity():
    df = frame()
    df["p"] = 0.5
    assert campaign_data(df, "t", "y", propensity="p").design == "rct"
    df["p"] = np.linspace(0.2, 0.8, len(df))
    assert campaign_data(df, "t", "y", propensity="p").design == "observational"


def test_labelled_arms_and_control():
    df = frame()
    df["t"] = np.where(df["t"] == 1, "Yes", "No")
    assert campaign_data(df, "t", "y").arms == ("No", "Yes")
    df["t"] = np.random.default_rng(1).choice(["coupon_a", "coupon_b", "none"], len(df))
    assert campaign_data(df, "t", "y").arms == ("none", "coupon_a", "coupon_b")
    df["t"] = np.random.default_rng(1).choice(["a", "b", "c"], len(df))
    with pytest.raises(UpliftInputError, match="name the control arm"):
        campaign_data(df, "t", "y")
    assert campaign_data(df, "t", "y", control="b").arms == ("b", "a", "c")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="y"), "outcome column 'y' not found"),
    (lambda d: d.assign(t=1), "only one arm"),
    (lambda d: d.assign(t=d["t"].astype(float).where(d.index != 3)), "missing value"),
    (lambda d: d.assign(y=d["y"].astype(float).where(d.index != 5)), "row 5"),
    (lambda d: d.assign(y=np.where(d.index == 2, np.inf, d["y"])), "infinite"),
    (lambda d: d.assign(y=["yes", "no"] * 100), "not numeric"),
    (lambda d: d.assign(y=0), "constant"),
    (lambda d: d.assign(t=(d.index < 10).astype(int)), "has 10 rows"),
    (lambda d: d.assign(cid=0), "duplicated"),
    (lambda d: d.assign(age=np.where(d.index == 7, np.inf, d["age"])), "infinite value \\(row 7\\)"),
    (lambda d: d.iloc[:0], "no rows"),
])
def test_one_clear_error_per_problem(mutate, message):
    with pytest.raises(UpliftInputError, match=message) as err:
        campaign_data(mutate(frame()), "t", "y", id="cid")
    assert "\n" not in str(err.value)


def test_misspelled_column_suggests_the_right_one():
    with pytest.raises(UpliftInputError, match="did you mean 'rev'"):
        campaign_data(frame(), "t", "revv")


def test_propensity_zero_or_one_refused():
    df = frame().assign(p=0.5)
    df.loc[4, "p"] = 1.0
    with pytest.raises(UpliftInputError, match="row 4"):
        campaign_data(df, "t", "y", propensity="p")


def test_duplicate_column_names_refused():
    df = frame()
    df.columns = ["cid", "t", "y", "rev", "age", "age"]
    with pytest.raises(UpliftInputError, match="'age' appears more than once"):
        campaign_data(df, "t", "y")


def test_scoring_data_missing_feature():
    d = campaign_data(frame(), "t", "y", id="cid")
    with pytest.raises(UpliftInputError, match="'channel'"):
        d.schema.encode(frame().drop(columns="channel"))


def test_constant_and_identifier_like_features_dropped_with_a_note():
    df = frame(3000).assign(const=1, code=[f"x{i}" for i in range(3000)])
    with pytest.warns(UserWarning):
        d = campaign_data(df, "t", "y", id="cid")
    assert "const" not in d.schema.names and "code" not in d.schema.names
    assert any("identifier" in n for n in d.notes)


def test_float32_features_are_shared_with_the_frame_not_copied():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(500, 3)).astype(np.float32), columns=["a", "b", "c"])
    df["t"], df["y"] = np.arange(500) % 2, rng.integers(0, 2, 500)
    d = campaign_data(df, "t", "y", design="rct")
    assert np.shares_memory(d.X, d.frame["a"].to_numpy())
    np.testing.assert_array_equal(d.X, df[["a", "b", "c"]].to_numpy())
    df.loc[7, "b"] = np.inf
    with pytest.raises(UpliftInputError, match="'b' has an infinite value \\(row 7\\)"):
        campaign_data(df, "t", "y", design="rct")

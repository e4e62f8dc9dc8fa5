"""Segment uplift and discovered segments, checked against known truth and a pandas reference."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tests.conftest import SHOP_DRIVERS
from uplift import Study, UpliftInputError, simulate_campaign
from uplift._stats import Z95
from uplift.effects.segments import default_segment_columns, discover_segments, segment_uplift

RECENCY_EDGES = [30, 90, 365]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The machine is shared: OpenMP/BLAS thread pools fighting over 2 busy cores are ~10x slower than one.
    with threadpool_limits(1):
        yield


def _fast_models():
    """Cheap base models: the AIPW segment estimate is unbiased in an RCT whatever the outcome model."""
    return (make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(solver="liblinear")),
            make_pipeline(SimpleImputer(), Ridge()))


def _fit(df: pd.DataFrame, outcome: str = "conversion", design: str = "rct", learners=("t",)) -> Study:
    truth = [c for c in df if c.startswith(("true_", "propensity"))]
    other = [c for c in ("revenue", "conversion") if c in df and c != outcome]
    clf, reg = _fast_models()
    study = Study(df, treatment="treatment", outcome=outcome, id="customer_id", exclude=truth + other,
                  design=design)
    return study.fit(learners=list(learners), n_folds=3, n_boot=20, base_classifier=clf, base_regressor=reg)


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, Study]:
    df = simulate_campaign(6000, design="rct", seed=21)
    return df, _fit(df, learners=("t", "dr"))


def _strong_frame(n: int = 6000, seed: int = 5, tau_web_recent: float = 0.20, tau_else: float = 0.0):
    """Uplift of 20 pp for web customers with x1 ≤ 50, none elsewhere (and a revenue outcome)."""
    rng = np.random.default_rng(seed)
    x1 = rng.integers(0, 101, n)
    channel = rng.choice(["web", "app", "store"], n)
    noise = rng.normal(size=n)
    t = rng.integers(0, 2, n)
    tau = np.where((channel == "web") & (x1 <= 50), tau_web_recent, tau_else)
    p = 0.2 + 0.05 * (channel == "app") + t * tau
    conversion = (rng.random(n) < p).astype(int)
    revenue = conversion * (40 + 5 * rng.normal(size=n))
    return pd.DataFrame({"customer_id": np.arange(n), "x1": x1, "channel": channel, "noise": noise,
                         "treatment": t, "conversion": conversion, "revenue": revenue, "true_uplift": tau})


# ------------------------------------------------------------------------------------------ segment_uplift
def test_segment_cis_cover_true_segment_uplift():
    """~95% CIs should cover the mean true uplift of each segment; over 20 replications ≥ 80% must."""
    hits, z = [], []
    for rep in range(20):
        df = simulate_campaign(3000, design="rct", seed=300 + rep)
        study = _fit(df)
        by_channel = segment_uplift(study.result, study.data, ["channel"])
        truth = df.groupby("channel", observed=True)["true_uplift"].mean().loc[by_channel["channel"]]
        by_recency = segment_uplift(study.result, study.data, ["recency_days"], bins={"recency_days": RECENCY_EDGES})
        band = np.searchsorted(RECENCY_EDGES, df["recency_days"].to_numpy(), side="left")
        truth_r = df["true_uplift"].groupby(band).mean()
        assert len(truth_r) == len(by_recency)
        for table, true in ((by_channel, truth.to_numpy()), (by_recency, truth_r.to_numpy())):
            hits.extend((table["lower"] <= true) & (true <= table["upper"]))
            z.extend((table["uplift"] - true) / table["se"])
    rate = float(np.mean(hits))
    print(f"segment CI coverage over {len(hits)} intervals: {rate:.3f}; mean z {np.mean(z):+.2f}")
    assert rate >= 0.80
    assert abs(np.mean(z)) < 0.5  # no systematic bias


def test_segment_cis_cover_truth_in_observational_design():
    hits = []
    for rep in range(12):
        df = simulate_campaign(3000, design="observational", seed=400 + rep)
        study = _fit(df, design="observational")
        table = segment_uplift(study.result, study.data, ["channel"])
        true = df.groupby("channel", observed=True)["true_uplift"].mean().loc[table["channel"]].to_numpy()
        hits.extend((table["lower"] <= true) & (true <= table["upper"]))
    rate = float(np.mean(hits))
    print(f"observational segment CI coverage over {len(hits)} intervals: {rate:.3f}")
    assert rate >= 0.80


def test_segment_table_matches_pandas_reference(sim):
    df, study = sim
    cf = study.crossfit_
    table = segment_uplift(study.result, study.data, ["channel"], learner="dr").set_index("channel")
    # The out-of-fold arrays are stored as float32; the reference averages them in float64, as segments do.
    ref = pd.DataFrame({"channel": df["channel"].astype(str), "dr": cf.dr[:, 0].astype(np.float64),
                        "t": df["treatment"], "y": df["conversion"],
                        "pred": cf.uplift["dr"][:, 0].astype(np.float64)}).groupby("channel")
    np.testing.assert_allclose(table["uplift"], ref["dr"].mean().loc[table.index], rtol=1e-10)
    se = ref["dr"].std().loc[table.index] / np.sqrt(ref.size().loc[table.index])
    np.testing.assert_allclose(table["se"], se, rtol=1e-8)
    np.testing.assert_allclose(table["lower"], table["uplift"] - Z95 * se, rtol=1e-8)
    np.testing.assert_array_equal(table["n"], ref.size().loc[table.index])
    np.testing.assert_array_equal(table["n_treated"], ref["t"].sum().loc[table.index])
    control = df[df["treatment"] == 0].assign(channel=lambda d: d["channel"].astype(str))
    np.testing.assert_allclose(table["mean_control"],
                               control.groupby("channel")["conversion"].mean().loc[table.index])
    np.testing.assert_allclose(table["predicted_uplift"], ref["pred"].mean().loc[table.index])
    assert set(table.index) == {"web", "app", "store"}
    # Relative lift: uplift over the doubly-robust control mean of the segment.
    e = np.clip(cf.e[:, 1], 0.01, 0.99)
    base = cf.mu[:, 0] + (df["treatment"] == 0) * (df["conversion"] - cf.mu[:, 0]) / (1 - e)
    base = base.groupby(df["channel"].astype(str)).mean().loc[table.index]
    np.testing.assert_allclose(table["relative_lift"], table["uplift"] / base)
    assert (table["relative_lower"] < table["relative_lift"]).all()
    # The label states the table's own numbers in percentage points: estimate, then CI, then unit.
    for label, u, lo, hi in table[["label", "uplift", "lower", "upper"]].itertuples(index=False):
        m = re.fullmatch(r"([+-]\d+\.(\d+)) \[(-?\d+\.\d+), (-?\d+\.\d+)\] pp", label)
        assert m, label
        half_step = 0.5 * 10 ** -len(m[2])
        np.testing.assert_allclose([float(m[1]), float(m[3]), float(m[4])], [100 * u, 100 * lo, 100 * hi],
                                   atol=half_step + 1e-12)


def test_quantile_bands_are_balanced_and_labels_state_the_rule(sim):
    df, study = sim
    table = segment_uplift(study.result, study.data, ["monetary"], bins=4)
    assert len(table) == 4
    assert table["n"].sum() == len(df)
    assert table["n"].min() > 0.2 * len(df)  # quartiles, up to ties and rounding of the edges
    values = df["monetary"].to_numpy()
    for label, n in zip(table["monetary"], table["n"], strict=True):
        # Re-evaluate each band label independently: "≤ a", "(a, b]", "> b".
        if label.startswith("≤"):
            mask = values <= float(label[1:])
        elif label.startswith(">"):
            mask = values > float(label[1:])
        else:
            lo, hi = map(float, label[1:-1].split(","))
            mask = (values > lo) & (values <= hi)
        assert mask.sum() == n, label


def test_two_columns_and_readable_segment_names(sim):
    df, study = sim
    table = segment_uplift(study.result, study.data, ["channel", "recency_days"], bins={"recency_days": RECENCY_EDGES})
    assert len(table) == 12
    assert "channel = web and recency_days ≤ 30" in set(table["segment"])
    assert "channel = app and 90 < recency_days ≤ 365" in set(table["segment"])
    assert table["n"].sum() == len(df)


def test_small_segments_are_flagged_not_silently_reported(sim):
    df, study = sim
    table = segment_uplift(study.result, study.data, ["channel", "region"], min_size=600)
    small = table["n"] < 600
    assert small.any() and (~small).any()
    np.testing.assert_array_equal(table["small"], small)
    assert table.loc[small, "note"].str.startswith("too_small_to_report").all()
    assert (table.loc[~small, "note"] == "").all()
    # A segment with a single treated customer has no measurable uplift at all.
    tiny = df.iloc[:400].copy()
    tiny.loc[tiny.index[:200], "treatment"] = 0
    tiny.loc[tiny.index[0], "treatment"] = 1
    tiny["grp"] = np.where(np.arange(400) < 200, "first", "second")  # not a feature: any column segments
    clf, reg = _fast_models()
    truth = [c for c in tiny if c.startswith(("true_", "propensity"))]
    tiny_study = Study(tiny, treatment="treatment", outcome="conversion", id="customer_id", design="rct",
                       exclude=truth + ["revenue", "grp"])
    tiny_study.fit(learners=["t"], n_folds=3, n_boot=20, base_classifier=clf, base_regressor=reg,
                   allow_srm=True)
    t2 = segment_uplift(tiny_study.result, tiny_study.data, ["grp"]).set_index("grp")
    assert np.isnan(t2.loc["first", "uplift"]) and t2.loc["first", "label"] == "n/a"
    assert t2.loc["first", "note"].startswith("too_small_to_report")
    assert np.isfinite(t2.loc["second", "uplift"])


def test_multi_arm_gives_one_block_per_arm():
    df = simulate_campaign(4000, design="rct", n_arms=2, seed=31)
    study = _fit(df)
    table = segment_uplift(study.result, study.data, ["channel"])
    assert list(table["arm"].unique()) == ["coupon_a", "coupon_b"]
    b = table[table["arm"] == "coupon_b"].set_index("channel")
    pair = df["treatment"].isin(["control", "coupon_b"]).to_numpy()
    channel = df.loc[pair, "channel"].astype(str).to_numpy()
    ref = pd.Series(study.crossfit_.dr[pair, 1]).groupby(channel).mean()
    np.testing.assert_allclose(b["uplift"], ref.loc[b.index])
    np.testing.assert_array_equal(b["n"], df[pair].groupby("channel", observed=True).size().loc[b.index])
    only_b = segment_uplift(study.result, study.data, ["channel"], arm="coupon_b")
    assert (only_b["arm"] == "coupon_b").all() and len(only_b) == 3


def test_bad_input_raises_one_line_errors(sim):
    _, study = sim
    with pytest.raises(UpliftInputError, match="'chanel' not found"):
        segment_uplift(study.result, study.data, ["chanel"])
    with pytest.raises(UpliftInputError, match="treatment or an outcome"):
        segment_uplift(study.result, study.data, ["conversion"])
    with pytest.raises(UpliftInputError, match="not in by="):
        segment_uplift(study.result, study.data, ["channel"], bins={"age": [30]})
    with pytest.raises(UpliftInputError, match="categorical"):
        segment_uplift(study.result, study.data, ["channel"], bins={"channel": [1, 2]})
    with pytest.raises(UpliftInputError, match="numeric edges"):
        segment_uplift(study.result, study.data, ["age"], bins={"age": ["young"]})
    with pytest.raises(UpliftInputError, match="arm 'coupon_z'"):
        segment_uplift(study.result, study.data, ["channel"], arm="coupon_z")
    with pytest.raises(UpliftInputError, match="at least one column"):
        segment_uplift(study.result, study.data, [])
    other = _fit(simulate_campaign(800, seed=1))
    with pytest.raises(UpliftInputError, match="fitted on 6,000"):
        segment_uplift(study.result, other.data, ["channel"])


# ------------------------------------------------------------------------------------------ discover
def _rule_mask(frame: pd.DataFrame, rule: str) -> np.ndarray:
    """Evaluate a discovered rule independently of the code that wrote it."""
    mask = np.ones(len(frame), dtype=bool)
    for cond in rule.split(" and "):
        if m := re.fullmatch(r"\((.+) or missing\)", cond):
            name = re.search(r"[A-Za-z_]\w*", m[1])[0]
            mask &= _rule_mask(frame, m[1]) | frame[name].isna().to_numpy()
        elif m := re.fullmatch(r"(\S+) < (\w+) ≤ (\S+)", cond):
            v = frame[m[2]].to_numpy(dtype=float)
            mask &= (v > float(m[1])) & (v <= float(m[3]))
        elif m := re.fullmatch(r"(\w+) (≤|>) (\S+)", cond):
            v = frame[m[1]].to_numpy(dtype=float)
            mask &= v <= float(m[3]) if m[2] == "≤" else v > float(m[3])
        elif m := re.fullmatch(r"(\w+) (=|≠) (\w+)", cond):
            same = frame[m[1]].astype(str).to_numpy() == m[3]
            mask &= same if m[2] == "=" else ~same
        elif m := re.fullmatch(r"(\w+) in \{(.+)\}", cond):
            mask &= frame[m[1]].astype(str).isin(m[2].split(", ")).to_numpy()
        else:
            raise AssertionError(f"unreadable condition {cond!r} in rule {rule!r}")
    return mask


@pytest.fixture(scope="module")
def strong() -> tuple[pd.DataFrame, Study]:
    df = _strong_frame()
    return df, _fit(df)


def test_discovered_segments_find_the_responders_and_differ_honestly(strong):
    df, study = strong
    leaves = discover_segments(study.result, study.data, max_depth=2, min_leaf=300)
    print(leaves[["rule", "n", "label"]].to_string())
    top, bottom = leaves.iloc[0], leaves.iloc[-1]
    assert "channel = web" in top["rule"] and "x1 ≤" in top["rule"]
    # Honest estimates from the other half: the responders' CI covers the true 20 pp and excludes the rest.
    assert top["lower"] <= 0.20 <= top["upper"]
    assert top["lower"] > bottom["upper"]
    assert leaves.attrs["heterogeneity_p"] < 1e-3
    # Estimation and fitting halves are disjoint and each is half of the customers.
    assert leaves["n"].sum() == len(df) // 2 and leaves["n_fit"].sum() == len(df) - len(df) // 2
    # Every rule, read back literally, selects exactly the customers of its leaf (both halves).
    for rule, n, n_fit in leaves[["rule", "n", "n_fit"]].itertuples(index=False):
        assert _rule_mask(df, rule).sum() == n + n_fit, rule
    # The leaf's true uplift, from the simulator, is what the honest estimate covers.
    true_top = df.loc[_rule_mask(df, top["rule"]), "true_uplift"].mean()
    assert top["lower"] <= true_top <= top["upper"]


def test_discovered_rules_read_back_exactly_with_missing_values_and_level_sets():
    df = _strong_frame(seed=9)
    rng = np.random.default_rng(0)
    df["x1"] = df["x1"].astype(float).mask(rng.random(len(df)) < 0.15)
    df["channel"] = df["channel"].mask(rng.random(len(df)) < 0.25, "email")
    responders = df["channel"].isin(["web", "email"]) & ~(df["x1"] > 50)
    df["true_uplift"] = np.where(responders, 0.2, 0.0)
    df["conversion"] = (rng.random(len(df)) < 0.2 + df["treatment"] * df["true_uplift"]).astype(int)
    study = _fit(df)
    leaves = discover_segments(study.result, study.data, max_depth=3, min_leaf=200)
    rules = " ".join(leaves["rule"])
    assert "or missing)" in rules and " in {" in rules  # the cases that are easy to get wrong
    for rule, n, n_fit in leaves[["rule", "n", "n_fit"]].itertuples(index=False):
        assert _rule_mask(df, rule).sum() == n + n_fit, rule


def test_discovered_segments_without_heterogeneity_do_not_differ():
    """Honest estimation: leaves grown on noise must not look different on the other half."""
    df = _strong_frame(seed=8, tau_web_recent=0.05, tau_else=0.05)
    study = _fit(df)
    leaves = discover_segments(study.result, study.data, max_depth=3, min_leaf=200, random_state=1)
    assert len(leaves) > 1
    assert leaves.attrs["heterogeneity_p"] > 0.01


def test_discover_on_revenue_uses_money_units_and_validates_input(strong):
    df, _ = strong
    study = _fit(df, outcome="revenue")
    leaves = discover_segments(study.result, study.data, max_depth=1, min_leaf=1000)
    # Revenue is shown in its own units: estimate and CI, no unit label.
    number = r"-?\d[\d,]*(\.\d+)?"
    assert leaves["label"].str.fullmatch(rf"[+-]{number[2:]} \[{number}, {number}\]").all()
    one = discover_segments(study.result, study.data, max_depth=2, min_leaf=10_000)
    assert len(one) == 1 and one.loc[0, "rule"] == "all customers" and "no split" in one.loc[0, "note"]
    with pytest.raises(UpliftInputError, match="max_depth"):
        discover_segments(study.result, study.data, max_depth=0)
    with pytest.raises(UpliftInputError, match="not a treated arm"):
        discover_segments(study.result, study.data, arm="0")


def test_each_coupon_gets_its_own_discovered_segments(three_coupons):
    """Three coupons driven by different features: every arm has its own honest rules, split on its own driver
    (the first arm's rules for every arm, or another arm's scores, would split elsewhere)."""
    study, _ = three_coupons
    leaves = study.discover_segments(max_depth=1, min_leaf=1000)
    assert list(leaves["arm"].unique()) == ["free_shipping", "pct10", "pct20"]
    assert set(leaves.attrs["heterogeneity_p_by_arm"]) == {"free_shipping", "pct10", "pct20"}
    for arm, block in leaves.groupby("arm"):
        assert len(block) == 2, block
        split_on = {f for rule in block["rule"] for f in re.findall(r"[a-z_]+(?= (?:≤|>|=|≠|in) )", rule)}
        assert split_on and split_on <= set(SHOP_DRIVERS[arm]), (arm, list(block["rule"]))
        assert leaves.attrs["heterogeneity_p_by_arm"][arm] < 0.05
    one = study.discover_segments(max_depth=1, min_leaf=1000, arm="pct10")
    assert set(one["arm"]) == {"pct10"}


# ------------------------------------------------------------------------------------------ default segments
def test_default_segments_are_few_level_categoricals_else_the_first_numeric(sim):
    _, study = sim
    # channel (3 levels) and region (4 levels) qualify; the simulator has no other categorical feature.
    assert default_segment_columns(study.result, study.data) == [["channel"], ["region"]]
    assert default_segment_columns(study.result, study.data, max_levels=3) == [["channel"]]
    numeric_only = default_segment_columns(study.result, study.data, max_levels=1)
    first_numeric = [f for f in study.result.schema.names if f not in study.result.schema.categories][0]
    assert numeric_only == [[first_numeric]]
    table = segment_uplift(study.result, study.data, numeric_only[0])
    assert len(table) == 5 and table["n"].sum() == study.data.n  # quantile bands of the numeric feature

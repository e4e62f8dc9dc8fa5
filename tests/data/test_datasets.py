"""Packaged real experiments (against their published figures) and the simulator (against its own truth)."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.tree import DecisionTreeRegressor

from uplift.datasets import (
    UPLIFT_DRIVERS_SINGLE,
    load_hillstrom,
    load_starbucks,
    simulate_campaign,
    true_ate,
)
from uplift.errors import UpliftInputError

NOISE = ["noise_1", "noise_2", "noise_3", "noise_4"]


def diff_in_means(y: np.ndarray, treated: np.ndarray) -> tuple[float, float]:
    """Treated-minus-control difference and its Neyman standard error (the reference estimator)."""
    y1, y0 = y[treated], y[~treated]
    return float(y1.mean() - y0.mean()), float(np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)))


# --------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def hillstrom() -> pd.DataFrame:
    return load_hillstrom()


@pytest.fixture(scope="module")
def starbucks() -> pd.DataFrame:
    return load_starbucks()


def test_packaged_files_found_through_importlib_resources(monkeypatch, tmp_path):
    data = resources.files("uplift.datasets").joinpath("data")
    for name in ("hillstrom.csv.gz", "starbucks_promotion.csv.gz"):
        assert data.joinpath(name).is_file(), name
    # The loaders must not depend on the working directory.
    monkeypatch.chdir(tmp_path)
    assert len(load_hillstrom()) == 64_000


def test_hillstrom_is_the_original_file():
    raw = resources.files("uplift.datasets").joinpath("data").joinpath("hillstrom.csv.gz").read_bytes()
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest().startswith("0e5893329d8b")


def test_hillstrom_columns_and_dtypes(hillstrom):
    assert hillstrom.shape == (64_000, 12)
    assert list(hillstrom.columns) == ["recency", "history_segment", "history", "mens", "womens", "zip_code",
                                       "newbie", "channel", "segment", "visit", "conversion", "spend"]
    for col in ("history_segment", "zip_code", "channel", "segment"):
        assert isinstance(hillstrom[col].dtype, pd.CategoricalDtype), col
        assert not hillstrom[col].isna().any(), col
    for col in ("recency", "mens", "womens", "newbie", "visit", "conversion"):
        assert pd.api.types.is_integer_dtype(hillstrom[col]), col
    for col in ("mens", "womens", "newbie", "visit", "conversion"):
        assert set(hillstrom[col].unique()) <= {0, 1}, col
    assert list(hillstrom["segment"].cat.categories) == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    assert set(hillstrom["zip_code"].cat.categories) == {"Urban", "Surburban", "Rural"}  # original spelling
    counts = hillstrom["segment"].value_counts()
    assert counts.min() > 21_000 and counts.max() < 21_500  # randomised into three equal arms
    assert hillstrom["history_segment"].cat.ordered
    assert (hillstrom.loc[hillstrom["conversion"] == 0, "spend"] == 0).all()


@pytest.mark.parametrize(("arm", "visit_pp", "conversion_pp", "spend"), [
    ("Mens E-Mail", 7.66, 0.68, 0.770),
    ("Womens E-Mail", 4.52, 0.31, 0.424),
])
def test_hillstrom_published_sanity_figures(hillstrom, arm, visit_pp, conversion_pp, spend):
    means = hillstrom.groupby("segment", observed=True)[["visit", "conversion", "spend"]].mean()
    diff = means.loc[arm] - means.loc["No E-Mail"]
    assert round(100 * diff["visit"], 2) == visit_pp
    assert round(100 * diff["conversion"], 2) == conversion_pp
    assert round(diff["spend"], 3) == spend


def test_starbucks_columns_dtypes_and_rates(starbucks):
    assert starbucks.shape == (84_534, 10)
    assert list(starbucks.columns) == ["ID", "Promotion", "purchase", *[f"V{i}" for i in range(1, 8)]]
    assert list(starbucks["Promotion"].cat.categories) == ["No", "Yes"]
    assert starbucks["ID"].is_unique
    assert set(starbucks["purchase"].unique()) == {0, 1}
    assert pd.api.types.is_integer_dtype(starbucks["purchase"])
    assert pd.api.types.is_float_dtype(starbucks["V2"]) and pd.api.types.is_float_dtype(starbucks["V3"])
    rates = starbucks.groupby("Promotion", observed=True)["purchase"].mean()
    assert round(100 * rates["Yes"], 2) == 1.70
    assert round(100 * rates["No"], 2) == 0.76
    assert abs(starbucks["Promotion"].eq("Yes").mean() - 0.5) < 0.01


# --------------------------------------------------------------------------------------------- simulator
@pytest.fixture(scope="module")
def rct() -> pd.DataFrame:
    return simulate_campaign(200_000, design="rct", seed=7)


@pytest.fixture(scope="module")
def obs() -> pd.DataFrame:
    return simulate_campaign(200_000, design="observational", seed=8)


@pytest.fixture(scope="module")
def multi() -> pd.DataFrame:
    return simulate_campaign(150_000, design="rct", n_arms=2, seed=9)


def test_same_seed_same_frame_other_seed_other_frame():
    for kwargs in ({}, {"design": "observational"}, {"n_arms": 3, "design": "observational"}):
        a = simulate_campaign(3000, seed=5, **kwargs)
        b = simulate_campaign(3000, seed=5, **kwargs)
        pd.testing.assert_frame_equal(a, b)
        c = simulate_campaign(3000, seed=6, **kwargs)
        assert not a["conversion"].equals(c["conversion"]) and not a["age"].equals(c["age"])


def test_columns_and_dtypes(rct):
    df = simulate_campaign(2000, seed=0)
    expected = ["customer_id", "recency_days", "frequency", "monetary", "tenure_months", "age", "channel",
                "region", "newsletter", *NOISE, "treatment", "conversion", "revenue", "true_uplift",
                "true_revenue_uplift", "propensity"]
    assert list(df.columns) == expected and len(df) == 2000
    assert df["customer_id"].is_unique
    for col in ("monetary", *NOISE):
        assert df[col].dtype == np.float32, col
    for col in ("recency_days", "frequency", "tenure_months", "age", "newsletter", "treatment", "conversion"):
        assert pd.api.types.is_integer_dtype(df[col]), col
    for col in ("newsletter", "treatment", "conversion"):
        assert set(df[col].unique()) == {0, 1}, col
    assert list(df["channel"].cat.categories) == ["web", "app", "store"]
    assert isinstance(df["region"].dtype, pd.CategoricalDtype)
    # Plausible CRM values; recency consistent with having (or not) ordered this year.
    assert df["age"].between(18, 90).all() and df["tenure_months"].between(1, 240).all()
    assert (df["monetary"] > 0).all() and (df["frequency"] >= 0).all()
    assert (df.loc[df["frequency"] > 0, "recency_days"] <= 365).all()
    assert (df.loc[df["frequency"] == 0, "recency_days"] > 365).all()
    # Revenue is the basket of a conversion and nothing otherwise.
    assert (df["revenue"] >= 0).all()
    assert ((df["revenue"] > 0) == (df["conversion"] == 1)).all()
    assert (rct["propensity"] == 0.5).all()


def test_base_rate_is_respected():
    for base_rate in (0.03, 0.1):
        df = simulate_campaign(100_000, seed=1, base_rate=base_rate)
        control = df.loc[df["treatment"] == 0, "conversion"]
        se = np.sqrt(base_rate * (1 - base_rate) / len(control))
        assert abs(control.mean() - base_rate) < 4 * se + 0.001, base_rate


def test_uplift_is_realistic_heterogeneous_and_partly_negative(rct):
    tau = rct["true_uplift"]
    assert 0.005 < tau.mean() < 0.02  # about +1 pp
    assert 0.008 < tau.std() < 0.03  # a spread of a few pp
    assert 0.05 < (tau < 0).mean() < 0.5  # sleeping dogs exist but are a minority
    assert tau.between(-1, 1).all()
    # Documented direction of the drivers: heavy buyers are put off, lapsed customers won back.
    heavy = rct["frequency"] >= 9
    assert tau[heavy].mean() < 0 < tau[rct["recency_days"] > 365].mean()
    # Revenue uplift = conversion uplift x expected basket, so same sign everywhere.
    assert (np.sign(rct["true_revenue_uplift"]) == np.sign(tau)).all()


def test_uplift_depends_on_documented_drivers_only(rct):
    sample = rct.iloc[:60_000]
    half = len(sample) // 2
    y = sample["true_uplift"].to_numpy()

    def r2(cols, leaf):
        X = pd.get_dummies(sample[cols]).to_numpy(dtype=float)
        tree = DecisionTreeRegressor(min_samples_leaf=leaf, random_state=0).fit(X[:half], y[:half])
        return tree.score(X[half:], y[half:])

    assert r2(list(UPLIFT_DRIVERS_SINGLE), 50) > 0.98
    assert r2(NOISE, 500) < 0.005


def test_drivers_show_heterogeneity_in_realised_outcomes_noise_does_not(rct):
    """Cochran's Q of quartile-wise diff-in-means: drivers far above noise, noise consistent with chi2(3)."""
    treated = rct["treatment"].to_numpy() == 1
    y = rct["conversion"].to_numpy().astype(float)

    def q_stat(col: str) -> float:
        x = rct[col]
        bins = x.cat.codes.to_numpy() if isinstance(x.dtype, pd.CategoricalDtype) else \
            pd.qcut(x.rank(method="first"), 4, labels=False).to_numpy()
        est = np.array([diff_in_means(y[bins == b], treated[bins == b]) for b in np.unique(bins)])
        w = 1 / est[:, 1] ** 2
        pooled = np.sum(w * est[:, 0]) / w.sum()
        return float(np.sum(w * (est[:, 0] - pooled) ** 2))

    driver_q = {c: q_stat(c) for c in UPLIFT_DRIVERS_SINGLE}
    noise_q = {c: q_stat(c) for c in NOISE}
    assert min(driver_q.values()) > max(noise_q.values()), (driver_q, noise_q)
    assert max(noise_q.values()) < stats.chi2.ppf(0.999, 3), noise_q
    assert min(driver_q.values()) > stats.chi2.ppf(0.999, 3), driver_q


def test_rct_realised_difference_matches_truth(rct):
    treated = rct["treatment"].to_numpy() == 1
    for outcome, truth_col in (("conversion", "true_uplift"), ("revenue", "true_revenue_uplift")):
        est, se = diff_in_means(rct[outcome].to_numpy().astype(float), treated)
        truth = rct[truth_col].mean()
        assert abs(est - truth) < 3 * se, (outcome, est, truth, se)
        assert est > 3 * se  # the campaign works on average and the test can see it
    # Within the sleeping-dog segment the realised effect is negative too.
    heavy = rct["frequency"].to_numpy() >= 8
    est, se = diff_in_means(rct["conversion"].to_numpy()[heavy].astype(float), treated[heavy])
    assert abs(est - rct.loc[heavy, "true_uplift"].mean()) < 3 * se and est < 0


def test_observational_naive_is_biased_ipw_with_true_propensity_is_not(obs):
    t = obs["treatment"].to_numpy()
    y = obs["conversion"].to_numpy().astype(float)
    e = obs["propensity"].to_numpy()
    truth = true_ate(obs)
    assert e.min() >= 0.05 and e.max() <= 0.95 and np.ptp(e) > 0.7  # overlap, but strong targeting
    assert abs(t.mean() - 0.5) < 0.01
    naive, naive_se = diff_in_means(y, t == 1)
    assert naive - truth > 8 * naive_se  # engaged customers were targeted: the naive contrast flatters
    terms = t * y / e - (1 - t) * y / (1 - e)  # Horvitz-Thompson with the known design propensity
    ipw, ipw_se = terms.mean(), terms.std(ddof=1) / np.sqrt(len(terms))
    assert abs(ipw - truth) < 3 * ipw_se, (ipw, truth, ipw_se)
    # The targeting rides on the baseline drivers.
    assert np.corrcoef(e, np.log1p(obs["frequency"]))[0, 1] > 0.3


def test_confounding_strength_scales_the_bias():
    bias = []
    for strength in (0.0, 1.0, 2.0):
        df = simulate_campaign(100_000, design="observational", confounding=strength, seed=21)
        naive, se = diff_in_means(df["conversion"].to_numpy().astype(float), df["treatment"].to_numpy() == 1)
        bias.append(naive - true_ate(df))
        if strength == 0:
            assert (df["propensity"] == 0.5).all() and abs(bias[0]) < 3 * se
    assert bias[0] < bias[1] < bias[2]


def test_multi_arm_columns_and_truth(multi):
    arms = ["coupon_a", "coupon_b"]
    assert list(multi["treatment"].cat.categories) == ["control", *arms]
    for arm in arms:
        for prefix in ("true_uplift_", "true_revenue_uplift_"):
            assert prefix + arm in multi.columns
    props = multi[[f"propensity_{a}" for a in ["control", *arms]]].to_numpy()
    np.testing.assert_allclose(props, 1 / 3)
    shares = multi["treatment"].value_counts(normalize=True)
    assert (abs(shares - 1 / 3) < 0.01).all()
    # true_uplift is the row's own arm (0 for control rows).
    label = multi["treatment"].astype(str).to_numpy()
    for arm in arms:
        own = label == arm
        np.testing.assert_array_equal(multi["true_uplift"].to_numpy()[own], multi[f"true_uplift_{arm}"][own])
    assert (multi.loc[label == "control", "true_uplift"] == 0).all()
    # Each coupon's realised effect matches its truth, and the best coupon differs between customers.
    y = multi["conversion"].to_numpy().astype(float)
    control = label == "control"
    for arm in arms:
        keep = control | (label == arm)
        est, se = diff_in_means(y[keep], label[keep] == arm)
        assert abs(est - true_ate(multi, arm)) < 3 * se, arm
    best_a = (multi["true_uplift_coupon_a"] > multi["true_uplift_coupon_b"]).mean()
    assert 0.2 < best_a < 0.8


def test_multi_arm_observational_propensities_are_valid():
    df = simulate_campaign(20_000, design="observational", n_arms=3, seed=4)
    props = df[[c for c in df.columns if c.startswith("propensity_")]].to_numpy()
    assert props.shape[1] == 4
    np.testing.assert_allclose(props.sum(axis=1), 1.0)
    assert props.min() >= 0.1 / 4 - 1e-12 and np.ptp(props[:, 0]) > 0.5


def test_revenue_as_headline_outcome():
    conv = simulate_campaign(5000, seed=2)
    rev = simulate_campaign(5000, seed=2, outcome="revenue")
    np.testing.assert_array_equal(rev["true_uplift"], rev["true_revenue_uplift"])
    np.testing.assert_array_equal(rev["true_conversion_uplift"], conv["true_uplift"])
    assert true_ate(rev) == pytest.approx(conv["true_revenue_uplift"].mean())
    assert true_ate(rev, outcome="conversion") == pytest.approx(true_ate(conv))
    assert true_ate(conv, outcome="revenue") == pytest.approx(true_ate(rev))


def test_true_ate(multi):
    assert true_ate(multi, "coupon_b") == pytest.approx(multi["true_uplift_coupon_b"].mean())
    with pytest.raises(UpliftInputError, match="coupon_a, coupon_b"):
        true_ate(multi)
    with pytest.raises(UpliftInputError, match="coupon_z"):
        true_ate(multi, "coupon_z")
    with pytest.raises(UpliftInputError, match="simulate_campaign"):
        true_ate(pd.DataFrame({"x": [1.0]}))


@pytest.mark.parametrize("kwargs", [
    {"n": 0}, {"n": 2.5}, {"design": "quasi"}, {"n_arms": 0}, {"confounding": -1.0},
    {"base_rate": 0.0}, {"outcome": "visits"},
])
def test_bad_arguments_raise_input_error(kwargs):
    args = {"n": 100, **kwargs}
    with pytest.raises(UpliftInputError):
        simulate_campaign(args.pop("n"), **args)

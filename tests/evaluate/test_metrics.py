"""Uplift metrics: equal to scikit-uplift, exact bootstrap replicates, honest intervals, validated inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from uplift.errors import UpliftInputError
from uplift.evaluate import metrics


def _random_case(seed: int, *, continuous: bool, ties: bool, n: int | None = None):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(40, 400))
    treatment = rng.integers(0, 2, n)
    treatment[:2] = [0, 1]
    y = rng.gamma(2.0, size=n).round(1) * (rng.random(n) < 0.4) if continuous else rng.integers(0, 2, n)
    y[:2] = [0, 1]
    score = rng.integers(0, 7, n) / 7 if ties else rng.normal(size=n)
    return y, score, treatment


@pytest.fixture
def sklift_metrics(monkeypatch):
    """scikit-uplift's metrics, the reference; only the tests comparing with it skip when it is missing.

    sklift refuses continuous y up front but its formulas accept it; the check is lifted to compare.
    """
    reference = pytest.importorskip("sklift.metrics")
    monkeypatch.setattr(pytest.importorskip("sklift.metrics.metrics"), "check_is_binary", lambda array: None)
    return reference


CASES = [(seed, continuous, ties)
         for seed in range(6) for continuous in (False, True) for ties in (False, True)]


@pytest.mark.parametrize(("seed", "continuous", "ties"), CASES)
def test_scores_equal_sklift(seed, continuous, ties, sklift_metrics):
    y, score, t = _random_case(seed, continuous=continuous, ties=ties)
    assert metrics.uplift_auc_score(y, score, t) == pytest.approx(
        sklift_metrics.uplift_auc_score(y, score, t), abs=1e-9)
    assert metrics.auuc(y, score, t) == metrics.uplift_auc_score(y, score, t)
    assert metrics.qini_auc_score(y, score, t) == pytest.approx(
        sklift_metrics.qini_auc_score(y, score, t), abs=1e-9)
    try:
        expected = sklift_metrics.qini_auc_score(y, score, t, negative_effect=False)
    except (ValueError, ZeroDivisionError):  # sklift fails where the ideal curve is not a curve; we say why
        with pytest.raises(UpliftInputError, match="negative_effect"):
            metrics.qini_auc_score(y, score, t, negative_effect=False)
    else:
        assert metrics.qini_auc_score(y, score, t, negative_effect=False) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("seed", "continuous", "ties"), CASES)
@pytest.mark.parametrize("strategy", ["overall", "by_group"])
def test_uplift_at_k_equals_sklift(seed, continuous, ties, strategy, sklift_metrics):
    y, score, t = _random_case(seed, continuous=continuous, ties=ties)
    n_small = int(min(t.sum(), len(t) - t.sum()))
    for k in (0.1, 0.3, 0.75, 5, np.int64(n_small)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # sklift's mean of an empty group
            expected = sklift_metrics.uplift_at_k(y, score, t, strategy=strategy, k=k)
        if np.isnan(expected):
            with pytest.raises(UpliftInputError, match="undefined"):
                metrics.uplift_at_k(y, score, t, k=k, strategy=strategy)
        else:
            value = metrics.uplift_at_k(y, score, t, k=k, strategy=strategy)
            assert value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("seed", "continuous", "ties"), CASES[:8])
def test_curves_equal_sklift(seed, continuous, ties, sklift_metrics):
    y, score, t = _random_case(seed, continuous=continuous, ties=ties)
    pairs = [(metrics.uplift_curve(y, score, t), sklift_metrics.uplift_curve(y, score, t)),
             (metrics.qini_curve(y, score, t), sklift_metrics.qini_curve(y, score, t)),
             (metrics.perfect_uplift_curve(y, t), sklift_metrics.perfect_uplift_curve(y, t)),
             (metrics.perfect_qini_curve(y, t), sklift_metrics.perfect_qini_curve(y, t))]
    for (x, gain), (x_ref, gain_ref) in pairs:
        np.testing.assert_allclose(x, x_ref, atol=1e-9)
        np.testing.assert_allclose(gain, gain_ref, atol=1e-9)


@pytest.mark.parametrize("case", ["binary", "continuous", "dr"])
@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_replicate_is_the_metric_of_the_replicated_rows(case, ties):
    """A weighted replicate equals the point estimate on rows repeated by their weights (ties included)."""
    rng = np.random.default_rng(7)
    y, score, t = _random_case(11, continuous=case != "binary", ties=ties, n=300)
    dr = rng.normal(size=len(y)) if case == "dr" else None
    specs = {"qini": metrics._Metric("qini"), "qini0": metrics._Metric("qini", negative_effect=False),
             "auuc": metrics._Metric("auuc")}
    if not ties:  # with ties uplift@k depends on the order inside a tie, which replication changes
        specs |= {"top": metrics._Metric("uplift_at_k", k=0.3),
                  "group": metrics._Metric("uplift_at_k", k=0.4, strategy="by_group"),
                  "count": metrics._Metric("uplift_at_k", k=17, strategy="by_group")}
    weights = metrics._poisson_weights(rng, (6, len(y)))
    replicates = metrics._Scorer(y, score, t, dr).scores(weights, specs)
    ranked = metrics._descending_order(score)
    for b in range(len(weights)):
        rows = np.repeat(ranked, weights[b])
        scorer = metrics._Scorer(y[rows], score[rows], t[rows], None if dr is None else dr[rows])
        direct = scorer.scores(None, specs)
        for name in specs:
            np.testing.assert_allclose(replicates[name][b], direct[name][0], rtol=1e-9, atol=1e-9,
                                       err_msg=name)


def test_poisson_weights_have_poisson_moments():
    weights = metrics._poisson_weights(np.random.default_rng(0), (50, 20_000))
    assert weights.dtype == np.uint8
    assert weights.mean() == pytest.approx(1.0, abs=0.005)
    assert weights.var() == pytest.approx(1.0, abs=0.01)
    assert np.mean(weights == 0) == pytest.approx(np.exp(-1), abs=0.003)


def test_bootstrap_se_agrees_with_naive_resampling():
    """Fast Poisson-weight SEs vs. resampling rows and recomputing each metric from scratch (within 15%).

    The recomputation uses the point functions, which equal sklift's (tests above) and share none of the
    weighted bootstrap path.
    """
    y, score, t = _random_case(3, continuous=False, ties=False, n=300)
    rng = np.random.default_rng(1)
    naive = {"qini": [], "auuc": [], "uplift_at_k": []}
    for _ in range(600):
        rows = rng.integers(0, len(y), len(y))
        yy, ss, tt = y[rows], score[rows], t[rows]
        naive["qini"].append(metrics.qini_auc_score(yy, ss, tt))
        naive["auuc"].append(metrics.uplift_auc_score(yy, ss, tt))
        naive["uplift_at_k"].append(metrics.uplift_at_k(yy, ss, tt, k=0.3))
    for name, draws in naive.items():
        fast = metrics.metric_ci(name, y, score, t, n_boot=2000, random_state=2)
        naive_se = np.std(draws, ddof=1)
        assert fast["se"] == pytest.approx(naive_se, rel=0.15), name
        # the percentile interval is the naive one's too (endpoints within 0.4 standard errors: the 2.5% quantile
        # of 600 draws alone varies by ~0.1)
        naive_lower, naive_upper = np.quantile(draws, [0.025, 0.975])
        assert abs(fast["lower"] - naive_lower) < 0.4 * naive_se, name
        assert abs(fast["upper"] - naive_upper) < 0.4 * naive_se, name


def _campaign(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    t = (rng.random(n) < 0.5).astype(int)
    true_uplift = 0.05 + 0.1 * x
    y = (rng.random(n) < 0.2 + t * true_uplift).astype(int)
    return y, x + rng.normal(0, 0.5, n), t, true_uplift


def test_interval_coverage_over_replications():
    """95% intervals cover the population Qini / AUUC / uplift@k in roughly 95% of simulated campaigns."""
    y, score, t, true_uplift = _campaign(300_000, seed=0)
    truth = {"qini": metrics.qini_auc_score(y, score, t), "auuc": metrics.uplift_auc_score(y, score, t),
             "uplift_at_k": true_uplift[np.argsort(-score)[: int(0.3 * len(y))]].mean()}
    replications = 60
    hits = dict.fromkeys(truth, 0)
    for r in range(replications):
        y, score, t, _ = _campaign(3000, seed=100 + r)
        result = metrics.evaluate_scores(y, score, t, n_boot=200, random_state=r)
        for name, value in truth.items():
            hits[name] += result[name]["lower"] <= value <= result[name]["upper"]
    for name, count in hits.items():
        assert 0.85 <= count / replications <= 1.0, (name, count)


def test_oracle_ranking_beats_random_rankings():
    rng = np.random.default_rng(4)
    n = 5000
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n)
    true_uplift = np.tanh(x)  # harmful for half the customers
    y = 1.0 + 0.5 * x + t * true_uplift  # noise-free outcomes
    for name, fn in [("qini", metrics.qini_auc_score), ("auuc", metrics.uplift_auc_score),
                     ("at_k", lambda *a: metrics.uplift_at_k(*a, k=0.2))]:
        oracle = fn(y, true_uplift, t)
        randoms = [fn(y, rng.normal(size=n), t) for _ in range(5)]
        assert oracle > max(randoms), name
        assert abs(np.mean(randoms)) < 0.25 * abs(oracle), name


@pytest.mark.parametrize("ties", [False, True])
def test_row_order_does_not_matter(ties):
    y, score, t = _random_case(21, continuous=True, ties=ties, n=500)
    perm = np.random.default_rng(0).permutation(len(y))
    for fn in (metrics.qini_auc_score, metrics.uplift_auc_score):
        assert fn(y[perm], score[perm], t[perm]) == pytest.approx(fn(y, score, t), abs=1e-12)
    x, gain = metrics.qini_curve(y, score, t)
    x_perm, gain_perm = metrics.qini_curve(y[perm], score[perm], t[perm])
    np.testing.assert_allclose(gain_perm, gain, atol=1e-9)
    if not ties:  # inside a tie the cut of uplift@k follows row order, as in sklift
        for strategy in ("overall", "by_group"):
            assert metrics.uplift_at_k(y[perm], score[perm], t[perm], strategy=strategy) == pytest.approx(
                metrics.uplift_at_k(y, score, t, strategy=strategy), abs=1e-12)
    ci = metrics.metric_ci("qini", y, score, t, n_boot=100)
    assert ci == metrics.metric_ci("qini", y, score, t, n_boot=100)  # seeded


def test_dr_scores_agree_with_raw_comparison_in_an_rct():
    """With dr = the IPW score at the known propensity, the DR metrics estimate what the raw ones do."""
    rng = np.random.default_rng(5)
    n, p = 100_000, 0.3
    x = rng.uniform(-1, 1, n)
    t = (rng.random(n) < p).astype(int)
    y = (rng.random(n) < 0.2 + t * (0.05 + 0.1 * x)).astype(int)
    dr = y * t / p - y * (1 - t) / (1 - p)
    score = x + rng.normal(0, 0.5, n)
    raw, with_dr = metrics.qini_auc_score(y, score, t), metrics.qini_auc_score(y, score, t, dr=dr)
    assert with_dr == pytest.approx(raw, rel=0.15)
    for strategy in ("overall", "by_group"):
        assert metrics.uplift_at_k(y, score, t, strategy=strategy, dr=dr) == pytest.approx(
            metrics.uplift_at_k(y, score, t, strategy=strategy), abs=0.01)
    for curve in (metrics.uplift_curve, metrics.qini_curve):
        _, gain_raw = curve(y, score, t)
        _, gain_dr = curve(y, score, t, dr=dr)
        assert np.abs(gain_dr - gain_raw).max() / n < 0.01
    # DR Qini is the DR uplift curve times a constant share, so the normalised areas coincide.
    assert metrics.uplift_auc_score(y, score, t, dr=dr) == pytest.approx(with_dr, rel=1e-9)
    interval = metrics.metric_ci("qini", y, score, t, dr=dr, n_boot=50)
    assert interval["lower"] < raw < interval["upper"]


def test_uplift_by_decile_table():
    rng = np.random.default_rng(8)
    n = 5003
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n)
    y = rng.normal(size=n) + t * x
    table = metrics.uplift_by_decile(y, x, t)
    assert list(table.columns) == ["bin", "n", "n_treated", "n_control", "predicted_uplift",
                                   "observed_uplift", "observed_lower", "observed_upper"]
    assert table["bin"].tolist() == list(range(1, 11))
    assert table["n"].sum() == n and table["n"].max() - table["n"].min() <= 1
    assert (table["n_treated"] + table["n_control"] == table["n"]).all()
    # Each bin's predicted uplift is the mean of its consecutive run of the descending predictions.
    runs = np.split(np.sort(x)[::-1], np.cumsum(table["n"])[:-1])
    np.testing.assert_allclose(table["predicted_uplift"], [run.mean() for run in runs], rtol=1e-12)
    # Bin 1 holds the highest predictions; its observed uplift is the plain difference in means there.
    top = np.argsort(-x, kind="stable")[: table["n"].iloc[0]]
    yt, tt = y[top], t[top]
    diff = yt[tt == 1].mean() - yt[tt == 0].mean()
    se = np.sqrt(yt[tt == 1].var(ddof=1) / tt.sum() + yt[tt == 0].var(ddof=1) / (tt == 0).sum())
    assert table["observed_uplift"].iloc[0] == pytest.approx(diff)
    width = table["observed_upper"].iloc[0] - table["observed_lower"].iloc[0]
    assert width == pytest.approx(2 * 1.959964 * se)
    # The truth (mean predicted uplift, which is exact here) lies inside most bins' 95% intervals.
    inside = (table["observed_lower"] <= table["predicted_uplift"]) & (
        table["predicted_uplift"] <= table["observed_upper"])
    assert inside.sum() >= 8
    dr = rng.normal(size=n) + x
    dr_table = metrics.uplift_by_decile(y, x, t, dr=dr, n_bins=4)
    first = np.argsort(-x, kind="stable")[: dr_table["n"].iloc[0]]
    assert dr_table["observed_uplift"].iloc[0] == pytest.approx(dr[first].mean())
    half_width = (dr_table["observed_upper"] - dr_table["observed_lower"]).iloc[0] / 2
    assert half_width == pytest.approx(1.959964 * dr[first].std(ddof=1) / np.sqrt(len(first)), rel=1e-5)


def test_evaluate_scores_matches_point_functions_and_metric_ci():
    y, score, t, _ = _campaign(4000, seed=9)
    result = metrics.evaluate_scores(y, score, t, k=0.2, n_boot=150, random_state=3)
    assert set(result) == {"qini", "auuc", "uplift_at_k"}
    assert result["qini"]["estimate"] == metrics.qini_auc_score(y, score, t)
    assert result["auuc"]["estimate"] == metrics.uplift_auc_score(y, score, t)
    assert result["uplift_at_k"]["estimate"] == metrics.uplift_at_k(y, score, t, k=0.2)
    # One shared set of bootstrap weights: each interval equals the single-metric one with the same seed.
    assert result["qini"] == metrics.metric_ci(metrics.qini_auc_score, y, score, t, n_boot=150,
                                               random_state=3)
    assert result["auuc"] == metrics.metric_ci("auuc", y, score, t, n_boot=150, random_state=3)
    assert result["uplift_at_k"] == metrics.metric_ci("uplift_at_k", y, score, t, k=0.2, n_boot=150,
                                                      random_state=3)
    assert all(set(part) == {"estimate", "lower", "upper", "se"} for part in result.values())


def test_metric_ci_accepts_any_callable():
    y, score, t, _ = _campaign(600, seed=12)
    fast = metrics.metric_ci("uplift_at_k", y, score, t, k=0.5, n_boot=400)
    slow = metrics.metric_ci(lambda *a: metrics.uplift_at_k(*a, k=0.5), y, score, t, n_boot=400)
    assert slow["estimate"] == fast["estimate"]
    assert slow["se"] == pytest.approx(fast["se"], rel=0.2)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"y": [1, 0, 1]}, "uplift has 4 rows but y has 3"),
    ({"treatment": [0, 1, 2, 1]}, "treatment must be coded 0"),
    ({"treatment": [1, 1, 1, 1]}, "no control rows"),
    ({"treatment": [0, 0, 0, 0]}, "no treated rows"),
    ({"uplift": [0.1, np.nan, 0.3, 0.2]}, r"uplift has 1 missing .* row 1"),
    ({"uplift": [[0.1, 0.2], [0.3, 0.4]]}, "one-dimensional"),
    ({"y": ["a", "b", "c", "d"]}, "numeric"),
    ({"dr": [0.0, 1.0, np.inf, 0.0]}, "dr has 1 missing or infinite"),
    ({"dr": [0.0, 1.0]}, "dr has 2 rows"),
])
def test_bad_input_is_named(kwargs, match):
    args = {"y": [1, 0, 1, 0], "uplift": [0.4, 0.3, 0.2, 0.1], "treatment": [1, 0, 0, 1], "dr": None} | kwargs
    for call in (lambda: metrics.qini_auc_score(**args), lambda: metrics.evaluate_scores(**args, n_boot=5),
                 lambda: metrics.uplift_by_decile(**args, n_bins=2)):
        with pytest.raises(UpliftInputError, match=match):
            call()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"k": 0.0}, "k=0.0 must be"), ({"k": 1.5}, "k=1.5 must be"), ({"k": 40}, "k=40 must be"),
    ({"k": True}, "must be a share"), ({"strategy": "top"}, "strategy must be"),
    ({"k": 30, "strategy": "by_group"}, "exceeds the smaller group"),
])
def test_bad_k_or_strategy(kwargs, match):
    y, score, t = _random_case(1, continuous=False, ties=False, n=40)
    t[:] = 0
    t[:20] = 1
    with pytest.raises(UpliftInputError, match=match):
        metrics.uplift_at_k(y, score, t, **kwargs)


def test_bad_bootstrap_settings_and_metric_names():
    y, score, t = _random_case(2, continuous=False, ties=False, n=50)
    with pytest.raises(UpliftInputError, match="n_boot"):
        metrics.metric_ci("qini", y, score, t, n_boot=1)
    with pytest.raises(UpliftInputError, match="alpha"):
        metrics.metric_ci("qini", y, score, t, alpha=1.5)
    with pytest.raises(UpliftInputError, match="unknown metric"):
        metrics.metric_ci("gini", y, score, t)
    with pytest.raises(UpliftInputError, match="n_bins"):
        metrics.uplift_by_decile(y, score, t, n_bins=0)


def test_accepts_pandas_and_lists():
    y, score, t = _random_case(5, continuous=False, ties=True, n=200)
    frame = pd.DataFrame({"y": y, "s": score, "t": t})
    assert metrics.qini_auc_score(frame["y"], frame["s"], frame["t"]) == metrics.qini_auc_score(
        list(y), list(score), list(t))


# ---------------------------------------------------------------------------------------------------------
# Large-n paths: streamed point estimates and the m-out-of-n bootstrap
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("observational", [False, True])
def test_streamed_point_estimates_equal_the_vectorised_engine(monkeypatch, ties, observational):
    rng = np.random.default_rng(3)
    n = 50_003
    t = (rng.random(n) < 0.8).astype(np.int8)
    y = (rng.random(n) < 0.02 + 0.03 * t).astype(np.float64)
    score = rng.normal(size=n).astype(np.float32)
    if ties:
        score = np.round(score, 1)
        score[rng.random(n) < 0.4] = 0.25  # one tie run longer than several blocks (no curve point ends in them)
    dr = (rng.normal(size=n) * 2).astype(np.float32) if observational else None
    specs = {"qini": metrics._metric("qini", n, t), "auuc": metrics._metric("auuc", n, t),
             "uplift_at_k": metrics._metric("uplift_at_k", n, t, k=0.3)}
    monkeypatch.setattr(metrics, "_BLOCK", 4096)  # many blocks, ties across block edges
    streamed = metrics._streamed_scores(y, score, t, dr, specs)
    reference = metrics._Scorer(y, score.astype(float), t.astype(float),
                                None if dr is None else dr.astype(float)).scores(None, specs)
    for name in specs:
        assert streamed[name] == pytest.approx(float(reference[name][0]), rel=1e-10, abs=1e-14)


def test_large_evaluation_matches_small_path_estimates_and_rescales_the_bootstrap(monkeypatch):
    rng = np.random.default_rng(4)
    n = 120_000
    t = (rng.random(n) < 0.5).astype(np.int8)
    score = rng.normal(size=n)
    y = (rng.random(n) < 0.05 + 0.05 * t * (score > 0)).astype(float)
    full = metrics.evaluate_scores(y, score, t, n_boot=200, random_state=1)
    monkeypatch.setattr(metrics, "_STREAM_ROWS", 10_000)
    sub = metrics.evaluate_scores(y, score.astype(np.float32), t, n_boot=200, random_state=1, max_rows=30_000)
    for name in ("qini", "auuc", "uplift_at_k"):
        assert sub[name]["estimate"] == pytest.approx(full[name]["estimate"], rel=1e-7)
        # m-out-of-n draws rescaled by sqrt(m / n) estimate the full-sample spread
        assert 0.7 < sub[name]["se"] / full[name]["se"] < 1.4
        # and the interval is rescaled with it, not left at the subsample's width
        width, full_width = (r[name]["upper"] - r[name]["lower"] for r in (sub, full))
        assert 0.7 < width / full_width < 1.4


@pytest.mark.parametrize("observational", [False, True])
@pytest.mark.parametrize("levels", [1, 2, 5, None])
def test_compiled_resample_areas_equal_the_vectorised_areas(observational, levels):
    """The bootstrap's compiled trapezoid sums (uplift.evaluate._areas) are the vectorised engine's areas, down to
    a single tied group (every score equal) and two points, raw and with dr."""
    from uplift.evaluate._areas import curve_areas

    rng = np.random.default_rng(levels or 0)
    n = 500
    score = rng.normal(size=n) if levels is None else rng.integers(0, levels, n).astype(float)
    t = rng.integers(0, 2, n).astype(float)
    y = rng.normal(size=n) if observational else rng.integers(0, 2, n).astype(float)
    ranked = metrics._Ranked(score, metrics._columns(t, y))
    weights = metrics._poisson_weights(rng, (7, n))
    full = ranked.cumsums(weights, at_ends=False)
    at_ends = ranked.cumsums(weights)
    totals = metrics._totals(full)
    expected = metrics._curve_areas(at_ends, totals, observational, ("qini", "uplift"))
    got = curve_areas(full, None if ranked.all_distinct else ranked.ends, observational)
    np.testing.assert_allclose(got["uplift"], expected["uplift"], rtol=1e-12, atol=1e-9)
    if not observational:
        np.testing.assert_allclose(got["qini"], expected["qini"], rtol=1e-12, atol=1e-9)


def test_shared_bootstrap_draws_give_the_intervals_of_unshared_ones():
    """Learners scored with one set of draws (the leaderboard) get exactly the intervals of separate calls, also
    through the m-out-of-n subsample; draws made for another seed are refused."""
    rng = np.random.default_rng(4)
    n = 3000
    t = rng.integers(0, 2, n)
    y = (rng.random(n) < 0.1 + 0.05 * t).astype(int)
    draws = metrics.BootstrapDraws(n_boot=40, random_state=3)
    for seed in (1, 2):
        score = np.random.default_rng(seed).normal(size=n)
        for max_rows in (None, 1000):
            alone = metrics.evaluate_scores(y, score, t, n_boot=40, random_state=3, max_rows=max_rows)
            shared = metrics.evaluate_scores(y, score, t, n_boot=40, random_state=3, max_rows=max_rows, draws=draws)
            assert shared == alone
    with pytest.raises(ValueError, match="another n_boot or random_state"):
        metrics.evaluate_scores(y, score, t, n_boot=40, random_state=4, draws=draws)

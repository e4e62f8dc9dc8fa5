"""The figures draw the numbers they are given, in the outcome's units, and keep no pyplot state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from uplift import Study, UpliftInputError
from uplift._display import fmt_ci
from uplift.datasets import simulate_campaign
from uplift.effects.explanation import Explanation
from uplift.effects.segments import segment_uplift
from uplift.evaluate import metrics
from uplift.viz import plots


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The machine is shared: OpenMP/BLAS thread pools fighting over 2 busy cores are ~10x slower than one.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def study() -> Study:
    df = simulate_campaign(2000, design="rct", seed=5)
    truth = [c for c in df.columns if c.startswith(("true_", "propensity"))]
    clf = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(solver="liblinear"))
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id", exclude=truth + ["revenue"])
    return study.fit(learners=["t", "dr"], n_folds=3, n_boot=30, base_classifier=clf,
                     base_regressor=make_pipeline(SimpleImputer(), Ridge()))


@pytest.fixture(scope="module")
def explanation() -> Explanation:
    """A hand-made explanation: two numeric features and one categorical, known SHAP values."""
    rng = np.random.default_rng(0)
    n = 60
    values = np.column_stack([np.linspace(-0.02, 0.02, n), np.full(n, 0.001), rng.normal(0, 0.01, n)])
    data = pd.DataFrame({"recency": np.arange(n, dtype=float), "noise": rng.normal(size=n),
                         "channel": np.resize(["web", "app", "store"], n)})
    importance = pd.DataFrame({"feature": ["recency", "channel", "noise"], "mean_abs_shap": [0.01, 0.008, 0.001],
                               "lower": [0.009, 0.007, 0.0008], "upper": [0.011, 0.009, 0.0012],
                               "share": [0.53, 0.42, 0.05], "rank": [1, 2, 3]})
    codes = data.assign(channel=np.resize([0.0, 1.0, 2.0], n)).to_numpy()
    return Explanation(values=values, base_value=0.01, prediction=values.sum(1) + 0.01, target=values.sum(1),
                       data=data, importance=importance, surrogate_r2=0.91, surrogate_r2_ci=(0.88, 0.93),
                       learner="t", arm="1", kind="binary", feature_names=("recency", "noise", "channel"),
                       categorical=frozenset({"channel"}), codes=codes)


def test_plots_return_figures_without_pyplot_state(study, explanation):
    import matplotlib.pyplot as plt

    result, data = study.result, study.data
    before = plt.get_fignums()
    figs = [plots.plot_qini(result, data), plots.plot_uplift_curve(result, data, learners=["t"]),
            plots.plot_calibration(result.calibration, kind=result.kind), plots.plot_ate(result.ate),
            plots.plot_segments(segment_uplift(result, data, ["region"]), kind=result.kind),
            plots.plot_love(result.diagnostics["balance"]),
            plots.plot_propensity_overlap(result.crossfit.e[:, 1], data.treatment),
            plots.plot_shap_summary(explanation), plots.plot_shap_dependence(explanation, "channel")]
    assert all(isinstance(f, Figure) for f in figs)
    assert plt.get_fignums() == before


def test_qini_plot_draws_the_metric_curve_and_the_leaderboard_ci(study):
    result, data = study.result, study.data
    fig = plots.plot_qini(result, data, learners=["t"])
    y, t = data.outcomes["conversion"], data.treatment
    # Radcliffe's Qini with everyone targeted: treated conversions minus control conversions times N_T/N_C.
    expected = y[t == 1].sum() - y[t == 0].sum() * (t == 1).sum() / (t == 0).sum()
    model, random_line = fig.axes[0].lines[0], fig.axes[0].lines[1]
    assert model.get_ydata()[-1] == pytest.approx(expected)
    assert random_line.get_ydata().tolist() == pytest.approx([0.0, expected])
    # The drawn points are points of the metric's curve (thinned to at most MAX_CURVE_POINTS).
    x, gain = metrics.qini_curve(y, result.crossfit.uplift["t"][:, 0], t)
    share, gain = np.ravel(x) / np.ravel(x)[-1], np.ravel(gain)
    at = np.searchsorted(share, model.get_xdata())
    np.testing.assert_array_equal(share[at], model.get_xdata())
    np.testing.assert_allclose(gain[at], model.get_ydata())
    assert 2 <= len(at) <= plots.MAX_CURVE_POINTS
    row = result.leaderboard.set_index("learner").loc["t"]
    assert model.get_label() == f"t-learner  (QINI {fmt_ci(row.qini, row.qini_lower, row.qini_upper)})"


def test_curves_default_to_the_best_learners_and_check_the_arm(study):
    result, data = study.result, study.data
    fig = plots.plot_uplift_curve(result, data, max_learners=2)
    ranked = list(result.leaderboard.sort_values("rank")["learner"])[:2]
    assert [ln.get_label().split("  ")[0] for ln in fig.axes[0].lines[:2]] == \
        [f"{name}-learner" if name != "ensemble" else name for name in ranked]
    with pytest.raises(UpliftInputError, match="not a treated arm"):
        plots.plot_qini(result, data, arm="0")
    with pytest.raises(UpliftInputError, match="'x' was not fitted"):
        plots.plot_qini(result, data, learners=["x"])


def test_calibration_plot_draws_the_table_in_percentage_points():
    table = pd.DataFrame({"arm": "1", "bin": [1, 2, 3], "predicted_uplift": [0.05, 0.02, -0.01],
                          "observed_uplift": [0.04, 0.01, 0.0], "observed_lower": [0.01, -0.02, -0.03],
                          "observed_upper": [0.07, 0.04, 0.02]})
    ax = plots.plot_calibration(table, kind="binary").axes[0]
    points = ax.containers[0].lines[0].get_xydata()
    np.testing.assert_allclose(points, [[5, 4], [2, 1], [-1, 0]])
    assert ax.get_xlabel() == "mean predicted uplift (percentage points)"
    revenue = plots.plot_calibration(table, kind="continuous", currency="$").axes[0]
    np.testing.assert_allclose(revenue.containers[0].lines[0].get_xydata(), [[0.05, 0.04], [0.02, 0.01],
                                                                            [-0.01, 0.0]])
    assert revenue.get_xlabel() == r"mean predicted uplift (\$)"  # escaped: drawn as "$", not as maths


def test_segment_plot_draws_uplift_and_ci_in_the_outcome_unit():
    seg = pd.DataFrame({"segment": ["channel = web", "channel = app"], "n": [900, 1100], "uplift": [0.03, 0.01],
                        "lower": [0.01, -0.01], "upper": [0.05, 0.03], "small": [False, True]})
    ax = plots.plot_segments(seg, kind="binary", reference=0.02).axes[0]
    acting, small = ax.containers[0], ax.containers[1]
    np.testing.assert_allclose(acting.lines[0].get_xdata(), [3.0])
    np.testing.assert_allclose(small.lines[0].get_xdata(), [1.0])
    assert small.get_label() == "too small to act on"
    ref = [ln for ln in ax.lines if ln.get_label() == "overall average"][0]
    assert ref.get_xdata()[0] == pytest.approx(2.0)
    assert ax.get_xlabel() == "uplift (percentage points), 95% CI"
    assert plots.plot_segments(seg, kind="continuous").axes[0].get_xlabel() == "uplift (outcome units), 95% CI"
    assert plots.plot_segments(seg.iloc[:0], kind="binary").texts[0].get_text() == "no segments to draw"


def test_ate_plot_draws_the_display_columns():
    table = pd.DataFrame({"arm": "1", "outcome": ["conversion", "conversion", "revenue"],
                          "estimand": ["ATE", "ATT", "ATE"], "estimate_display": [1.2, 1.3, 4.0],
                          "lower_display": [0.1, 0.2, -1.0], "upper_display": [2.3, 2.4, 9.0],
                          "unit": ["pp", "pp", "outcome units"]})
    fig = plots.plot_ate(table)
    assert [ax.get_xlabel() for ax in fig.axes] == ["effect on conversion (pp), 95% CI",
                                                    "effect on revenue (outcome units), 95% CI"]
    ate = fig.axes[0].containers[0]
    assert ate.get_label() == "ATE"
    np.testing.assert_allclose(ate.lines[0].get_xdata(), [1.2])


def test_love_plot_matches_after_weighting_by_feature_and_level():
    before = pd.DataFrame({"feature": ["age", "channel", "channel"], "level": [None, "web", "app"],
                           "smd": [0.30, -0.20, 0.05]})
    after = before.iloc[[2, 0, 1]].assign(smd=[0.01, 0.02, -0.03])  # shuffled: must be matched, not zipped
    ax = plots.plot_love(before, after).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["channel = app", "channel = web", "age"]  # largest |SMD| on top
    unweighted, weighted = (c.get_offsets() for c in ax.collections[:2])
    np.testing.assert_allclose(unweighted[:, 0], [0.05, 0.20, 0.30])
    np.testing.assert_allclose(weighted[:, 0], [0.01, 0.03, 0.02])


def test_profit_curve_plot_marks_the_cutoff_and_the_currency():
    from uplift.targeting.allocation import profit_curve

    curve = profit_curve(np.array([0.1, 0.3, 0.0, 0.05]), 1.0, value=10.0, dr=np.array([0.2, 0.1, 0.0, 0.1]))
    ax = plots.plot_profit_curve(curve, currency="$").axes[0]
    cut = [ln for ln in ax.lines if ln.get_label().startswith("this list")][0]
    assert cut.get_xdata()[0] == pytest.approx(curve["share_targeted"].iloc[curve.attrs["cutoff"]])
    assert any(c.get_label() == "95% CI of the estimate" for c in ax.collections)
    # The honest estimate is the main line, the model's expectation the secondary (dashed) one.
    honest, model = ax.lines[0], ax.lines[1]
    assert honest.get_label().startswith("honest estimate") and model.get_linestyle() == "--"
    np.testing.assert_allclose(model.get_ydata(), curve["expected_profit"])
    assert ax.get_ylabel() == r"cumulative incremental profit (\$)"
    assert plots.plot_profit_curve(curve).axes[0].get_ylabel() == "cumulative incremental profit"


def test_dollar_labels_are_drawn_as_written_and_the_average_line_is_drawn_per_arm():
    seg = pd.DataFrame({"segment": ["spend = $100 - $200", "spend = $200 - $300"] * 2, "arm": ["a", "a", "b", "b"],
                        "n": [500, 600, 500, 600], "uplift": [0.03, 0.01, 0.02, 0.0],
                        "lower": [0.01, -0.01, 0.0, -0.02], "upper": [0.05, 0.03, 0.04, 0.02]})
    fig = plots.plot_segments(seg, kind="binary", reference={"a": 0.02, "b": 0.01})
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(r"\$100 - \$200" in t or r"\$200 - \$300" in t for t in labels)
    dotted = [ln for ln in ax.lines if ln.get_linestyle() == ":"]
    assert len(dotted) == 2 and {ln.get_xdata()[0] for ln in dotted} == {2.0, 1.0}  # in pp
    long = "x" * 150
    title = plots._title(fig.axes[0], f"Qini curve: out-of-fold, arm {long} vs control No E-Mail") or ax.get_title()
    assert title.count("\n") >= 1 and "No E-Mail" in title


def test_shap_summary_puts_the_strongest_driver_on_top_in_percentage_points(explanation):
    fig = plots.plot_shap_summary(explanation, max_display=2)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[::-1] == ["recency", "channel"]
    assert ax.get_xlabel() == "effect on predicted uplift (percentage points)"
    assert "surrogate R² 0.91 [0.88, 0.93]" in ax.get_title()
    # The top row (recency) holds its SHAP values in pp, one dot per customer.
    top = ax.collections[1].get_offsets()
    np.testing.assert_allclose(np.sort(top[:, 0]), np.sort(100 * explanation.values[:, 0]))


def test_shap_summary_of_a_revenue_outcome_is_in_the_currency_given(explanation):
    """A continuous outcome's SHAP values are money: the axis says so in the report's currency, unscaled."""
    import dataclasses

    revenue = dataclasses.replace(explanation, kind="continuous")
    ax = plots.plot_shap_summary(revenue, max_display=2, currency="EUR").axes[0]
    assert ax.get_xlabel() == "effect on predicted uplift (EUR)"
    np.testing.assert_allclose(np.sort(ax.collections[1].get_offsets()[:, 0]), np.sort(revenue.values[:, 0]))


def test_shap_dependence_marks_the_mean_of_each_level(explanation):
    ax = plots.plot_shap_dependence(explanation, "channel").axes[0]
    levels = [t.get_text() for t in ax.get_xticklabels()]
    assert levels == ["app", "store", "web"]
    means = ax.collections[1].get_offsets()[:, 1]
    shap_pp = pd.Series(100 * explanation.values[:, 2]).groupby(explanation.data["channel"].to_numpy()).mean()
    np.testing.assert_allclose(means, shap_pp.loc[levels])
    ax = plots.plot_shap_dependence(explanation, "recency").axes[0]
    assert ax.get_xlabel() == "recency"
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 1], 100 * explanation.values[:, 0])


def test_plots_reject_bad_input(study, explanation):
    with pytest.raises(UpliftInputError, match="segment table lacks column"):
        plots.plot_segments(pd.DataFrame({"segment": ["a"], "uplift": [0.1]}), kind="binary")
    with pytest.raises(UpliftInputError, match="expected the calibration table"):
        plots.plot_calibration(study, kind="binary")
    with pytest.raises(UpliftInputError, match="differ in length"):
        plots.plot_propensity_overlap(np.array([0.2, 0.5]), np.array([0, 1, 1]))
    with pytest.raises(UpliftInputError, match="'spend' was not explained"):
        plots.plot_shap_dependence(explanation, "spend")

"""Explain uplift: which customer attributes drive the predicted uplift, overall and for each customer.

The learners' uplift comes from several models averaged over folds (and, for X/DR/R, from models of
pseudo-outcomes), so no single tree ensemble can be handed to SHAP directly. Instead a LightGBM *surrogate*
is fitted to the chosen learner's out-of-fold uplift, its fidelity (R² on held-out customers, with a CI) is
reported, and SHAP's exact TreeExplainer explains the surrogate. If the fidelity is low, the explanation
describes the surrogate more than the learner; the R² says how far to trust it.

SHAP values are in the outcome's units (a conversion probability, shown as percentage points) and add up,
per customer, to the surrogate's predicted uplift minus the average prediction (``base_value``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.effects.average import Z95
from uplift.effects.segments import _arm_codes, _fitted_parts, _fmt_num, effect_scale
from uplift.errors import UpliftInputError

#: Surrogate settings: flexible enough to copy a smooth uplift function (R² ≈ 0.999 on the simulator's true
#: uplift) with few, small trees, because exact TreeSHAP costs grow with trees × leaves.
SURROGATE_PARAMS = {
    "objective": "regression", "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20,
    "lambda_l2": 1.0, "feature_fraction": 1.0, "verbosity": -1, "deterministic": True, "force_col_wise": True,
}
SURROGATE_ROUNDS = 500
HOLDOUT_SHARE = 0.2


@dataclass
class Explanation:
    """SHAP explanation of one learner's uplift for a sample of customers.

    Attributes
    ----------
    values : ndarray (rows, features)
        SHAP value of each feature for each explained customer, in outcome units (probability for
        conversions).
    base_value : float
        The surrogate's average prediction; ``values.sum(1) + base_value == prediction``.
    prediction : ndarray (rows,)
        The surrogate's predicted uplift of the explained customers (what the SHAP values add up to).
    target : ndarray (rows,)
        The learner's own out-of-fold uplift of those customers (what the surrogate imitates).
    data : DataFrame
        The explained customers' features with their original values and labels (index = row of the
        study's data).
    importance : DataFrame
        ``feature``, ``mean_abs_shap`` with its 95% CI (``lower``, ``upper``), ``share`` and ``rank``
        (1 = strongest driver).
    surrogate_r2 : float
        Fidelity of the surrogate: R² of its prediction of the learner's uplift on held-out customers.
    surrogate_r2_ci : tuple of float
        Bootstrap 95% CI of ``surrogate_r2``.
    learner, arm, kind : str
        What was explained: learner name, treated arm, outcome kind (``"binary"`` → percentage points).
    """

    values: np.ndarray
    base_value: float
    prediction: np.ndarray
    target: np.ndarray
    data: pd.DataFrame
    importance: pd.DataFrame
    surrogate_r2: float
    surrogate_r2_ci: tuple[float, float]
    learner: str
    arm: str
    kind: str
    feature_names: tuple[str, ...]
    categorical: frozenset[str] = field(default_factory=frozenset)
    codes: np.ndarray | None = None  # encoded feature matrix of the explained rows (for colouring plots)
    ids: pd.Series | None = None
    surrogate: object = None

    def top_drivers(self, k: int = 3) -> pd.DataFrame:
        """The ``k`` features that move each customer's uplift most, in plain words.

        Returns
        -------
        DataFrame
            ``k`` rows per explained customer: ``row`` (and the id column when the study has one), ``rank``,
            ``feature``, ``value``, ``contribution`` (outcome units) and ``text``, e.g. "channel = web raises
            uplift by 1.2 pp".

        Examples
        --------
        >>> # explanation = explain(study); explanation.top_drivers(2).head()
        """
        p = self.values.shape[1]
        if not 1 <= k <= p:
            raise UpliftInputError(f"k must be between 1 and the number of features ({p}), got {k}")
        m = self.values.shape[0]
        top = np.argsort(-np.abs(self.values), axis=1, kind="stable")[:, :k]
        contrib = np.take_along_axis(self.values, top, axis=1).ravel()
        names = np.asarray(self.feature_names, dtype=object)[top].ravel()
        shown = self.data.map(_value_text).to_numpy(dtype=object)
        values = np.take_along_axis(shown, top, axis=1).ravel()
        scale, unit = effect_scale(self.kind)
        unit = f" {unit}" if unit else ""
        digits = 1 if self.kind == "binary" else 2
        size = pd.Series(np.abs(contrib) * scale).map(lambda v: f"{v:.{digits}f}")
        verb = np.where(contrib >= 0, " raises uplift by ", " lowers uplift by ")
        text = pd.Series(names) + " = " + pd.Series(values) + pd.Series(verb) + size + unit
        out = pd.DataFrame({"row": np.repeat(self.data.index.to_numpy(), k)})
        if self.ids is not None:
            out[self.ids.name] = np.repeat(self.ids.to_numpy(), k)
        return out.assign(rank=np.tile(np.arange(1, k + 1), m), feature=names, value=values,
                          contribution=contrib, text=text.to_numpy())


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    return 0 if n_jobs < 0 else int(n_jobs)  # LightGBM: 0 = all cores


def _value_text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return "missing"
    if isinstance(v, float | np.floating):
        return _fmt_num(float(v))
    return str(v)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float("nan")


def _bootstrap_r2(y: np.ndarray, pred: np.ndarray, rng: np.random.Generator, n_boot: int = 200):
    """Percentile CI of R² over resamples of the held-out customers (vectorised over resamples)."""
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    yb, pb = y[idx], pred[idx]
    ss = np.sum((yb - yb.mean(axis=1, keepdims=True)) ** 2, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1 - np.sum((yb - pb) ** 2, axis=1) / ss
    r2 = r2[np.isfinite(r2)]
    if len(r2) == 0:
        return float("nan"), float("nan")
    return float(np.quantile(r2, 0.025)), float(np.quantile(r2, 0.975))


def explain(study, *, learner: str | None = None, arm: str | None = None, max_rows: int = 2000,
            random_state: int = 0, n_jobs: int | None = None) -> Explanation:
    """SHAP explanation of a learner's predicted uplift, through a LightGBM surrogate.

    Parameters
    ----------
    study : uplift.Study
        A fitted study (with its training data).
    learner : str, optional
        Whose uplift to explain (default: the study's best learner; ``"ensemble"`` works too).
    arm : str, optional
        Treated arm (default: the first treated arm).
    max_rows : int
        Most customers to explain (a random sample); the surrogate is trained on all customers.
    random_state : int
        Seed of the hold-out split, the sample and the surrogate.
    n_jobs : int, optional
        Threads for the surrogate (default 1, as in scikit-learn; -1 = all cores).

    Returns
    -------
    Explanation

    Examples
    --------
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(3000, seed=1)
    >>> truth = [c for c in df if c.startswith(("true_", "propensity"))] + ["revenue"]
    >>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
    >>> study = study.fit(learners=["t"], n_folds=3, n_boot=20)
    >>> ex = explain(study, max_rows=500)
    >>> import numpy as np
    >>> bool(np.allclose(ex.values.sum(1) + ex.base_value, ex.prediction))
    True
    >>> int(ex.importance["rank"].min()), len(ex.top_drivers(k=2)) == 2 * len(ex.data)
    (1, True)
    """
    import warnings

    import lightgbm as lgb

    with warnings.catch_warnings():
        # shap's import touches colormap APIs newer matplotlib marks as pending deprecation: not ours to fix.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    data, cf = _fitted_parts(study)
    learner = learner or study.best_learner_
    if learner not in cf.uplift:
        raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: {', '.join(cf.uplift)}")
    if max_rows < 1:
        raise UpliftInputError(f"max_rows must be at least 1, got {max_rows}")
    a = _arm_codes(data.arms, arm, all_if_none=False)[0]
    X = data.X
    target = np.asarray(cf.uplift[learner][:, a - 1], dtype=np.float64)
    n = len(target)
    if n < 50:
        raise UpliftInputError(f"explaining uplift needs at least 50 customers; the study has {n}")
    rng = np.random.default_rng(random_state)
    holdout = rng.random(n) < HOLDOUT_SHARE
    # An inner slice of the training part stops boosting, so the hold-out R² stays honest.
    stop = ~holdout & (rng.random(n) < 0.1)
    train = ~holdout & ~stop
    cat = data.schema.categorical_indices
    params = {**SURROGATE_PARAMS, "seed": random_state, "num_threads": _threads(n_jobs),
              "min_data_in_leaf": int(min(SURROGATE_PARAMS["min_data_in_leaf"], max(2, train.sum() // 20)))}
    # Stop once 30 more trees gain < 0.1% of R²: the last decimals of fidelity cost SHAP time only.
    min_gain = 1e-3 * float(np.var(target[train]))
    dtrain = lgb.Dataset(X[train], target[train], categorical_feature=cat or "auto", free_raw_data=True)
    dstop = lgb.Dataset(X[stop], target[stop], reference=dtrain, categorical_feature=cat or "auto")
    booster = lgb.train(params, dtrain, num_boost_round=SURROGATE_ROUNDS, valid_sets=[dstop],
                        callbacks=[lgb.early_stopping(30, verbose=False, min_delta=min_gain)])
    held_pred = booster.predict(X[holdout], num_iteration=booster.best_iteration)
    r2 = _r2(target[holdout], held_pred)
    r2_ci = _bootstrap_r2(target[holdout], held_pred, rng)
    if booster.best_iteration > 0:
        # Keep only the early-stopped trees so the explainer and predictions describe the same model.
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))

    rows = np.sort(rng.choice(n, size=min(max_rows, n), replace=False))
    explainer = shap.TreeExplainer(booster)
    values = np.asarray(explainer.shap_values(X[rows]), dtype=np.float64)
    base = float(np.ravel(explainer.expected_value)[0])
    prediction = booster.predict(X[rows])

    names = data.schema.names
    mean_abs = np.abs(values).mean(axis=0)
    se = (np.abs(values).std(axis=0, ddof=1) / np.sqrt(len(rows)) if len(rows) > 1
          else np.full(len(names), np.nan))
    importance = pd.DataFrame({
        "feature": list(names), "mean_abs_shap": mean_abs, "lower": mean_abs - Z95 * se,
        "upper": mean_abs + Z95 * se,
        "share": mean_abs / mean_abs.sum() if mean_abs.sum() > 0 else np.nan,
    }).sort_values("mean_abs_shap", ascending=False, kind="stable", ignore_index=True)
    importance["rank"] = np.arange(1, len(importance) + 1)

    frame = data.frame.iloc[rows]
    id_col = data.roles.get("id")
    return Explanation(
        values=values, base_value=base, prediction=prediction, target=target[rows],
        data=frame[list(names)], importance=importance, surrogate_r2=r2, surrogate_r2_ci=r2_ci,
        learner=learner, arm=data.arms[a], kind=cf.kind, feature_names=tuple(names),
        categorical=frozenset(data.schema.categories), codes=X[rows],
        ids=frame[id_col] if id_col else None, surrogate=booster)


# ---------------------------------------------------------------------------------------------- plots
def _unit_label(kind: str) -> str:
    return "percentage points" if kind == "binary" else "outcome units"


def plot_summary(explanation: Explanation, *, max_display: int = 15):
    """Beeswarm-style summary: one row per feature (strongest on top), one dot per customer.

    Dots are coloured by the feature's value (low blue → high red; categories in grey), so the plot shows
    both how much and in which direction each feature moves uplift.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> # fig = plot_summary(explain(study)); fig.savefig("shap_summary.png")
    """
    from matplotlib.figure import Figure

    ex = explanation
    scale, _ = effect_scale(ex.kind)
    order = [ex.feature_names.index(f) for f in ex.importance["feature"][:max_display]][::-1]
    fig = Figure(figsize=(7, 0.45 * len(order) + 1.5))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    points = None
    for pos, j in enumerate(order):
        x = ex.values[:, j] * scale
        jitter = (rng.random(len(x)) - 0.5) * 0.6
        col = ex.codes[:, j] if ex.codes is not None else np.zeros(len(x))
        if ex.feature_names[j] in ex.categorical or not np.isfinite(col).any():
            ax.scatter(x, pos + jitter, s=6, color="0.55", alpha=0.6, linewidths=0)
            continue
        # Rank-normalise so one outlier does not wash out the colour scale.
        colour = pd.Series(col).rank(pct=True).to_numpy()
        points = ax.scatter(x, pos + jitter, s=6, c=colour, cmap="coolwarm", vmin=0, vmax=1, alpha=0.7,
                            linewidths=0)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(range(len(order)), [ex.feature_names[j] for j in order])
    ax.set_xlabel(f"effect on predicted uplift ({_unit_label(ex.kind)})")
    lo, hi = ex.surrogate_r2_ci
    ax.set_title(f"What drives uplift ({ex.learner}-learner, arm {ex.arm}); "
                 f"surrogate R² {ex.surrogate_r2:.2f} [{lo:.2f}, {hi:.2f}]", fontsize=9)
    if points is not None:
        bar = fig.colorbar(points, ax=ax, ticks=[0, 1], pad=0.01)
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value")
    fig.tight_layout()
    return fig


def plot_dependence(explanation: Explanation, feature: str):
    """How one feature's value moves predicted uplift: its SHAP value against the feature, per customer.

    Categorical features show one column of dots per level with the level's mean marked.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> # fig = plot_dependence(explain(study), "recency_days")
    """
    from matplotlib.figure import Figure

    ex = explanation
    if feature not in ex.feature_names:
        raise UpliftInputError(f"feature {feature!r} was not explained; "
                               f"features: {', '.join(ex.feature_names)}")
    j = ex.feature_names.index(feature)
    scale, _ = effect_scale(ex.kind)
    y = ex.values[:, j] * scale
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    raw = ex.data[feature]
    if feature in ex.categorical or not pd.api.types.is_numeric_dtype(raw):
        labels = raw.astype("string").fillna("missing").to_numpy(dtype=object)
        levels = sorted(set(labels), key=str)
        pos = pd.Index(levels).get_indexer(labels)
        rng = np.random.default_rng(0)
        jitter = (rng.random(len(pos)) - 0.5) * 0.5
        ax.scatter(pos + jitter, y, s=6, alpha=0.5, color="tab:blue", linewidths=0)
        means = np.bincount(pos, weights=y, minlength=len(levels)) / np.bincount(pos, minlength=len(levels))
        ax.scatter(range(len(levels)), means, marker="_", s=600, color="black", label="mean")
        ax.set_xticks(range(len(levels)), levels, rotation=30 if len(levels) > 5 else 0)
        ax.legend(loc="best", fontsize=8)
    else:
        x = raw.to_numpy(dtype=float, na_value=np.nan)
        ax.scatter(x, y, s=6, alpha=0.5, color="tab:blue", linewidths=0)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"effect on predicted uplift ({_unit_label(ex.kind)})")
    ax.set_title(f"{feature}: contribution to uplift ({ex.learner}-learner, arm {ex.arm})", fontsize=9)
    fig.tight_layout()
    return fig

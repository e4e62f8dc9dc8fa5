"""Explain uplift: which customer attributes drive the predicted uplift, overall and for each customer.

The learners' uplift comes from several models averaged over folds (and, for X/DR/R, from models of
pseudo-outcomes), so no single tree ensemble can be handed to SHAP directly. Instead a LightGBM *surrogate*
is fitted to the chosen learner's out-of-fold uplift, its fidelity (R² on held-out customers, with a CI) is
reported, and SHAP's exact TreeExplainer explains the surrogate. If the fidelity is low, the explanation
describes the surrogate more than the learner; the R² says how far to trust it.

SHAP values are in the outcome's units (a conversion probability, shown as percentage points) and add up,
per customer, to the surrogate's predicted uplift minus the average prediction (``base_value``). The figures of an
explanation are :func:`uplift.viz.plots.plot_shap_summary` and :func:`uplift.viz.plots.plot_shap_dependence`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift._display import effect_unit, fmt_level
from uplift._stats import Z95
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
            ``k`` rows per explained customer: ``row`` (and the id column when the study has one), ``arm``, ``rank``,
            ``feature``, ``value``, ``contribution`` (outcome units) and ``text``, e.g. "channel = web raises
            uplift by 1.2 pp".

        Examples
        --------
        >>> # explanation = explain(study.result, study.data); explanation.top_drivers(2).head()
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
        unit = effect_unit(self.kind)
        suffix = f" {unit.short}" if unit.short else ""
        digits = 1 if self.kind == "binary" else 2
        size = pd.Series(np.abs(contrib) * unit.scale).map(lambda v: f"{v:.{digits}f}")
        verb = np.where(contrib >= 0, " raises uplift by ", " lowers uplift by ")
        text = pd.Series(names) + " = " + pd.Series(values) + pd.Series(verb) + size + suffix
        out = pd.DataFrame({"row": np.repeat(self.data.index.to_numpy(), k)})
        if self.ids is not None:
            out[self.ids.name] = np.repeat(self.ids.to_numpy(), k)
        return out.assign(arm=self.arm, rank=np.tile(np.arange(1, k + 1), m), feature=names, value=values,
                          contribution=contrib, text=text.to_numpy())


def _threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    return 0 if n_jobs < 0 else int(n_jobs)  # LightGBM: 0 = all cores


def _value_text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return "missing"
    if isinstance(v, float | np.floating):
        return fmt_level(float(v))
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


def explain_arms(result, data, *, arm: str | None = None, **kwargs) -> dict[str, Explanation]:
    """:func:`explain` for every treated arm (or the one ``arm`` named), by arm: what drives the uplift of each
    coupon, since the feature that drives one coupon may not move another.

    ``kwargs`` are those of :func:`explain`.
    """
    arms = [result.arms[result.arm_code(arm)]] if arm is not None else list(result.arms[1:])
    return {name: explain(result, data, arm=name, **kwargs) for name in arms}


def explain(result, data, *, learner: str | None = None, arm: str | None = None, max_rows: int = 2000,
            random_state: int = 0, n_jobs: int | None = None) -> Explanation:
    """SHAP explanation of a learner's predicted uplift, through a LightGBM surrogate.

    Parameters
    ----------
    result : FitResult
        The fitted result (:attr:`uplift.Study.result`): the learner's out-of-fold uplift to explain.
    data : CampaignData
        The data it was fitted on (:attr:`uplift.Study.data`).
    learner : str, optional
        Whose uplift to explain (default: the chosen learner; ``"ensemble"`` works too).
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
    >>> ex = explain(study.result, study.data, max_rows=500)
    >>> import numpy as np
    >>> bool(np.allclose(ex.values.sum(1) + ex.base_value, ex.prediction))
    True
    >>> int(ex.importance["rank"].min()), len(ex.top_drivers(k=2)) == 2 * len(ex.data)
    (1, True)
    """
    import lightgbm as lgb
    with warnings.catch_warnings():
        # shap's import touches colormap APIs newer matplotlib marks as pending deprecation: not ours to fix.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap

    cf = result.crossfit
    learner = learner or result.best_learner
    if learner not in cf.uplift:
        raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: {', '.join(cf.uplift)}")
    if max_rows < 1:
        raise UpliftInputError(f"max_rows must be at least 1, got {max_rows}")
    a = result.arm_code(arm)
    X = data.X
    target = np.asarray(cf.uplift[learner][:, a - 1], dtype=np.float64)
    n = len(target)
    if data.n != n:
        raise UpliftInputError(f"the data has {data.n:,} rows but the result was fitted on {n:,}; pass the data "
                               "the model was trained on")
    if n < 50:
        raise UpliftInputError(f"explaining uplift needs at least 50 customers; the data has {n}")
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
    importance.insert(0, "arm", result.arms[a])  # every record names its arm (one table per arm)

    frame = data.frame.iloc[rows]
    id_col = result.id_column
    return Explanation(
        values=values, base_value=base, prediction=prediction, target=target[rows],
        data=frame[list(names)], importance=importance, surrogate_r2=r2, surrogate_r2_ci=r2_ci,
        learner=learner, arm=result.arms[a], kind=result.kind, feature_names=tuple(names),
        categorical=frozenset(data.schema.categories), codes=X[rows],
        ids=frame[id_col] if id_col else None, surrogate=booster)

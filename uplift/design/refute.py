"""Refutation tests for an average campaign effect, run through DoWhy.

A refuter changes the data in a way whose consequence we know, re-estimates, and checks that the
estimate reacts as it should:

=======================  =====================================================================================
``placebo``              shuffle the campaign flag: the effect must vanish (else the method invents effects)
``random_common_cause``  add a made-up random customer feature: the estimate must not move
``data_subset``          re-estimate on random 80% subsets: the estimate must not hinge on a few rows
``unobserved``           simulate a hidden confounder as strong as the strongest measured feature: does the
                         effect keep its sign?
=======================  =====================================================================================

DoWhy builds the causal model (back-door graph: every confounder causes treatment and outcome), identifies
the effect and generates the refuted data sets; the estimators are ours (subclasses of DoWhy's
``CausalEstimator``), so the same estimate is refuted whatever DoWhy version is installed. The AIPW estimate's
cross-fitted nuisances are the fit layer's (:func:`uplift.fit.nuisance.cross_fit_aipw`), handed in as a
function: this layer never imports it.

Version notes (checked here): DoWhy 0.12 calls ``networkx.algorithms.d_separated``, removed in networkx 3.5 (an alias to
its successor is restored here); its own linear-regression estimator fails under pandas 3 (``params[0]`` on a
labelled Series) and its unobserved-confounder refuter cannot flip a bool treatment under pandas 3 — both
are avoided here.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from uplift._stats import Z95
from uplift.errors import UpliftInputError

REFUTERS = ("placebo", "random_common_cause", "data_subset", "unobserved")
ESTIMATE_METHODS = ("backdoor.linear_regression", "aipw")
#: Simulations per refuter when ``num_simulations`` is not given (AIPW refits LightGBM every time).
DEFAULT_SIMULATIONS = {"backdoor.linear_regression": 20, "aipw": 6}
#: A shift smaller than this share of the estimate's 95% CI half-width is immaterial.
MATERIAL_SHIFT = 0.1

#: ``aipw_scores(confounders, t, y, n_folds, seed)``: the out-of-fold AIPW score of every row (its mean is the
#: effect, its standard deviation / sqrt(n) the standard error), e.g. :func:`uplift.fit.nuisance.cross_fit_aipw`.
AipwScores = Callable[[pd.DataFrame, np.ndarray, np.ndarray, int, int], np.ndarray]


class _Log(list):
    """Collects every estimate a refuter computes. DoWhy deep-copies the estimator for each
    simulation; returning ``self`` from ``__deepcopy__`` makes all copies share one log."""

    def __deepcopy__(self, memo) -> _Log:
        return self


def _networkx_compat() -> None:
    """DoWhy 0.12 calls ``networkx.algorithms.d_separated``, which networkx 3.5 removed in favour of
    ``is_d_separator`` (same arguments). Restore the old name so identification works on either side."""
    import networkx as nx

    if not hasattr(nx.algorithms, "d_separated") and hasattr(nx.algorithms, "is_d_separator"):
        nx.algorithms.d_separated = nx.algorithms.is_d_separator


def _estimator_classes():
    """Build the DoWhy estimator subclasses lazily: importing dowhy costs seconds."""
    import statsmodels.api as sm
    from dowhy.causal_estimator import CausalEstimate, CausalEstimator
    from dowhy.causal_estimators.linear_regression_estimator import LinearRegressionEstimator

    class LinearRegression(LinearRegressionEstimator):
        """DoWhy's OLS back-door estimator, fitted so that its parameters are labelled 0, 1, 2...: DoWhy 0.12
        reads ``params[0]`` (a KeyError under pandas 3 when labels are names) and 0.14 ``params.iloc[0]``."""

        def __init__(self, *args, log: _Log | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self._log = log

        def _build_model(self, data: pd.DataFrame):
            features = self._build_features(data)
            y = pd.Series(np.asarray(data[self._target_estimand.outcome_variable[0]], dtype=np.float64))
            # QR: no SVD rank check on every one of the refits.
            return features, sm.OLS(y, pd.DataFrame(features)).fit(method="qr")

        def estimate_effect(self, data: pd.DataFrame, *args, **kwargs):
            estimate = super().estimate_effect(data, *args, **kwargs)
            estimate.se = float(self.model.bse.iloc[1])  # column 0 is the intercept, 1 the treatment
            if self._log is not None:
                self._log.append(float(estimate.value))
            return estimate

    class AIPW(CausalEstimator):
        """Cross-fitted AIPW (doubly robust) ATE: the mean of the rows' out-of-fold AIPW scores, with the
        influence-function standard error.

        Nuisances are refitted on whatever data DoWhy hands over (shuffled treatment, extra random
        confounder, subset), so every refutation re-runs the whole method, not just the last step.
        """

        def __init__(self, identified_estimand, *, aipw_scores: AipwScores, n_folds: int = 2,
                     random_state: int = 0, log: _Log | None = None, **kwargs):
            super().__init__(identified_estimand, **kwargs)
            self.n_folds, self.random_state, self._log = n_folds, random_state, log
            self._aipw_scores = aipw_scores

        def fit(self, data: pd.DataFrame, effect_modifier_names=None, **_):
            self._set_effect_modifiers(data, effect_modifier_names)
            return self

        def estimate_effect(self, data: pd.DataFrame, treatment_value=1, control_value=0,
                            target_units=None, **_):
            self._target_units, self._treatment_value, self._control_value = (
                target_units, treatment_value, control_value)
            backdoor = set(self._target_estimand.get_backdoor_variables())
            # DoWhy returns the back-door set unordered; data order keeps LightGBM deterministic.
            X = data[[c for c in data.columns if c in backdoor]]
            t = (np.asarray(data[self._target_estimand.treatment_variable[0]]) == treatment_value).astype(int)
            y = np.asarray(data[self._target_estimand.outcome_variable[0]], dtype=np.float64)
            scores = np.asarray(self._aipw_scores(X, t, y, self.n_folds, self.random_state), dtype=np.float64)
            value, se = float(scores.mean()), float(scores.std(ddof=1) / np.sqrt(len(scores)))
            estimate = CausalEstimate(
                data=data, treatment_name=self._target_estimand.treatment_variable,
                outcome_name=self._target_estimand.outcome_variable, estimate=value,
                control_value=control_value, treatment_value=treatment_value,
                target_estimand=self._target_estimand, realized_estimand_expr="AIPW (cross-fitted LightGBM)")
            estimate.se = se
            estimate.add_estimator(self)
            if self._log is not None:
                self._log.append(float(value))
            return estimate

        def construct_symbolic_estimator(self, estimand) -> str:
            return "AIPW (cross-fitted LightGBM)"

    return {"backdoor.linear_regression": LinearRegression, "aipw": AIPW}


@contextlib.contextmanager
def _quiet_and_seeded(seed: int) -> Iterator[None]:
    """Silence DoWhy's logging/warnings and seed the global numpy RNG (some DoWhy refuters draw from it),
    restoring both afterwards so the caller's state is untouched.

    OpenMP is also limited to one thread: refutation refits small models dozens of times, where one thread
    is as fast, and busy-waiting OpenMP threads on a loaded machine made LightGBM fits ~100x slower.
    """
    from threadpoolctl import threadpool_limits

    logger = logging.getLogger("dowhy")
    level = logger.level
    state = np.random.get_state()  # noqa: NPY002 - DoWhy draws from the legacy global RNG
    logger.setLevel(logging.ERROR)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with warnings.catch_warnings(), threadpool_limits(1, user_api="openmp"):
            warnings.simplefilter("ignore")
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002
        logger.setLevel(level)


def _validate(df: pd.DataFrame, treatment: str, outcome: str, confounders: Sequence[str],
              estimate_method: str, refuters: Sequence[str]) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise UpliftInputError("dowhy_refute needs a pandas DataFrame with treatment, outcome and "
                               "confounder columns")
    confounders = list(confounders)
    if not confounders:
        raise UpliftInputError("give at least one confounder (pre-treatment feature) to adjust for")
    for role, cols in (("treatment", [treatment]), ("outcome", [outcome]), ("confounder", confounders)):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise UpliftInputError(f"{role} column {missing[0]!r} is not in the data; "
                                   f"available: {', '.join(map(str, df.columns))}")
    overlap = {treatment, outcome} & set(confounders)
    if overlap:
        raise UpliftInputError(f"column {overlap.pop()!r} is both a confounder and the treatment/outcome")
    if estimate_method not in ESTIMATE_METHODS:
        raise UpliftInputError(f"estimate_method must be one of {', '.join(ESTIMATE_METHODS)}, "
                               f"got {estimate_method!r}")
    unknown = [r for r in refuters if r not in REFUTERS]
    if unknown or not refuters:
        raise UpliftInputError(f"unknown refuter {unknown[0] if unknown else None!r}; "
                               f"choose from {', '.join(REFUTERS)}")
    t = df[treatment]
    if t.isna().any() or not t.isin([0, 1]).all() or t.nunique() != 2:
        raise UpliftInputError(f"treatment column {treatment!r} must hold 0/1 (or False/True) with both "
                               "arms present")
    y = pd.to_numeric(df[outcome], errors="coerce")
    if y.isna().any() or not np.isfinite(y.to_numpy(dtype=np.float64)).all():
        row = int(np.flatnonzero(y.isna().to_numpy() | ~np.isfinite(y.to_numpy(dtype=np.float64)))[0])
        raise UpliftInputError(f"outcome column {outcome!r} must be numeric without blanks; row {row} is "
                               f"{df[outcome].iloc[row]!r}")
    if estimate_method == "backdoor.linear_regression":
        blank = [c for c in confounders if df[c].isna().any()]
        if blank:
            raise UpliftInputError(f"confounder {blank[0]!r} has missing values, which linear regression "
                                   "cannot use; impute them or use estimate_method='aipw'")
    # Neutral internal names: DoWhy writes names into a graph string and adds its own columns
    # ("placebo", "w_random"), so user names must not reach it.
    out = df[confounders].set_axis([f"x{i}" for i in range(len(confounders))], axis=1).reset_index(drop=True)
    out["t"] = t.astype(bool).to_numpy()  # DoWhy treats a bool treatment as binary (placebo keeps the type)
    out["y"] = y.astype(np.float64).to_numpy()
    categorical = [c for c in out.columns[:-2] if not (pd.api.types.is_numeric_dtype(out[c])
                                                       or pd.api.types.is_bool_dtype(out[c]))]
    if estimate_method == "backdoor.linear_regression" and categorical:
        # Encode once here: DoWhy would re-encode them with pandas on every one of the many refits.
        dummies = pd.get_dummies(out[categorical].astype("string"), prefix=categorical, drop_first=True,
                                 dtype=np.float64)
        out = pd.concat([out.drop(columns=categorical), dummies], axis=1)
    return out


def _observed_strength(data: pd.DataFrame, treatment: str, outcome: str, confounders: list[str]):
    """Strength of the strongest measured confounder, on the scales DoWhy's simulated confounder uses.

    On the treatment: the mean absolute change in the (logistic) treatment probability when that feature
    is set to its average — the share of treatment flips it accounts for. On the outcome: |corr| times the
    outcome's SD — the outcome shift of a one-SD move (DoWhy's own default for a linear effect).
    """
    from sklearn.linear_model import LogisticRegression
    Z = pd.get_dummies(data[confounders], dtype=np.float64).astype(np.float64)
    Z = Z.fillna(Z.mean())
    sd = Z.std(ddof=0).replace(0.0, 1.0)
    Z = ((Z - Z.mean()) / sd).to_numpy()
    t = data[treatment].to_numpy().astype(int)
    y = data[outcome].to_numpy()
    model = LogisticRegression(max_iter=1000).fit(Z, t)
    logit = model.decision_function(Z)
    # Setting standardized column j to 0 (its mean) removes beta_j * z_j from the logit.
    p_without = 1.0 / (1.0 + np.exp(-(logit[:, None] - Z * model.coef_[0][None, :])))
    p = 1.0 / (1.0 + np.exp(-logit))
    flips = np.abs(p[:, None] - p_without).mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.abs((Z * (y - y.mean())[:, None]).mean(axis=0) / y.std()))
    kappa_t = float(np.clip(flips.max(), 0.01, 0.49))
    kappa_y = float(corr.max() * y.std())
    return kappa_t, kappa_y


def _mean_ci(values: list[float]) -> tuple[float, float, float, float, int]:
    """Mean of simulated estimates, its 95% CI (Student t: a handful of simulations is common), the
    standard error of the mean and its degrees of freedom."""
    from scipy import stats
    v = np.asarray(values, dtype=np.float64)
    mean, df = float(v.mean()), len(v) - 1
    sem = float(v.std(ddof=1) / np.sqrt(len(v))) if df > 0 else 0.0
    half = float(stats.t.ppf(0.975, df)) * sem if df > 0 else 0.0
    return mean, mean - half, mean + half, sem, df


def _p_two_sided(diff: float, sem: float, df: int) -> float:
    from scipy import stats
    if sem == 0.0:
        return 1.0 if diff == 0.0 else 0.0
    return float(2.0 * stats.t.sf(abs(diff) / sem, df))


def dowhy_refute(
    df: pd.DataFrame,
    treatment: str,
    outcome: str,
    confounders: Sequence[str],
    *,
    estimate_method: str = "backdoor.linear_regression",
    refuters: Sequence[str] = REFUTERS,
    random_state: int = 0,
    num_simulations: int | None = None,
    subset_fraction: float = 0.8,
    aipw_scores: AipwScores | None = None,
) -> pd.DataFrame:
    """Estimate the average campaign effect with DoWhy's back-door model and try to refute it.

    Parameters
    ----------
    df : DataFrame
        One row per customer.
    treatment : str
        0/1 (or bool) campaign flag.
    outcome : str
        Numeric outcome (0/1 conversion or an amount).
    confounders : list of str
        Pre-treatment features that drive both targeting and outcome (the back-door set).
    estimate_method : {"backdoor.linear_regression", "aipw"}
        OLS of the outcome on treatment and confounders, or cross-fitted AIPW (flexible, slower: each
        simulation refits the nuisance models), which needs ``aipw_scores``.
    refuters : sequence of str
        Any of ``"placebo"``, ``"random_common_cause"``, ``"data_subset"``, ``"unobserved"``.
    random_state : int
    num_simulations : int, optional
        Re-estimations per refuter (default 20 for linear regression, 6 for AIPW); the ``unobserved``
        refuter uses ``min(num_simulations, 5)`` draws of the hidden confounder.
    subset_fraction : float
        Share of rows kept by ``data_subset``.
    aipw_scores : callable, optional
        For ``estimate_method="aipw"``: ``aipw_scores(confounders, t, y, n_folds, seed)`` → out-of-fold AIPW
        score per row (:data:`AipwScores`), e.g. :func:`uplift.fit.nuisance.cross_fit_aipw` (LightGBM nuisances).

    Returns
    -------
    DataFrame
        One row per refuter: ``refuter``; ``estimate`` with its 95% CI ``estimate_lower`` /
        ``estimate_upper``; ``new_estimate`` (mean over simulations) with its 95% CI ``new_lower`` /
        ``new_upper``; ``p_value_or_bound``; ``passed``; ``meaning`` (plain language). Rules:

        * placebo — passes when the CI of the placebo effect covers 0, or the placebo effect is immaterial
          (under 10% of the estimate's 95% CI half-width); ``p_value_or_bound`` is the two-sided p-value of
          "placebo effect = 0". Expect a false alarm in about 5% of correct analyses.
        * random_common_cause, data_subset — pass when the new estimate is statistically indistinguishable
          from the original or moved by less than 10% of the original's CI half-width; the p-value is for
          "no shift".

        CIs and p-values over simulations use Student's t (the mean of ``num_simulations`` draws).
        * unobserved — passes when every simulated draw keeps the sign of the estimate;
          ``p_value_or_bound`` is the least favourable draw (the one pushed furthest towards zero).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=2000); t = rng.random(2000) < 1 / (1 + np.exp(-x))
    >>> df = pd.DataFrame({"x": x, "t": t.astype(int), "y": 2.0 * t + x + rng.normal(size=2000)})
    >>> res = dowhy_refute(df, "t", "y", ["x"], refuters=("placebo",))
    >>> bool(res.loc[0, "passed"]), bool(res.loc[0, "estimate_lower"] < 2.0 < res.loc[0, "estimate_upper"])
    (True, True)
    """
    refuters = tuple(refuters)
    data = _validate(df, treatment, outcome, confounders, estimate_method, refuters)
    if estimate_method == "aipw" and aipw_scores is None:
        raise UpliftInputError("estimate_method='aipw' needs aipw_scores=..., the function that cross-fits the "
                               "AIPW scores (uplift.fit.nuisance.cross_fit_aipw)")
    treatment, outcome = "t", "y"
    confounders = [c for c in data.columns if c not in (treatment, outcome)]
    if not 0.0 < subset_fraction < 1.0:
        raise UpliftInputError(f"subset_fraction must be in (0, 1), got {subset_fraction}")
    sims = DEFAULT_SIMULATIONS[estimate_method] if num_simulations is None else int(num_simulations)
    if sims < 2:
        raise UpliftInputError(f"num_simulations must be at least 2, got {num_simulations}")

    from dowhy import CausalModel
    from dowhy.causal_estimator import estimate_effect

    _networkx_compat()
    with _quiet_and_seeded(random_state):
        model = CausalModel(data=data, treatment=treatment, outcome=outcome, common_causes=confounders)
        estimand = model.identify_effect(proceed_when_unidentifiable=True)
        log = _Log()
        kwargs = {"random_state": random_state, "aipw_scores": aipw_scores} if estimate_method == "aipw" else {}
        estimator = _estimator_classes()[estimate_method](estimand, log=log, **kwargs)
        estimate = estimate_effect(data, treatment, outcome, "backdoor", estimator, target_units="ate",
                                   method_params={})
        est, se = float(estimate.value), float(estimate.se)
        rows, kappa_t = [], None
        for name in refuters:
            log.clear()
            rng = np.random.RandomState(random_state)  # an object, not an int: DoWhy 0.12's data_subset
            if name == "placebo":                      # re-seeds from an int and repeats one subset
                model.refute_estimate(estimand, estimate, method_name="placebo_treatment_refuter",
                                      placebo_type="permute", num_simulations=sims, random_state=rng)
            elif name == "random_common_cause":
                model.refute_estimate(estimand, estimate, method_name="random_common_cause",
                                      num_simulations=sims, random_state=rng)
            elif name == "data_subset":
                model.refute_estimate(estimand, estimate, method_name="data_subset_refuter",
                                      subset_fraction=subset_fraction, num_simulations=sims, random_state=rng)
            else:
                kappa_t, kappa_y = _observed_strength(data, treatment, outcome, confounders)
                # DoWhy flips a treatment with ``1 - t``, which pandas 3 refuses on a bool column: use 0/1.
                int_model = CausalModel(data=data.astype({treatment: int}), treatment=treatment,
                                        outcome=outcome, common_causes=confounders)
                for draw in range(min(sims, 5)):
                    np.random.seed(random_state + draw)  # noqa: NPY002 - the hidden confounder's draw
                    int_model.refute_estimate(
                        estimand, estimate, method_name="add_unobserved_common_cause",
                        simulation_method="direct-simulation", confounders_effect_on_treatment="binary_flip",
                        confounders_effect_on_outcome="linear", effect_strength_on_treatment=kappa_t,
                        effect_strength_on_outcome=kappa_y, plotmethod=None)
            rows.append(_row(name, est, se, list(log), kappa=kappa_t, subset=subset_fraction))
    return pd.DataFrame(rows)


def _row(name: str, est: float, se: float, values: list[float], *, kappa, subset: float) -> dict:
    """Summarise one refuter's simulated estimates into a verdict and a plain-language meaning."""
    new, lo, hi, sem, dof = _mean_ci(values)
    half_width = Z95 * se
    immaterial = MATERIAL_SHIFT * half_width
    row = {"refuter": name, "estimate": est, "estimate_lower": est - half_width,
           "estimate_upper": est + half_width, "new_estimate": new, "new_lower": lo, "new_upper": hi}
    ci = f"{new:.4g} [{lo:.4g}, {hi:.4g}]"
    if name == "placebo":
        p = _p_two_sided(new, sem, dof)
        passed = lo <= 0.0 <= hi or abs(new) <= immaterial
        meaning = (f"With the campaign flag randomly shuffled the estimated effect is {ci}, consistent with "
                   "zero: the method does not invent effects." if passed else
                   f"With the campaign flag randomly shuffled the method still finds an effect of {ci}: it "
                   "invents effects (look for leakage or a bug) and the estimate should not be trusted.")
    elif name in ("random_common_cause", "data_subset"):
        p = _p_two_sided(new - est, sem, dof)
        passed = p >= 0.05 or abs(new - est) <= immaterial
        what = ("Adding a made-up random customer feature" if name == "random_common_cause"
                else f"Re-estimating on random {subset:.0%} subsets of the customers")
        meaning = (f"{what} gives {ci} vs {est:.4g} originally: the estimate is stable." if passed else
                   f"{what} moves the estimate to {ci} from {est:.4g}: the result is fragile, so treat it "
                   "with care.")
    else:
        # The least favourable draw: the one pushed furthest towards (or past) zero.
        p = float(min(values) if est > 0 else max(values))
        passed = bool(est != 0.0 and np.sign(p) == np.sign(est))
        meaning = (f"A hidden confounder as strong as the strongest measured feature (flipping {kappa:.0%} "
                   f"of treatment assignments) would move the estimate to {ci}, worst draw {p:.4g}: "
                   + ("the effect keeps its sign." if passed else
                      "that could erase or reverse the effect, so the conclusion depends on having measured "
                      "every important confounder."))
    row.update({"p_value_or_bound": p, "passed": bool(passed), "meaning": meaning})
    return row

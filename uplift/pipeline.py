"""The whole study, in the one direction data flows: validated data → design checks → cross-fitting →
honest evaluation → average effects → calibration → drift profile and fast scorer → one :class:`FitResult`.

:func:`fit_study` is what :meth:`uplift.Study.fit`, ``uplift fit`` and ``uplift demo`` run; :func:`training_data`
re-attaches the training rows to a result loaded from disk, verified against the fingerprint it saved.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from uplift.data.campaign import CampaignData, campaign_data
from uplift.data.fingerprint import data_hash
from uplift.design.checklist import DesignReview, frame_rows, sample_rows
from uplift.design.checks import e_value
from uplift.design.drift import training_profile
from uplift.design.refute import REFUTERS, dowhy_refute
from uplift.effects.average import average_effects
from uplift.errors import UpliftInputError
from uplift.evaluate.selection import RACE_KEEP, best_learner, calibration, leaderboard, race_learners
from uplift.fit.crossfit import CrossFit, cross_fit, default_folds, predict_uplift, release_free_memory, tree_counts
from uplift.fit.distill import DistilledScorer
from uplift.fit.learners import DEFAULT_LEARNERS, REGISTRY
from uplift.fit.models import MAX_TRAIN_ROWS, ModelFactory
from uplift.fit.nuisance import cross_fit_aipw, cross_fit_propensity
from uplift.fit.progress import NoProgress, PhaseTimes, ProgressHook
from uplift.fit.result import FitResult, TrainingSummary

#: The drift profile (feature and predicted-uplift quantiles) and the fast scorer's training sample take at most
#: this many rows. Predicting the chosen model on them is the phase's cost (at 1M rows, 200,000 rows took 13-19 s,
#: the largest after the learners). Measured on the 1M-row benchmark study (one fit, students distilled from
#: 200k/100k/50k/25k of the same sampled rows, scored on 50,000 held-out customers): fidelity R² 0.9990 / 0.9988 /
#: 0.9986 / 0.9983, top-20% overlap 0.994 / 0.994 / 0.994 / 0.993, student √PEHE 0.00320 / 0.00318 / 0.00318 /
#: 0.00319 (teacher 0.00325). A decile of 50,000 rows holds 5,000 customers, so the profile's quantiles move by
#: well under a percentile.
PROFILE_ROWS = 50_000
#: Selection criteria of the leaderboard.
SELECT = ("dr_loss", "qini")


def check_pre_treatment(data: CampaignData, pre_treatment: Sequence[str] | str | bool | None) -> list[str]:
    """The features declared as measured before the campaign (``True``: all of them), checked against the study.

    Examples
    --------
    >>> from uplift import campaign_data, simulate_campaign
    >>> d = campaign_data(simulate_campaign(500, seed=0), "treatment", "conversion",
    ...                   exclude=["revenue", "propensity"])
    >>> check_pre_treatment(d, ["age"])
    ['age']
    """
    names = list(data.schema.names)
    if pre_treatment is True:
        return names
    pre = [pre_treatment] if isinstance(pre_treatment, str) else list(pre_treatment or [])
    unknown = [c for c in pre if c not in names]
    if unknown:
        raise UpliftInputError(f"pre_treatment column {unknown[0]!r} is not a feature of this study; "
                               f"features are: {', '.join(names)}")
    return pre


def _check_fit_options(learners: tuple[str, ...], select: str, max_train_rows: int | None) -> None:
    if not learners:
        raise UpliftInputError("give at least one learner")
    unknown = [name for name in learners if name not in REGISTRY]
    if unknown:
        raise UpliftInputError(f"unknown learner {unknown[0]!r}; choose from {', '.join(REGISTRY)}")
    if select not in SELECT:
        raise UpliftInputError(f"select must be 'dr_loss' or 'qini', got {select!r}")
    if max_train_rows is not None and max_train_rows < 1000:
        raise UpliftInputError(f"max_train_rows must be at least 1000 (or None for no cap), got {max_train_rows}")


def fit_study(data: CampaignData, *, pre_treatment: Sequence[str] | str | bool | None = None,
              learners: Sequence[str] = DEFAULT_LEARNERS, n_folds: int | None = None, random_state: int = 0,
              select: str = "dr_loss", base_regressor: object | None = None, base_classifier: object | None = None,
              n_boot: int = 200, k: float = 0.3, expected_split: dict[str, float] | list[str] | None = None,
              allow_srm: bool = False, allow_leakage: bool = False, max_train_rows: int | None = MAX_TRAIN_ROWS,
              race: bool = False, progress: ProgressHook | None = None,
              times: PhaseTimes | None = None) -> FitResult:
    """Run the whole study on validated data and return its :class:`~uplift.fit.result.FitResult`.

    The parameters are those of :meth:`uplift.Study.fit`. A randomised study whose arms turn out predictable
    from the features is analysed as observational (``data.design`` is updated, and the result says so).
    The wall time of every phase is recorded in ``times`` (phases already in it, such as reading the file,
    stay first) and kept as ``FitResult.timings``.
    """
    learners = tuple(learners)
    _check_fit_options(learners, select, max_train_rows)
    n_folds = default_folds(data.n) if n_folds is None else n_folds
    pre = check_pre_treatment(data, pre_treatment)
    progress = progress or NoProgress()
    times = times if times is not None else PhaseTimes()
    roles = {**dict(data.roles), "pre_treatment": pre}

    progress.start(1, "design checks (sample ratio, balance)")
    with times.phase("design checks"):
        review = DesignReview(data, declared=roles.get("design_declared"), pre_treatment=pre,
                              random_state=random_state, propensity=cross_fit_propensity)
        review.randomisation(expected_split, allow_srm)
        review.outcome_proxies(allow_leakage)
    progress.advance("design checks done")
    release_free_memory()

    # LightGBM settings fitted to the study's size (uplift.fit.sizing): smaller trees for a small study.
    factory = ModelFactory(base_regressor, base_classifier, data.schema.categorical_indices, random_state,
                           max_rows=max_train_rows, n_rows=data.n, outcome_kind=data.outcome_kinds[data.outcome])
    rungs = None
    fitted = learners
    if race and len(learners) > RACE_KEEP:
        with times.phase("racing (samples)"):
            fitted, rungs = race_learners(data, learners, n_folds=n_folds, random_state=random_state,
                                          factory=factory)
        release_free_memory()
    cf: CrossFit = cross_fit(data, learners=fitted, n_folds=n_folds, random_state=random_state,
                             factory=factory, progress=progress, times=times)
    release_free_memory()
    y = data.outcomes[cf.outcome]
    if data.design == "observational":
        with times.phase("design checks"):
            review.observational(cf.e, allow_leakage)
    with times.phase("leaderboard (bootstrap CIs)"):
        board = leaderboard(cf, y, data.treatment, k=k, n_boot=n_boot, random_state=random_state, select=select,
                            progress=progress)
    chosen = best_learner(board)

    progress.start(4, "average effects, calibration, drift profile, fast scorer")
    with times.phase("average effects"):
        ate = _average_effects(data, cf, factory, n_folds, random_state)
    progress.advance("average effects")
    release_free_memory()
    with times.phase("calibration"):
        cal = calibration(cf, y, data.treatment, chosen)
    release_free_memory()
    progress.advance("calibration")
    # The training distribution travels with the model so every scoring call can check for drift.
    # Reference for predicted-uplift drift: the fitted model's own predictions (not out-of-fold ones, whose
    # spread is larger), i.e. exactly what scoring new customers produces. Quantiles need no more than
    # PROFILE_ROWS customers (a random sample beyond that; the profile records how many).
    with times.phase("drift profile"):
        rows = sample_rows(np.arange(data.n), PROFILE_ROWS, random_state)
        X_rows = data.X[rows]
        fitted_uplift, _, _ = predict_uplift(cf, X_rows, chosen)
        profile = training_profile(frame_rows(data.frame, rows, data.schema.names), data.schema,
                                   uplift=fitted_uplift)
    progress.advance("drift profile")
    # The fast scorer learns the same predictions on the same sampled customers (no extra teacher cost).
    with times.phase("distillation (fast scorer)"):
        scorer = DistilledScorer(categorical=data.schema.categorical_indices,
                                 random_state=random_state).fit(X_rows, fitted_uplift)
    release_free_memory()
    progress.advance("fast scorer (distilled)")
    return FitResult(
        schema=data.schema, roles=roles, arms=tuple(data.arms), design=data.design,
        notes=tuple(data.notes) + tuple(review.notes), crossfit=cf, best_learner=chosen, leaderboard=board,
        ate=ate, calibration=cal, diagnostics=review.report, profile=profile, scorer=scorer,
        fit_params={"learners": list(learners), "n_folds": n_folds, "random_state": random_state,
                    "select": select, "n_boot": n_boot, "k": k, "max_train_rows": max_train_rows,
                    # what early stopping chose: trees kept per LightGBM model and fold (uplift.fit.crossfit)
                    "trees": tree_counts(cf),
                    # outcome models boosted from a pooled one: observational studies with weak overlap
                    "pooled_outcome": any(getattr(fm.mu.get(0), "base_", None) is not None
                                          for fm in cf.fold_models),
                    **({"race": rungs} if rungs is not None else {})},
        training=TrainingSummary(int(data.n), data.arm_counts(), dict(data.outcome_kinds),
                                 data_hash(data.X, data.treatment, y)),
        timings=times.seconds)


def _average_effects(data: CampaignData, cf: CrossFit, factory: ModelFactory, n_folds: int,
                     random_state: int) -> pd.DataFrame:
    """ATE/ATT of every outcome; observational designs adjust with out-of-fold nuisances of each outcome."""
    tables = []
    for name in data.outcomes:
        mu = e = None
        if data.design == "observational":
            nuis = cf if name == cf.outcome else cross_fit(data, outcome=name, learners=("t",), n_folds=n_folds,
                                                           random_state=random_state, factory=factory)
            mu, e = nuis.mu, nuis.e
        tables.append(average_effects(data.outcomes[name], data.treatment, data.arms, outcome=name,
                                      kind=data.outcome_kinds[name], design=data.design, mu=mu, e=e))
    return pd.concat(tables, ignore_index=True)


def training_data(result: FitResult, frame: pd.DataFrame) -> CampaignData:
    """The training rows of a fitted result, validated with its column roles and verified against the
    training-data fingerprint it saved (a different file is a one-line error)."""
    roles = result.roles
    d = campaign_data(frame, roles["treatment"], roles["outcomes"], control=roles["control"],
                      id=roles["id"], propensity=roles["propensity"], design=result.design, schema=result.schema,
                      allow_similar_arms=True)  # the arms are the model's, checked when it was fitted
    expected = result.training.data_sha256
    if expected and data_hash(d.X, d.treatment, d.outcomes[result.outcome]) != expected:
        raise UpliftInputError("this data is not the data the model was trained on (its hash differs from the "
                               "saved training-data hash); pass the exact training file")
    d.design = result.design
    return d


def refute_effect(result: FitResult, data: CampaignData, *, arm: str | None = None, estimate_method: str = "aipw",
                  max_rows: int = 20_000, refuters: tuple[str, ...] = REFUTERS,
                  random_state: int = 0) -> pd.DataFrame:
    """DoWhy refutation of the average effect of ``arm`` (default: the first treated arm) vs control.

    Builds a back-door causal model with every feature as a confounder, estimates the effect and runs
    placebo-treatment, random-common-cause, data-subset and unobserved-confounder refuters (see
    :func:`uplift.design.refute.dowhy_refute`), on a random sample of at most ``max_rows`` rows.
    """
    a = result.arm_code(arm)
    rows = sample_rows(np.flatnonzero((data.treatment == 0) | (data.treatment == a)), max_rows, random_state)
    X = data.X[rows]
    X = np.where(np.isnan(X), np.nanmedian(X, axis=0), X)
    names = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    frame["treated"] = (data.treatment[rows] == a).astype(int)
    frame["outcome"] = data.outcomes[result.outcome][rows]
    table = dowhy_refute(frame, "treated", "outcome", names, estimate_method=estimate_method, refuters=refuters,
                         random_state=random_state, aipw_scores=cross_fit_aipw)
    table.attrs["features"] = dict(zip(names, result.schema.names, strict=True))
    return table


def e_values(ate: pd.DataFrame) -> pd.DataFrame:
    """E-value of every binary-outcome ATE of an average-effects table (VanderWeele & Ding): how strong hidden
    confounding must be (risk-ratio scale, with both treatment and outcome) to explain the effect away."""
    rows = []
    for r in ate.query("estimand == 'ATE' and unit == 'pp' and control_mean > 0").itertuples():
        ev = e_value(r.estimate, r.lower, r.upper, baseline_risk=r.control_mean, kind="rd")
        rows.append({"arm": r.arm, "outcome": r.outcome, **ev})
    return pd.DataFrame(rows)

"""Out-of-fold nuisance models: the one cross-fitting loop behind the study's fit, the balance check's
propensity and the refutation's AIPW estimate.

A nuisance is a model the effect estimate needs but does not report: the outcome under each arm, μ_a(x), and
the propensity of each treated arm, e_a(x) = P(arm a | x, arm a or control). :func:`fit_nuisances` fits each
one once per fold on the other folds' rows and predicts the held-out fold, so every row's prediction comes
from models that never saw it. Its callers differ only in what they hand it:

=============================  ================================================================================
:func:`~uplift.fit.crossfit.cross_fit`  the study's binned matrix, folds stratified by arm and outcome, the
                               study's models and a seed per fold and arm; keeps the fold models
:func:`cross_fit_propensity`   a feature table's own matrix, folds stratified by arm, one seed, then Platt
                               calibration out of fold (the randomisation check's P(treated))
:func:`cross_fit_aipw`         the same for outcome and propensity with quicker models (refutation refits it
                               dozens of times), returned as out-of-fold AIPW scores
=============================  ================================================================================

The design checks (:mod:`uplift.design`) sit below this layer: they take the arrays these functions return,
or the functions themselves as arguments, and never import them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.data.campaign import FeatureSchema, feature_frame
from uplift.design.checks import overlap_summary
from uplift.errors import UpliftInputError
from uplift.fit.learners import Learner, Nuisance, aipw_scores
from uplift.fit.models import NUISANCE_PARAMS, BinnedMatrix, LGBMModel, ModelFactory, row_numbers
from uplift.fit.progress import PhaseTimes, ProgressHook
from uplift.fit.workers import fit_workers, run_phases

#: Rows predicted per batch: bounds the temporary copies of X (and the S-learner's widened X) at large n.
PREDICT_BATCH = 1_000_000
#: Raw propensities are kept this far from 0 and 1 before calibration on the logit scale.
LOGIT_CLIP = 1e-6

#: ``seeds(fold, model, arm)``: the seed offset (added to the factory's ``random_state``) of the ``model``
#: (``"outcome"`` or ``"propensity"``) of ``arm`` fitted in ``fold``.
Seeds = Callable[[int, str, int], int]


def fold_seed(fold: int, model: str, arm: int) -> int:
    """The study's seeds: one per fold, model and arm (outcome models ``100 k + a``, propensities 50 above)."""
    return 100 * fold + (50 if model == "propensity" else 0) + arm


def one_seed(fold: int, model: str, arm: int) -> int:
    """Every model gets the factory's own seed (the balance check and refutation always fitted them so)."""
    return 0


@dataclass
class FoldModels:
    """Models fitted on the training part of one fold: outcome per arm, propensity per treated arm (a model,
    or a float when the propensity is the design's share), and the learners' final stages."""

    mu: dict[int, object]
    e: dict[int, object | float]
    learners: dict[tuple[str, int], Learner] = field(default_factory=dict)

    def nuisance(self, X: np.ndarray, arm: int, mu0: np.ndarray | None = None) -> Nuisance:
        mu0 = self.mu[0].predict(X) if mu0 is None else mu0
        e = self.e[arm]
        e = np.full(len(X), e) if isinstance(e, float) else e.predict(X)
        return Nuisance(mu0, self.mu[arm].predict(X), e)


@dataclass
class OutOfFold:
    """Out-of-fold nuisance predictions, aligned with the rows, and the models of each fold."""

    mu: np.ndarray | None  # (n, n_arms) outcome under each arm (col 0 = control); None if not fitted
    e: np.ndarray | None  # (n, n_arms) P(arm | x, arm or control); col 0 NaN; None if not fitted
    fold_models: list[FoldModels]
    pooled: bool = False  # the outcome models were boosted from a pooled model of both arms


def make_folds(treatment: np.ndarray, n_folds: int, random_state: int,
               outcome: np.ndarray | None = None) -> np.ndarray:
    """Fold id per row (int8), stratified by arm, and by a binary ``outcome`` when one is given (unless some
    arm/outcome cell has fewer rows than folds).

    Examples
    --------
    >>> folds = make_folds(np.array([0, 1] * 6), 3, random_state=0)
    >>> np.bincount(folds[::2]).tolist(), np.bincount(folds[1::2]).tolist()  # each arm split evenly
    ([2, 2, 2], [2, 2, 2])
    """
    from sklearn.model_selection import StratifiedKFold
    strata = treatment.astype(np.int64) * 2 + (0 if outcome is None else outcome.astype(np.int64))
    counts = np.bincount(strata)
    if counts[counts > 0].min() < n_folds:
        strata = treatment.astype(np.int64)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    folds = np.empty(len(treatment), dtype=np.int8)
    for k, (_, test) in enumerate(skf.split(np.zeros(len(treatment)), strata)):
        folds[test] = k
    return folds


def fit_nuisances(
    X: np.ndarray,
    treatment: np.ndarray,
    folds: np.ndarray,
    factory: ModelFactory,
    *,
    y: np.ndarray | None = None,
    kind: str = "binary",
    propensity: str | None = "model",
    matrix: BinnedMatrix | None = None,
    seeds: Seeds = fold_seed,
    dtype: type = np.float32,
    progress: ProgressHook | None = None,
    skip_fold: int | None = None,
    pooled_outcome: bool | str = False,
    times: PhaseTimes | None = None,
    workers: int | None = None,
) -> OutOfFold:
    """Fit the nuisance models fold by fold and predict each held-out fold.

    Per fold ``k``: with an outcome ``y``, one outcome model per arm on that arm's rows outside fold ``k``;
    for each treated arm ``a``, a propensity on the rows of ``a`` and control outside fold ``k`` (label: in
    ``a``). Both predict every row of fold ``k``.

    With ``skip_fold=j`` the rows of fold ``j`` are left out entirely: no model trains on them and their
    predictions are NaN. These are the *nested* nuisances of outer fold ``j``: every other row's prediction
    comes from models that saw neither that row nor fold ``j``, so a learner trained on them and evaluated on
    fold ``j`` has never, even through a nuisance, seen fold ``j``'s outcomes.

    Parameters
    ----------
    X : (n, p) float32 array
        Features, encoded (:meth:`~uplift.data.campaign.FeatureSchema.encode`); predictions read its rows.
    treatment : (n,) int array
        Arm code per row, 0 = control.
    folds : (n,) int array
        Fold id per row, 0 .. K − 1 (see :func:`make_folds`).
    factory : ModelFactory
        Makes the outcome (``factory.outcome(kind, seed)``) and propensity (``factory.propensity(seed)``) models.
    y : (n,) array, optional
        Outcome; without it no outcome model is fitted (``mu`` is None).
    kind : {"binary", "continuous"}
        The outcome's kind.
    propensity : {"model", "share", None}
        Fit a propensity model; or use the arm's share of the training rows (a randomised design, where the
        features carry nothing about the arm); or nothing (``e`` is None).
    matrix : BinnedMatrix, optional
        ``X`` binned once: models train on subsets of it instead of copies of ``X``'s rows (the study's hot
        path; see PERFORMANCE.md). Binning the whole matrix, not each training set, changes the bins and so
        the models slightly: a caller keeps to one or the other.
    seeds : callable
        ``seeds(fold, model, arm)`` → seed offset of each model (default :func:`fold_seed`).
    dtype : numpy dtype
        Of the out-of-fold arrays: float32 for studies (at 14M rows a float64 column costs 112 MB), float64 for
        small checks that compute on them directly.
    progress : ProgressHook, optional
        Receives one ``advance`` per fold.
    pooled_outcome : bool or "weak overlap"
        Boost each arm's outcome model from one outcome model of both arms' training rows (LightGBM models
        only; :meth:`~uplift.fit.models.LGBMModel.fit` with ``base``). A regularised, early-stopped booster
        shrinks toward where it starts: from its own arm's mean, which in a targeted campaign is the mean of a
        different population in each arm, so where one arm is rare μ₁ − μ₀ is mostly the gap between the two
        arms' averages. Started from the pooled model, both arms shrink toward the same surface. For
        observational designs (in a randomised one both arms' averages describe the same population).
        ``"weak overlap"`` pools only when the out-of-fold propensities fail the overlap check
        (:func:`~uplift.design.checks.overlap_summary`) for some treated arm: where both arms cover the
        features, each arm's own model is the more accurate one (100k-row observational benchmark:
        √PEHE +0.00022 [+0.00019, +0.00025] pooled), where they do not, the pooled start is what keeps μ₁ − μ₀
        from being the gap between two populations' means (``benchmarks/results/weak_overlap.md``). The
        propensities are fitted first so the decision can read them; :attr:`OutOfFold.pooled` records it.
    times : PhaseTimes, optional
        Receives the wall time of each nuisance over all folds: ``nuisance mu<a>`` (the outcome model of arm
        ``a``, 0 = control) and ``nuisance e<a>`` (the propensity of arm ``a``, when it is a model), each the wall
        time of its folds' fits; ``nuisance pooled outcome`` for the pooled models.
    workers : int, optional
        Folds fitted at once (default :func:`~uplift.fit.workers.fit_workers` of the rows and folds).

    Returns
    -------
    OutOfFold

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 2)).astype(np.float32)
    >>> t = (rng.random(2000) < 1 / (1 + np.exp(-2 * X[:, 0]))).astype(int)
    >>> oof = fit_nuisances(X, t, make_folds(t, 2, 0), ModelFactory(), y=X[:, 1] + t, kind="continuous")
    >>> float(np.corrcoef(oof.e[:, 1], X[:, 0])[0, 1]) > 0.8, oof.mu.dtype
    (True, dtype('float32'))
    """
    if y is None and propensity is None:
        raise ValueError("fit_nuisances needs an outcome y, a propensity, or both")
    if propensity not in ("model", "share", None):
        raise ValueError(f"propensity must be 'model', 'share' or None, got {propensity!r}")
    n, n_arms, n_folds = len(treatment), int(treatment.max()) + 1, int(folds.max()) + 1
    training = matrix.rows if matrix is not None else X.__getitem__
    mu = None if y is None else np.full((n, n_arms), np.nan, dtype) if skip_fold is not None else np.empty(
        (n, n_arms), dtype)
    e = None if propensity is None else np.full((n, n_arms), np.nan, dtype)
    fits = {k: FoldModels(mu={}, e={}) for k in range(n_folds) if k != skip_fold}
    outside = -1 if skip_fold is None else skip_fold

    def training_rows(k: int) -> tuple[np.ndarray, np.ndarray]:
        return (folds != k) & (folds != outside), row_numbers(folds == k)

    # Each model's folds are fitted side by side (uplift.fit.workers); models of one fold never depend on
    # another fold's, and each keeps its own seed, so the result does not depend on how many run at once.
    workers = fit_workers(n, len(fits)) if workers is None else workers
    fold_ids = list(fits)

    def phases(task: Callable[..., None], keys: list[int], name: str) -> dict[str, list[Callable[[], None]]]:
        """One phase per arm (``name`` formatted with the arm), each with one task per fold."""
        return {name.format(a): [functools.partial(task, k, fm, a) for k, fm in fits.items()] for a in keys}

    def advance_after(last: str):
        """A :func:`run_phases` ``done`` reporting each fold once its last model (phase ``last``) is fitted."""
        if progress is None:
            return None
        return lambda phase, i: progress.advance(
            f"fold {fold_ids[i] + 1}/{n_folds}: outcome and propensity models") if phase == last else None

    # Propensities first: whether the outcome models pool reads them.
    treated = list(range(1, n_arms)) if propensity is not None else []

    def fit_propensity(k: int, fm: FoldModels, a: int) -> None:
        train, test = training_rows(k)
        pair = row_numbers(train & ((treatment == 0) | (treatment == a)))
        if propensity == "model":
            fm.e[a] = factory.propensity(seed=seeds(k, "propensity", a)).fit(
                training(pair), (treatment[pair] == a).astype(np.float32))
            e[test, a] = predict_rows(fm.e[a].predict, X, test, dtype=dtype)
        else:
            fm.e[a] = float(np.mean(treatment[pair] == a))
            e[test, a] = fm.e[a]

    if treated:
        run_phases(phases(fit_propensity, treated, "nuisance e{}"), workers,
                   times if propensity == "model" else None,
                   advance_after(f"nuisance e{treated[-1]}") if y is None else None)
    if pooled_outcome == "weak overlap":
        pooled_outcome = propensity == "model" and weak_overlap(e, treatment)
    elif not isinstance(pooled_outcome, bool):
        raise ValueError(f"pooled_outcome must be True, False or 'weak overlap', got {pooled_outcome!r}")
    if y is None:
        return OutOfFold(mu, e, list(fits.values()), pooled=False)
    bases: dict[int, LGBMModel | None] = dict.fromkeys(fits)
    if pooled_outcome:
        def fit_pooled(k: int, fm: FoldModels, a: int) -> None:
            rows = row_numbers(training_rows(k)[0])
            base = factory.outcome(kind, seed=seeds(k, "outcome", a)).fit(training(rows), y[rows])
            bases[k] = base if isinstance(base, LGBMModel) and base.constant_ is None else None

        run_phases(phases(fit_pooled, [n_arms], "nuisance pooled outcome"), workers, times)

    def fit_outcome(k: int, fm: FoldModels, a: int) -> None:
        train, test = training_rows(k)
        rows = row_numbers(train & (treatment == a))
        model, base = factory.outcome(kind, seed=seeds(k, "outcome", a)), bases[k]
        if base is not None and isinstance(model, LGBMModel):
            score = predict_rows(base.raw_score, X, rows, dtype=np.float64)
            fm.mu[a] = model.fit(training(rows), y[rows], base=base, base_score=score)
        else:
            fm.mu[a] = model.fit(training(rows), y[rows])
        mu[test, a] = predict_rows(fm.mu[a].predict, X, test, dtype=dtype)

    # Every arm's folds in one pool: a worker freed by one arm's last folds starts the next arm's.
    run_phases(phases(fit_outcome, list(range(n_arms)), "nuisance mu{}"), workers, times,
               advance_after(f"nuisance mu{n_arms - 1}"))
    return OutOfFold(mu, e, list(fits.values()), pooled=bool(pooled_outcome))


def weak_overlap(e: np.ndarray, treatment: np.ndarray) -> bool:
    """Whether some treated arm's out-of-fold propensities fail the overlap check
    (:func:`~uplift.design.checks.overlap_summary`, its default bounds and share); rows without a propensity
    (NaN: a fold left out of nested nuisances) are not counted.

    Examples
    --------
    >>> t = np.array([0, 0, 1, 1])
    >>> e = np.array([[np.nan, 0.01], [np.nan, 0.5], [np.nan, 0.5], [np.nan, 0.99]])
    >>> weak_overlap(e, t), weak_overlap(np.full((4, 2), 0.5), t)
    (True, False)
    """
    for a in range(1, e.shape[1]):
        pair = ((treatment == 0) | (treatment == a)) & np.isfinite(e[:, a])
        arm = treatment[pair] == a
        if arm.all() or not arm.any():
            continue
        if not overlap_summary(e[pair, a], arm.astype(int))["passed"]:
            return True
    return False


def predict_rows(predict, X: np.ndarray, index: np.ndarray, *, with_index: bool = False,
                 dtype: type = np.float32) -> np.ndarray:
    """``predict(X[index])`` (``predict(X[i], i)`` with ``with_index``) in batches of :data:`PREDICT_BATCH` rows,
    written into one ``dtype`` array: no float64 copy of all ``index`` rows is ever held."""
    out = np.empty(len(index), dtype)
    for start in range(0, len(index), PREDICT_BATCH):
        idx = index[start:start + PREDICT_BATCH]
        out[start:start + len(idx)] = predict(X[idx], idx) if with_index else predict(X[idx])
    return out


# ------------------------------------------------------------------- the design checks' and refutation's nuisances
def platt(score: np.ndarray, y: np.ndarray, iters: int = 50) -> tuple[float, float]:
    """Fit ``P(y=1) = sigmoid(a + b * logit(score))`` by Newton's method (a tiny ridge keeps it stable).

    Examples
    --------
    >>> score = np.array([0.2, 0.4, 0.6, 0.8] * 50)
    >>> a, b = platt(score, (np.arange(200) % 4 >= 2).astype(float))
    >>> b > 1  # the labels are more extreme than the scores: the calibrator stretches them
    True
    """
    z = np.log(score / (1 - score))
    a, b = 0.0, 1.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(a + b * z)))
        r = y - p
        h = p * (1 - p)
        grad = np.array([r.sum(), (r * z).sum()]) - 1e-6 * np.array([a, b - 1.0])
        hess = np.array([[h.sum(), (h * z).sum()], [(h * z).sum(), (h * z * z).sum()]]) + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a + step[0], b + step[1]
        if np.abs(step).max() < 1e-8:
            break
    return float(a), float(b)


def calibrate_out_of_fold(score: np.ndarray, t: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Platt-calibrated out-of-fold propensities: fold k's scores are mapped by a calibrator fitted on the other
    folds' (out-of-fold) scores, so no row calibrates its own propensity."""
    raw = np.clip(np.asarray(score, dtype=np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    logit = np.log(raw / (1 - raw))
    out = np.empty(len(raw))
    for k in range(int(folds.max()) + 1):
        held = folds == k
        a, b = platt(raw[~held], t[~held])
        out[held] = 1.0 / (1.0 + np.exp(-(a + b * logit[held])))
    return out


def cross_fit_propensity(X: pd.DataFrame, t, n_folds: int = 5, random_state: int = 0) -> np.ndarray:
    """Out-of-fold, calibrated LightGBM propensity ``e(x) = P(t=1 | x)`` of every row of a feature table.

    Each row's propensity comes from a LightGBM model (early-stopped, categoricals split natively) that never
    saw that row; the raw scores are then Platt-calibrated on the logit scale, also out of fold
    (:func:`calibrate_out_of_fold`). Calibration matters because these numbers become weights. This is the
    ``propensity`` a :class:`~uplift.design.checklist.DesignReview` takes, and its AUC is
    :func:`uplift.design.checks.balance_auc`.

    Parameters
    ----------
    X : DataFrame
        Pre-treatment features (categoricals as object / category columns).
    t : array of 0/1
    n_folds : int
        Number of cross-fitting folds (stratified by arm).
    random_state : int
        Seed of the folds and of every model.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=3000)})
    >>> t = (rng.random(3000) < 1 / (1 + np.exp(-X["x"].to_numpy()))).astype(int)
    >>> e_hat = cross_fit_propensity(X, t)
    >>> float(np.corrcoef(e_hat, X["x"])[0, 1]) > 0.9
    True
    """
    X = feature_frame(X)
    t = _binary_treatment(t, len(X), n_folds)
    schema = FeatureSchema.infer(X)
    folds = make_folds(t, n_folds, random_state)
    factory = ModelFactory(categorical=schema.categorical_indices, random_state=random_state, max_rows=None)
    oof = fit_nuisances(schema.encode(X), t, folds, factory, seeds=one_seed, dtype=np.float64)
    return calibrate_out_of_fold(oof.e[:, 1], t, folds)


#: Refutation refits the AIPW estimate dozens of times: a faster learning rate and at most 100 trees per nuisance.
QUICK_NUISANCE = {"nuisance_params": {**NUISANCE_PARAMS, "learning_rate": 0.1}, "nuisance_rounds": 100,
                  "nuisance_early_stopping": 20}


def cross_fit_aipw(X: pd.DataFrame, t, y, n_folds: int = 2, random_state: int = 0) -> np.ndarray:
    """Out-of-fold AIPW (doubly-robust) score of every row: its mean is the ATE, its spread the ATE's SE.

    Outcome per arm and propensity are quick LightGBM models (:data:`QUICK_NUISANCE`), cross-fitted over folds
    stratified by arm. This is the ``aipw_scores`` that :func:`uplift.design.refute.dowhy_refute` takes for
    ``estimate_method="aipw"``.

    Parameters
    ----------
    X : DataFrame
        Confounders (categoricals as object / category columns).
    t : array of 0/1
    y : array
        Outcome (0/1 or an amount).
    n_folds : int
    random_state : int
        Seed of the folds and of every model.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=4000)})
    >>> t = (rng.random(4000) < 1 / (1 + np.exp(-X["x"].to_numpy()))).astype(int)
    >>> scores = cross_fit_aipw(X, t, 2.0 * t + X["x"].to_numpy() + rng.normal(size=4000))
    >>> bool(abs(scores.mean() - 2.0) < 3 * scores.std() / np.sqrt(4000))
    True
    """
    X = feature_frame(X)
    t = _binary_treatment(t, len(X), n_folds)
    y = np.asarray(y, dtype=np.float64)
    schema = FeatureSchema.infer(X)
    kind = "binary" if np.isin(y, (0.0, 1.0)).all() else "regression"
    folds = make_folds(t, n_folds, random_state)
    factory = ModelFactory(categorical=schema.categorical_indices, random_state=random_state, max_rows=None,
                           **QUICK_NUISANCE)
    oof = fit_nuisances(schema.encode(X), t, folds, factory, y=y, kind=kind, seeds=one_seed, dtype=np.float64)
    return aipw_scores(y, t, Nuisance(oof.mu[:, 0], oof.mu[:, 1], oof.e[:, 1]))


def _binary_treatment(t, n: int, n_folds: int) -> np.ndarray:
    """``t`` as a 0/1 int64 array with at least ``n_folds`` rows in each arm, or an error naming the problem."""
    arr = np.asarray(t)
    if arr.shape != (n,):
        raise UpliftInputError(f"t must be one 0/1 flag per row ({n} rows), got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
        raise UpliftInputError("t must hold only 0 (control) and 1 (treated)")
    if n_folds < 2:
        raise UpliftInputError(f"n_folds must be at least 2, got {n_folds}")
    arr = arr.astype(np.int64)
    if np.bincount(arr, minlength=2).min() < n_folds:
        raise UpliftInputError(f"each arm needs at least n_folds={n_folds} rows to cross-fit a propensity")
    return arr

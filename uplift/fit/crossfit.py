"""K-fold cross-fitting: out-of-fold nuisances, out-of-fold uplift for every learner, and the fold models.

One pass does everything a study needs. Per fold it fits each nuisance once (an outcome model per arm,
and a propensity model per treated arm for observational designs; :func:`uplift.fit.nuisance.fit_nuisances`,
the loop the design checks' propensity and the refutation's AIPW also run), then every learner's final stage on
the training folds using out-of-fold nuisances, and predicts the held-out fold. The result holds
out-of-fold uplift for every row and learner (for honest evaluation), out-of-fold doubly-robust scores
(for observed uplift curves, segment CIs and policy values), and the fold models, whose average is the
fitted model used on new customers.
"""

from __future__ import annotations

import ctypes
import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from uplift._stats import z_for_alpha
from uplift.data.campaign import CampaignData
from uplift.errors import UpliftInputError
from uplift.fit.learners import E_CLIP, Nuisance, aipw_scores, make_learner, overlap_weights
from uplift.fit.models import BinnedMatrix, LGBMModel, ModelFactory, row_numbers, sample_positions
from uplift.fit.nuisance import (
    PREDICT_BATCH,
    FoldModels,
    OutOfFold,
    fit_nuisances,
    fold_seed,
    make_folds,
    predict_rows,
)
from uplift.fit.progress import NoProgress, PhaseTimes, ProgressHook, time_call
from uplift.fit.sizing import FULL_SIZE_ROWS
from uplift.fit.workers import fit_workers, run_phases


@dataclass
class CrossFit:
    """Everything one cross-fitting pass produced (arrays are aligned with the training rows)."""

    outcome: str
    kind: str
    arms: tuple[str, ...]
    design: str
    learners: tuple[str, ...]
    folds: np.ndarray
    mu: np.ndarray  # (n, n_arms) out-of-fold outcome prediction under each arm (col 0 = control)
    e: np.ndarray  # (n, n_arms) out-of-fold P(arm | x, arm or control); col 0 unused
    dr: np.ndarray  # (n, n_treated) AIPW score of arm vs control; NaN for rows in other arms
    uplift: dict[str, np.ndarray]  # learner -> (n, n_treated) out-of-fold uplift
    fold_models: list[FoldModels]
    ensemble_weights: dict[int, dict[str, float]] = field(default_factory=dict)
    policy_dr: np.ndarray | None = None  # (n, n_treated) AIPW score of arm vs control for EVERY row
    # What the curves of the report need without the training data (no features, no ids): arm code and modelled
    # outcome of every training row. None for model directories saved before they were kept.
    treatment: np.ndarray | None = None  # (n,) arm code, 0 = control
    y: np.ndarray | None = None  # (n,) the modelled outcome

    def in_arm(self, treatment: np.ndarray, arm: int) -> np.ndarray:
        """Rows that belong to the comparison "arm vs control"."""
        return (treatment == 0) | (treatment == arm)

    def overlap_weights(self, arm: int, rows: np.ndarray | None = None) -> np.ndarray | None:
        """Row weights of "arm vs control" over ``rows`` (every row when None) for the stacked ensemble and the
        DR loss: overlap weights in an observational study (:func:`uplift.fit.learners.overlap_weights`), None
        (equal) in a randomised one."""
        if self.design != "observational":
            return None
        return overlap_weights(self.e[:, arm] if rows is None else self.e[rows, arm])


#: From this many training rows a study cross-fits with :data:`LARGE_STUDY_FOLDS` folds instead of 5.
LARGE_STUDY_ROWS = 500_000
#: Folds of a large study (see :func:`default_folds`). 5, as below: 3 folds at 1M rows were measured 2x faster
#: but raised held-out PEHE by +0.00026 [+0.00024, +0.00028] (paired bootstrap, benchmarks/results/speed.md),
#: beyond its CI, so fewer folds are not the default.
LARGE_STUDY_FOLDS = 5


def default_folds(n: int) -> int:
    """The study's number of cross-fitting folds for ``n`` training rows (:data:`LARGE_STUDY_FOLDS` from
    :data:`LARGE_STUDY_ROWS` rows, else 5). Measured: 3 folds at 1M rows halved the study's time but cost
    held-out PEHE beyond the paired-bootstrap CI, so the large-study rule is 5 folds too until a cheaper change
    keeps the accuracy. An explicit ``n_folds`` always wins.

    Examples
    --------
    >>> default_folds(64_000), default_folds(1_000_000)
    (5, 5)
    """
    return LARGE_STUDY_FOLDS if n >= LARGE_STUDY_ROWS else 5


def release_free_memory() -> None:
    """Hand memory freed by a finished stage back to the OS (glibc keeps freed heap pages otherwise, and the
    next stage's peak then sits on top of them). A no-op where glibc's ``malloc_trim`` is not available."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, looked up once. No ``ctypes.util.find_library``: it runs ``ldconfig`` in a
    child process, which at the start shares (and so appears to double) the whole process's memory."""
    for name in ("libc.so.6", None):
        try:
            return ctypes.CDLL(name).malloc_trim
        except (OSError, AttributeError):
            continue
    return None


def cross_fit(
    data: CampaignData,
    *,
    outcome: str | None = None,
    learners: tuple[str, ...] = ("t", "x", "dr", "r", "s"),
    n_folds: int = 5,
    random_state: int = 0,
    factory: ModelFactory | None = None,
    progress: ProgressHook | None = None,
    nested: bool = False,
    times: PhaseTimes | None = None,
) -> CrossFit:
    """Cross-fit nuisances and learners on ``data``.

    Parameters
    ----------
    data : CampaignData
    outcome : str, optional
        Which outcome to model (default: the primary).
    learners : tuple of str
        Registry names (see :mod:`uplift.fit.learners`).
    n_folds : int
        Number of cross-fitting folds (≥ 2).
    random_state : int
        Seed for folds and models; the same seed gives the same result.
    factory : ModelFactory, optional
        Base models (default LightGBM).
    progress : ProgressHook, optional
        Receives one ``advance`` per fitted model group.
    nested : bool
        Train the learners whose fit reads the nuisances of their training rows (``dr``, ``dr_linear``, ``r``,
        ``causal_forest``) on *nested* nuisances: for outer fold k, each training row's μ and e come from
        models fitted without that row's fold and without fold k (:func:`~uplift.fit.nuisance.fit_nuisances`
        with ``skip_fold=k``). By default they read the shared out-of-fold nuisances, whose models for a
        training row saw fold k's outcomes: a small leak into their "out-of-fold" predictions for fold k.
        Costs K − 1 more nuisance sets per fold; opt-in (the effect on the 100k/1M benchmarks is not yet
        measured). The average effects use the out-of-fold nuisances either way.
    times : PhaseTimes, optional
        Receives the wall time of each nuisance (``nuisance mu0`` ...), each learner's final stages over all
        folds and arms (``learner x`` ...; fit and out-of-fold prediction), the AIPW and policy scores and the
        stacked ensemble. Models whose folds share a pool (:func:`~uplift.fit.workers.run_phases`) split its wall
        time in proportion to their fits' durations, so the phases add up to the wall time.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import campaign_data
    >>> df = simulate_campaign(3000, seed=1)
    >>> d = campaign_data(df, "treatment", "conversion", id="customer_id",
    ...                   exclude=[c for c in df if c.startswith("true_") or c == "propensity" or c == "revenue"])
    >>> cf = cross_fit(d, learners=("t", "dr"), n_folds=3)
    >>> cf.uplift["dr"].shape
    (3000, 1)
    """
    outcome = outcome or data.outcome
    if outcome not in data.outcomes:
        raise UpliftInputError(f"outcome {outcome!r} is not one of the study's outcomes: {', '.join(data.outcomes)}")
    if n_folds < 2:
        raise UpliftInputError(f"n_folds must be at least 2, got {n_folds}")
    smallest = int(np.bincount(data.treatment).min())
    if n_folds > smallest:
        raise UpliftInputError(f"n_folds={n_folds} is more than the {smallest} rows of the smallest arm; "
                               "use fewer folds")
    y, kind = data.outcomes[outcome], data.outcome_kinds[outcome]
    names = tuple(dict.fromkeys(learners))
    for name in names:
        if make_learner(name).needs_binary_outcome and kind != "binary":
            raise UpliftInputError(f"learner {name!r} needs a binary (0/1) outcome; {outcome!r} is continuous")
    factory = factory or ModelFactory(categorical=data.schema.categorical_indices, random_state=random_state,
                                      n_rows=len(y), outcome_kind=kind)
    progress = progress or NoProgress()
    X, T = data.X, data.treatment
    n, n_arms = len(y), len(data.arms)
    treated = range(1, n_arms)
    folds = make_folds(T, n_folds, random_state, outcome=y if kind == "binary" else None)
    # Every LightGBM model trains on a subset of one binned copy of X (no per-model copies of rows).
    # Beyond the training-row cap each model bins its own sample instead (nothing bins rows no model reads).
    matrix = BinnedMatrix(X, data.schema.categorical_indices, max_rows=factory.max_rows)

    progress.start(n_folds * (1 + len(names) * (n_arms - 1)), "cross-fitting")

    # Pass 1: nuisances, out of fold. Out-of-fold arrays are float32: they are model outputs (a few significant
    # digits), and at 14M rows each float64 column would cost 112 MB. Sums over them (metrics, effects) are
    # taken in float64. A randomised design's propensity is the arm's share, not a model of the features.
    # Observational with weak overlap: each arm's outcome model is boosted from a pooled one, so where an arm
    # is rare it shrinks toward the other arm's outcomes rather than toward its own (different) population's
    # mean. With adequate overlap each arm's own model is the more accurate (fit_nuisances' pooled_outcome).
    observational = data.design == "observational"
    workers = fit_workers(n, n_folds)
    nuisances = fit_nuisances(X, T, folds, factory, y=y, kind=kind, matrix=matrix, progress=progress,
                              propensity="model" if observational else "share",
                              pooled_outcome="weak overlap" if observational else False, times=times,
                              workers=workers)
    mu, e, fold_models, pooled = nuisances.mu, nuisances.e, nuisances.fold_models, nuisances.pooled
    del nuisances
    uplift = {name: np.empty((n, n_arms - 1), np.float32) for name in names}
    if data.propensity is not None:
        e[:, 1] = data.propensity  # a known design propensity beats an estimated one
    inner: dict[int, OutOfFold] = {}
    if nested and any(_reads_nuisances(make_learner(name)) for name in names):
        for k in range(n_folds):
            inner[k] = fit_nuisances(
                X, T, folds, factory, y=y, kind=kind, matrix=matrix, skip_fold=k, times=times, workers=workers,
                propensity="model" if observational else "share", pooled_outcome=pooled,
                seeds=lambda j, model, a, k=k: fold_seed(j, model, a) + 10_000 * (k + 1))
            if data.propensity is not None:
                inner[k].e[:, 1] = data.propensity
    release_free_memory()
    matrix.release()  # the nuisances' binned matrix; the final stages bin with their own settings

    # Pass 2: learners' final stages on training folds, predicted on the held-out fold.
    parking = _Parking(enabled=n > PARK_ROWS)
    dr = np.full((n, n_arms - 1), np.nan, np.float32)
    for a in treated:
        in_pair = (T == 0) | (T == a)
        pair = row_numbers(in_pair)
        t_pair = (T == a).astype(np.float32)  # 0/1, exact; float64 would be 8 bytes a row
        nuis_all = Nuisance(mu[:, 0], mu[:, a], e[:, a])
        with time_call(times, "AIPW scores"):
            for start in range(0, len(pair), PREDICT_BATCH):
                idx = pair[start:start + PREDICT_BATCH]
                dr[idx, a - 1] = aipw_scores(y[idx], t_pair[idx], nuis_all.subset(idx))
        arm_matrix = matrix.for_arm(t_pair)
        # One model at a time (large studies): learner by learner, so only the binned matrix the current learner
        # trains on is held: the S-learner's (X plus the treatment column) and the others' are never in memory
        # together. Folds side by side: every learner's folds in one pool, so a worker freed by one learner's
        # last fold starts the next learner's; both binned matrices are then held (at most CONCURRENT_MAX_ROWS
        # rows, one byte a cell each).
        for batch in [names] if workers > 1 else [(name,) for name in names]:
            if batch == ("s",):
                matrix.release()

            def fit_fold(k: int, name: str, a: int = a, nuis_all: Nuisance = nuis_all,
                         arm_matrix: BinnedMatrix = arm_matrix, in_pair: np.ndarray = in_pair,
                         t_pair: np.ndarray = t_pair) -> None:
                rows = row_numbers((folds != k) & in_pair)
                test = row_numbers(folds == k)
                learner = make_learner(name)
                if learner.pooled:  # the uniform sample its models would train on under the row cap
                    keep = sample_positions(len(rows), factory.max_rows, random_state + 1000 * k + 10 * a)
                    rows = rows if keep is None else rows[keep]
                if learner.in_fold_nuisance:
                    # This fold's own outcome models, fit on the training folds only: the out-of-fold mu of a
                    # training row comes from a model that saw fold k, whose outcomes would then leak into the
                    # learner's "out-of-fold" predictions for fold k (optimistic evaluation). Each arm's model
                    # is evaluated on the other arm's rows only (NaN elsewhere), the only ones such a learner reads.
                    fm, treated_rows = fold_models[k], t_pair[rows] == 1
                    mu0_rows, mu1_rows = np.full(len(rows), np.nan, np.float32), np.full(len(rows), np.nan, np.float32)
                    mu0_rows[treated_rows] = predict_rows(fm.mu[0].predict, X, rows[treated_rows])
                    mu1_rows[~treated_rows] = predict_rows(fm.mu[a].predict, X, rows[~treated_rows])
                    nuis_rows = Nuisance(mu0_rows, mu1_rows, nuis_all.e[rows])
                    del treated_rows
                elif inner and _reads_nuisances(learner):
                    nested_k = inner[k]  # models that saw neither these rows' folds nor fold k
                    nuis_rows = Nuisance(nested_k.mu[rows, 0], nested_k.mu[rows, a], nested_k.e[rows, a])
                else:
                    # No copy of the training rows' nuisances for learners whose fit does not read them.
                    nuis_rows = nuis_all.subset(rows) if learner.uses_nuisance else nuis_all
                learner = learner.fit(arm_matrix.rows(rows), t_pair[rows], y[rows], nuis_rows,
                                      factory, kind, seed=1000 * k + 10 * a)
                del nuis_rows
                fold_models[k].learners[(name, a)] = learner
                uplift[name][test, a - 1] = predict_rows(
                    lambda Xb, at, lrn=learner, nuis=nuis_all: lrn.predict(Xb, nuis.subset(at)), X, test,
                    with_index=True)
                release_free_memory()

            # The folds side by side (uplift.fit.workers): each writes only its own fold's rows and models.
            run_phases({f"learner {name}": [functools.partial(fit_fold, k, name) for k in range(n_folds)]
                        for name in batch}, workers, times,
                       lambda phase, k, a=a: progress.advance(
                           f"fold {k + 1}/{n_folds}: {phase.removeprefix('learner ')}-learner ({data.arms[a]})"))
            if "s" in batch:
                arm_matrix.release()
            if a == n_arms - 1:
                for name in batch:
                    parking.park(uplift, name)
            release_free_memory()  # the learners' training state, before the next learner allocates its own
    del matrix  # the binned copies are no longer needed
    with time_call(times, "AIPW scores"):
        policy_dr = policy_scores(y, T, mu, e)  # before the parked arrays come back: its temporaries come first
    release_free_memory()
    parking.restore(uplift)

    cf = CrossFit(outcome, kind, data.arms, data.design, names, folds, mu, e, dr, uplift, fold_models)
    cf.policy_dr = policy_dr
    cf.treatment, cf.y = np.asarray(T), np.asarray(y)
    if len(names) > 1:
        with time_call(times, "ensemble (stacking)"):
            _add_ensemble(cf, T)
    return cf


def _reads_nuisances(learner) -> bool:
    """Whether a learner's fit reads the shared out-of-fold nuisances of its training rows (and so could
    see, through them, the outcomes of the fold it is evaluated on)."""
    return learner.uses_nuisance and not learner.in_fold_nuisance


#: Rows per batch of the float64 arithmetic over out-of-fold arrays (policy scores, ensemble stacking).
STACK_BATCH = 1 << 18
#: Studies with more rows than this park each finished learner's out-of-fold uplift in a temporary file
#: while the next learners train (at 14M rows each array is 56 MB), and read them back for evaluation.
PARK_ROWS = 2_000_000


class _Parking:
    """Out-of-fold arrays of finished learners, parked on disk while later learners train.

    Only the learner being fitted needs its array in memory; evaluation (after every learner) needs them all,
    when no model is training. If the temporary directory cannot be written, arrays simply stay in memory.
    """

    def __init__(self, enabled: bool) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="uplift-oof-") if enabled else None
        self._parked: dict[str, Path] = {}

    def park(self, arrays: dict[str, np.ndarray], name: str) -> None:
        if self._dir is None:
            return
        path = Path(self._dir.name) / f"{len(self._parked)}.npy"
        try:
            np.save(path, arrays[name], allow_pickle=False)
        except OSError:
            path.unlink(missing_ok=True)
            return  # no room on disk: keep it in memory
        self._parked[name] = path
        arrays[name] = None  # type: ignore[assignment]

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        for name, path in self._parked.items():
            arrays[name] = np.load(path, allow_pickle=False)
        self._parked.clear()
        if self._dir is not None:
            self._dir.cleanup()


def policy_scores(y: np.ndarray, treatment: np.ndarray, mu: np.ndarray, e: np.ndarray) -> np.ndarray:
    """AIPW score of Y(arm) − Y(control) for every row and arm, for the value of any targeting policy.

    Uses the multinomial propensity P(T = a | x), recovered from the pairwise propensities
    e_a = P(T = a | x, T in {0, a}) through their odds (P(a)/P(0) = e_a / (1 − e_a)). With one treated arm
    it is the usual AIPW score.
    """
    n_arms = mu.shape[1]
    out = np.empty((len(y), n_arms - 1), dtype=np.result_type(mu.dtype, np.float32))
    # In row batches: the float64 temporaries stay small however many rows there are.
    for start in range(0, len(y), STACK_BATCH):
        rows = slice(start, start + STACK_BATCH)
        m, yy, tt = mu[rows].astype(np.float64), y[rows], treatment[rows]
        odds = np.column_stack([np.ones(len(yy))] + [
            (lambda p: p / (1 - p))(np.clip(e[rows, a].astype(np.float64), *E_CLIP)) for a in range(1, n_arms)])
        prob = np.clip(odds / odds.sum(axis=1, keepdims=True), E_CLIP[0], 1.0)
        base = m[:, 0] + (tt == 0) * (yy - m[:, 0]) / prob[:, 0]
        for a in range(1, n_arms):
            out[rows, a - 1] = m[:, a] + (tt == a) * (yy - m[:, a]) / prob[:, a] - base
    return out


def _stack_weights(gram: np.ndarray, cap: bool = False) -> tuple[np.ndarray, float]:
    """Non-negative weights and a free intercept that best predict the DR score from learners' uplift.

    ``gram`` is ``A'A`` for ``A = [P, 1, target]`` (P: one column of uplift per learner) over the fitting rows.
    The intercept is profiled out (centring), which leaves a non-negative least-squares problem in the L x L
    centred cross-products; it is solved through a square root of that matrix, so the answer is the
    least-squares one on the rows themselves, found without a copy of the n x L design.

    With ``cap`` the weights also sum to at most 1: the stack may shrink the learners toward a constant effect,
    never stretch them (see :data:`CAPPED_STACK_ROWS` for when the study asks for it).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(size=5000)
    >>> P = np.column_stack([0.5 * tau, 0.5 * tau + rng.normal(scale=0.3, size=5000)])  # both too flat
    >>> A = np.column_stack([P, np.ones(5000), tau + rng.normal(size=5000)])
    >>> round(float(_stack_weights(A.T @ A)[0].sum()), 1)              # free: stretched to ~2x
    2.0
    >>> round(float(_stack_weights(A.T @ A, cap=True)[0].sum()), 6)    # capped at 1
    1.0
    """
    from scipy.optimize import nnls
    L = gram.shape[0] - 2
    count, sums, target_sum = gram[L, L], gram[L, :L], gram[L, L + 1]
    cov = gram[:L, :L] - np.outer(sums, sums) / count
    cross = gram[:L, L + 1] - sums * target_sum / count
    vals, vecs = np.linalg.eigh(cov)
    keep = vals > vals.max(initial=0.0) * 1e-12
    root = np.sqrt(vals[keep])[:, None] * vecs[:, keep].T  # root.T @ root == cov
    rhs = (vecs[:, keep].T @ cross) / np.sqrt(vals[keep])  # root.T @ rhs == cross
    w, _ = nnls(root, rhs) if keep.any() else (np.zeros(L), 0.0)
    if cap and w.sum() > 1.0:
        # The problem is convex, so the optimum under sum(w) <= 1 lies on the simplex when the free one is beyond
        # it: sum(w) = 1 as one more least-squares row, weighted far above the rest, then rescaled (exact to ~1e-6).
        big = 1e4 * max(float(np.sqrt(vals[keep].max())), 1e-12) * np.sqrt(L)
        w, _ = nnls(np.vstack([root, np.full((1, L), big)]), np.r_[rhs, big])
        w = w / w.sum()
    return w, float((target_sum - sums @ w) / count)


def _stack(columns: list[np.ndarray], idx: np.ndarray) -> np.ndarray:
    return np.column_stack([c[idx] for c in columns]).astype(np.float64)


def _fold_grams(columns: list[np.ndarray], target: np.ndarray, rows: np.ndarray, folds: np.ndarray,
                n_folds: int, weight: np.ndarray | None = None) -> np.ndarray:
    """``A'WA`` of ``A = [P, 1, target]`` (P: the ``columns``; W: the rows' ``weight``, aligned with ``rows``, or
    1) over ``rows`` of each fold, in float64 row batches."""
    L = len(columns)
    grams = np.zeros((n_folds, L + 2, L + 2))
    for start in range(0, len(rows), STACK_BATCH):
        idx = rows[start:start + STACK_BATCH]
        A = np.column_stack([_stack(columns, idx), np.ones(len(idx)), target[idx]])
        w = None if weight is None else weight[start:start + STACK_BATCH]
        for k in range(n_folds):
            fold = folds[idx] == k
            Ak = A[fold]
            grams[k] += Ak.T @ (Ak if w is None else Ak * w[fold, None])
    return grams


#: Below this many study rows the stack's weights sum to at most 1 (:func:`_stack_weights` with ``cap``). With a
#: few thousand rows the noisy DR score lets the free stack stretch the learners (weights summing to up to 2.5 on
#: the 2k-row campaigns); from 100k rows the stretch is estimated well and right (the free stack's weights sum to
#: ~1.1 there and capping them cost 5-6% held-out √PEHE). Measured on saved out-of-fold arrays
#: (``benchmarks/results/selection_rules.md``); the same threshold as :data:`uplift.fit.sizing.FULL_SIZE_ROWS`.
CAPPED_STACK_ROWS = FULL_SIZE_ROWS


def _add_ensemble(cf: CrossFit, T: np.ndarray) -> None:
    """Stacked ensemble: out-of-fold weights for honest evaluation, all-row weights for new customers.

    Below :data:`CAPPED_STACK_ROWS` rows the weights sum to at most 1."""
    names = cf.learners
    cap = len(T) < CAPPED_STACK_ROWS
    ens = np.empty_like(next(iter(cf.uplift.values())))
    n_folds = len(cf.fold_models)
    for a in range(1, len(cf.arms)):
        pair = row_numbers(cf.in_arm(T, a))
        columns = [cf.uplift[name][:, a - 1] for name in names]
        # Weighted by overlap (e(1 − e)): where one arm is rare the DR score is noise or the outcome models' own
        # μ₁ − μ₀, which would reward the learners built from those models for agreeing with themselves.
        weight = cf.overlap_weights(a, pair)
        grams = _fold_grams(columns, cf.dr[:, a - 1], pair, cf.folds, n_folds, weight)
        for k in range(n_folds):
            w, intercept = _stack_weights(grams.sum(axis=0) - grams[k], cap)
            test = row_numbers(cf.folds == k)
            for start in range(0, len(test), STACK_BATCH):
                idx = test[start:start + STACK_BATCH]
                ens[idx, a - 1] = _stack(columns, idx) @ w + intercept
        w, intercept = _stack_weights(grams.sum(axis=0), cap)
        cf.ensemble_weights[a] = {**dict(zip(names, w.tolist(), strict=True)), "_intercept": intercept}
    cf.uplift["ensemble"] = ens


def ensemble_members(cf: CrossFit) -> list[str]:
    """The learners the stacked ensemble predicts with: those with a non-zero weight for some arm.

    The non-negative stacking weights are often exactly 0 for several learners; their fold models need not
    score anyone, and leaving them out changes no prediction (each would add ``0 * uplift``).
    """
    return [name for name in cf.learners
            if any(w.get(name, 0.0) != 0.0 for w in cf.ensemble_weights.values())]


def predict_uplift(cf: CrossFit, X: np.ndarray, learner: str, *, alpha: float | None = None):
    """Uplift of new customers: the average of the fold models (n, n_treated), and CIs when available.

    Returns ``(uplift, lower, upper)``; ``lower``/``upper`` are None unless the learner gives intervals and
    ``alpha`` is set. For a forest the fold forests' standard errors are averaged, a conservative bound on the
    standard error of their mean.
    """
    if len(X) > PREDICT_BATCH:  # in row batches: temporaries (e.g. the S-learner's widened X) stay bounded
        parts = [predict_uplift(cf, X[i:i + PREDICT_BATCH], learner, alpha=alpha) for i in range(0, len(X),
                                                                                               PREDICT_BATCH)]
        return tuple(None if parts[0][j] is None else np.concatenate([p[j] for p in parts]) for j in range(3))
    n_arms = len(cf.arms)
    out = np.zeros((len(X), n_arms - 1))
    se = np.zeros_like(out) if alpha is not None else None
    base = [learner] if learner != "ensemble" else ensemble_members(cf)
    n_f = len(cf.fold_models)
    parts = {name: np.zeros_like(out) for name in base}
    z = None if alpha is None else z_for_alpha(alpha)
    # The outcome and propensity models are predicted only when a learner's prediction reads them (T, X).
    with_nuisance = any(make_learner(name).predict_uses_nuisance for name in base)
    unused = Nuisance(*(np.full(len(X), np.nan) for _ in range(3)))
    for fm in cf.fold_models:
        mu0 = fm.mu[0].predict(X) if with_nuisance else None
        for a in range(1, n_arms):
            nuis = fm.nuisance(X, a, mu0) if with_nuisance else unused
            for name in base:
                lrn = fm.learners[(name, a)]
                parts[name][:, a - 1] += lrn.predict(X, nuis) / n_f
                if se is not None and lrn.gives_intervals and learner != "ensemble":
                    lo, hi = lrn.predict_interval(X, nuis, alpha)
                    se[:, a - 1] += (hi - lo) / (2 * z) / n_f
    if learner == "ensemble":
        for a in range(1, n_arms):
            w = cf.ensemble_weights[a]
            out[:, a - 1] = w["_intercept"] + sum(w[name] * parts[name][:, a - 1] for name in base)
    else:
        out = parts[learner]
    if cf.kind == "binary":
        np.clip(out, -1.0, 1.0, out=out)  # a difference of two probabilities (a DR final stage can overshoot)
    if se is None or not make_learner(learner if learner != "ensemble" else "t").gives_intervals:
        return out, None, None
    return out, out - z * se, out + z * se


def tree_counts(cf: CrossFit) -> dict[str, list[int]]:
    """Trees each LightGBM model of the study kept after early stopping, one number per fold.

    Keys name the model as the phase table does: ``mu<arm>`` and ``e<arm>`` for the nuisances (arm codes, 0 =
    control), ``<learner> <model>`` for a final stage (``x tau1``, ``dr tau``), with `` arm <code>`` after it
    when there are several treated arms. Models that are not LightGBM boosters (a user's scikit-learn model, a
    linear final stage, a randomised design's propensity share) are not listed.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import campaign_data
    >>> df = simulate_campaign(3000, seed=1)
    >>> d = campaign_data(df, "treatment", "conversion", id="customer_id",
    ...                   exclude=[c for c in df if c.startswith("true_") or c == "propensity" or c == "revenue"])
    >>> trees = tree_counts(cross_fit(d, learners=("t", "dr"), n_folds=3))
    >>> sorted(trees), len(trees["dr tau"]), all(n >= 0 for n in trees["mu0"])
    (['dr tau', 'mu0', 'mu1'], 3, True)
    """
    several = len(cf.arms) > 2
    out: dict[str, list[int]] = {}

    def add(name: str, model: object) -> None:
        if isinstance(model, LGBMModel):
            out.setdefault(name, []).append(model.n_trees)

    for fm in cf.fold_models:
        for a, model in fm.mu.items():
            add(f"mu{a}", model)
        for a, model in fm.e.items():
            add(f"e{a}", model)
        for (name, a), learner in fm.learners.items():
            for part, model in learner.models_.items():
                add(f"{name} {part}" + (f" arm {a}" if several else ""), model)
    return out


def predict_propensity(cf: CrossFit, X: np.ndarray) -> np.ndarray:
    """Propensity of new customers, ``P(arm a | x, arm a or control)`` per treated arm (n, n_treated): the
    average of the fold models' (a randomised design's: the arm's share). Customers whose propensity is near
    0 or 1 resemble only one arm of the study, so their predicted uplift is an extrapolation.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import campaign_data
    >>> df = simulate_campaign(3000, design="observational", seed=1)
    >>> d = campaign_data(df, "treatment", "conversion", id="customer_id", design="observational",
    ...                   exclude=[c for c in df if c.startswith("true_") or c == "propensity" or c == "revenue"])
    >>> cf = cross_fit(d, learners=("t",), n_folds=3)
    >>> e = predict_propensity(cf, d.X)
    >>> e.shape, bool(np.corrcoef(e[:, 0], df["propensity"])[0, 1] > 0.7)
    ((3000, 1), True)
    """
    out = np.zeros((len(X), len(cf.arms) - 1))
    for fm in cf.fold_models:
        for a in range(1, len(cf.arms)):
            model = fm.e[a]
            out[:, a - 1] += (model if isinstance(model, float) else predict_rows(model.predict, X, np.arange(
                len(X)), dtype=np.float64)) / len(cf.fold_models)
    return out

"""Honest evaluation of cross-fitted learners: leaderboard, model selection and calibration by decile.

Every score here is computed on out-of-fold uplift (no row is scored by a model that saw it). Randomised
designs compare treated and control outcomes directly (the scikit-uplift definitions); observational designs
use the out-of-fold doubly-robust (AIPW) scores instead of raw treated-minus-control differences.

Two kinds of score:

* ranking scores — Qini coefficient, AUUC, uplift@k — say how well a learner orders customers;
* the DR loss, mean((Γ − τ̂)²) over AIPW scores Γ, estimates the learner's mean squared uplift error
  (PEHE²) up to a constant shared by all learners (Kennedy 2020; Saito & Yasui 2020). Targeting with
  costs needs the *size* of the uplift to be right, not only its order, so the study selects by DR loss.
  In an observational study the loss is weighted by overlap, e(1 − e)
  (:meth:`~uplift.fit.crossfit.CrossFit.overlap_weights`): it then estimates the overlap-weighted PEHE, and rows
  whose score is noise or the outcome models' own μ₁ − μ₀ (one arm rare, the propensity clipped) no longer reward
  the learners built from those models.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import pandas as pd

import uplift.evaluate.metrics as metrics
from uplift._stats import Z95
from uplift.fit.crossfit import CAPPED_STACK_ROWS, CrossFit, cross_fit, release_free_memory
from uplift.fit.workers import fit_workers, run_concurrently


def dr_loss(dr: np.ndarray, uplift: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """Mean squared distance between AIPW scores and predicted uplift, and its standard error.

    With ``weight`` (mean 1, :func:`uplift.fit.learners.overlap_weights` in an observational study) the mean is
    weighted: the loss then estimates the overlap-weighted PEHE, from rows where the score carries information.
    """
    n = len(dr)
    if n <= _LOSS_BLOCK:
        sq = (np.asarray(dr, dtype=np.float64) - uplift) ** 2
        if weight is not None:
            sq *= weight
        return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(n))
    # Two passes over row blocks: no float64 temporaries of every row (224 MB at 14M rows).
    blocks = [slice(i, i + _LOSS_BLOCK) for i in range(0, n, _LOSS_BLOCK)]

    def squares(b: slice) -> np.ndarray:
        sq = (np.asarray(dr[b], dtype=np.float64) - uplift[b]) ** 2
        return sq if weight is None else sq * weight[b]

    mean = math.fsum(float(squares(b).sum()) for b in blocks) / n
    var = math.fsum(float(((squares(b) - mean) ** 2).sum()) for b in blocks) / (n - 1)
    return mean, math.sqrt(var) / math.sqrt(n)


def paired_dr_loss_difference(dr: np.ndarray, uplift: np.ndarray, reference: np.ndarray,
                              weight: np.ndarray | None = None) -> tuple[float, float]:
    """DR loss of ``uplift`` minus that of ``reference`` on the same rows, and the standard error of that difference.

    The two losses share every row's AIPW score, so most of their noise cancels in the per-row difference
    ``(Γ − τ̂)² − (Γ − τ̂_ref)²``; its standard error says whether one learner is really better than the other
    (each loss's own standard error, nearly the same for every learner, cannot).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tau = rng.normal(size=4000)
    >>> dr = tau + rng.normal(scale=3.0, size=4000)
    >>> diff, se = paired_dr_loss_difference(dr, np.zeros(4000), tau)   # predicting 0 vs the truth
    >>> diff - 1.96 * se > 0                                             # the truth is clearly better
    True
    """
    n = len(dr)
    blocks = [slice(i, i + _LOSS_BLOCK) for i in range(0, n, _LOSS_BLOCK)]

    def difference(b: slice) -> np.ndarray:
        g = np.asarray(dr[b], dtype=np.float64)
        d = (g - uplift[b]) ** 2 - (g - reference[b]) ** 2
        return d if weight is None else d * weight[b]

    mean = math.fsum(float(difference(b).sum()) for b in blocks) / n
    var = math.fsum(float(((difference(b) - mean) ** 2).sum()) for b in blocks) / max(n - 1, 1)
    return mean, math.sqrt(var) / math.sqrt(n)


#: Rows per block of the DR loss at large n.
_LOSS_BLOCK = 1 << 20


#: Rows the leaderboard's bootstrap resamples (m-out-of-n beyond this; point estimates use every row). Each draw
#: costs a pass over these rows per learner: with 1M draw rows the leaderboard of a 1M-row study took 118 s of
#: its 657 s (benchmarks/results/scale.md, stages_1000000); 250,000 rows give the spread of these root-n
#: statistics as well once rescaled, at a quarter of the cost.
BOOTSTRAP_ROWS = 250_000
#: The learners of one arm share their resampling weights (the same seed and rows give the same draws) when these
#: take at most this many bytes (one a row and resample: 50 MB for 200 resamples of 250,000 rows).
SHARED_DRAWS_BYTES = 64 << 20


def leaderboard(cf: CrossFit, y: np.ndarray, treatment: np.ndarray, *, k: float = 0.3, n_boot: int = 200,
                random_state: int = 0, select: str = "dr_loss", progress=None) -> pd.DataFrame:
    """Cross-fitted scores of every learner and arm, best first.

    Parameters
    ----------
    cf : CrossFit
    y, treatment : arrays
        The modelled outcome and the arm codes (0 = control) of the training rows.
    k : float
        Share targeted for uplift@k.
    n_boot : int
        Bootstrap resamples for the CIs of Qini, AUUC and uplift@k. Beyond :data:`BOOTSTRAP_ROWS` rows per arm
        the resamples are drawn from a random sample of that many rows and rescaled to the full size
        (m-out-of-n bootstrap, see :func:`uplift.evaluate.metrics.evaluate_scores`); the estimates use every row.
    select : {"dr_loss", "qini"}
        Ranking criterion (averaged over arms weighted by rows). With ``"dr_loss"``, a study below
        :data:`~uplift.fit.crossfit.CAPPED_STACK_ROWS` rows ranks its stacked ensemble first unless a single
        learner beats it beyond the paired 95% CI (:func:`_stack_first`).
    progress : ProgressHook, optional
        Receives one ``advance`` per scored learner and arm.

    Returns
    -------
    DataFrame with one row per (learner, arm): qini, auuc, uplift_at_k with 95% bootstrap CIs, DR loss with
    its standard error, the DR-loss difference to the best learner (``dr_loss_vs_best``), the paired DR-loss
    difference to the chosen (rank 1) learner with its own 95% CI (``dr_loss_vs_chosen``, ``_se``, ``_lower``,
    ``_upper``; 0 for the chosen learner), and ``rank``.
    """
    observational = cf.design == "observational"
    rows = []
    if progress is not None:
        progress.start(len(cf.uplift) * (len(cf.arms) - 1), "leaderboard (out-of-fold scores, bootstrap CIs)")
    for a in range(1, len(cf.arms)):
        pair = cf.in_arm(treatment, a)
        every = bool(pair.all())  # one treated arm: every row, and no copies
        yy, tt = (y, treatment) if every else (y[pair], (treatment[pair] == a).astype(np.int8))
        dr = cf.dr[:, a - 1] if every else cf.dr[pair, a - 1]
        weight = cf.overlap_weights(a, None if every else pair)
        shared = metrics.BootstrapDraws(n_boot, random_state) \
            if n_boot * min(len(yy), BOOTSTRAP_ROWS) <= SHARED_DRAWS_BYTES else None

        def score(name: str, a: int = a, every: bool = every, pair: np.ndarray = pair, yy: np.ndarray = yy,
                  tt: np.ndarray = tt, dr: np.ndarray = dr, weight: np.ndarray | None = weight,
                  shared: metrics.BootstrapDraws | None = shared) -> dict:
            up = cf.uplift[name]
            u = up[:, a - 1] if every else up[pair, a - 1]
            scores = metrics.evaluate_scores(yy, u, tt, dr=dr if observational else None, k=k, n_boot=n_boot,
                                             random_state=random_state, max_rows=BOOTSTRAP_ROWS, draws=shared)
            loss, loss_se = dr_loss(dr, u, weight)
            release_free_memory()  # each ranking's temporaries, before the next learner's
            row = {"learner": name, "arm": cf.arms[a], "n": int(pair.sum())}
            for metric in ("qini", "auuc", "uplift_at_k"):
                for part in ("estimate", "lower", "upper"):
                    row[f"{metric}{'' if part == 'estimate' else '_' + part}"] = scores[metric][part]
            row["dr_loss"], row["dr_loss_se"] = loss, loss_se
            return row

        # The learners side by side (numpy releases the GIL in the sorts and cumulative sums that dominate).
        names = list(cf.uplift)
        rows += run_concurrently(
            [functools.partial(score, name) for name in names], fit_workers(len(y), len(names)),
            None if progress is None else lambda i, a=a, names=names: progress.advance(
                f"leaderboard: {names[i]} ({cf.arms[a]})"))
    board = pd.DataFrame(rows)
    board["dr_loss_vs_best"] = board["dr_loss"] - board.groupby("arm")["dr_loss"].transform("min")
    overall = board.groupby("learner").apply(
        lambda g: np.average(g[select], weights=g["n"]), include_groups=False)
    order = list(overall.sort_values(ascending=(select == "dr_loss")).index)
    if select == "dr_loss" and _stack_first(cf, treatment, order):
        order = ["ensemble"] + [name for name in order if name != "ensemble"]
    board["rank"] = board["learner"].map({name: i + 1 for i, name in enumerate(order)})
    _paired_to_chosen(board, cf, treatment, str(order[0]))
    return board.sort_values(["rank", "arm"]).reset_index(drop=True)


def _stack_first(cf: CrossFit, treatment: np.ndarray, order: list[str]) -> bool:
    """Whether a study below :data:`~uplift.fit.crossfit.CAPPED_STACK_ROWS` rows takes its (capped) stacked
    ensemble although a single learner has the lowest DR loss: yes unless that learner beats the ensemble beyond
    the 95% CI of their paired DR-loss difference.

    With a few thousand rows the DR score is too noisy to rank close candidates, and picking the lowest loss
    picks noise. Measured on saved out-of-fold arrays (``benchmarks/results/selection_rules.md``, rule
    ``1se_capped``): held-out √PEHE 0.96-0.99x the lowest-loss pick on five small benchmarks (700-5,000 rows)
    and 0.997x on the 50k weak-overlap campaigns; larger studies keep the lowest-loss rule.
    """
    if "ensemble" not in order or order[0] == "ensemble" or len(cf.folds) >= CAPPED_STACK_ROWS:
        return False
    diff, se = _paired_gap(cf, treatment, order[0], "ensemble")
    return not diff + Z95 * se < 0


def _paired_to_chosen(board: pd.DataFrame, cf: CrossFit, treatment: np.ndarray, chosen: str) -> None:
    """Add each learner's DR-loss difference to the chosen learner, paired on the same rows, with its 95% CI."""
    diff = np.zeros(len(board))
    se = np.zeros(len(board))
    for a in range(1, len(cf.arms)):
        pair = cf.in_arm(treatment, a)
        every = bool(pair.all())
        dr = cf.dr[:, a - 1] if every else cf.dr[pair, a - 1]
        ref = cf.uplift[chosen][:, a - 1] if every else cf.uplift[chosen][pair, a - 1]
        weight = cf.overlap_weights(a, None if every else pair)
        for i in np.flatnonzero((board["arm"] == cf.arms[a]).to_numpy()):
            name = board["learner"].iloc[i]
            if name == chosen:
                continue
            u = cf.uplift[name][:, a - 1] if every else cf.uplift[name][pair, a - 1]
            diff[i], se[i] = paired_dr_loss_difference(dr, u, ref, weight)
    board["dr_loss_vs_chosen"] = diff
    board["dr_loss_vs_chosen_se"] = se
    board["dr_loss_vs_chosen_lower"] = diff - Z95 * se
    board["dr_loss_vs_chosen_upper"] = diff + Z95 * se


def best_learner(board: pd.DataFrame) -> str:
    """Name of the top-ranked learner of a :func:`leaderboard`."""
    return str(board.loc[board["rank"].idxmin(), "learner"])


def calibration(cf: CrossFit, y: np.ndarray, treatment: np.ndarray, learner: str, n_bins: int = 10) -> pd.DataFrame:
    """Predicted vs observed uplift by decile of out-of-fold predicted uplift, one block per arm."""
    out = []
    for a in range(1, len(cf.arms)):
        pair = cf.in_arm(treatment, a)
        every = bool(pair.all())  # one treated arm: every row, and no copies
        sel = slice(None) if every else pair
        tt = treatment if every else (treatment[pair] == a).astype(np.int8)
        dr = cf.dr[sel, a - 1] if cf.design == "observational" else None
        table = metrics.uplift_by_decile(y[sel], cf.uplift[learner][sel, a - 1], tt, dr=dr, n_bins=n_bins)
        table.insert(0, "arm", cf.arms[a])
        out.append(table)
    return pd.concat(out, ignore_index=True)


#: Racing runs on samples of this share of the study's rows (at least :data:`RACE_MIN_ROWS`), doubled at each of
#: :data:`RACE_RUNGS` rungs; the survivors of the last rung are fitted on every row.
RACE_FIRST_SHARE = 1 / 8
RACE_RUNGS = 2
#: The smallest sample a rung of the race is run on.
RACE_MIN_ROWS = 20_000
#: Racing never narrows the field below this many learners (the stacked ensemble combines the survivors).
RACE_KEEP = 2


def race_learners(data, learners: tuple[str, ...], *, n_folds: int, random_state: int = 0, factory=None,
                  progress=None, min_rows: int | None = None) -> tuple[tuple[str, ...], list[dict]]:
    """Race the candidate learners on samples: drop those that can no longer win, by cross-fitted DR loss.

    Each rung cross-fits the learners still in the race (nuisances included, as the study does) on a random
    sample of the rows, stratified by arm: :data:`RACE_FIRST_SHARE` of them (at least :data:`RACE_MIN_ROWS`),
    doubled at each of :data:`RACE_RUNGS` rungs while the sample is smaller than the study. A learner leaves the
    race when its out-of-fold DR loss (:func:`dr_loss`, overlap-weighted in an observational study, averaged
    over arms by rows) is worse than the rung's best learner's beyond the 95% interval of their paired
    difference (:func:`paired_dr_loss_difference`): on that sample it cannot win. At least :data:`RACE_KEEP`
    learners stay. The survivors are then fitted on every row by the caller, and the study's ranking among them
    stays out of fold on all rows (:func:`leaderboard`): racing only decides which learners are worth fitting.

    Plain successive halving (keep the better half whatever the gaps) was tried first and dropped: on the speed
    benchmark's simulator (40,000 rows, 5,000-row first rung) it discarded the learner that wins on all rows,
    whose DR loss differed from the others' by less than the noise of a sample.

    Parameters
    ----------
    data : CampaignData
    learners : tuple of str
        The candidates (registry names).
    n_folds, random_state, factory
        As for :func:`uplift.fit.crossfit.cross_fit` (the same folds rule and base models as the full fit).
    progress : ProgressHook, optional
    min_rows : int, optional
        The smallest sample of a rung (default :data:`RACE_MIN_ROWS`).

    Returns
    -------
    (survivors, rungs)
        The learners to fit on every row, in their given order, and one record per rung: ``rows`` (sample size),
        ``dr_loss`` and ``vs_best`` (paired difference to the rung's best, with ``vs_best_se``) per learner, and
        ``kept``.

    Examples
    --------
    >>> from uplift.datasets import simulate_campaign
    >>> from uplift.data.campaign import campaign_data
    >>> df = simulate_campaign(6000, seed=1)
    >>> d = campaign_data(df, "treatment", "conversion", id="customer_id",
    ...                   exclude=[c for c in df if c.startswith("true_") or c == "propensity" or c == "revenue"])
    >>> survivors, rungs = race_learners(d, ("t", "dr", "dr_linear", "r"), n_folds=2, min_rows=1500)
    >>> rungs[0]["rows"], set(survivors) <= {"t", "dr", "dr_linear", "r"}, len(survivors) >= 2
    (1500, True, True)
    """
    names, rungs = list(dict.fromkeys(learners)), []
    size = max(RACE_MIN_ROWS if min_rows is None else min_rows, int(data.n * RACE_FIRST_SHARE))
    for rung in range(RACE_RUNGS):
        if len(names) <= RACE_KEEP or size >= data.n:
            break
        rng = np.random.default_rng([random_state, 4099, rung])
        rows = np.sort(np.concatenate([rng.choice(group, max(n_folds, round(size * len(group) / data.n)),
                                                  replace=False)
                                       for group in (np.flatnonzero(data.treatment == a)
                                                     for a in range(len(data.arms)))]))
        # cross_fit reads the arrays only; the frame (unused there) is not copied for a sample.
        sample = dataclasses.replace(
            data, X=data.X[rows], treatment=data.treatment[rows], ids=None,
            outcomes={k: v[rows] for k, v in data.outcomes.items()},
            propensity=None if data.propensity is None else data.propensity[rows])
        cf = cross_fit(sample, learners=tuple(names), n_folds=n_folds, random_state=random_state + rung,
                       factory=factory, progress=progress)
        losses = {name: _arm_averaged_loss(cf, sample.treatment, name) for name in names}
        best = min(names, key=losses.__getitem__)
        gaps = {name: _paired_gap(cf, sample.treatment, name, best) for name in names}
        alive = [name for name in names if gaps[name][0] - Z95 * gaps[name][1] <= 0]
        by_loss = sorted(names, key=losses.__getitem__)
        names = [name for name in names if name in alive or name in by_loss[:RACE_KEEP]]
        rungs.append({"rows": int(len(rows)), "dr_loss": losses, "vs_best": {k: g[0] for k, g in gaps.items()},
                      "vs_best_se": {k: g[1] for k, g in gaps.items()}, "kept": list(names)})
        del cf, sample
        release_free_memory()
        size *= 2
    return tuple(names), rungs


def _arm_averaged_loss(cf: CrossFit, treatment: np.ndarray, name: str) -> float:
    """Out-of-fold DR loss of one learner, averaged over treated arms weighted by their comparison's rows."""
    total, rows = 0.0, 0
    for a in range(1, len(cf.arms)):
        pair = cf.in_arm(treatment, a)
        loss, _ = dr_loss(cf.dr[pair, a - 1], cf.uplift[name][pair, a - 1], cf.overlap_weights(a, pair))
        total, rows = total + loss * int(pair.sum()), rows + int(pair.sum())
    return total / rows


def _paired_gap(cf: CrossFit, treatment: np.ndarray, name: str, reference: str) -> tuple[float, float]:
    """DR loss of ``name`` minus ``reference``'s, paired on the same rows, averaged over arms as
    :func:`_arm_averaged_loss` averages (arms' errors independent), and its standard error."""
    if name == reference:
        return 0.0, 0.0
    pairs = [cf.in_arm(treatment, a) for a in range(1, len(cf.arms))]
    total = sum(int(p.sum()) for p in pairs)
    diff = var = 0.0
    for a, pair in enumerate(pairs, start=1):
        d, se = paired_dr_loss_difference(cf.dr[pair, a - 1], cf.uplift[name][pair, a - 1],
                                          cf.uplift[reference][pair, a - 1], cf.overlap_weights(a, pair))
        share = int(pair.sum()) / total
        diff, var = diff + share * d, var + (share * se) ** 2
    return diff, math.sqrt(var)

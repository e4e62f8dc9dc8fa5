"""Average effects: ATE and ATT per arm with 95% CIs, absolute and relative, and which one is the headline.

Randomised designs use the difference in means with the Neyman standard error. Observational designs use
AIPW with cross-fitted nuisances and the influence-function standard error (and show the naive difference
beside it, so the size of the confounding correction is visible).

Where the arms barely overlap (the overlap check of :func:`uplift.design.checks.overlap_summary` fails:
many customers have propensities near 0 or 1) the all-customer ATE rests on a few heavily weighted rows and
on outcome models extrapolating into regions where one arm is absent; its interval is then not to be
trusted. Two estimands that stay answerable are added beside it:

- ``trimmed``: the effect on the customers with overlap, ``α ≤ e(x) ≤ 1 − α`` with Crump, Hotz, Imbens &
  Mitnik's (2009) variance-minimising α (:func:`uplift.design.checks.crump_bounds`), by AIPW on those rows;
- ``ATO``: the overlap-weighted effect of Li, Morgan & Zaslavsky (2018), every customer weighted by
  ``e(x)(1 − e(x))``, estimated as the same weighted mean of the AIPW scores (bounded weights).

The ``headline`` column marks, per arm and outcome, the row the CLI and the report lead with, and ``note``
says in words which estimand it is and why: the ``trimmed`` effect when overlap is weak, the ATE otherwise.
Propensities clipped to :data:`~uplift.fit.learners.E_CLIP` before they become weights are counted
(``n_clipped``) and said in the ATE row's note, never silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift._display import effect_unit
from uplift._stats import Estimate
from uplift.design.checks import crump_bounds, overlap_summary
from uplift.fit.learners import E_CLIP


def diff_in_means(y: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    """Difference in means (treated − control) and its Neyman standard error.

    Examples
    --------
    >>> import numpy as np
    >>> est, se = diff_in_means(np.array([1., 0., 1., 1.]), np.array([1, 0, 0, 1]))
    >>> round(est, 3)
    0.5
    """
    y1, y0 = y[t == 1], y[t == 0]
    est = y1.mean() - y0.mean()
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    return float(est), float(se)


def aipw_ate(y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, e: np.ndarray,
             *, target: str = "ate") -> tuple[float, float]:
    """AIPW estimate of the ATE (or ATT) and its influence-function standard error.

    ``mu0``, ``mu1`` and ``e`` must be out-of-fold (cross-fitted) predictions for the same rows.
    """
    n = len(y)
    # The ATE divides by e and 1 − e, so both ends are clipped. The ATT weights controls by e / (1 − e): a
    # small e only shrinks a control's weight, so raising it to the lower clip would over-weight the controls
    # least like the treated (e.g. LaLonde's CPS controls); only the upper end is clipped.
    e = np.clip(e, *E_CLIP) if target == "ate" else np.minimum(e, E_CLIP[1])
    if target == "ate":
        psi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
        est = psi.mean()
        return float(est), float(psi.std(ddof=1) / np.sqrt(n))
    # ATT (Hahn 1998 / Chernozhukov et al. 2018 form): normalised by the treated share.
    p = t.mean()
    resid0 = y - mu0
    psi = (t * resid0 - (1 - t) * e / (1 - e) * resid0) / p
    est = psi.mean()
    infl = psi - t * est / p
    return float(est), float(infl.std(ddof=1) / np.sqrt(n))


def trimmed_ate(y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, e: np.ndarray,
                bounds: tuple[float, float]) -> tuple[float, float, np.ndarray]:
    """AIPW effect on the customers with ``bounds[0] <= e <= bounds[1]``: estimate, standard error, kept rows.

    Inside the bounds no propensity needs clipping, so the weights stay below ``1 / bounds[0]``. The kept
    population is treated as fixed (Crump et al. 2009): the interval is for the effect on *these* customers.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=20_000)
    >>> e = np.clip(1 / (1 + np.exp(-3 * x)), 0.001, 0.999)
    >>> t = (rng.random(20_000) < e).astype(float)
    >>> tau = 1.0 + x                              # the effect grows with x, as the propensity does
    >>> y = x + t * tau + rng.normal(size=20_000)
    >>> est, se, keep = trimmed_ate(y, t, x, x + tau, e, (0.1, 0.9))
    >>> bool(abs(est - tau[keep].mean()) < 3 * se), round(float(keep.mean()), 2)
    (True, 0.53)
    """
    keep = (e >= bounds[0]) & (e <= bounds[1])
    if keep.sum() < 2:
        return float("nan"), float("nan"), keep
    est, se = aipw_ate(y[keep], t[keep], mu0[keep], mu1[keep], e[keep])
    return est, se, keep


def overlap_weighted_ate(y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray,
                         e: np.ndarray) -> tuple[float, float]:
    """Overlap-weighted effect (ATO, Li, Morgan & Zaslavsky 2018) and its standard error.

    ``Σ h ψ / Σ h`` with ``h = e (1 − e)`` and ``ψ`` the AIPW score: ``h ψ = h (μ1 − μ0) + t (1 − e)(y − μ1)
    − (1 − t) e (y − μ0)`` has no propensity in a denominator, so no clipping is needed. The estimand weights
    each customer by how comparable the arms are around them: E[h τ] / E[h].

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=20_000)
    >>> e = np.clip(1 / (1 + np.exp(-3 * x)), 0.001, 0.999)
    >>> t = (rng.random(20_000) < e).astype(float)
    >>> y = x + t * (1.0 + x) + rng.normal(size=20_000)
    >>> est, se = overlap_weighted_ate(y, t, x, 2 * x + 1.0, e)
    >>> truth = float((e * (1 - e) * (1.0 + x)).sum() / (e * (1 - e)).sum())
    >>> bool(abs(est - truth) < 3 * se)
    True
    """
    h = e * (1 - e)
    h_psi = h * (mu1 - mu0) + t * (1 - e) * (y - mu1) - (1 - t) * e * (y - mu0)
    est = h_psi.sum() / h.sum()
    infl = (h_psi - h * est) / h.mean()
    return float(est), float(infl.std(ddof=1) / np.sqrt(len(y)))


def overlap_note(ov: dict, bounds: tuple[float, float], kept: float) -> str:
    """Why the headline is the trimmed effect, in words (an overlap check's result and the Crump bounds)."""
    lo, hi = ov["bounds"]
    return (f"the effect on the {kept:.0%} of customers with propensity in [{bounds[0]:.3g}, {bounds[1]:.3g}] "
            "(Crump et al. 2009 trimming), reported instead of the all-customer ATE because "
            f"{ov['share_outside_treated']:.0%} of treated and {ov['share_outside_control']:.0%} of control "
            f"customers have propensity outside [{lo:g}, {hi:g}], where one arm is too rare to compare and the "
            "ATE rests on extrapolation")


def clipping_note(e: np.ndarray) -> tuple[int, str]:
    """How many propensities the ATE clips to :data:`E_CLIP`, and the sentence that says so ("" if none)."""
    n = int(((e < E_CLIP[0]) | (e > E_CLIP[1])).sum())
    if not n:
        return 0, ""
    return n, (f"propensity clipped to [{E_CLIP[0]:g}, {E_CLIP[1]:g}] for {n:,} customers ({n / len(e):.1%}): "
               "their weights are capped, so the ATE is biased towards the better-overlapping customers")


def _row(arm: str, outcome: str, kind: str, estimand: str, method: str, est: float, se: float,
         base: float, n_t: int, n_c: int) -> dict:
    effect = Estimate.from_se(est, se)
    # Control-mean uncertainty is second order at these n: the relative lift's se is the effect's over |base|.
    relative = Estimate.from_se(est / base if base else np.nan, se / abs(base) if base else np.nan)
    unit = effect_unit(kind)
    shown = effect.scaled(unit.scale)
    return {
        "arm": arm, "outcome": outcome, "estimand": estimand, "method": method,
        "estimate": effect.estimate, "se": effect.se, "lower": effect.lower, "upper": effect.upper,
        "estimate_display": shown.estimate, "lower_display": shown.lower, "upper_display": shown.upper,
        "unit": unit.label,
        "control_mean": base, "relative_lift": relative.estimate,
        "relative_lower": relative.lower, "relative_upper": relative.upper,
        "n_treated": n_t, "n_control": n_c,
        "headline": False, "note": "", "n_clipped": 0, "trim_lower": np.nan, "trim_upper": np.nan,
    }


def average_effects(y: np.ndarray, treatment: np.ndarray, arms: tuple[str, ...], *, outcome: str, kind: str,
                    design: str, mu: np.ndarray | None = None, e: np.ndarray | None = None) -> pd.DataFrame:
    """ATE and ATT of every arm vs control, as a tidy table with 95% CIs.

    For ``design="observational"`` pass the cross-fitted ``mu`` (n, n_arms) and ``e`` (n, n_arms) of
    :class:`uplift.fit.crossfit.CrossFit`; rows for the naive difference are included for comparison, and the
    ATT (which differs from the ATE when the treated differ from the controls). A randomised design has one
    row per arm, the ATE: its treated are a random draw of everyone, so its ATT is the same difference in means.
    When the overlap check fails, the ``trimmed`` and ``ATO`` rows follow (see the module docstring), and the
    trimmed one is the headline.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 1000)
    >>> y = (rng.random(1000) < 0.1 + 0.05 * t).astype(float)
    >>> average_effects(y, t, ("control", "coupon"), outcome="y", kind="binary", design="rct")["estimand"].tolist()
    ['ATE']
    """
    rows = []
    for a in range(1, len(arms)):
        pair = (treatment == 0) | (treatment == a)
        yy, tt = y[pair], (treatment[pair] == a).astype(float)
        base = float(yy[tt == 0].mean())
        n_t, n_c = int(tt.sum()), int((1 - tt).sum())
        est, se = diff_in_means(yy, tt)
        if design == "rct":
            rows.append(_row(arms[a], outcome, kind, "ATE", "difference in means", est, se, base, n_t, n_c))
            rows[-1].update(headline=True, trim_lower=0.0, trim_upper=1.0)  # randomised: nobody is trimmed
            continue
        rows.append(_row(arms[a], outcome, kind, "naive", "difference in means (unadjusted)", est, se, base,
                         n_t, n_c))
        m0, m1, ee = mu[pair, 0], mu[pair, a], e[pair, a].astype(np.float64)
        bounds = crump_bounds(ee)
        est, se = aipw_ate(yy, tt, m0, m1, ee)
        ate = _row(arms[a], outcome, kind, "ATE", "AIPW (cross-fitted)", est, se, base, n_t, n_c)
        n_clipped, clip_text = clipping_note(ee)
        ate.update(n_clipped=n_clipped, note=clip_text, trim_lower=bounds[0], trim_upper=bounds[1])
        rows.append(ate)
        est, se = aipw_ate(yy, tt, m0, m1, ee, target="att")
        rows.append(_row(arms[a], outcome, kind, "ATT", "AIPW (cross-fitted)", est, se, base, n_t, n_c))
        ov = overlap_summary(ee, tt)
        if ov["passed"]:
            ate.update(headline=True)
            continue
        # Weak overlap: the effect where both arms are present is the one the data can answer.
        est, se, keep = trimmed_ate(yy, tt, m0, m1, ee, bounds)
        kept_t, kept_c = int(tt[keep].sum()), int((1 - tt[keep]).sum())
        trimmed = _row(arms[a], outcome, kind, "trimmed", "AIPW on the customers with overlap (Crump et al. "
                       "2009 trimming)", est, se, base, kept_t, kept_c)
        trimmed.update(headline=True, note=overlap_note(ov, bounds, float(keep.mean())), trim_lower=bounds[0],
                       trim_upper=bounds[1])
        rows.append(trimmed)
        est, se = overlap_weighted_ate(yy, tt, m0, m1, ee)
        rows.append(_row(arms[a], outcome, kind, "ATO", "AIPW, overlap weights e(1 − e) (Li et al. 2018)", est,
                         se, base, n_t, n_c))
    return pd.DataFrame(rows)


def headline_effects(ate: pd.DataFrame) -> pd.DataFrame:
    """The headline row of every arm and outcome of an average-effects table (the ATE of tables saved before
    the ``headline`` column existed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = rng.integers(0, 2, 1000)
    >>> y = (rng.random(1000) < 0.1 + 0.05 * t).astype(float)
    >>> table = average_effects(y, t, ("control", "coupon"), outcome="y", kind="binary", design="rct")
    >>> headline_effects(table)["estimand"].tolist()
    ['ATE']
    """
    if "headline" in ate:
        return ate[ate["headline"].astype(bool)]
    return ate[ate["estimand"] == "ATE"]

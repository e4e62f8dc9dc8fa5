"""Average effects: ATE and ATT per arm with 95% CIs, absolute and relative.

Randomised designs use the difference in means with the Neyman standard error. Observational designs use
AIPW with cross-fitted nuisances and the influence-function standard error (and show the naive difference
beside it, so the size of the confounding correction is visible).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from uplift._display import effect_unit
from uplift._stats import Estimate
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
    }


def average_effects(y: np.ndarray, treatment: np.ndarray, arms: tuple[str, ...], *, outcome: str, kind: str,
                    design: str, mu: np.ndarray | None = None, e: np.ndarray | None = None) -> pd.DataFrame:
    """ATE and ATT of every arm vs control, as a tidy table with 95% CIs.

    For ``design="observational"`` pass the cross-fitted ``mu`` (n, n_arms) and ``e`` (n, n_arms) of
    :class:`uplift.fit.crossfit.CrossFit`; rows for the naive difference are included for comparison, and the
    ATT (which differs from the ATE when the treated differ from the controls). A randomised design has one
    row per arm, the ATE: its treated are a random draw of everyone, so its ATT is the same difference in means.

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
            continue
        rows.append(_row(arms[a], outcome, kind, "naive", "difference in means (unadjusted)", est, se, base,
                         n_t, n_c))
        m0, m1, ee = mu[pair, 0], mu[pair, a], e[pair, a]
        est, se = aipw_ate(yy, tt, m0, m1, ee)
        rows.append(_row(arms[a], outcome, kind, "ATE", "AIPW (cross-fitted)", est, se, base, n_t, n_c))
        est, se = aipw_ate(yy, tt, m0, m1, ee, target="att")
        rows.append(_row(arms[a], outcome, kind, "ATT", "AIPW (cross-fitted)", est, se, base, n_t, n_c))
    return pd.DataFrame(rows)

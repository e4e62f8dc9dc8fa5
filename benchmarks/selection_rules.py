"""Selection and combination rules among the study's candidates, scored on saved arrays without refitting.

``benchmarks/weak_overlap.py``, ``benchmarks/small.py`` and ``benchmarks/at_scale.py`` with ``--save-arrays``
keep, per replication, every candidate's out-of-fold uplift of the training rows and its predictions for the
held-out customers, the DR scores, propensities and folds. A rule that only chooses among or combines the
fitted learners is then scored exactly: its held-out prediction is the same combination of the candidates'
held-out predictions. Every rule is honest: its out-of-fold prediction of a row uses weights (or a choice)
made without that row's fold, so its DR loss can be compared with the single learners'.

Rules (``singles``: the study's single learners; ``loss``: overlap-weighted DR loss of out-of-fold uplift):

* ``chosen``: the study's rule before this change (lowest loss among the singles and the free-scale stack);
* ``free``: the free-scale stack itself (weights ≥ 0, free intercept);
* ``capped``: a stack whose weights are ≥ 0 and sum to at most one (free intercept): it may shrink the
  learners toward a constant effect, never amplify them;
* ``simplex``: a stack whose weights are ≥ 0 and sum to one (free intercept);
* ``shrink``: the simplex stack shrunk half-way toward equal weights;
* ``ridge_cv``: the simplex stack with a ridge penalty toward equal weights, its strength chosen by
  cross-validation inside the training folds;
* ``ci_mean``: the plain mean of the singles whose paired loss difference to the lowest-loss single is within
  its 95% CI (chosen without the row's fold);
* ``top2``: the mean of the two singles of lowest loss (chosen without the row's fold);
* ``pick_<stack>``: lowest loss among the singles and that stack (the study's rule with that stack);
* ``1se_<stack>``: that stack unless a single beats it beyond the 95% CI of their paired loss difference;
* ``oracle``: the best single on the held-out truth (no rule can know it).

Run::

    python benchmarks/selection_rules.py /tmp/arrays/wo /tmp/arrays/small /tmp/arrays/scale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from uplift.evaluate.selection import paired_dr_loss_difference  # noqa: E402
from uplift.fit.learners import overlap_weights  # noqa: E402

Z = 1.959963984540054
STACKS = ("free", "capped", "simplex", "shrink", "ridge_cv", "ci_mean", "top2")


def _centre(P, y, w):
    sw = w / w.sum()
    pm, ym = sw @ P, sw @ y
    return P - pm, y - ym, pm, ym


def stack(P: np.ndarray, y: np.ndarray, w: np.ndarray, rule: str, lam: float = 0.0) -> tuple[np.ndarray, float]:
    """Weights and intercept of a stack of the columns of ``P`` on target ``y`` with row weights ``w``."""
    from scipy.optimize import nnls

    L = P.shape[1]
    Pc, yc, pm, ym = _centre(P, y, w)
    sw = np.sqrt(w)
    A, b = Pc * sw[:, None], yc * sw
    if rule == "free":
        coef, _ = nnls(A, b)
    else:
        scale = float(np.sqrt((A ** 2).sum() / L)) or 1.0
        if lam > 0:
            A = np.vstack([A, np.sqrt(lam) * scale * np.eye(L)])
            b = np.r_[b, np.sqrt(lam) * scale * np.full(L, 1.0 / L)]
        big = 1e3 * scale * np.sqrt(L)
        coef, _ = nnls(np.vstack([A, big * np.ones(L)]), np.r_[b, big])
        coef = coef / coef.sum()
    return coef, float(ym - pm @ coef)


def ridge_cv_lambda(P, y, w, folds, grid=(0.0, 0.1, 0.3, 1.0, 3.0, 10.0)) -> float:
    best, best_loss = 0.0, np.inf
    for lam in grid:
        loss = 0.0
        for k in np.unique(folds):
            tr, te = folds != k, folds == k
            c, b0 = stack(P[tr], y[tr], w[tr], "simplex", lam)
            loss += float(np.sum(w[te] * (y[te] - P[te] @ c - b0) ** 2))
        if loss < best_loss:
            best, best_loss = lam, loss
    return best


def mean_rule(P, y, w, rule) -> np.ndarray:
    """Equal weights on a set of columns: ``ci_mean`` or ``top2``."""
    losses = (w[:, None] * (y[:, None] - P) ** 2).mean(axis=0)
    order = np.argsort(losses)
    if rule == "top2":
        keep = order[:2]
    else:
        keep = []
        for j in range(P.shape[1]):  # the best, and every single not beyond its CI worse than the best
            diff, se = paired_dr_loss_difference(y, P[:, j], P[:, order[0]], w)
            if j == order[0] or diff - Z * se <= 0:
                keep.append(j)
    c = np.zeros(P.shape[1])
    c[keep] = 1.0 / len(keep)
    return c


def fit_rule(P, y, w, folds, rule) -> tuple[np.ndarray, float]:
    if rule in ("free", "simplex"):
        return stack(P, y, w, rule)
    if rule == "capped":  # weights >= 0 summing to at most 1: the free stack, or the simplex one when it overshoots
        c, b0 = stack(P, y, w, "free")
        return (c, b0) if c.sum() <= 1.0 else stack(P, y, w, "simplex")
    if rule == "shrink":
        c, _ = stack(P, y, w, "simplex")
        return 0.5 * c + 0.5 / P.shape[1], 0.0  # intercept refitted below
    if rule == "ridge_cv":
        return stack(P, y, w, "simplex", ridge_cv_lambda(P, y, w, folds))
    return mean_rule(P, y, w, rule), 0.0


def fit_rule_full(P, y, w, folds, rule):
    c, b0 = fit_rule(P, y, w, folds, rule)
    if rule == "shrink":  # the intercept of the shrunk weights
        b0 = float(np.sum(w * (y - P @ c)) / w.sum())
    return c, b0


def score(path: Path) -> dict:
    z = np.load(path, allow_pickle=False)
    names = [str(n) for n in z["names"]]
    held, oof = z["held_out"].astype(np.float64), z["oof"].astype(np.float64)
    dr, folds, tau = z["dr"].astype(np.float64), z["folds"], z["tau_test"].astype(np.float64)
    design = str(z["design"]) if "design" in z.files else "observational"
    w = overlap_weights(z["e"]) if design == "observational" else None
    w = np.ones(len(dr)) if w is None else w
    singles = [i for i, n in enumerate(names) if n != "ensemble"]
    S, H = oof[:, singles], held[:, singles]
    sn = [names[i] for i in singles]
    out_oof, out_held = {n: S[:, j] for j, n in enumerate(sn)}, {n: H[:, j] for j, n in enumerate(sn)}
    weights = {}
    inner = {}
    for rule in STACKS:
        o = np.empty(len(dr))
        for k in np.unique(folds):
            tr, te = folds != k, folds == k
            c, b0 = fit_rule_full(S[tr], dr[tr], w[tr], folds[tr], rule)
            o[te] = S[te] @ c + b0
        c, b0 = fit_rule_full(S, dr, w, folds, rule)
        out_oof[rule], out_held[rule] = o, H @ c + b0
        weights[rule] = {sn[j]: round(float(x), 2) for j, x in enumerate(c) if x > 0.005}
    # the study's own ensemble column (its weights are the library's, as fitted)
    if "ensemble" in names:
        inner["ensemble_matches_free"] = float(np.abs(oof[:, names.index("ensemble")] - out_oof["free"]).max())
    loss = {k: float(np.mean(w * (dr - v) ** 2)) for k, v in out_oof.items()}
    res = {}
    for st in STACKS:
        cands = sn + [st]
        best = min(cands, key=loss.get)
        res[f"pick_{st}"] = best
        best_single = min(sn, key=loss.get)
        d, se = paired_dr_loss_difference(dr, out_oof[best_single], out_oof[st], w)
        res[f"1se_{st}"] = best_single if d + Z * se < 0 else st
    pehe = {k: float(np.sqrt(np.mean((v - tau) ** 2))) for k, v in out_held.items()}
    base = float(np.sqrt(np.mean((tau.mean() - tau) ** 2)))
    row = {"file": path.name, "design": design, "base": base, "pehe": pehe, "loss": loss, "weights": weights,
           "choice": res, "chosen_old": res["pick_free"], **inner}
    row["rules"] = {"chosen": pehe[res["pick_free"]], **{st: pehe[st] for st in STACKS},
                    **{k: pehe[v] for k, v in res.items()}, "oracle": min(pehe[n] for n in sn)}
    if "k" in z.files:  # at scale: policy value of the top share, and the held-out predictions per rule
        row["policy"] = {}
        kk = float(z["k"]) if z["k"].shape == () else 0.3
        for rule, v in {**{st: out_held[st] for st in STACKS}, **{k: out_held[c] for k, c in res.items()}}.items():
            top = np.argsort(-v, kind="stable")[: int(round(kk * len(v)))]
            row["policy"][rule] = float(tau[top].mean())
    return row, out_held, tau


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = []
    for folder in args.folders:
        for path in sorted(folder.glob("*.npz")):
            row, _, _ = score(path)
            rows.append(row)
            ratios = {k: round(v / (row["base"] or 1.0), 3) for k, v in row["rules"].items()}
            print(path.name, row["chosen_old"], ratios, flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

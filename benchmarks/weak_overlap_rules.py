"""Other selection and stacking rules, scored on the arrays ``benchmarks/weak_overlap.py --save-arrays`` kept.

Each replication's file holds every learner's out-of-fold uplift of the training rows, its predictions for the
held-out customers, the DR scores, propensities and folds, and the leaderboard's DR losses; so a rule that
only combines learners can be scored without refitting anything. Rules (√PEHE over the constant-ATE
baseline's, all held-out customers):

* ``chosen``: the study's choice (lowest overlap-weighted DR loss, the stacked ensemble among the candidates);
* ``ensemble``: the study's stacked ensemble (non-negative weights of free sum, free intercept);
* ``convex``: a stack whose weights are non-negative and sum to one (free intercept), fitted like the ensemble
  on the overlap-weighted DR scores; ``convex_rank`` is where its out-of-fold DR loss would put it among the
  study's candidates (1: it would be chosen);
* ``top2``, ``top3``: the plain mean of the two or three learners with the lowest DR loss;
* ``oracle``: the best single candidate on the held-out truth (no rule can know it).

Run::

    python benchmarks/weak_overlap.py --save-arrays /tmp/wo_arrays
    python benchmarks/weak_overlap_rules.py /tmp/wo_arrays
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from uplift.fit.learners import overlap_weights  # noqa: E402

RULES = ("chosen", "ensemble", "convex", "top2", "top3", "oracle")


def ratio(u: np.ndarray, tau: np.ndarray) -> float:
    return float(np.sqrt(np.mean((u - tau) ** 2)) / np.sqrt(np.mean((tau.mean() - tau) ** 2)))


def convex_weights(P: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, float]:
    """Weights ≥ 0 summing to 1 and a free intercept minimising the weighted squared error to ``target``."""
    from scipy.optimize import nnls

    sw = np.sqrt(weight)
    A = np.column_stack([P * sw[:, None], sw, -sw])  # the intercept as a difference of two non-negatives
    big = 1e3 * np.sqrt(len(target)) * max(1.0, float(np.abs(A).max()))
    A = np.vstack([A, big * np.r_[np.ones(P.shape[1]), 0.0, 0.0]])
    x, _ = nnls(A, np.r_[target * sw, big])
    w = x[: P.shape[1]] / x[: P.shape[1]].sum()
    return w, float(x[-2] - x[-1])


def score(path: Path) -> dict:
    z = np.load(path)
    names = [str(n) for n in z["names"]]
    held, oof = z["held_out"].astype(np.float64), z["oof"].astype(np.float64)
    dr, folds, tau = z["dr"].astype(np.float64), z["folds"], z["tau_test"]
    weight = overlap_weights(z["e"])
    losses = dict(zip(names, z["dr_loss"].tolist(), strict=True))
    order = sorted(losses, key=losses.get)
    col = {n: i for i, n in enumerate(names)}
    singles = [col[n] for n in names if n != "ensemble"]
    oof_stack = np.empty(len(dr))
    for k in np.unique(folds):
        w, c = convex_weights(oof[folds != k][:, singles], dr[folds != k], weight[folds != k])
        oof_stack[folds == k] = oof[folds == k][:, singles] @ w + c
    w, c = convex_weights(oof[:, singles], dr, weight)
    stack_loss = float(np.mean(weight * (dr - oof_stack) ** 2))
    return {"file": path.name, "chosen_learner": order[0], "chosen": ratio(held[:, col[order[0]]], tau),
            "ensemble": ratio(held[:, col["ensemble"]], tau), "convex": ratio(held[:, singles] @ w + c, tau),
            "convex_rank": 1 + sum(v < stack_loss for v in losses.values()),
            "convex_weights": {names[j]: round(float(x), 2) for j, x in zip(singles, w, strict=True) if x > 0.005},
            "top2": ratio(held[:, [col[n] for n in order[:2]]].mean(axis=1), tau),
            "top3": ratio(held[:, [col[n] for n in order[:3]]].mean(axis=1), tau),
            "oracle": min(ratio(held[:, j], tau) for j in range(len(names)))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arrays", type=Path, help="the --save-arrays folder of benchmarks/weak_overlap.py")
    args = ap.parse_args(argv)
    rows = [score(p) for p in sorted(args.arrays.glob("*.npz"))]
    print("| replication | chosen | " + " | ".join(RULES) + " | convex rank | convex weights |")
    print("|---|---|" + "---:|" * len(RULES) + "---:|---|")
    for r in rows:
        print(f"| {r['file']} | {r['chosen_learner']} | " + " | ".join(f"{r[k]:.2f}" for k in RULES)
              + f" | {r['convex_rank']} | {r['convex_weights']} |")
    summary = {k: np.array([r[k] for r in rows]) for k in RULES}
    print("| **mean** (≤ 0.8 in) | | " + " | ".join(
        f"{v.mean():.3f} ({int((v <= 0.8).sum())}/{len(v)})" for v in summary.values()) + " | | |")


if __name__ == "__main__":
    main()

"""Weak overlap at 50k rows: the default study's per-customer predictions against the issue's acceptance.

Each replication simulates ``weak_overlap_campaign(n, seed + rep, variant)`` (``benchmarks/coverage.py``:
propensities 0.001..0.999, binary conversion), fits ``Study.fit()`` with its defaults (``n_boot=20``: the
bootstrap only sizes the leaderboard's CIs, the choice is by DR loss), and scores ``--test-rows`` fresh
customers of the same design whose true uplift is known. Reported per replication and summarised:

* √PEHE of the chosen model over the constant-ATE baseline's (predicting the customers' own mean true uplift
  for everyone), on all held-out customers and on the overlap region (``overlap`` True in ``predict_uplift``);
  acceptance: ≤ 0.8;
* the error of the held-out mean predicted uplift in the overlap region (acceptance: within 1 pp);
* the prediction range (acceptance: inside [−1, 1] for a binary outcome);
* the same √PEHE ratio of every single learner and of the ensemble, with its rank on the study's leaderboard,
  to tell a poor choice from poor learners.

Run::

    python benchmarks/weak_overlap.py                       # 10 replications of the "tanh" design
    python benchmarks/weak_overlap.py --reps 3 --variants tanh,independent,steep --tag variants

Results go to ``benchmarks/results/weak_overlap.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # this folder's coverage.py shadows numba's
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from benchmarks._arrays import save_fit_arrays  # noqa: E402
from benchmarks._provenance import git_state  # noqa: E402
from benchmarks.coverage import OVERLAP_VARIANTS, truth_columns, weak_overlap_campaign  # noqa: E402
from uplift import Study  # noqa: E402
from uplift.effects.average import headline_effects  # noqa: E402

RESULTS = HERE / "results"
#: The issue's acceptance: √PEHE at most this share of the constant-ATE baseline's.
PEHE_RATIO_MAX = 0.8


def _ratio(u: np.ndarray, tau: np.ndarray, mask: np.ndarray) -> float:
    """√PEHE of ``u`` on ``mask`` over that of the rows' own true mean effect."""
    return float(np.sqrt(np.mean((u[mask] - tau[mask]) ** 2)) / np.sqrt(np.mean((tau[mask].mean() - tau[mask]) ** 2)))


def one_replication(n: int, n_test: int, seed: int, variant: str, save: Path | None = None) -> dict:
    df = weak_overlap_campaign(n, seed, variant)
    test = weak_overlap_campaign(n_test, seed + 10_000, variant)
    t0 = time.perf_counter()
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id", exclude=truth_columns(df),
                  design="observational").fit(random_state=seed, n_boot=20)
    seconds = time.perf_counter() - t0
    pred = study.predict_uplift(test)
    u, tau, ov = pred["uplift"].to_numpy(), test["true_uplift"].to_numpy(), pred["overlap"].to_numpy()
    everyone = np.ones(len(u), bool)
    head = headline_effects(study.ate()).iloc[0]
    kept = study.result.training_overlap()
    head_truth = float(df["true_uplift"].to_numpy()[kept if kept is not None else slice(None)].mean())
    board = study.leaderboard()
    rank = dict(zip(board["learner"], board["rank"], strict=False))
    learners, held_out = {}, {}
    for name in study.result.crossfit.uplift:
        ul = held_out[name] = study.predict_uplift(test, learner=name)["uplift"].to_numpy()
        learners[name] = {"rank": int(rank.get(name, -1)), "ratio_all": _ratio(ul, tau, everyone),
                          "ratio_overlap": _ratio(ul, tau, ov),
                          "mean_error_overlap": float(ul[ov].mean() - tau[ov].mean())}
    if save is not None:  # what another selection or stacking rule needs, to be scored without refitting
        save_fit_arrays(save / f"{variant}_{seed}.npz", study, held_out, tau, dtype=np.float32,
                        tau=df["true_uplift"].to_numpy(), overlap_test=ov,
                        dr_loss=board.set_index("learner").loc[list(held_out), "dr_loss"].to_numpy())
    return {"variant": variant, "seed": seed, "chosen": study.result.best_learner, "seconds": seconds,
            "overlap_share": float(ov.mean()), "ratio_all": _ratio(u, tau, everyone),
            "ratio_overlap": _ratio(u, tau, ov), "mean_error_all": float(u.mean() - tau.mean()),
            "mean_error_overlap": float(u[ov].mean() - tau[ov].mean()), "min": float(u.min()),
            "max": float(u.max()), "headline": str(head["estimand"]),
            "headline_covers": bool(head["lower"] <= head_truth <= head["upper"]), "learners": learners}


def render(rows: list[dict], args, elapsed: float, load: str) -> str:
    ok = [r["ratio_all"] <= PEHE_RATIO_MAX for r in rows]
    lines = [f"## Weak overlap at n = {args.n:,}: the default study's predictions ({len(rows)} replications)", "",
             f"`weak_overlap_campaign(n={args.n}, seed={args.seed}+rep, variant)` (benchmarks/coverage.py) fitted "
             f"with `Study.fit()` defaults, scored on {args.test_rows:,} fresh customers; uplift at `{git_state()}`; "
             f"{elapsed / 60:.1f} min, load {load}. Ratio: √PEHE over the constant-ATE baseline's √PEHE "
             f"(acceptance ≤ {PEHE_RATIO_MAX}); overlap region: `overlap` True in `predict_uplift`; errors in pp.",
             "",
             "| variant | seed | chosen | ratio, all | ratio, overlap | mean error, all | mean error, overlap "
             "| prediction range | headline covers | every learner's ratio (all), leaderboard rank |",
             "|---|---:|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        each = ", ".join(f"{k} {v['ratio_all']:.2f} (#{v['rank']})"
                         for k, v in sorted(r["learners"].items(), key=lambda kv: kv[1]["rank"]))
        lines.append(f"| {r['variant']} | {r['seed']} | {r['chosen']} | {r['ratio_all']:.2f} | "
                     f"{r['ratio_overlap']:.2f} | {100 * r['mean_error_all']:+.2f} | "
                     f"{100 * r['mean_error_overlap']:+.2f} | [{r['min']:+.3f}, {r['max']:+.3f}] | "
                     f"{r['headline']}: {'yes' if r['headline_covers'] else 'no'} | {each} |")
    ratios = np.array([r["ratio_all"] for r in rows])
    errs = np.array([abs(r["mean_error_overlap"]) for r in rows])
    lines += ["", f"Summary: ratio (all) mean {ratios.mean():.2f}, max {ratios.max():.2f}, "
              f"≤ {PEHE_RATIO_MAX} in {sum(ok)}/{len(rows)}; |mean error in the overlap region| max "
              f"{100 * errs.max():.2f} pp (≤ 1 pp in {int((errs <= 0.01).sum())}/{len(rows)}); predictions in "
              f"[−1, 1] in {sum(-1 <= r['min'] and r['max'] <= 1 for r in rows)}/{len(rows)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--test-rows", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--variants", default="tanh", help=f"comma-separated: {', '.join(OVERLAP_VARIANTS)}")
    ap.add_argument("--tag", default="", help="suffix for the result files (weak_overlap_<tag>.md)")
    ap.add_argument("--save-arrays", type=Path, default=None,
                    help="folder for each replication's out-of-fold and held-out predictions (.npz)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    rows = []
    for variant in args.variants.split(","):
        for rep in range(args.reps):
            rows.append(one_replication(args.n, args.test_rows, args.seed + rep, variant, args.save_arrays))
            print(json.dumps(rows[-1]), flush=True)
    elapsed = time.perf_counter() - start
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1]
    text = render(rows, args, elapsed, load.strip())
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = f"weak_overlap_{args.tag}" if args.tag else "weak_overlap"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"args": {k: str(v) if isinstance(v, Path) else v
                                                               for k, v in vars(args).items()},
                                                      "uplift_commit": git_state(),
                                                      "elapsed_seconds": elapsed, "load": load, "rows": rows},
                                                     indent=1))


if __name__ == "__main__":
    main()

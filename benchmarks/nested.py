"""What nested (per-fold) nuisances change: shared out-of-fold vs nested nuisances for the DR and R learners.

By default the DR and R learners of outer fold k train on the shared out-of-fold nuisances of their training
rows, whose models saw fold k's outcomes; ``cross_fit(..., nested=True)`` gives them nuisances fitted without
fold k (:func:`uplift.fit.nuisance.fit_nuisances` with ``skip_fold``). For each replication a fresh
``simulate_campaign(n, design="observational")`` is cross-fitted both ways with the same folds and seeds, and
the learners' out-of-fold uplift is scored against the simulator's true uplift: √PEHE and the mean's bias,
as paired differences (nested − shared) with 95% CIs over replications. The average effects (AIPW ATE) use the
out-of-fold nuisances in both fits; the script checks they are identical.

Run::

    OMP_NUM_THREADS=1 python benchmarks/nested.py --reps 40 --n 5000

Results go to ``benchmarks/results/nested.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # see coverage.py
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from uplift import simulate_campaign  # noqa: E402
from uplift._stats import Z95  # noqa: E402
from uplift.data.campaign import campaign_data  # noqa: E402
from uplift.effects.average import aipw_ate  # noqa: E402
from uplift.fit.crossfit import cross_fit  # noqa: E402

RESULTS = HERE / "results"
LEARNERS = ("dr", "r")


def one_rep(n: int, seed: int, n_folds: int) -> dict:
    df = simulate_campaign(n, design="observational", seed=seed)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    data = campaign_data(df, "treatment", "conversion", id="customer_id", exclude=[*truth, "revenue"],
                         design="observational")
    tau = df["true_uplift"].to_numpy()
    out = {"seed": seed}
    ates = []
    for nested in (False, True):
        cf = cross_fit(data, learners=("t", *LEARNERS), n_folds=n_folds, random_state=seed, nested=nested)
        y, t = data.outcomes["conversion"], data.treatment.astype(float)
        ates.append(aipw_ate(y, t, cf.mu[:, 0], cf.mu[:, 1], cf.e[:, 1]))
        for name in LEARNERS:
            u = cf.uplift[name][:, 0].astype(np.float64)
            key = f"{name}_{'nested' if nested else 'shared'}"
            out[key + "_pehe"] = float(np.sqrt(np.mean((u - tau) ** 2)))
            out[key + "_bias"] = float(u.mean() - tau.mean())
    out["ate_identical"] = ates[0] == ates[1]
    return out


def paired(records: list[dict], a: str, b: str) -> dict:
    d = np.array([r[b] - r[a] for r in records])
    se = d.std(ddof=1) / np.sqrt(len(d))
    return {"mean_shared": float(np.mean([r[a] for r in records])),
            "mean_nested": float(np.mean([r[b] for r in records])),
            "diff": float(d.mean()), "lower": float(d.mean() - Z95 * se), "upper": float(d.mean() + Z95 * se)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=40)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--n-folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20_000)
    ap.add_argument("--time-budget", type=float, default=None, help="stop starting replications after this")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    records = []
    for rep in range(args.reps):
        if args.time_budget is not None and time.perf_counter() - start > args.time_budget:
            break
        records.append(one_rep(args.n, args.seed + rep, args.n_folds))
        if (rep + 1) % 5 == 0:
            print(f"{rep + 1} reps, {time.perf_counter() - start:.0f} s", flush=True)
    elapsed = time.perf_counter() - start
    summary = {f"{name}_{metric}": paired(records, f"{name}_shared_{metric}", f"{name}_nested_{metric}")
               for name in LEARNERS for metric in ("pehe", "bias")}
    lines = ["## Nested vs shared out-of-fold nuisances (DR and R learners)", "",
             f"`simulate_campaign(n={args.n}, design='observational', seed={args.seed}+rep)`, outcome conversion, "
             f"{args.n_folds}-fold cross-fitting, {len(records)} replications, {elapsed / 60:.1f} min. Out-of-fold "
             "uplift scored against the true uplift; paired difference nested − shared with its 95% CI.", "",
             "| learner | metric | shared | nested | nested − shared [95% CI] |", "|---|---|---:|---:|---|"]
    for key, r in summary.items():
        name, metric = key.split("_", 1)
        lines.append(f"| {name} | {'√PEHE' if metric == 'pehe' else 'mean bias'} | {r['mean_shared']:.5f} "
                     f"| {r['mean_nested']:.5f} | {r['diff']:+.5f} [{r['lower']:+.5f}, {r['upper']:+.5f}] |")
    same = sum(r["ate_identical"] for r in records)
    lines += ["", f"AIPW ATE identical in both fits in {same} of {len(records)} replications (it uses the "
              "out-of-fold nuisances, not the learners' nested ones), so the ATE's coverage cannot change."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "nested.md").write_text(text)
    (RESULTS / "nested.json").write_text(json.dumps({"args": vars(args), "summary": summary, "records": records},
                                                    indent=1))


if __name__ == "__main__":
    main()

"""No regression at scale: held-out PEHE and policy value of the default study on 100k-row simulated campaigns.

One randomised and one observational ``uplift.simulate_campaign`` (binary conversion) of ``--n`` training rows,
scored on ``--test-rows`` fresh customers of the same design whose true uplift is known:

* **√PEHE** of the chosen model's predicted uplift against the true uplift;
* **policy value**: the mean true uplift of the top ``--k`` share of the held-out customers ranked by the
  predicted uplift (what targeting them would gain per customer targeted, in conversion).

Both come with 95% bootstrap CIs over the held-out customers. Run it once per checkout to compare two versions
(``--repo`` picks the checkout whose ``uplift`` is imported; the simulated data do not depend on it)::

    python benchmarks/at_scale.py --repo /path/to/main --tag main
    python benchmarks/at_scale.py --tag branch --compare benchmarks/results/at_scale_main.json

Results go to ``benchmarks/results/at_scale_<tag>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # this folder's coverage.py shadows numba's


def policy_value(u, tau, k):
    import numpy as np

    top = np.argsort(-u, kind="stable")[: int(round(k * len(u)))]
    return float(np.mean(tau[top]))


def run(design: str, n: int, n_test: int, seed: int, k: float, n_boot: int, save: Path | None = None) -> dict:
    import numpy as np

    from uplift import Study, simulate_campaign

    df = simulate_campaign(n + n_test, design=design, seed=seed)
    train, test = df.iloc[:n].reset_index(drop=True), df.iloc[n:].reset_index(drop=True)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")] + ["revenue"]
    t0 = time.perf_counter()
    study = Study(train, treatment="treatment", outcome="conversion", id="customer_id", exclude=truth,
                  design=design).fit()
    seconds = time.perf_counter() - t0
    u = study.predict_uplift(test)["uplift"].to_numpy()
    tau = test["true_uplift"].to_numpy()
    if save is not None:  # every learner's out-of-fold and held-out uplift, to score other selection rules
        import importlib.util

        # by file, not `benchmarks._arrays`: --repo may put an older checkout's benchmarks/ first on sys.path
        spec = importlib.util.spec_from_file_location("benchmarks_arrays", HERE / "_arrays.py")
        arrays = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(arrays)
        held_out = {name: study.predict_uplift(test, learner=name)["uplift"].to_numpy()
                    for name in study.result.crossfit.uplift}
        arrays.save_fit_arrays(save / f"at_scale_{design}_{n}.npz", study, held_out, tau, k=k)
    rng = np.random.default_rng(seed)
    boots = rng.integers(0, len(u), size=(n_boot, len(u)))
    pehe = [float(np.sqrt(np.mean((u[b] - tau[b]) ** 2))) for b in boots]
    value = [policy_value(u[b], tau[b], k) for b in boots]
    return {"design": design, "n": n, "chosen": study.result.best_learner, "seconds": seconds,
            "pehe": float(np.sqrt(np.mean((u - tau) ** 2))), "pehe_ci": list(np.percentile(pehe, [2.5, 97.5])),
            "policy_value": policy_value(u, tau, k), "policy_value_ci": list(np.percentile(value, [2.5, 97.5])),
            "predictions": u.astype("float32").tolist()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(HERE.parent), help="checkout whose uplift package is measured")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--test-rows", type=int, default=50_000)
    ap.add_argument("--designs", default="rct,observational")
    ap.add_argument("--k", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--tag", default="current")
    ap.add_argument("--compare", help="another run's .json: add the paired differences to it")
    ap.add_argument("--save-arrays", type=Path, default=None,
                    help="folder for each design's out-of-fold and held-out predictions (.npz)")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.repo)
    warnings.filterwarnings("ignore")
    import numpy as np

    runs = [run(d, args.n, args.test_rows, args.seed, args.k, args.n_boot, args.save_arrays)
            for d in args.designs.split(",")]
    lines = [f"## At scale: the default study on {args.n:,}-row simulated campaigns ({args.tag})", "",
             f"`simulate_campaign(n={args.n} + {args.test_rows}, design=…, seed={args.seed})`, outcome conversion; "
             f"the first {args.n:,} rows train `Study.fit()`, the last {args.test_rows:,} are scored. Policy value: "
             f"mean true uplift of the top {args.k:.0%} by predicted uplift. 95% bootstrap CIs over held-out "
             f"customers ({args.n_boot} resamples). Checkout: `{args.repo}`.", "",
             "| design | chosen | fit s | √PEHE [95% CI] | policy value [95% CI] |", "|---|---|---:|---|---|"]
    for r in runs:
        lines.append(f"| {r['design']} | {r['chosen']} | {r['seconds']:.0f} | {r['pehe']:.5f} "
                     f"[{r['pehe_ci'][0]:.5f}, {r['pehe_ci'][1]:.5f}] | {r['policy_value']:.5f} "
                     f"[{r['policy_value_ci'][0]:.5f}, {r['policy_value_ci'][1]:.5f}] |")
    if args.compare:
        other = {r["design"]: r for r in json.loads(Path(args.compare).read_text())["runs"]}
        lines += ["", f"Paired against `{args.compare}` (this − that, same held-out customers, 95% bootstrap CI):", "",
                  "| design | Δ √PEHE [95% CI] | Δ policy value [95% CI] |", "|---|---|---|"]
        from uplift import simulate_campaign

        for r in runs:
            o = other.get(r["design"])
            if o is None:
                continue
            tau = simulate_campaign(args.n + args.test_rows, design=r["design"], seed=args.seed)[
                "true_uplift"].to_numpy()[args.n:]
            u, v = np.asarray(r["predictions"]), np.asarray(o["predictions"])
            boots = np.random.default_rng(args.seed).integers(0, len(u), size=(args.n_boot, len(u)))
            d_pehe = [np.sqrt(np.mean((u[b] - tau[b]) ** 2)) - np.sqrt(np.mean((v[b] - tau[b]) ** 2)) for b in boots]
            d_val = [policy_value(u[b], tau[b], args.k) - policy_value(v[b], tau[b], args.k) for b in boots]
            lo, hi = np.percentile(d_pehe, [2.5, 97.5])
            vlo, vhi = np.percentile(d_val, [2.5, 97.5])
            lines.append(f"| {r['design']} | {r['pehe'] - o['pehe']:+.5f} [{lo:+.5f}, {hi:+.5f}] | "
                         f"{r['policy_value'] - o['policy_value']:+.5f} [{vlo:+.5f}, {vhi:+.5f}] |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = HERE / "results"
    (out / f"at_scale_{args.tag}.md").write_text(text)
    (out / f"at_scale_{args.tag}.json").write_text(json.dumps({"args": vars(args), "runs": runs}, default=str))


if __name__ == "__main__":
    main()

"""Do the 95% CIs of ``Study.ate()`` cover the true average effect 95% of the time?

For each replication a fresh campaign is simulated (``uplift.simulate_campaign``, a new seed each time) and
the average effects are estimated by exactly the code path :meth:`uplift.Study.fit` uses
(:func:`uplift.data.campaign.campaign_data` → :func:`uplift.fit.crossfit.cross_fit` with the T-learner nuisances →
:func:`uplift.effects.average.average_effects`): difference in means with the Neyman standard error for an RCT,
cross-fitted AIPW with the influence-function standard error for an observational design (the naive
difference in means is scored too, to show what the adjustment fixes). The first replication of each design
is also run through ``Study.fit`` itself and must give the same numbers.

The target is the *population* effect: ATE = E[τ(X)], ATT = E[τ(X) | T = 1] = E[e(X) τ(X)] / E[e(X)],
computed once from a large draw of the simulator (its ``true_uplift`` and ``propensity`` columns). Coverage
of the in-sample mean of ``true_uplift`` (a conditional target, for which the CIs are conservative) is
reported alongside.

Run::

    python benchmarks/coverage.py                    # 200 replications per design, n = 5000
    python benchmarks/coverage.py --reps 50 --time-budget 600

Results go to ``benchmarks/results/coverage.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Python puts this script's folder first on sys.path, where coverage.py would shadow the `coverage` package
# that numba (imported by causalml/shap) looks for: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

sys.path.insert(0, str(HERE.parent))

from uplift import Study, simulate_campaign  # noqa: E402
from uplift._stats import Z95  # noqa: E402
from uplift.data.campaign import campaign_data  # noqa: E402
from uplift.effects.average import aipw_ate, average_effects  # noqa: E402
from uplift.fit.crossfit import cross_fit  # noqa: E402

RESULTS = HERE / "results"
OUTCOME = "conversion"
DIAGNOSTIC = "AIPW with the true propensity (diagnostic)"


def truth_columns(df) -> list[str]:
    return [c for c in df.columns if c.startswith("true_") or c.startswith("propensity")]


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n.

    Examples
    --------
    >>> lo, hi = wilson(190, 200)
    >>> round(lo, 3), round(hi, 3)
    (0.91, 0.973)
    """
    if n == 0:
        return float("nan"), float("nan")
    z = norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return float(centre - half), float(centre + half)


def population_truth(design: str, n: int, seed: int) -> dict[str, float]:
    """Population ATE and ATT of the simulator, from one large draw (Monte Carlo error ~ sd(τ)/√n)."""
    df = simulate_campaign(n, design=design, n_arms=1, seed=seed)
    tau, e = df["true_uplift"].to_numpy(), df["propensity"].to_numpy()
    return {"ATE": float(tau.mean()), "ATT": float((e * tau).sum() / e.sum())}


def estimate(df, design: str, n_folds: int, seed: int):
    """Average-effects table by the same steps as ``Study.fit`` (T-learner nuisances only).

    Returns the table and, for an observational design, diagnostic rows: AIPW with the same cross-fitted
    outcome models but the simulator's *true* propensity, which separates propensity-model error from the
    rest when coverage falls short.
    """
    data = campaign_data(df, "treatment", OUTCOME, id="customer_id", exclude=truth_columns(df) + ["revenue"],
                         design=design)
    mu = e = None
    diagnostic = []
    y = data.outcomes[OUTCOME]
    if design == "observational":
        cf = cross_fit(data, learners=("t",), n_folds=n_folds, random_state=seed)
        mu, e = cf.mu, cf.e
        t, e_true = data.treatment.astype(float), df["propensity"].to_numpy()
        for target in ("ate", "att"):
            est, se = aipw_ate(y, t, mu[:, 0], mu[:, 1], e_true, target=target)
            diagnostic.append({"estimand": target.upper(), "method": DIAGNOSTIC, "estimate": est, "se": se,
                               "lower": est - Z95 * se, "upper": est + Z95 * se})
    table = average_effects(y, data.treatment, data.arms, outcome=OUTCOME, kind=data.outcome_kinds[OUTCOME],
                            design=design, mu=mu, e=e)
    return table, diagnostic


def check_against_study(df, design: str, n_folds: int, seed: int, table) -> float:
    """Largest absolute difference between this script's estimates and ``Study.ate()`` on the same data."""
    study = Study(df, treatment="treatment", outcome=OUTCOME, id="customer_id",
                  exclude=truth_columns(df) + ["revenue"], design=design)
    study.fit(learners=["t"], n_folds=n_folds, random_state=seed, n_boot=20)
    ref = study.ate().set_index("estimand")
    mine = table.set_index("estimand")
    cols = ["estimate", "lower", "upper"]
    return float(np.abs(ref.loc[mine.index, cols].to_numpy() - mine[cols].to_numpy()).max())


def summarise(records: list[dict], truth: dict[str, float]) -> list[dict]:
    rows = []
    keys = sorted({(r["estimand"], r["method"]) for r in records}, key=lambda k: (k[0] != "ATE", k))
    for estimand, method in keys:
        rs = [r for r in records if r["estimand"] == estimand and r["method"] == method]
        target = truth["ATE" if estimand == "naive" else estimand]
        est = np.array([r["estimate"] for r in rs])
        lo, hi = np.array([r["lower"] for r in rs]), np.array([r["upper"] for r in rs])
        se = np.array([r["se"] for r in rs])
        sample = np.array([r["sample_truth_" + ("ATE" if estimand == "naive" else estimand)] for r in rs])
        hits = int(((lo <= target) & (target <= hi)).sum())
        hits_sample = int(((lo <= sample) & (sample <= hi)).sum())
        k = len(rs)
        rows.append({
            "estimand": estimand, "method": method, "reps": k, "truth": target,
            "coverage": hits / k, "coverage_ci": wilson(hits, k),
            "coverage_sample_target": hits_sample / k, "coverage_sample_target_ci": wilson(hits_sample, k),
            "mean_width": float((hi - lo).mean()),
            "bias": float(est.mean() - target),
            "bias_mc_se": float(est.std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0,
            "rmse": float(np.sqrt(np.mean((est - target) ** 2))),
            "se_over_sd": float(se.mean() / est.std(ddof=1)) if k > 1 else float("nan"),
        })
    return rows


def render(summary: dict, args, elapsed: float, checks: dict) -> str:
    lines = [
        "## ATE/ATT 95% CI coverage",
        "",
        f"`simulate_campaign(n={args.n}, design=…, seed={args.seed}+rep)`, outcome `{OUTCOME}`; "
        f"observational AIPW with {args.n_folds}-fold cross-fitted LightGBM nuisances (T-learner outcome "
        f"models + propensity). Population truth from {args.truth_n:,} simulated rows. "
        f"{elapsed / 60:.1f} min in total; uplift at `{git_state()}`.",
        "",
        "| design | estimand | method | reps | truth | coverage [Wilson 95%] | coverage of in-sample mean τ "
        "| mean CI width | bias (± MC se) | RMSE | mean SE / SD(est) |",
        "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for design, rows in summary.items():
        for r in rows:
            lo, hi = r["coverage_ci"]
            slo, shi = r["coverage_sample_target_ci"]
            lines.append(
                f"| {design} | {r['estimand']} | {r['method']} | {r['reps']} | {r['truth']:.4f} "
                f"| {r['coverage']:.3f} [{lo:.3f}, {hi:.3f}] "
                f"| {r['coverage_sample_target']:.3f} [{slo:.3f}, {shi:.3f}] | {r['mean_width']:.4f} "
                f"| {r['bias']:+.4f} ± {r['bias_mc_se']:.4f} | {r['rmse']:.4f} | {r['se_over_sd']:.2f} |")
    agreement = ", ".join(f"{d}: {v:.1e}" for d, v in checks.items())
    lines += ["", f"Agreement with `Study.fit(learners=['t'], n_folds={args.n_folds}).ate()` on "
              f"replication 0 (max |diff| of estimate/lower/upper): {agreement}.",
              "", "Nominal coverage is 0.95. The naive row (observational only) is the unadjusted difference "
              "in means scored against the ATE: its undercoverage is the confounding AIPW removes. The "
              "diagnostic rows reuse the same cross-fitted outcome models with the simulator's true "
              "propensity (not available on real data): if they cover and the estimated-propensity rows do "
              "not, the shortfall comes from the propensity model."]
    return "\n".join(lines) + "\n"


def git_state() -> str:
    """Commit of the checkout being measured, with ``+dirty`` when it has uncommitted changes."""
    import subprocess

    try:
        git = ["git", "-C", str(HERE.parent)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "uplift"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replications per design")
    ap.add_argument("--n", type=int, default=5000, help="customers per simulated campaign")
    ap.add_argument("--designs", default="rct,observational")
    ap.add_argument("--n-folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=10_000)
    ap.add_argument("--truth-n", type=int, default=2_000_000, help="rows of the draw that fixes the truth")
    ap.add_argument("--tag", default="", help="suffix for the result files (coverage_<tag>.md)")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="stop starting new replications after this many seconds "
                    "(every design gets the same count)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    designs = args.designs.split(",")
    start = time.perf_counter()
    truth = {d: population_truth(d, args.truth_n, seed=7) for d in designs}
    print("population truth:", json.dumps(truth), flush=True)
    records: dict[str, list[dict]] = {d: [] for d in designs}
    checks: dict[str, float] = {}
    for rep in range(args.reps):
        if args.time_budget is not None and time.perf_counter() - start > args.time_budget:
            print(f"time budget reached after {rep} replications per design", flush=True)
            break
        for design in designs:
            seed = args.seed + rep
            df = simulate_campaign(args.n, design=design, n_arms=1, seed=seed)
            table, diagnostic = estimate(df, design, args.n_folds, seed)
            if rep == 0:
                checks[design] = check_against_study(df, design, args.n_folds, seed, table)
            tau, t = df["true_uplift"].to_numpy(), df["treatment"].to_numpy() == 1
            sample = {"sample_truth_ATE": float(tau.mean()), "sample_truth_ATT": float(tau[t].mean())}
            cols = ["estimand", "method", "estimate", "se", "lower", "upper"]
            for r in table[cols].to_dict("records") + diagnostic:
                records[design].append({"rep": rep, **r, **sample})
        if (rep + 1) % 10 == 0:
            ate = [r for r in records[designs[-1]] if r["estimand"] == "ATE" and r["method"] != DIAGNOSTIC]
            cov = np.mean([r["lower"] <= truth[designs[-1]]["ATE"] <= r["upper"] for r in ate])
            print(f"{rep + 1} reps, {time.perf_counter() - start:.0f} s; {designs[-1]} ATE coverage so far "
                  f"{cov:.3f}", flush=True)
    elapsed = time.perf_counter() - start
    summary = {d: summarise(records[d], truth[d]) for d in designs}
    text = render(summary, args, elapsed, checks)
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = f"coverage_{args.tag}" if args.tag else "coverage"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"args": vars(args), "uplift_commit": git_state(), "truth": truth, "summary": summary,
         "study_agreement": checks, "elapsed_seconds": elapsed, "records": records}, indent=1))


if __name__ == "__main__":
    main()

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
import pandas as pd  # noqa: E402
from scipy.stats import norm  # noqa: E402

sys.path.insert(0, str(HERE.parent))

from benchmarks._provenance import git_state  # noqa: E402
from uplift import Study, simulate_campaign  # noqa: E402
from uplift._stats import Z95  # noqa: E402
from uplift.data.campaign import campaign_data  # noqa: E402
from uplift.design.checks import crump_bounds  # noqa: E402
from uplift.effects.average import aipw_ate, average_effects  # noqa: E402
from uplift.fit.crossfit import cross_fit  # noqa: E402
from uplift.fit.nuisance import calibrate_out_of_fold  # noqa: E402

RESULTS = HERE / "results"
OUTCOME = "conversion"
DIAGNOSTIC = "AIPW with the true propensity (diagnostic)"
CALIBRATED = "AIPW, propensity Platt-calibrated out of fold (candidate)"
HEADLINE = "the row the study leads with"


#: Variants of the weak-overlap design (``weak_overlap_campaign(variant=...)``), so a fix is not tuned to one.
OVERLAP_VARIANTS = ("tanh", "independent", "steep")


def weak_overlap_campaign(n: int, seed: int, variant: str = "tanh") -> pd.DataFrame:
    """A targeted campaign with weak overlap: propensities run from 0.001 to 0.999 (about 15% of customers
    below 0.01 or above 0.99), binary conversion, the uplift rising with the same feature that drives the
    targeting (so the all-customer ATE and the overlap population's effect differ).

    ``variant``: ``"tanh"`` (the above); ``"independent"``: the same targeting, but the uplift driven by
    features the targeting ignores (x3, x4) plus a small part of x1; ``"steep"``: a steeper targeting rule
    (about 37% of customers beyond 0.01/0.99) and an uplift linear in x1 and x3.

    Columns: ``customer_id``, ``x1``..``x5``, ``region``, ``treatment``, ``conversion``, ``true_uplift``
    (p1 − p0 of the row) and ``propensity`` (the true one).

    Examples
    --------
    >>> df = weak_overlap_campaign(20_000, seed=0)
    >>> round(float(df["propensity"].min()), 3), round(float(df["propensity"].max()), 3)
    (0.001, 0.999)
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    region = rng.choice(np.array(["north", "south", "east"], dtype=object), n)
    if variant not in OVERLAP_VARIANTS:
        raise ValueError(f"variant must be one of {OVERLAP_VARIANTS}, got {variant!r}")
    logit_e = (5.0 if variant == "steep" else 3.0) * x[:, 0] - 1.0 * x[:, 1] + 0.5 * (region == "north") - 0.2
    e = np.clip(1.0 / (1.0 + np.exp(-logit_e)), 0.001, 0.999)
    p0 = 1.0 / (1.0 + np.exp(-(-3.0 + 0.8 * x[:, 0] + 0.6 * x[:, 2])))
    if variant == "tanh":
        tau_raw = 0.02 + 0.02 * np.tanh(x[:, 0]) + 0.015 * (x[:, 3] > 0) - 0.01 * (region == "south")
    elif variant == "independent":
        tau_raw = 0.02 + 0.004 * x[:, 0] + 0.015 * np.tanh(x[:, 3]) + 0.01 * (x[:, 4] > 0.5)
    else:
        tau_raw = np.maximum(0.025 + 0.008 * x[:, 0] + 0.01 * x[:, 2], -0.01)
    p1 = np.clip(p0 + tau_raw, 0.0, 1.0)
    t = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < np.where(t == 1, p1, p0)).astype(int)
    df = pd.DataFrame(x.astype(np.float32), columns=[f"x{j + 1}" for j in range(5)])
    df.insert(0, "customer_id", np.arange(1, n + 1))
    df["region"] = region
    df["treatment"], df["conversion"] = t, y
    df["true_uplift"], df["propensity"] = p1 - p0, e
    return df


def simulate(design: str, n: int, seed: int):
    """One replication's campaign: ``simulate_campaign`` for ``rct``/``observational``, the weak-overlap
    simulator for ``weak_overlap`` (analysed as observational)."""
    if design == "weak_overlap":
        return weak_overlap_campaign(n, seed)
    return simulate_campaign(n, design=analysed_as(design), n_arms=1, seed=seed)


def analysed_as(design: str) -> str:
    return "observational" if design in ("weak_overlap", "small_observational") else design


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
    """Population ATE and ATT of the simulator, from one large draw (Monte Carlo error ~ sd(τ)/√n); for the
    weak-overlap design also the population analogues of the overlap estimands (trimmed by Crump et al.'s rule
    on the *true* propensity, and overlap-weighted by it)."""
    df = simulate(design, n, seed)  # the truth does not depend on the campaign's size
    tau, e = df["true_uplift"].to_numpy(), df["propensity"].to_numpy()
    out = {"ATE": float(tau.mean()), "ATT": float((e * tau).sum() / e.sum())}
    out.update(segment_means(df, design))
    if design == "weak_overlap":
        lo, hi = crump_bounds(e)
        keep = (e >= lo) & (e <= hi)
        h = e * (1 - e)
        # Reported, not scored: the study's trimmed population is defined by its *estimated* propensity.
        out.update(trimmed_by_true_e=float(tau[keep].mean()), ATO_by_true_e=float((h * tau).sum() / h.sum()))
    return out


def sample_truths(df, e_hat: np.ndarray | None, table) -> dict[str, float]:
    """This replication's own targets: the in-sample mean τ of everyone, of the treated, and, for the overlap
    estimands, of the customers the study kept (its Crump bounds on its estimated propensity) and weighted by
    its estimated e(1 − e). The trimmed population is defined by the data, so these are its estimands."""
    tau, t = df["true_uplift"].to_numpy(), df["treatment"].to_numpy() == 1
    out = {"sample_truth_ATE": float(tau.mean()), "sample_truth_ATT": float(tau[t].mean())}
    if e_hat is not None and "trim_lower" in table:
        ate = table[table["estimand"] == "ATE"].iloc[0]
        keep = (e_hat >= ate["trim_lower"]) & (e_hat <= ate["trim_upper"])
        h = e_hat * (1 - e_hat)
        out.update(sample_truth_trimmed=float(tau[keep].mean()), sample_truth_ATO=float((h * tau).sum() / h.sum()))
    headline = table[table["headline"]].iloc[0]["estimand"]
    out["sample_truth_headline"] = out[f"sample_truth_{headline}"]
    return out


def estimate(df, design: str, n_folds: int, seed: int, with_study: bool = False):
    """Average-effects table by the same steps as ``Study.fit`` (T-learner nuisances only).

    Returns the table, for an observational design diagnostic rows (AIPW with the same cross-fitted outcome
    models but the simulator's *true* propensity, which separates propensity-model error from the rest when
    coverage falls short), the out-of-fold propensity (None for an RCT) and, with ``with_study`` (observational
    designs), the fitted :class:`~uplift.Study` whose nuisances these are (else None).
    """
    exclude = [c for c in truth_columns(df) + ["revenue"] if c in df]
    data = campaign_data(df, "treatment", OUTCOME, id="customer_id", exclude=exclude, design=design)
    mu = e = study = None
    diagnostic = []
    y = data.outcomes[OUTCOME]
    if design == "observational" and with_study:
        # The study's own fit (T-learner only, the same folds and seeds as cross_fit below: replication 0's
        # agreement check holds it to that), so its segments and targeting list can be scored as well.
        study = Study(df, treatment="treatment", outcome=OUTCOME, id="customer_id", exclude=exclude,
                      design=design).fit(learners=["t"], n_folds=n_folds, random_state=seed, n_boot=20)
        cf = study.result.crossfit
        mu, e = cf.mu, cf.e
    elif design == "observational":
        cf = cross_fit(data, learners=("t",), n_folds=n_folds, random_state=seed)
        mu, e = cf.mu, cf.e
    if design == "observational":
        t, e_true = data.treatment.astype(float), df["propensity"].to_numpy()
        # A candidate fix, measured before it is made: the same out-of-fold propensity, Platt-calibrated on
        # the logit scale by calibrators fitted on the other folds (as the design checks' propensity is).
        e_cal = calibrate_out_of_fold(e[:, 1].astype(np.float64), t, cf.folds)
        for method, e_used in ((DIAGNOSTIC, e_true), (CALIBRATED, e_cal)):
            for target in ("ate", "att"):
                est, se = aipw_ate(y, t, mu[:, 0], mu[:, 1], e_used, target=target)
                diagnostic.append({"estimand": target.upper(), "method": method, "estimate": est, "se": se,
                                   "lower": est - Z95 * se, "upper": est + Z95 * se})
    table = average_effects(y, data.treatment, data.arms, outcome=OUTCOME, kind=data.outcome_kinds[OUTCOME],
                            design=design, mu=mu, e=e)
    return table, diagnostic, None if e is None else e[:, 1].astype(np.float64), study


#: Segments scored per design (column: None for its categories, or the inner edges of fixed numeric bands, so the
#: population truth of each band is defined): the weak-overlap design's x1 drives both targeting and uplift.
SEGMENTS = {"weak_overlap": {"region": None, "x1": [-1.0, 0.0, 1.0]},
            "small_observational": {"channel": None, "region": None}}
#: The targeting list scored: the top LIST_SHARE of customers by predicted uplift (a coupon costs LIST_COST per
#: unit of conversion, so every customer with a predicted uplift above it qualifies).
LIST_SHARE, LIST_COST = 0.2, 0.001


def segment_keys(df, col: str, edges) -> np.ndarray:
    """Each row's segment key: its category, or the index of its band (right-closed, as ``segment_uplift``)."""
    if edges is None:
        return df[col].astype(str).to_numpy()
    return np.searchsorted(np.asarray(edges, dtype=np.float32), df[col].to_numpy(np.float32), side="left")


def segment_means(df, design: str) -> dict[str, float]:
    """Mean true uplift per segment of :data:`SEGMENTS`, keyed ``"col=key"``."""
    out = {}
    tau = df["true_uplift"].to_numpy()
    for col, edges in SEGMENTS.get(design, {}).items():
        keys = segment_keys(df, col, edges)
        for k in np.unique(keys):
            out[f"{col}={k}"] = float(tau[keys == k].mean())
    return out


def study_checks(study, df, design: str) -> list[dict]:
    """Segment effects (``Study.segments``) and the targeting list's honest value (``Study.target``) of one
    replication, each with its in-sample target: the segment's mean true uplift, the list's summed true uplift."""
    out = []
    tau = df["true_uplift"].to_numpy()
    for col, edges in SEGMENTS.get(design, {}).items():
        table = study.segments([col], **({} if edges is None else {"bins": {col: edges}}), min_size=0)
        keys = segment_keys(df, col, edges)
        present = np.unique(keys)
        for i, row in enumerate(table.itertuples(index=False)):
            key = str(getattr(row, col)) if edges is None else present[i]
            rows = keys == key
            assert rows.sum() == row.n, f"segment {col}={key}: {rows.sum()} rows here, {row.n} in the table"
            out.append({"estimand": f"segment {col}={key}", "label": row.segment, "estimate": row.uplift,
                        "se": row.se, "lower": row.lower, "upper": row.upper, "sample_truth": float(tau[rows].mean()),
                        "key": f"{col}={key}"})
    n_list = int(round(LIST_SHARE * len(df)))
    for skip in (False, True) if design == "weak_overlap" else (False,):
        res = study.target(cost=LIST_COST, value=1.0, max_customers=n_list, skip_extrapolated=skip)
        est = res.summary["estimated"]
        listed = df["customer_id"].isin(res.list["customer_id"]).to_numpy()
        out.append({"estimand": "list value" + (", overlap only" if skip else ""),
                    "label": f"top {LIST_SHARE:.0%} by predicted uplift" + (", skip_extrapolated" if skip else ""),
                    "estimate": est["incremental_outcome"], "se": est["incremental_outcome_se"],
                    "lower": est["incremental_outcome_lower"], "upper": est["incremental_outcome_upper"],
                    "model_expected": res.summary["model_expected"]["incremental_outcome"],
                    "sample_truth": float(tau[listed].sum()), "n_listed": int(listed.sum())})
    return out


def summarise_checks(records: list[dict], population: dict[str, float]) -> list[dict]:
    """Coverage of the segment and list intervals: of the in-sample target, and of the population segment mean."""
    rows = []
    for estimand in dict.fromkeys(r["estimand"] for r in records):
        rs = [r for r in records if r["estimand"] == estimand and np.isfinite(r["lower"])]
        if not rs:
            continue
        lo, hi = np.array([r["lower"] for r in rs]), np.array([r["upper"] for r in rs])
        est, sample = np.array([r["estimate"] for r in rs]), np.array([r["sample_truth"] for r in rs])
        k = len(rs)
        hits = int(((lo <= sample) & (sample <= hi)).sum())
        row = {"estimand": estimand, "label": rs[0]["label"], "reps": k, "truth": float(sample.mean()),
               "coverage_sample": hits / k, "coverage_sample_ci": wilson(hits, k),
               "mean_width": float((hi - lo).mean()), "bias": float((est - sample).mean()),
               "bias_mc_se": float((est - sample).std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0,
               "se_over_sd": float(np.mean([r["se"] for r in rs]) / (est - sample).std(ddof=1)) if k > 1
               else float("nan")}
        key = rs[0].get("key")
        if key in population:
            ph = int(((lo <= population[key]) & (population[key] <= hi)).sum())
            row.update(population_truth=population[key], coverage_population=ph / k,
                       coverage_population_ci=wilson(ph, k))
        if "model_expected" in rs[0]:
            row["model_expected_bias"] = float(np.mean([r["model_expected"] for r in rs]) - sample.mean())
        rows.append(row)
    return rows


def render_checks(summary: dict[str, list[dict]]) -> list[str]:
    """The segment and targeting-list rows of the results table."""
    if not any(summary.values()):
        return []
    lines = ["", "### Segment effects and the targeting list's value", "",
             "`Study.segments([col])` (mean AIPW score per segment; numeric columns in fixed bands) and "
             f"`Study.target(cost={LIST_COST}, value=1, max_customers={LIST_SHARE:.0%} of n)` (honest value: the "
             "doubly-robust value of the same rule on out-of-fold rows) of the same T-learner study. Targets: the "
             "segment's in-sample mean true uplift (and its population mean from the truth draw); the summed true "
             "uplift of the customers on the list (its incremental conversions).", "",
             "| design | estimand | rule | reps | mean target | coverage of in-sample target [Wilson 95%] | "
             "coverage of population mean | mean CI width | bias (± MC se) | mean SE / SD(error) |",
             "|---|---|---|---:|---:|---|---|---:|---:|---:|"]
    for design, rows in summary.items():
        for r in rows:
            lo, hi = r["coverage_sample_ci"]
            pop = (f"{r['coverage_population']:.3f} [{r['coverage_population_ci'][0]:.3f}, "
                   f"{r['coverage_population_ci'][1]:.3f}]" if "coverage_population" in r else "—")
            extra = (f" (model's own expectation: bias {r['model_expected_bias']:+.2f})"
                     if "model_expected_bias" in r else "")
            lines.append(f"| {design} | {r['estimand']} | {r['label']}{extra} | {r['reps']} | {r['truth']:.4g} "
                         f"| {r['coverage_sample']:.3f} [{lo:.3f}, {hi:.3f}] | {pop} | {r['mean_width']:.4g} "
                         f"| {r['bias']:+.4g} ± {r['bias_mc_se']:.2g} | {r['se_over_sd']:.2f} |")
    return lines


def check_against_study(df, design: str, n_folds: int, seed: int, table) -> float:
    """Largest absolute difference between this script's estimates and ``Study.ate()`` on the same data."""
    study = Study(df, treatment="treatment", outcome=OUTCOME, id="customer_id",
                  exclude=[c for c in truth_columns(df) + ["revenue"] if c in df], design=design)
    study.fit(learners=["t"], n_folds=n_folds, random_state=seed, n_boot=20)
    ref = study.ate().set_index("estimand")
    mine = table.set_index("estimand")
    cols = ["estimate", "lower", "upper"]
    return float(np.abs(ref.loc[mine.index, cols].to_numpy() - mine[cols].to_numpy()).max())


def _target_name(estimand: str) -> str:
    return "ATE" if estimand == "naive" else estimand


def summarise(records: list[dict], truth: dict[str, float]) -> list[dict]:
    """Coverage, width, bias and RMSE per estimand and method. The population target is the design's
    ``truth`` (the headline row, whose estimand can change between replications, and estimands without a
    population value are scored against their in-sample target in both columns)."""
    rows = []
    order = {"headline": 0, "ATE": 1, "trimmed": 2, "ATO": 3, "ATT": 4, "naive": 5}
    keys = sorted({(r["estimand"], r["method"]) for r in records}, key=lambda k: (order.get(k[0], 9), k))
    for estimand, method in keys:
        rs = [r for r in records if r["estimand"] == estimand and r["method"] == method]
        name = _target_name(estimand)
        sample = np.array([r["sample_truth_" + name] for r in rs])
        target = np.full(len(rs), truth[name]) if name in truth else sample
        est = np.array([r["estimate"] for r in rs])
        lo, hi = np.array([r["lower"] for r in rs]), np.array([r["upper"] for r in rs])
        se = np.array([r["se"] for r in rs])
        hits = int(((lo <= target) & (target <= hi)).sum())
        hits_sample = int(((lo <= sample) & (sample <= hi)).sum())
        k = len(rs)
        if estimand == "headline":  # which estimand the study led with, and how often
            led = [r["headline_estimand"] for r in rs]
            method = f"{method}: " + ", ".join(f"{e} {led.count(e)}/{k}" for e in dict.fromkeys(led))
        rows.append({
            "estimand": estimand, "method": method, "reps": k,
            "truth": float(target.mean()), "population_truth": name in truth,
            "coverage": hits / k, "coverage_ci": wilson(hits, k),
            "coverage_sample_target": hits_sample / k, "coverage_sample_target_ci": wilson(hits_sample, k),
            "mean_width": float((hi - lo).mean()),
            "bias": float((est - target).mean()),
            "bias_mc_se": float((est - target).std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0,
            "rmse": float(np.sqrt(np.mean((est - target) ** 2))),
            "se_over_sd": float(se.mean() / (est if name in truth else est - sample).std(ddof=1))
            if k > 1 else float("nan"),
        })
    return rows


def render(summary: dict, args, elapsed: float, checks: dict, truth: dict) -> str:
    lines = [
        "## ATE/ATT and overlap-estimand 95% CI coverage",
        "",
        f"`rct`, `observational`: `simulate_campaign(n={args.n}, design=…, seed={args.seed}+rep)`; "
        f"`small_observational`: the same at n={args.small_n}; `weak_overlap`: `weak_overlap_campaign(n={args.n}, "
        f"seed={args.seed}+rep)` (this script; propensities 0.001..0.999), analysed as observational. "
        f"Outcome `{OUTCOME}`; "
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
                f"| {design} | {r['estimand']} | {r['method']} | {r['reps']} "
                f"| {r['truth']:.4f}{'' if r['population_truth'] else ' ¹'} "
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
              "not, the shortfall comes from the propensity model.",
              "", "¹ No population value: scored against the replication's own target in both coverage columns. "
              "`trimmed` is the effect on the customers the study kept (Crump et al.'s bounds on its estimated "
              "propensity), so its target is the mean τ of those customers; `ATO` weights customers by the "
              "estimated e(1 − e). `headline` is whichever row the study leads with (the trimmed effect when the "
              "overlap check fails, the ATE otherwise), scored against that row's target: the interval an analyst "
              "reads first. Population truths: " + "; ".join(
                  f"{d}: " + ", ".join(f"{k} {v:.4f}" for k, v in t.items() if "=" not in k)
                  for d, t in truth.items()) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="replications per design")
    ap.add_argument("--n", type=int, default=5000, help="customers per simulated campaign")
    ap.add_argument("--designs", default="rct,observational,weak_overlap,small_observational",
                    help="comma-separated: rct, observational, weak_overlap (propensities 0.001..0.999, "
                    "analysed as observational), small_observational (simulate_campaign at --small-n rows)")
    ap.add_argument("--small-n", type=int, default=1000, help="customers per small_observational campaign")
    ap.add_argument("--no-study-check", action="store_true", help="skip the Study.fit agreement check")
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
    sizes = {d: args.small_n if d == "small_observational" else args.n for d in designs}
    truth = {d: population_truth(d, args.truth_n, seed=7) for d in designs}
    print("population truth:", json.dumps(truth), flush=True)
    records: dict[str, list[dict]] = {d: [] for d in designs}
    checks: dict[str, float] = {}
    checks_records: dict[str, list[dict]] = {d: [] for d in designs}
    for rep in range(args.reps):
        if args.time_budget is not None and time.perf_counter() - start > args.time_budget:
            print(f"time budget reached after {rep} replications per design", flush=True)
            break
        for design in designs:
            seed = args.seed + rep
            df = simulate(design, sizes[design], seed)
            table, diagnostic, e_hat, study = estimate(df, analysed_as(design), args.n_folds, seed,
                                                       with_study=design in SEGMENTS)
            if study is not None:
                checks_records[design] += [{"rep": rep, **r} for r in study_checks(study, df, design)]
            if rep == 0 and not args.no_study_check:
                checks[design] = check_against_study(df, analysed_as(design), args.n_folds, seed, table)
            sample = sample_truths(df, e_hat, table)
            cols = ["estimand", "method", "estimate", "se", "lower", "upper"]
            headline = table[table["headline"]].iloc[0][cols].to_dict()
            headline.update(estimand="headline", method=HEADLINE, headline_estimand=headline["estimand"])
            for r in table[cols].to_dict("records") + diagnostic:
                records[design].append({"rep": rep, **r, **sample})
            records[design].append({"rep": rep, **headline, **sample})
        if (rep + 1) % 10 == 0:
            last = designs[-1]
            ate = [r for r in records[last] if r["estimand"] == "ATE" and r["method"] not in (DIAGNOSTIC, CALIBRATED)]
            cov = np.mean([r["lower"] <= truth[last]["ATE"] <= r["upper"] for r in ate])
            head = [r for r in records[last] if r["estimand"] == "headline"]
            hcov = np.mean([r["lower"] <= r["sample_truth_headline"] <= r["upper"] for r in head])
            print(f"{rep + 1} reps, {time.perf_counter() - start:.0f} s; {last} ATE coverage so far "
                  f"{cov:.3f}, headline {hcov:.3f}", flush=True)
    elapsed = time.perf_counter() - start
    summary = {d: summarise(records[d], truth[d]) for d in designs}
    checks_summary = {d: summarise_checks(checks_records[d], truth[d]) for d in designs}
    text = render(summary, args, elapsed, checks, truth) + "\n".join(render_checks(checks_summary)) + "\n"
    print()
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = f"coverage_{args.tag}" if args.tag else "coverage"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"args": vars(args), "uplift_commit": git_state(), "truth": truth, "summary": summary,
         "study_agreement": checks, "elapsed_seconds": elapsed, "records": records,
         "segments_and_list": checks_summary, "segments_and_list_records": checks_records}, indent=1))


if __name__ == "__main__":
    main()

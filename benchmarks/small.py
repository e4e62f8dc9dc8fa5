"""Small studies: out-of-sample √PEHE of the default study next to BART, econml's CausalForestDML and the best
single meta-learner, on benchmarks of a few hundred to a few thousand rows, all in one run.

Benchmarks (each replication draws a fresh data set, or fresh outcomes for IHDP, and holds out 20% of its rows
at random; √PEHE is measured on the held-out rows against the true uplift):

- ``ihdp_b``: IHDP response surface B of Hill (2011) on the real IHDP covariates (747 children, 25 covariates,
  a non-linear continuous response), as econml ships it (``econml.data.dgps.ihdp_surface_B``);
- ``nie_wager_a``: setup A of Nie & Wager (2021), "difficult nuisance, easy effect" (n = 1,000, 6 covariates,
  continuous), as causalml ships it (``causalml.dataset.synthetic_data(mode=1)``);
- ``nie_wager_c``: their setup C, "easy propensity, difficult baseline" (n = 1,000, mode 3);
- ``campaign_2k``: this package's simulated coupon campaign, observational design, binary conversion
  (``uplift.simulate_campaign(2000, design="observational")``);
- ``campaign_5k``: the same at 5,000 rows.

Methods, fitted on the same training rows:

- ``default study``: ``Study.fit()`` with its defaults (learners, folds, selection), the model it chose;
- ``best meta-learner``: the best of the study's single learners *on the held-out rows* (an oracle pick: the
  best a single meta-learner of the study could have done);
- ``BART``: stochtree's BART (``BARTModel``, defaults) on (x, treatment), uplift f(x, 1) − f(x, 0), Hill's
  (2011) BART estimator (skipped when stochtree is not installed);
- ``BCF``: stochtree's Bayesian causal forest (``BCFModel``, defaults) with the same out-of-fold-free
  propensity from a logistic regression (skipped without stochtree);
- ``CausalForestDML``: econml's honest causal forest on DML residuals (``discrete_treatment=True``, default
  nuisances, 500 trees).

Run::

    python benchmarks/small.py            # 10 replications per benchmark
    python benchmarks/small.py --reps 3 --benchmarks ihdp_b

Results go to ``benchmarks/results/small.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# This folder's coverage.py would shadow the `coverage` package that numba (under causalml/econml) imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks._arrays import save_fit_arrays  # noqa: E402
from benchmarks._provenance import git_state  # noqa: E402
from uplift import Study, simulate_campaign  # noqa: E402

RESULTS = HERE / "results"
BENCHMARKS = ("ihdp_b", "nie_wager_a", "nie_wager_c", "campaign_2k", "campaign_5k")


def _frame(X: np.ndarray, t: np.ndarray, y: np.ndarray, tau: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(np.asarray(X, dtype=np.float32), columns=[f"x{j}" for j in range(X.shape[1])])
    df["treatment"], df["y"], df["true_uplift"] = np.asarray(t).astype(int), np.asarray(y, dtype=float), tau
    return df


def load(name: str, seed: int) -> tuple[pd.DataFrame, str]:
    """One replication of a benchmark: (frame with ``treatment``, outcome and ``true_uplift``, outcome kind)."""
    if name == "ihdp_b":
        from econml.data.dgps import ihdp_surface_B

        y, t, X, tau = ihdp_surface_B(random_state=seed)
        return _frame(X[:, 1:], t, y, tau), "continuous"  # column 0 is econml's intercept
    if name.startswith("nie_wager"):
        from causalml.dataset import synthetic_data

        np.random.seed(seed)  # noqa: NPY002 - causalml draws from numpy's global generator
        y, X, w, tau, _, _ = synthetic_data(mode=1 if name.endswith("_a") else 3, n=1000, p=6, sigma=1.0)
        return _frame(X, w, y, tau), "continuous"
    n = {"campaign_2k": 2000, "campaign_5k": 5000}[name]
    df = simulate_campaign(n, design="observational", seed=seed)
    features = [c for c in df.columns if c not in ("customer_id", "treatment", "conversion", "revenue", "propensity")
                and not c.startswith("true_")]
    frame = df[features].copy()
    frame["treatment"], frame["y"] = df["treatment"].to_numpy(), df["conversion"].to_numpy()
    frame["true_uplift"] = df["true_uplift"].to_numpy()
    return frame, "binary"


def numeric(df: pd.DataFrame) -> np.ndarray:
    """Features as a float matrix for the peers (categoricals as integer codes)."""
    cols = [c for c in df.columns if c not in ("treatment", "y", "true_uplift")]
    return np.column_stack([df[c].astype("category").cat.codes.to_numpy() if not pd.api.types.is_numeric_dtype(df[c])
                            else df[c].to_numpy(dtype=float) for c in cols]).astype(float)


def pehe(u: np.ndarray, tau: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(u, dtype=float) - tau) ** 2)))


def fit_study(train: pd.DataFrame, test: pd.DataFrame, seed: int, save: Path | None = None) -> dict[str, float]:
    study = Study(train, treatment="treatment", outcome="y", exclude=["true_uplift"], design="observational")
    study.fit(random_state=seed, n_boot=20)
    tau = test["true_uplift"].to_numpy()
    learners = list(study.result.crossfit.learners)
    held_out = {name: study.predict_uplift(test, learner=name)["uplift"].to_numpy()
                for name in study.result.crossfit.uplift}
    single = {name: pehe(held_out[name], tau) for name in learners}
    best = min(single, key=single.get)
    if save is not None:  # what another selection or stacking rule needs, to be scored without refitting
        save_fit_arrays(save, study, held_out, tau)
    return {"default study": pehe(study.predict_uplift(test)["uplift"], tau), "best meta-learner": single[best],
            "_chosen": study.result.best_learner, "_best_single": best}


def fit_bart(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, float]:
    try:
        from stochtree import BARTModel, BCFModel
    except ImportError:
        return {}
    from sklearn.linear_model import LogisticRegression

    X, Xt = numeric(train), numeric(test)
    t, y, tau = train["treatment"].to_numpy(), train["y"].to_numpy(), test["true_uplift"].to_numpy()
    bart = BARTModel()
    bart.sample(X_train=np.column_stack([X, t]), y_train=y, general_params={"random_seed": seed})
    f1 = bart.predict(np.column_stack([Xt, np.ones(len(Xt))]), terms="y_hat", type="mean")
    f0 = bart.predict(np.column_stack([Xt, np.zeros(len(Xt))]), terms="y_hat", type="mean")
    ps = LogisticRegression(max_iter=2000).fit(X, t)
    bcf = BCFModel()
    bcf.sample(X_train=X, Z_train=t, y_train=y, propensity_train=ps.predict_proba(X)[:, 1],
               general_params={"random_seed": seed})
    cate = bcf.predict(Xt, np.ones(len(Xt)), propensity=ps.predict_proba(Xt)[:, 1], terms="cate", type="mean")
    return {"BART": pehe(f1 - f0, tau), "BCF": pehe(np.ravel(cate), tau)}


def fit_causal_forest(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> dict[str, float]:
    from econml.dml import CausalForestDML

    cf = CausalForestDML(discrete_treatment=True, n_estimators=500, random_state=seed)
    cf.fit(train["y"].to_numpy(), train["treatment"].to_numpy(), X=numeric(train))
    return {"CausalForestDML": pehe(cf.effect(numeric(test)), test["true_uplift"].to_numpy())}




METHODS = ("default study", "best meta-learner", "BART", "BCF", "CausalForestDML")


def render(records: dict[str, list[dict]], args, elapsed: float) -> str:
    lines = ["## Small studies: held-out √PEHE (mean over replications ± standard error)", "",
             f"{args.reps} replications per benchmark, 20% of the rows held out at random; {elapsed / 60:.1f} min; "
             f"uplift at `{git_state()}`. Lower is better. The last columns are the paired difference default "
             "study − peer (negative: the study is better) with its 95% CI. See the module docstring of "
             "`benchmarks/small.py` for the benchmarks and methods.", "",
             "| benchmark | rows | " + " | ".join(METHODS) + " | study − BART | study − CausalForestDML | chosen |",
             "|---|---:|" + "---:|" * len(METHODS) + "---|---|---|"]
    for name, recs in records.items():
        cells = []
        for m in METHODS:
            vals = np.array([r[m] for r in recs if m in r])
            cells.append("n/a" if len(vals) == 0 else
                         f"{vals.mean():.4g} ± {vals.std(ddof=1) / np.sqrt(len(vals)) if len(vals) > 1 else 0:.2g}")
        diffs = []
        for peer in ("BART", "CausalForestDML"):
            d = np.array([r["default study"] - r[peer] for r in recs if peer in r])
            if len(d) < 2:
                diffs.append("n/a")
                continue
            se = d.std(ddof=1) / np.sqrt(len(d))
            diffs.append(f"{d.mean():+.3g} [{d.mean() - 1.96 * se:+.3g}, {d.mean() + 1.96 * se:+.3g}]")
        chosen = pd.Series([r["_chosen"] for r in recs]).value_counts()
        lines.append(f"| {name} | {recs[0]['_rows']} | " + " | ".join(cells) + f" | {diffs[0]} | {diffs[1]} | "
                     + ", ".join(f"{k} {v}" for k, v in chosen.items()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--benchmarks", default=",".join(BENCHMARKS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="suffix for the result files (small_<tag>.md)")
    ap.add_argument("--study-only", action="store_true",
                    help="skip BART, BCF and CausalForestDML (the quick loop of a selection rule)")
    ap.add_argument("--save-arrays", type=Path, default=None,
                    help="folder for each replication's out-of-fold and held-out predictions (.npz)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    records: dict[str, list[dict]] = {}
    for name in args.benchmarks.split(","):
        records[name] = []
        for rep in range(args.reps):
            seed = args.seed + rep
            df, _ = load(name, seed)
            test = np.random.default_rng([seed, 20]).random(len(df)) < 0.2
            train, held = df[~test].reset_index(drop=True), df[test].reset_index(drop=True)
            rec = {"rep": rep, "_rows": len(df)}
            save = None if args.save_arrays is None else args.save_arrays / f"{name}_{seed}.npz"
            for fit in (fit_study,) if args.study_only else (fit_study, fit_bart, fit_causal_forest):
                t0 = time.perf_counter()
                rec.update(fit(train, held, seed, save) if fit is fit_study else fit(train, held, seed))
                rec[f"_seconds_{fit.__name__}"] = time.perf_counter() - t0
            records[name].append(rec)
            print(name, json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}),
                  flush=True)
    elapsed = time.perf_counter() - start
    text = render(records, args, elapsed)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = f"small_{args.tag}" if args.tag else "small"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"args": vars(args), "uplift_commit": git_state(),
                                                      "elapsed_seconds": elapsed, "records": records},
                                                     default=str, indent=1))


if __name__ == "__main__":
    main()

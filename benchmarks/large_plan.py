"""Large-study plans: the six-learner, 5-fold study against fewer learners and folds on 1M-row campaigns.

Each variant fits in its own process on 1,000,000 training rows and predicts 50,000 held-out customers with
known uplift; PEHE differences to the six-learner, 5-fold study are paired on the same rows (bootstrap 95% CI).
Datasets: ``observational_<seed>`` / ``rct_<seed>`` (``simulate_campaign``) and ``criteo`` (``scale.py``'s
Criteo-like generator, conversion outcome, known design propensity). Results: ``benchmarks/results/large_plan.md``
(written from the printout).

Run::

    python benchmarks/large_plan.py observational_7,rct_11
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = Path("/tmp/uplift-large-plan")
SIX = ("t", "x", "dr", "dr_linear", "r", "s")
VARIANTS = {"six_5_folds": {"learners": SIX, "n_folds": 5},
            "x_dr_2_folds": {"learners": ("x", "dr"), "n_folds": 2},
            "x_dr_r_s_2_folds": {"learners": ("x", "dr", "r", "s"), "n_folds": 2}}


def make(name: str) -> Path:
    """Write ``train.parquet`` (1M rows) and ``test.parquet`` (50k rows, with ``true_uplift``) for ``name``."""
    d = WORK / name
    if (d / "test.parquet").exists():
        return d
    d.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(HERE.parent))
    import pandas as pd

    if name == "criteo":
        sys.path.insert(0, str(HERE))
        import scale

        for stem, n, seed in (("train", 1_000_000, 5), ("test", 50_000, 6)):
            raw = d / f"raw_{stem}.parquet"
            scale.generate(raw, n, seed)
            df = pd.read_parquet(raw)
            df["true_uplift"] = pd.read_parquet(d / f"raw_{stem}_truth.parquet")["true_uplift_conversion"].to_numpy()
            df.to_parquet(d / f"{stem}.parquet")
    else:
        from uplift import simulate_campaign

        design, seed = name.split("_")
        df = simulate_campaign(1_050_000, design=design, seed=int(seed))
        df.iloc[:1_000_000].reset_index(drop=True).to_parquet(d / "train.parquet")
        df.iloc[1_000_000:].reset_index(drop=True).to_parquet(d / "test.parquet")
    return d


def fit_one(name: str, variant: str) -> None:
    """Fit one variant (in its own process) and save its held-out predictions and timings."""
    import warnings

    import pandas as pd

    from uplift import Study

    warnings.filterwarnings("ignore")
    d = WORK / name
    train, test = pd.read_parquet(d / "train.parquet"), pd.read_parquet(d / "test.parquet")
    drop = [c for c in train if c.startswith("true_") or c.startswith("propensity")]
    drop += [c for c in ("revenue", "visit") if c in train]
    kw = {"id": "customer_id"} if "customer_id" in train else {}
    if name == "criteo":
        kw["propensity"] = "propensity"
        drop.remove("propensity")
    t0 = time.perf_counter()
    study = Study(train, treatment="treatment", outcome="conversion", exclude=drop, **kw,
                  design="observational" if name.startswith("observational") else "rct")
    study.fit(**VARIANTS[variant])
    pred = study.predict_uplift(test)["uplift"].to_numpy()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    np.save(d / f"{variant}.npy", pred)
    (d / f"{variant}.json").write_text(json.dumps({
        "wall": time.perf_counter() - t0, "cpu": usage.ru_utime + usage.ru_stime, "chosen": study.best_learner_,
        "timings": study.result.timings}))


def main(names: list[str]) -> None:
    import pandas as pd

    for name in names:
        d = make(name)
        tau = pd.read_parquet(d / "test.parquet")["true_uplift"].to_numpy()
        for variant in VARIANTS:
            if not (d / f"{variant}.json").exists():
                subprocess.run([sys.executable, __file__, "--one", name, variant], check=True)
        ref = np.load(d / "six_5_folds.npy")
        rng = np.random.default_rng(0)
        boot = [rng.integers(0, len(tau), len(tau)) for _ in range(200)]

        def pehe(p, rows=slice(None), tau=tau):
            return float(np.sqrt(np.mean((p[rows] - tau[rows]) ** 2)))

        for variant in VARIANTS:
            p, r = np.load(d / f"{variant}.npy"), json.loads((d / f"{variant}.json").read_text())
            k = len(p) // 5
            top = float(tau[np.argsort(-p)[:k]].mean() / np.sort(tau)[::-1][:k].mean())
            diff = [pehe(p, b) - pehe(ref, b) for b in boot]
            print(f"{name} {variant}: wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s, chosen {r['chosen']}, "
                  f"PEHE {pehe(p):.5f}, minus six learners/5 folds {np.mean(diff):+.5f} "
                  f"[{np.percentile(diff, 2.5):+.5f}, {np.percentile(diff, 97.5):+.5f}], top-20% {top:.3f}",
                  flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--one":
        fit_one(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1].split(","))

"""Out-of-fold accuracy of every ``uplift`` learner against the peers' same-named learners, on one split.

One campaign from ``uplift.simulate_campaign(design="rct")`` (outcome ``conversion``; features: everything but
the id, treatment, outcomes and the simulator's truth columns ``true_*``/``propensity*``) whose true
per-customer uplift is known. Every method gives an OUT-OF-FOLD uplift for every customer:

* **ours** — ``Study.fit(learners=["s", "t", "x", "r", "dr", "causal_forest", "uplift_forest"], n_folds=5)``;
  ``study.oof_uplift(name)`` for each learner and for the stacked ``"ensemble"``;
* **peers** — causalml and econml's same-named learners with their default settings (LightGBM
  ``LGBMRegressor``/``LGBMClassifier`` with default parameters wherever the peer needs a base model), each fitted
  on four folds and predicting the fifth, on exactly the folds our study used (``study.crossfit_.folds``) and on
  exactly the feature matrix it built (categoricals as integer codes).

Scores over all customers, out of fold:

* **PEHE** — sqrt(mean((out-of-fold uplift − true uplift)²)), lower is better;
* **Qini** — ``sklift.metrics.qini_auc_score`` of the out-of-fold uplift on the observed outcomes.

Each method runs in a fresh Python process with one thread per library by default (``--threads``; the
machine has 2 cores shared with other work), timed from "data loaded" to "out-of-fold predictions made", and
the 1-minute load average around each run is recorded. The last lines check, per learner name and overall,
that the best of ours has a PEHE no larger than the best same-named peer, with a paired bootstrap CI (over
customers) of the difference.

Run::

    OMP_NUM_THREADS=1 python benchmarks/learners.py                     # 50,000 customers
    python benchmarks/learners.py --n 5000 --methods causalml_t,econml_t  # a quick look

Results go to ``benchmarks/results/learners.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Python puts this script's folder first on sys.path, where coverage.py would shadow the `coverage` package
# that numba (imported by causalml/shap) looks for: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np  # noqa: E402


def _load_peers():
    # benchmarks/ is not a package (and must stay off sys.path, see above): load peers.py by file.
    spec = importlib.util.spec_from_file_location("benchmarks_peers", HERE / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


peers = _load_peers()

REPO = HERE.parent
RESULTS = HERE / "results"
N_FOLDS = 5
SEED = 0
OUTCOME = "conversion"
# Override with UPLIFT_BENCH_LEARNERS=x,dr,dr_linear (inherited by the worker processes) for a quick look.
OUR_LEARNERS = (os.environ.get("UPLIFT_BENCH_LEARNERS", "").split(",") if os.environ.get("UPLIFT_BENCH_LEARNERS")
                else ["s", "t", "x", "r", "dr", "dr_linear", "causal_forest", "uplift_forest"])
#: Learners compared with a peer of another registry name: econml's DRLearner has a linear final stage.
FAMILY = {"dr_linear": "dr"}


@dataclass(frozen=True)
class Method:
    key: str
    name: str  # the registry name of ours it is compared with
    library: str
    label: str
    note: str = ""


PEERS = [
    Method("causalml_s", "s", "causalml", "BaseSRegressor(LGBMRegressor)"),
    Method("econml_s", "s", "econml", "SLearner(LGBMRegressor)"),
    Method("causalml_t", "t", "causalml", "BaseTRegressor(LGBMRegressor)"),
    Method("econml_t", "t", "econml", "TLearner(LGBMRegressor)"),
    Method("causalml_x", "x", "causalml", "BaseXRegressor(LGBMRegressor)", "p = treated share of the training folds"),
    Method("econml_x", "x", "econml", "XLearner(LGBMRegressor)",
           "default propensity_model (LogisticRegression)"),
    Method("causalml_r", "r", "causalml", "BaseRRegressor(LGBMRegressor)",
           "p = treated share of the training folds; random_state=0"),
    Method("causalml_dr", "dr", "causalml", "BaseDRRegressor(LGBMRegressor)",
           "p = treated share of the training folds; seed=0"),
    Method("econml_dr", "dr", "econml", "DRLearner(LGBM nuisances)", "default model_final (linear); random_state=0"),
    Method("econml_dr_lgbm_final", "dr", "econml", "DRLearner(LGBM nuisances, LGBM final)",
           "variant: model_final=LGBMRegressor(); random_state=0"),
    Method("econml_cf", "causal_forest", "econml", "CausalForestDML(LGBM nuisances)",
           "discrete_treatment=True, otherwise defaults (100 trees); random_state=0"),
    Method("causalml_uplift_rf", "uplift_forest", "causalml", "UpliftRandomForestClassifier",
           "defaults (10 trees, max_depth=5, KL); random_state=0"),
    Method("causalml_uplift_rf_100", "uplift_forest", "causalml", "UpliftRandomForestClassifier(100, depth 8)",
           "variant: n_estimators=100, max_depth=8; random_state=0"),
]
BY_KEY = {m.key: m for m in PEERS}


# ----------------------------------------------------------------------------------------------- ours
class _StageTimer:
    """Progress hook that times each step of cross-fitting: shared nuisances, and each learner's final stage.

    Steps of other phases of ``Study.fit`` (design checks, leaderboard, ...) are summed per phase in ``phases``.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        self._phase = ""

    def start(self, total: int, description: str) -> None:
        self._phase, self._t = description, time.perf_counter()

    def advance(self, description: str) -> None:
        now = time.perf_counter()
        seconds, self._t = now - self._t, now
        if self._phase != "cross-fitting":
            self.phases[self._phase] = self.phases.get(self._phase, 0.0) + seconds
            return
        # Descriptions are "fold k/K: outcome and propensity models" or "fold k/K: <name>-learner (<arm>)".
        step = description.split(": ", 1)[-1]
        key = "nuisances" if step.startswith("outcome and propensity") else step.rsplit("-learner", 1)[0]
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds


def source_sha256(package_dir: Path) -> str:
    """Hash of a package's .py files: which code ran, even when the checkout has uncommitted edits."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_ours(directory: Path) -> dict:
    """Fit the study, and store its out-of-fold uplift, folds and feature matrix for the peers."""
    import pandas as pd

    import uplift
    from uplift import Study

    source = source_sha256(Path(uplift.__file__).parent)  # right after import: the code this process runs

    df = pd.read_parquet(directory / "campaign.parquet")
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    timer = _StageTimer()
    t0 = time.perf_counter()
    study = Study(df, treatment="treatment", outcome=OUTCOME, id="customer_id", exclude=truth + ["revenue"],
                  design="rct")
    study.fit(learners=OUR_LEARNERS, n_folds=N_FOLDS, random_state=SEED, progress=timer)
    total = time.perf_counter() - t0
    data = study.data
    # The peers are handed the study's own rows; make sure they are the frame's rows, in order.
    assert np.array_equal(data.outcomes[OUTCOME], df[OUTCOME].to_numpy(np.float64))
    assert np.array_equal(data.treatment, df["treatment"].to_numpy())
    names = list(study.crossfit_.uplift)
    np.savez(directory / "ours_oof.npz", **{name: study.oof_uplift(name)[:, 0] for name in names})
    np.savez(directory / "arrays.npz", X=data.X, t=data.treatment.astype(np.int64),
             y=data.outcomes[OUTCOME].astype(np.float64), folds=study.crossfit_.folds.astype(np.int64))
    board = study.leaderboard()
    return {
        "seconds": total, "stage_seconds": timer.seconds, "phase_seconds": timer.phases,
        "best_learner": study.best_learner_,
        "learners": names, "features": list(study.schema.names), "categorical": sorted(study.schema.categories),
        "ensemble_weights": study.crossfit_.ensemble_weights.get(1, {}), "design": study.design,
        "leaderboard": json.loads(board.to_json(orient="records")), "uplift_source_sha256": source,
    }


# ----------------------------------------------------------------------------------------------- peers
def make_peer(key: str, share: float):
    """A fresh, unfitted peer model (``share`` = treated share of the training folds, the RCT propensity)."""
    reg, clf = peers._lgbm_regressor, peers._lgbm_classifier  # default params, verbose=-1, --threads threads
    if key == "causalml_s":
        from causalml.inference.meta import BaseSRegressor

        return BaseSRegressor(learner=reg())
    if key == "causalml_t":
        from causalml.inference.meta import BaseTRegressor

        return BaseTRegressor(learner=reg())
    if key == "causalml_x":
        from causalml.inference.meta import BaseXRegressor

        return BaseXRegressor(learner=reg())
    if key == "causalml_r":
        from causalml.inference.meta import BaseRRegressor

        return BaseRRegressor(learner=reg(), random_state=SEED)
    if key == "causalml_dr":
        from causalml.inference.meta import BaseDRRegressor

        return BaseDRRegressor(learner=reg())
    if key.startswith("causalml_uplift_rf"):
        from causalml.inference.tree import UpliftRandomForestClassifier

        size = {"n_estimators": 100, "max_depth": 8} if key.endswith("_100") else {}
        return UpliftRandomForestClassifier(control_name="0", random_state=SEED, **size)
    if key == "econml_s":
        from econml.metalearners import SLearner

        return SLearner(overall_model=reg())
    if key == "econml_t":
        from econml.metalearners import TLearner

        return TLearner(models=reg())
    if key == "econml_x":
        from econml.metalearners import XLearner

        return XLearner(models=reg())
    if key.startswith("econml_dr"):
        from econml.dr import DRLearner

        final = {"model_final": reg()} if key.endswith("_lgbm_final") else {}
        return DRLearner(model_propensity=clf(), model_regression=reg(), random_state=SEED, **final)
    if key == "econml_cf":
        from econml.dml import CausalForestDML

        return CausalForestDML(model_y=reg(), model_t=clf(), discrete_treatment=True, random_state=SEED,
                               n_jobs=peers._threads() or -1)
    raise ValueError(f"unknown method {key!r}")


def fit_predict(key: str, model, X: np.ndarray, t: np.ndarray, y: np.ndarray, X_test: np.ndarray,
                share: float) -> np.ndarray:
    """Fit ``model`` on the training folds and return its uplift for the held-out fold."""
    if key.startswith("causalml_uplift_rf"):
        model.fit(X, treatment=np.where(t == 1, "1", "0"), y=y.astype(int))
        return np.asarray(model.predict(X_test)).reshape(len(X_test), -1)[:, 0]
    if key.startswith("causalml"):
        # causalml's default propensity model (ElasticNet LogisticRegressionCV, saga) takes minutes and is
        # pointless in an RCT: every causalml learner that uses a propensity gets the known design one.
        p = {} if key in ("causalml_s", "causalml_t") else {"p": np.full(len(y), share)}
        kw = {"seed": SEED} if key == "causalml_dr" else {}
        model.fit(X=X, treatment=t, y=y, **p, **kw)
        if key == "causalml_r":
            return np.ravel(model.predict(X_test))
        p_test = {"p": np.full(len(X_test), share)} if key == "causalml_x" else {}
        return np.ravel(model.predict(X=X_test, verbose=False, **p_test))
    model.fit(y, t, X=X)
    return np.ravel(model.effect(X_test))


def run_peer(key: str, directory: Path) -> dict:
    a = np.load(directory / "arrays.npz")
    X, t, y, folds = a["X"], a["t"], a["y"], a["folds"]
    oof = np.full(len(y), np.nan)
    fold_seconds = []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        X_train, X_test = X[train], X[test]
        if np.isnan(X).any():  # forests reject NaN: impute the training folds' median (none in this simulator)
            med = np.nan_to_num(np.nanmedian(X_train, axis=0))
            X_train, X_test = np.where(np.isnan(X_train), med, X_train), np.where(np.isnan(X_test), med, X_test)
        share = float(t[train].mean())
        t0 = time.perf_counter()
        model = make_peer(key, share)
        oof[test] = fit_predict(key, model, X_train, t[train], y[train], X_test, share)
        fold_seconds.append(time.perf_counter() - t0)
    np.save(directory / f"oof_{key}.npy", oof)
    return {"seconds": float(sum(fold_seconds)), "fold_seconds": fold_seconds}


def worker(key: str, directory: Path, out: Path) -> None:
    """Run one method in this (fresh) process and write its timing to ``out`` (predictions go to files)."""
    import warnings

    warnings.filterwarnings("ignore")
    # Import the heavy libraries before the clock starts: import time is paid once per session, not per fit.
    if key == "ours":
        sys.path.insert(0, str(REPO))
        import uplift  # noqa: F401
    elif key.startswith("causalml"):
        import causalml.inference.meta
        import causalml.inference.tree  # noqa: F401
    else:
        import econml.dml
        import econml.dr
        import econml.metalearners  # noqa: F401
    result = run_ours(directory) if key == "ours" else run_peer(key, directory)
    peers._shutdown_pools()
    out.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------- parent
def run_method(key: str, directory: Path, timeout: float) -> dict:
    """Run ``key`` in a fresh process (killed with its process group after ``timeout`` seconds).

    While it runs, the machine's 1-minute load average and the process tree's RSS are sampled every second.
    """
    out, err = directory / f"result_{key}.json", directory / f"stderr_{key}.txt"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--data", str(directory),
           "--out", str(out)]
    loads, peak_rss = [os.getloadavg()[0]], 0.0
    start = time.perf_counter()
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=stderr)
        while proc.poll() is None:
            peak_rss = max(peak_rss, peers._tree_rss_mb(proc.pid))
            if time.perf_counter() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # our own session: the worker and its pool only
                proc.wait()
                return {"status": f"did not finish in {timeout:.0f} s", "load": max(loads)}
            time.sleep(1.0)
            loads.append(os.getloadavg()[0])
    # Other work on the machine slows every method; the load average says how much it did during this one.
    res = {"load": max(loads), "load_mean": float(np.mean(loads)), "peak_rss_mb": peak_rss,
           "process_wall_seconds": time.perf_counter() - start}
    if proc.returncode != 0 or not out.exists():
        text = err.read_text(errors="replace")
        tail = text.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"status": f"failed: {tail[0][:200]}", "stderr_tail": text[-3000:], **res}
    return {"status": "ok", **res, **json.loads(out.read_text())}


def pehe(uplift: np.ndarray, tau: np.ndarray) -> float:
    return float(np.sqrt(np.mean((uplift - tau) ** 2)))


def pehe_difference_ci(a: np.ndarray, b: np.ndarray, tau: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """Paired bootstrap (over customers) 95% CI of PEHE(a) − PEHE(b); it ignores refitting noise."""
    ea, eb = (a - tau) ** 2, (b - tau) ** 2
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(tau), len(tau))
        reps[i] = np.sqrt(ea[idx].mean()) - np.sqrt(eb[idx].mean())
    return [float(np.quantile(reps, 0.025)), float(np.quantile(reps, 0.975))]


def score(rows: list[dict], oof: dict[str, np.ndarray], y: np.ndarray, t: np.ndarray, tau: np.ndarray,
          folds: np.ndarray) -> None:
    import warnings

    from sklift.metrics import qini_auc_score

    warnings.filterwarnings("ignore", category=FutureWarning)  # sklearn's stable_cumsum deprecation, inside sklift
    for r in rows:
        u = oof.get(r["id"])
        if u is None:
            continue
        r["pehe"] = pehe(u, tau)
        r["qini"] = float(qini_auc_score(y, u, t))
        r["fold_pehe"] = [pehe(u[folds == k], tau[folds == k]) for k in np.unique(folds)]
        r["mean_uplift"] = float(np.mean(u))


def checks(rows: list[dict], oof: dict[str, np.ndarray], tau: np.ndarray, n_boot: int) -> list[dict]:
    """Per learner name and overall: best of ours vs best same-named peer by out-of-fold PEHE."""
    scored = [r for r in rows if r.get("pehe") is not None]
    names = list(dict.fromkeys(FAMILY.get(name, name) for name in OUR_LEARNERS))
    groups = [(name, [r for r in scored if FAMILY.get(r["name"], r["name"]) == name]) for name in names]
    groups.append(("overall", scored))
    out = []
    for name, group in groups:
        ours = [r for r in group if r["library"] == "uplift"]
        theirs = [r for r in group if r["library"] != "uplift"]
        if not ours or not theirs:
            continue
        a, b = min(ours, key=lambda r: r["pehe"]), min(theirs, key=lambda r: r["pehe"])
        ci = pehe_difference_ci(oof[a["id"]], oof[b["id"]], tau, n_boot, SEED)
        out.append({"name": name, "ours": a["id"], "ours_pehe": a["pehe"], "peer": b["id"], "peer_pehe": b["pehe"],
                    "passed": a["pehe"] <= b["pehe"], "difference_ci": ci})
    return out


def _fmt(x, spec: str, missing: str = "—") -> str:
    return peers._fmt(x, spec, missing)


def render(info: dict, env: dict, ours: dict, rows: list[dict], check_rows: list[dict]) -> str:
    threads = env["threads"] or "library defaults"
    lines = [
        f"## Learners benchmark: out-of-fold PEHE and Qini, {info['n']:,} customers, {N_FOLDS} folds",
        "",
        f"`simulate_campaign(n={info['n']}, design=\"rct\", seed={info['seed']})`, outcome `{OUTCOME}`; treated "
        f"share {info['treated_share']:.3f}, conversion {info['conversion_rate']:.4f}, true ATE "
        f"{info['true_ate']:.4f}, sd of the true uplift {info['true_uplift_sd']:.4f} (the PEHE of predicting "
        f"the ATE for everyone). {len(info['features'])} features: {', '.join(info['features'])}. "
        f"{env['cpus']} CPUs, threads per method: {threads}, Python {env['python']}, uplift at "
        f"`{env['uplift_commit']}`; 1-minute load average {env['load_start']:.1f} at the start, "
        f"{env['load_end']:.1f} at the end.",
        "",
    ]
    if ours.get("status") == "ok":
        stage = ours["stage_seconds"]
        lines += [
            f"Our `Study.fit(learners={OUR_LEARNERS}, n_folds={N_FOLDS})` took {ours['seconds']:.1f} s in all "
            f"(cross-fitting {sum(stage.values()):.1f} s, of which shared nuisance models {stage['nuisances']:.1f} "
            f"s; the rest is design checks, bootstrap leaderboard, calibration, ATE). It selected "
            f"**{ours['best_learner']}**. Peers ran on the study's own folds (`study.crossfit_.folds`) and "
            f"feature matrix. `uplift` source sha256 `{ours['uplift_source_sha256'][:12]}` (its .py files as "
            "imported by the run).",
            "",
        ]
    lines += [
        "| name | library | method | OOF PEHE | OOF Qini | fit s | load | note |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ok = r["status"] == "ok"
        name = f"**{r['name']}** (selected)" if r.get("selected") else r["name"]
        note = r.get("note", "") if ok else r["status"]
        cells = [name, r["library"], r["label"], _fmt(r.get("pehe"), ".5f"), _fmt(r.get("qini"), ".4f"),
                 _fmt(r.get("seconds"), ".1f"), _fmt(r.get("load"), ".1f"), note]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Check (out-of-fold PEHE; CI = paired bootstrap over customers of ours − peer):", ""]
    for c in check_rows:
        verdict = "PASS" if c["passed"] else "FAIL: the peer is more accurate"
        peer = "best peer of any name" if c["name"] == "overall" else "best same-named peer"
        lines.append(f"- {c['name']}: best of ours PEHE {c['ours_pehe']:.5f} ({c['ours']}) "
                     f"{'<=' if c['passed'] else '>'} {peer} {c['peer_pehe']:.5f} ({c['peer']}) — "
                     f"{verdict}; difference 95% CI [{c['difference_ci'][0]:+.5f}, {c['difference_ci'][1]:+.5f}]")
    lines += [
        "",
        "PEHE = sqrt(mean((out-of-fold uplift − true uplift)²)) over all customers; Qini = "
        "`sklift.metrics.qini_auc_score` of the out-of-fold uplift on the observed outcomes. Fit seconds: for a "
        "peer, fitting on four folds and predicting the fifth, summed over the five folds (imports and data "
        "loading excluded); for ours, that learner's final stages summed over the folds plus the shared nuisance "
        "models (fitted once per fold for every learner), and for the ensemble the whole cross-fitting pass. "
        "Every method ran in a fresh process. Load = highest 1-minute load average sampled during the run: above "
        "the threads a method uses, other work competed for the CPUs and its time is inflated. The bootstrap CI covers "
        "the choice of customers, not the randomness of refitting.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="customers to simulate")
    ap.add_argument("--seed", type=int, default=2024, help="simulation seed")
    ap.add_argument("--methods", default="all", help="comma-separated peer keys, or 'all' (ours always runs)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per method before 'did not finish'")
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenMP/BLAS/LightGBM threads per method (0 = library defaults, i.e. all cores)")
    ap.add_argument("--n-boot", type=int, default=500, help="bootstrap resamples for the check CIs")
    ap.add_argument("--tag", default="", help="suffix for the result files (learners_<tag>.md)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, Path(args.data), Path(args.out))
        return

    keys = [m.key for m in PEERS] if args.methods == "all" else list(dict.fromkeys(args.methods.split(",")))
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {', '.join(BY_KEY)}")
    peers.set_threads(args.threads)
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads,
           "versions": peers._versions(), "uplift_commit": peers.git_state(), "load_start": os.getloadavg()[0]}
    RESULTS.mkdir(exist_ok=True)

    sys.path.insert(0, str(REPO))
    from uplift import simulate_campaign

    with tempfile.TemporaryDirectory(prefix="uplift_learners_") as tmp:
        directory = Path(tmp)
        df = simulate_campaign(args.n, design="rct", seed=args.seed)
        df.to_parquet(directory / "campaign.parquet")
        tau = df["true_uplift"].to_numpy(np.float64)
        info = {"n": args.n, "seed": args.seed, "treated_share": float(df["treatment"].mean()),
                "conversion_rate": float(df[OUTCOME].mean()), "true_ate": float(tau.mean()),
                "true_uplift_sd": float(tau.std())}

        print(f"ours: Study.fit(learners={OUR_LEARNERS}) ...", end=" ", flush=True)
        ours = run_method("ours", directory, args.timeout)
        if ours["status"] != "ok":
            print(ours["status"])
            print(ours.get("stderr_tail", ""))
            raise SystemExit("our study failed; nothing to compare against")
        print(f"{ours['seconds']:.1f} s, selected {ours['best_learner']}", flush=True)
        info["features"], info["categorical"] = ours["features"], ours["categorical"]
        with np.load(directory / "ours_oof.npz") as f:
            oof = {f"uplift_{name}": f[name] for name in f.files}
        with np.load(directory / "arrays.npz") as f:
            y, t, folds = f["y"], f["t"], f["folds"]

        stage = ours["stage_seconds"]
        rows = []
        for name in ours["learners"]:
            own = sum(v for k, v in stage.items() if k != "nuisances") if name == "ensemble" else stage[name]
            note = (f"final stage {own:.1f} s + shared nuisances {stage['nuisances']:.1f} s" if name != "ensemble"
                    else "stacked (non-negative) on the out-of-fold DR scores; weights " + ", ".join(
                        f"{k.lstrip('_')} {v:.3f}" for k, v in ours["ensemble_weights"].items()))
            rows.append({"id": f"uplift_{name}", "name": name, "library": "uplift", "label": f"Study learner {name!r}",
                         "status": "ok", "seconds": own + stage["nuisances"], "load": ours["load"],
                         "selected": name == ours["best_learner"], "note": note})
        for key in keys:
            m = BY_KEY[key]
            print(f"{m.library} {m.label} ...", end=" ", flush=True)
            res = run_method(key, directory, args.timeout)
            row = {"id": key, "name": m.name, "library": m.library, "label": m.label, "note": m.note, **res}
            if res["status"] == "ok":
                oof[key] = np.load(directory / f"oof_{key}.npy")
            rows.append(row)
            print(res["status"] if res["status"] != "ok" else f"{res['seconds']:.1f} s (load {res['load']:.1f})",
                  flush=True)

    score(rows, oof, y, t, tau, folds)
    order = {name: i for i, name in enumerate(OUR_LEARNERS + ["ensemble"])}
    rows.sort(key=lambda r: (order.get(r["name"], 99), r["library"] != "uplift"))
    check_rows = checks(rows, oof, tau, args.n_boot)
    env["load_end"] = os.getloadavg()[0]
    table = render(info, env, ours, rows, check_rows)
    print()
    print(table)
    stem = f"learners_{args.tag}" if args.tag else "learners"
    (RESULTS / f"{stem}.md").write_text(table)
    ours_summary = {k: v for k, v in ours.items() if k not in ("features", "categorical")}
    (RESULTS / f"{stem}.json").write_text(json.dumps(
        {"data": info, "env": env, "folds": "study.crossfit_.folds (StratifiedKFold by arm x outcome, seed 0)",
         "ours": ours_summary, "rows": rows, "checks": check_rows}, indent=2))


if __name__ == "__main__":
    main()

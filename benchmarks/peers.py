"""Speed, memory and accuracy of ``uplift`` against peer libraries on one simulated campaign.

Every method is fitted on the same training rows of ``uplift.simulate_campaign(design="rct")`` and scored on
the same held-out rows, whose true per-customer uplift is known:

* **PEHE** — root mean squared error of the predicted uplift against the true uplift (lower is better);
* **Qini** — scikit-uplift's ``qini_auc_score`` of the predicted uplift on the held-out outcomes.

Each method runs in a fresh Python process (so one method's caches, threads and imports cannot flatter or
penalise another), timed from "data loaded" to "held-out predictions made". Peak memory is the largest of:
the process's own peak RSS (``getrusage``), its reaped children's peak, and the largest RSS summed over its
whole process tree sampled every 0.1 s from ``/proc`` (joblib/loky workers live there). A method that runs
past ``--timeout`` is killed (with its whole process group) and reported as "did not finish".

Run::

    python benchmarks/peers.py                       # 100k training rows
    python benchmarks/peers.py --sizes 100000,1000000
    python benchmarks/peers.py --methods ours,sklift_two_models --sizes 20000   # a quick look

Results go to ``benchmarks/results/peers_<n>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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

REPO = HERE.parent
RESULTS = HERE / "results"
N_FOLDS = 5
SEED = 0


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    note: str = ""
    max_n: int | None = None  # only run at sizes up to this many training rows


METHODS = [
    Method("baseline", "(python + data loaded, no model)", "memory floor of every row below"),
    Method("ours", "uplift Study.fit() default", "5-fold cross-fit of t,x,dr,dr_linear,r,s + stacked ensemble, "
           "bootstrap Qini CIs, ATE; predict with the selected learner"),
    Method("ours_txdr", "uplift Study.fit(learners=[t,x,dr])", "same learners as the hand-assembled row"),
    Method("hand_assembled", "hand-assembled T/X/DR (causalml + sklift)", "5-fold cross-fitting of causalml "
           "T/X/DR (LGBM), OOF sklift Qini with 200-bootstrap CIs, pick best, average its fold models"),
    Method("hand_assembled_full", "hand-assembled T/X/DR/DR-linear/R/S (causalml + econml + sklift)",
           "the same study as our default: 5-fold cross-fitting of causalml T/X/DR/R/S and econml DRLearner "
           "(linear final stage) with LGBM, OOF sklift Qini with 200-bootstrap CIs, pick best, average its fold "
           "models (no stacked ensemble: no peer offers one)"),
    Method("causalml_x", "causalml BaseXRegressor (LGBM, p known)"),
    Method("causalml_x_default_p", "causalml BaseXRegressor (LGBM, default propensity)",
           "flagged: fits causalml's default ElasticNetPropensityModel", max_n=100_000),
    Method("causalml_t", "causalml BaseTRegressor (LGBM)"),
    Method("causalml_dr", "causalml BaseDRRegressor (LGBM, p known)"),
    Method("causalml_uplift_rf", "causalml UpliftRandomForestClassifier", "n_estimators=100, max_depth=8"),
    Method("econml_dr", "econml DRLearner (LGBM nuisances)", "default final stage (linear)"),
    Method("econml_cf", "econml CausalForestDML (LGBM nuisances)", "discrete_treatment=True (needed for a "
           "classifier model_t)"),
    Method("econml_x", "econml XLearner (LGBM)", "default propensity model (logistic regression)"),
    Method("sklift_two_models", "sklift TwoModels (LGBMClassifier)", "method='vanilla'"),
]
BY_KEY = {m.key: m for m in METHODS}


# ----------------------------------------------------------------------------------------------- data
def make_data(n_train: int, n_test: int, seed: int, directory: Path, design: str = "rct") -> dict:
    """Simulate one campaign (``design`` as in ``simulate_campaign``), split it, and store the raw frames (for
    ``uplift``) and arrays (for peers)."""
    sys.path.insert(0, str(REPO))
    from uplift import simulate_campaign
    from uplift.data.campaign import FeatureSchema

    df = simulate_campaign(n_train + n_test, design=design, n_arms=1, seed=seed)
    truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    roles = ["customer_id", "treatment", "conversion", "revenue"]
    features = [c for c in df.columns if c not in truth and c not in roles]
    train, test = df.iloc[:n_train].reset_index(drop=True), df.iloc[n_train:].reset_index(drop=True)
    train.to_parquet(directory / "train.parquet")
    test.to_parquet(directory / "test.parquet")

    # Peers get the same feature matrix an analyst would build: categoricals as integer codes (peers cannot
    # split on categories natively; ours can), missing values imputed by the training median because
    # econml and causalml's forests reject NaN.
    schema = FeatureSchema.infer(train[features])
    X_train, X_test = schema.encode(train[features]), schema.encode(test[features])
    n_missing = int(np.isnan(X_train).sum() + np.isnan(X_test).sum())
    med = np.nan_to_num(np.nanmedian(X_train, axis=0))
    X_train = np.where(np.isnan(X_train), med, X_train).astype(np.float32)
    X_test = np.where(np.isnan(X_test), med, X_test).astype(np.float32)
    np.savez(
        directory / "arrays.npz", X_train=X_train, X_test=X_test,
        t_train=train["treatment"].to_numpy(np.int64), y_train=train["conversion"].to_numpy(np.float64),
        p_train=train["propensity"].to_numpy(np.float64), p_test=test["propensity"].to_numpy(np.float64),
        t_test=test["treatment"].to_numpy(np.int64), y_test=test["conversion"].to_numpy(np.float64),
        tau_test=test["true_uplift"].to_numpy(np.float64),
    )
    return {
        "features": features, "categorical": sorted(schema.categories), "n_missing_cells": n_missing,
        "treated_share": float(train["treatment"].mean()),
        "conversion_rate": float(train["conversion"].mean()),
        "true_ate_test": float(test["true_uplift"].mean()),
    }


# ----------------------------------------------------------------------------------------------- methods
def _threads() -> int | None:
    """Threads per method from ``--threads`` (None = the library's own default)."""
    return int(os.environ.get("UPLIFT_BENCH_THREADS", "0")) or None


def _lgbm_regressor(seed: int = SEED):
    from lightgbm import LGBMRegressor

    # LightGBM's sklearn wrapper picks its thread count itself (n_jobs=None = all physical cores) and
    # ignores OMP_NUM_THREADS, so --threads must be passed explicitly.
    return LGBMRegressor(random_state=seed, verbose=-1, n_jobs=_threads())


def _lgbm_classifier(seed: int = SEED):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, verbose=-1, n_jobs=_threads())


def run_ours(directory: Path, learners: list[str] | None) -> tuple[np.ndarray, dict]:
    import pandas as pd

    from uplift import Study

    train = pd.read_parquet(directory / "train.parquet")
    test = pd.read_parquet(directory / "test.parquet")
    truth = [c for c in train if c.startswith("true_") or c.startswith("propensity")]
    t0 = time.perf_counter()
    study = Study(train, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=truth + ["revenue"], design="rct")
    study.fit() if learners is None else study.fit(learners=learners)
    uplift = study.predict_uplift(test)["uplift"].to_numpy()
    seconds = time.perf_counter() - t0
    board = study.leaderboard()
    extra = {"best_learner": study.best_learner_,
             "oof_qini": {str(r.learner): float(r.qini) for r in board.itertuples()}}
    return uplift, {"seconds": seconds, **extra}


def run_hand_assembled(a: dict, names: tuple[str, ...] = ("t", "x", "dr")) -> tuple[np.ndarray, dict]:
    """What an analyst would script: cross-fitted meta-learners from causalml (and econml's DRLearner with its
    default linear final stage for ``dr_linear``), OOF Qini (with CIs) from sklift."""
    from causalml.inference.meta import BaseDRRegressor, BaseRRegressor, BaseSRegressor, BaseTRegressor, BaseXRegressor
    from sklearn.model_selection import StratifiedKFold
    from sklift.metrics import qini_auc_score

    X, t, y, p = a["X_train"], a["t_train"], a["y_train"], a["p_train"]
    every = {
        "t": lambda: BaseTRegressor(learner=_lgbm_regressor()),
        "x": lambda: BaseXRegressor(learner=_lgbm_regressor()),
        "dr": lambda: BaseDRRegressor(learner=_lgbm_regressor()),
        "dr_linear": lambda: _EconmlDR(),
        "r": lambda: BaseRRegressor(learner=_lgbm_regressor(), random_state=SEED),
        "s": lambda: BaseSRegressor(learner=_lgbm_regressor()),
    }
    makers = {name: every[name] for name in names}
    oof = {name: np.empty(len(y)) for name in makers}
    fold_models: dict[str, list] = {name: [] for name in makers}
    skf = StratifiedKFold(n_splits=N_FOLDS, shuffle=True, random_state=SEED)
    for tr, te in skf.split(X, t * 2 + y.astype(int)):
        for name, make in makers.items():
            model = make()
            kw = {} if name in ("t", "s", "dr_linear") else {"p": p[tr]}
            if name == "dr":
                kw["seed"] = SEED
            model.fit(X=X[tr], treatment=t[tr], y=y[tr], **kw)
            oof[name][te] = _predict_meta(model, name, X[te], p[te])
            fold_models[name].append(model)
    rng = np.random.default_rng(SEED)
    boot = rng.integers(0, len(y), size=(200, len(y)))
    scores = {}
    for name, u in oof.items():
        q = qini_auc_score(y, u, t)
        reps = [qini_auc_score(y[b], u[b], t[b]) for b in boot]
        scores[name] = {"qini": float(q), "lower": float(np.quantile(reps, 0.025)),
                        "upper": float(np.quantile(reps, 0.975))}
    best = max(scores, key=lambda k: scores[k]["qini"])
    uplift = np.mean([_predict_meta(m, best, a["X_test"], a["p_test"]) for m in fold_models[best]], axis=0)
    return uplift, {"best_learner": best, "oof_qini": {k: v["qini"] for k, v in scores.items()}}


class _EconmlDR:
    """econml DRLearner (LGBM nuisances, default linear final stage) behind causalml's fit/predict signature."""

    def __init__(self) -> None:
        from econml.dr import DRLearner

        self.model = DRLearner(model_propensity=_lgbm_classifier(), model_regression=_lgbm_regressor(),
                               random_state=SEED)

    def fit(self, X, treatment, y):
        self.model.fit(y, treatment, X=X)
        return self

    def predict(self, X, verbose=False):
        return self.model.effect(X)


def _predict_meta(model, name: str, X: np.ndarray, p: np.ndarray) -> np.ndarray:
    if name == "x":
        return np.ravel(model.predict(X=X, p=p, verbose=False))
    if name == "r":  # causalml's R-learner predict takes no ``verbose``
        return np.ravel(model.predict(X=X))
    return np.ravel(model.predict(X=X, verbose=False))


def run_peer(key: str, a: dict) -> tuple[np.ndarray, dict]:
    X, t, y, p, Xt, pt = a["X_train"], a["t_train"], a["y_train"], a["p_train"], a["X_test"], a["p_test"]
    if key == "causalml_x":
        from causalml.inference.meta import BaseXRegressor

        model = BaseXRegressor(learner=_lgbm_regressor())
        model.fit(X=X, treatment=t, y=y, p=p)
        return np.ravel(model.predict(X=Xt, p=pt, verbose=False)), {}
    if key == "causalml_x_default_p":
        from causalml.inference.meta import BaseXRegressor

        model = BaseXRegressor(learner=_lgbm_regressor())
        model.fit(X=X, treatment=t, y=y)
        return np.ravel(model.predict(X=Xt, verbose=False)), {}
    if key == "causalml_t":
        from causalml.inference.meta import BaseTRegressor

        model = BaseTRegressor(learner=_lgbm_regressor())
        model.fit(X=X, treatment=t, y=y)
        return np.ravel(model.predict(X=Xt, verbose=False)), {}
    if key == "causalml_dr":
        from causalml.inference.meta import BaseDRRegressor

        model = BaseDRRegressor(learner=_lgbm_regressor())
        model.fit(X=X, treatment=t, y=y, p=p, seed=SEED)
        return np.ravel(model.predict(X=Xt, verbose=False)), {}
    if key == "causalml_uplift_rf":
        from causalml.inference.tree import UpliftRandomForestClassifier

        model = UpliftRandomForestClassifier(control_name="0", n_estimators=100, max_depth=8,
                                             random_state=SEED)
        model.fit(X=X, treatment=np.where(t == 1, "1", "0"), y=y.astype(int))
        return np.asarray(model.predict(Xt))[:, 0], {}
    if key == "econml_dr":
        from econml.dr import DRLearner

        model = DRLearner(model_propensity=_lgbm_classifier(), model_regression=_lgbm_regressor(),
                          random_state=SEED)
        model.fit(y, t, X=X)
        return np.ravel(model.effect(Xt)), {}
    if key == "econml_cf":
        from econml.dml import CausalForestDML

        model = CausalForestDML(model_y=_lgbm_regressor(), model_t=_lgbm_classifier(),
                                discrete_treatment=True, random_state=SEED, n_jobs=_threads() or -1)
        model.fit(y, t, X=X)
        return np.ravel(model.effect(Xt)), {}
    if key == "econml_x":
        from econml.metalearners import XLearner

        model = XLearner(models=_lgbm_regressor())
        model.fit(y, t, X=X)
        return np.ravel(model.effect(Xt)), {}
    if key == "sklift_two_models":
        from sklift.models import TwoModels

        model = TwoModels(estimator_trmnt=_lgbm_classifier(), estimator_ctrl=_lgbm_classifier(),
                          method="vanilla")
        model.fit(X, y, t)
        return np.ravel(model.predict(Xt)), {}
    raise ValueError(f"unknown method {key!r}")


def worker(key: str, directory: Path, out: Path) -> None:
    """Run one method in this (fresh) process and write its scores and own resource usage to ``out``."""
    import warnings

    warnings.filterwarnings("ignore")
    a = dict(np.load(directory / "arrays.npz"))
    # Import the heavy libraries before the clock starts: import time is paid once per session, not per fit.
    if key.startswith("causalml") or key.startswith("hand_assembled"):
        import causalml.inference.meta
        import causalml.inference.tree  # noqa: F401
    if key.startswith("econml"):
        import econml.dml
        import econml.dr
        import econml.metalearners
    if key.startswith("ours"):
        sys.path.insert(0, str(REPO))
        import uplift  # noqa: F401
    import sklift.metrics
    import sklift.models  # noqa: F401

    t0 = time.perf_counter()
    extra: dict = {}
    if key == "baseline":
        uplift_hat = None
    elif key.startswith("ours"):
        uplift_hat, extra = run_ours(directory, None if key == "ours" else ["t", "x", "dr"])
    elif key == "hand_assembled":
        uplift_hat, extra = run_hand_assembled(a)
    elif key == "hand_assembled_full":
        import econml.dr  # noqa: F401

        uplift_hat, extra = run_hand_assembled(a, ("t", "x", "dr", "dr_linear", "r", "s"))
    else:
        uplift_hat, extra = run_peer(key, a)
    seconds = extra.pop("seconds", time.perf_counter() - t0)
    _shutdown_pools()
    result = {"seconds": seconds, **extra,
              "self_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "children_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    if uplift_hat is not None:
        from sklift.metrics import qini_auc_score

        tau = a["tau_test"]
        result["pehe"] = float(np.sqrt(np.mean((uplift_hat - tau) ** 2)))
        result["qini"] = float(qini_auc_score(a["y_test"], uplift_hat, a["t_test"]))
        result["ate_hat"] = float(np.mean(uplift_hat))
    out.write_text(json.dumps(result))


def _shutdown_pools() -> None:
    # Reap joblib's worker processes so their peak RSS shows up in RUSAGE_CHILDREN.
    try:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    except Exception:  # best effort; the /proc sampler covers them anyway
        pass


# ----------------------------------------------------------------------------------------------- parent
def set_threads(threads: int) -> None:
    """Cap OpenMP/BLAS threads for every worker started from here (0: library defaults).

    Inherited by the workers: LightGBM's native API (num_threads=0) and BLAS follow OMP_NUM_THREADS; the peers'
    LightGBM sklearn wrappers read UPLIFT_BENCH_THREADS.
    """
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "UPLIFT_BENCH_THREADS"):
            os.environ[var] = str(threads)


def _tree_rss_mb(root: int) -> float:
    """Summed RSS of ``root`` and all its descendants, from /proc (0 if it has exited)."""
    parents: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/statm") as f:
                pages = int(f.read().split()[1])
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(parents.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_method(key: str, directory: Path, timeout: float) -> dict:
    out = directory / f"result_{key}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", key, "--data", str(directory),
           "--out", str(out)]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree = 0.0
    timed_out = False
    while proc.poll() is None:
        peak_tree = max(peak_tree, _tree_rss_mb(proc.pid))
        if time.perf_counter() - start > timeout:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # our own session: the worker and its pool only
            proc.wait()
            break
        time.sleep(0.1)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    # Other work on the machine slows every method; the load average says how much it did during this one.
    load = max(load_before, os.getloadavg()[0])
    if timed_out:
        return {"status": f"did not finish in {timeout:.0f} s", "seconds": None, "peak_rss_mb": peak_tree,
                "load": load}
    if proc.returncode != 0 or not out.exists():
        tail = stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return {"status": f"failed: {tail[0][:200]}", "seconds": None, "peak_rss_mb": peak_tree,
                "stderr_tail": stderr[-3000:], "load": load}
    res = json.loads(out.read_text())
    res["load"] = load
    res["peak_rss_mb"] = max(peak_tree, res["self_maxrss_mb"], res["children_maxrss_mb"])
    res["sampled_tree_peak_mb"] = peak_tree
    res["status"] = "ok"
    return res


def _fmt(x, spec: str, missing: str = "—") -> str:
    return missing if x is None else format(x, spec)


def render(n: int, n_test: int, info: dict, rows: list[dict], env: dict) -> str:
    ours = next((r for r in rows if r["key"] == "ours" and r["status"] == "ok"), None)
    threads = env["threads"] or "library defaults"
    lines = [
        f"## Peers benchmark: {n:,} training rows, {n_test:,} held-out rows",
        "",
        f"`simulate_campaign(design=\"rct\", seed={info['seed']})`; treated share "
        f"{info['treated_share']:.3f}, conversion {info['conversion_rate']:.4f}, true ATE on held-out "
        f"{info['true_ate_test']:.4f}. {env['cpus']} CPUs, threads: {threads}, Python {env['python']}, "
        f"uplift at `{env['uplift_commit']}`.",
        "",
        "| method | wall s | peak RSS MB | PEHE (held-out) | Qini (held-out) | time / ours | RSS / ours "
        "| load | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        m = BY_KEY[r["key"]]
        ok = r["status"] == "ok"
        t_ratio = r["seconds"] / ours["seconds"] if ok and ours and r["seconds"] is not None else None
        m_ratio = r["peak_rss_mb"] / ours["peak_rss_mb"] if ours and r.get("peak_rss_mb") else None
        note = m.note if ok else r["status"]
        if ok and r.get("best_learner"):
            note = f"{note}; selected {r['best_learner']}" if note else f"selected {r['best_learner']}"
        seconds = _fmt(r.get("seconds"), ".1f", "did not finish" if "did not" in r["status"] else "—")
        cells = [m.label, seconds, _fmt(r.get("peak_rss_mb"), ".0f"), _fmt(r.get("pehe"), ".4f"),
                 _fmt(r.get("qini"), ".4f"), _fmt(t_ratio, ".2f"), _fmt(m_ratio, ".2f"),
                 _fmt(r.get("load"), ".1f"), note]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "PEHE = sqrt(mean((predicted − true uplift)²)) over held-out customers; Qini = "
        "`sklift.metrics.qini_auc_score` on held-out outcomes. Wall seconds exclude imports and data "
        "loading. Peak RSS is per fresh process, including its worker processes; the baseline row is the "
        "floor every method starts from. Peers get categoricals as integer codes and missing values "
        "median-imputed; `uplift` encodes them itself. Load = 1-minute load average of the machine around "
        f"the run: on a quiet machine it is at most the {env['cpus']} CPUs a method keeps busy; higher means "
        "other work competed for the CPUs and every time in that row is inflated.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000", help="comma-separated training sizes (e.g. 100000,1000000)")
    ap.add_argument("--with-1m", action="store_true", help="also run 1,000,000 training rows")
    ap.add_argument("--test-rows", type=int, default=50_000, help="held-out rows with known uplift")
    ap.add_argument("--methods", default="all", help="comma-separated method keys, or 'all'")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per method before 'did not finish'")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--tag", default="", help="suffix for the result files (peers_<n>_<tag>.md)")
    ap.add_argument("--threads", type=int, default=0,
                    help="OpenMP/BLAS threads per method (0 = library defaults, i.e. all cores)")
    ap.add_argument("--merge", action="store_true",
                    help="add these methods' rows to the existing results of the same size and tag (re-run or "
                         "add methods without re-running the others)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, Path(args.data), Path(args.out))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.with_1m and 1_000_000 not in sizes:
        sizes.append(1_000_000)
    keys = [m.key for m in METHODS] if args.methods == "all" else ["baseline"] + args.methods.split(",")
    keys = list(dict.fromkeys(keys))
    unknown = [k for k in keys if k not in BY_KEY]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; choose from {', '.join(BY_KEY)}")
    set_threads(args.threads)
    env = {"python": platform.python_version(), "cpus": os.cpu_count(), "threads": args.threads,
           "versions": _versions(), "uplift_commit": git_state()}
    RESULTS.mkdir(exist_ok=True)
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="uplift_peers_") as tmp:
            directory = Path(tmp)
            info = make_data(n, args.test_rows, args.seed, directory)
            info["seed"] = args.seed
            rows = []
            for key in keys:
                m = BY_KEY[key]
                if m.max_n is not None and n > m.max_n:
                    continue
                print(f"[{n:,}] {m.label} ...", end=" ", flush=True)
                res = {"key": key, "label": m.label, **run_method(key, directory, args.timeout)}
                print(res["status"] if res["status"] != "ok" else
                      f"{res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB, "
                      f"PEHE {res.get('pehe', float('nan')):.4f}, Qini {res.get('qini', float('nan')):.4f}",
                      flush=True)
                rows.append(res)
        stem = f"peers_{n}_{args.tag}" if args.tag else f"peers_{n}"
        previous = RESULTS / f"{stem}.json"
        if args.merge and previous.exists():
            old = json.loads(previous.read_text())
            if old["data"] != json.loads(json.dumps(info)):
                raise SystemExit(f"--merge: {previous} was measured on different data; run without --merge")
            fresh = {r["key"] for r in rows if r["key"] != "baseline"}
            kept = [r for r in old["rows"] if r["key"] not in fresh]
            rows = kept + [r for r in rows if r["key"] in fresh]
            rows.sort(key=lambda r: list(BY_KEY).index(r["key"]))
        table = render(n, args.test_rows, info, rows, env)
        print()
        print(table)
        (RESULTS / f"{stem}.md").write_text(table)
        (RESULTS / f"{stem}.json").write_text(json.dumps(
            {"n_train": n, "n_test": args.test_rows, "data": info, "env": env, "rows": rows}, indent=2))


def git_state() -> str:
    """Commit of the checkout being measured, with ``+dirty`` when it has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "uplift"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("numpy", "pandas", "scikit-learn", "lightgbm", "econml", "causalml", "scikit-uplift"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    main()

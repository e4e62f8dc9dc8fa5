"""The default study against one peer learner: wall time, peak memory and held-out accuracy, in one run.

An analyst compares ``uplift fit`` with what they would otherwise type: one econml ``XLearner``. This benchmark
fits, on the same simulated randomised campaign (``uplift.simulate_campaign(design="rct")``) and in one run:

* ``ours`` — the default study (every default learner cross-fitted, stacked ensemble, leaderboard with bootstrap
  CIs, effects, calibration, drift profile, distilled scorer), predicting held-out customers with the chosen
  learner; its per-phase wall times (``FitResult.timings``) are recorded;
* ``ours_3_folds`` — the same with 3 folds: the large-study fold count measured and rejected
  (``uplift.fit.crossfit.LARGE_STUDY_FOLDS``), its time and paired PEHE re-measured in every run;
* ``econml_x`` — econml ``XLearner`` with LightGBM (200 trees), fit + predict;
* ``econml_dr`` — econml ``DRLearner`` with LightGBM nuisances (200 trees) and its default final stage;
* ``causalml_x`` — causalml ``BaseXRegressor`` with LightGBM (200 trees) and the known propensity.

Each runs in its own Python process (started one after the other, interleaved so that a change in the machine's
load hits every method alike), timed from "data loaded" to "held-out predictions made". The libraries each method
runs on are imported before the clock starts: econml and causalml for the peers (with them scikit-learn, SciPy and
LightGBM), and for ``uplift`` the same libraries, which it imports only when first used, plus numba (about 2 s on
the benchmark machine; a ``uplift fit`` command pays them once, a notebook once per session). numba compiles or
loads its kernels on first use inside the clock. Peak RSS is the child's own ``ru_maxrss`` (``os.wait4``).
Held-out quality on 50,000 customers with known uplift: PEHE (root mean squared error against the true uplift)
with a paired-bootstrap 95% CI of the difference to the XLearner, Qini (scikit-uplift's ``qini_auc_score``), the
top-20% policy value (mean true uplift of the 20% ranked highest, over that of the 20% with the highest true
uplift), and whether the study's ATE interval covers the true ATE.

``--compare LABEL=DIR`` (repeatable) adds the default study run from another copy of the code (e.g. ``git archive``
of an earlier revision unpacked in ``DIR``), interleaved with ``ours`` on the same data: the paired before/after
of a change, with the paired-bootstrap CI of its PEHE difference to ``ours``.

``--design observational`` runs the same on the confounded simulator (the study declares the design; causalml's
X-learner is given the true propensity).

``--multi-arm`` adds a 5-arm experiment (control and four coupons) of 200,000 rows against a 2-arm one of the
same size: what each further arm costs.

Run::

    python benchmarks/speed.py                       # 1M and 100k rows, plus the 5-arm experiment
    python benchmarks/speed.py --sizes 20000 --methods ours,econml_x   # a quick look

Results go to ``benchmarks/results/speed.json`` and ``speed.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # see peers.py: coverage.py shadowing

import numpy as np  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results"
N_TEST = 50_000
SEED = 2024
TREES = 200
METHODS = {
    "ours": "uplift default study",
    "ours_3_folds": "uplift study, 3 folds",
    "ours_race": "uplift study with racing (Study.fit(race=True))",
    "econml_x": "econml XLearner (LightGBM 200 trees)",
    "econml_dr": "econml DRLearner (LightGBM 200 trees)",
    "causalml_x": "causalml BaseXRegressor (LightGBM 200 trees, p known)",
}
#: Interleaved: the reference (XLearner) first, then ours, a peer, ours with 3 folds, the other peer; racing
#: only when asked for (``--methods``).
ORDER = ("econml_x", "ours", "ours_race", "econml_dr", "ours_3_folds", "causalml_x")
DEFAULT_METHODS = ("econml_x", "ours", "econml_dr", "ours_3_folds", "causalml_x")


def _peers():
    spec = importlib.util.spec_from_file_location("benchmarks_peers", HERE / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------- data
def make_data(n: int, n_arms: int, directory: Path, design: str = "rct") -> dict:
    """Simulate ``n`` training and :data:`N_TEST` held-out customers; ``n_arms`` treated arms."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "design.txt").write_text(design)  # the study declares it (run_ours)
    if n_arms == 1:
        return _peers().make_data(n, N_TEST, SEED, directory, design)  # frames for us, encoded arrays for peers
    sys.path.insert(0, str(REPO))
    from uplift import simulate_campaign

    df = simulate_campaign(n + N_TEST, design=design, n_arms=n_arms, seed=SEED)
    df.iloc[:n].reset_index(drop=True).to_parquet(directory / "train.parquet")
    df.iloc[n:].reset_index(drop=True).to_parquet(directory / "test.parquet")
    return {"arms": sorted(df["treatment"].astype(str).unique()), "conversion_rate": float(df["conversion"].mean())}


def _lgbm(classifier: bool = False):
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMClassifier if classifier else LGBMRegressor
    return cls(n_estimators=TREES, random_state=0, verbose=-1)


# ----------------------------------------------------------------------------------------------- worker
def run_ours(directory: Path, n_folds: int | None, race: bool = False) -> tuple[np.ndarray, dict]:
    import pandas as pd

    from uplift import Study

    train, test = pd.read_parquet(directory / "train.parquet"), pd.read_parquet(directory / "test.parquet")
    truth = [c for c in train if c.startswith("true_") or c.startswith("propensity")]
    design = (directory / "design.txt").read_text() if (directory / "design.txt").exists() else "rct"
    t0 = time.perf_counter()
    study = Study(train, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=truth + ["revenue"], design=design)
    study.fit(n_folds=n_folds, **({"race": True} if race else {}))
    pred = study.predict_uplift(test)
    seconds = time.perf_counter() - t0
    arms = study.arms[1:]
    columns = ["uplift"] if len(arms) == 1 else [f"uplift_{a}" for a in arms]
    ate = study.ate().query("outcome == 'conversion' and estimand == 'ATE'")
    covered = []
    for arm in arms:
        r = ate[ate["arm"] == arm].iloc[0]
        true = float(train["true_uplift" if len(arms) == 1 else f"true_uplift_{arm}"].mean())
        covered.append(bool(r["lower"] <= true <= r["upper"]))
    extra = {"seconds": seconds, "chosen": study.best_learner_, "n_folds": study.result.fit_params["n_folds"],
             "timings": study.result.timings, "ate_covered": covered,
             "trees": study.result.fit_params.get("trees"), "race": study.result.fit_params.get("race")}
    return pred[columns].to_numpy(), extra


def run_peer(key: str, a: dict) -> np.ndarray:
    X, t, y, p, Xt, pt = a["X_train"], a["t_train"], a["y_train"], a["p_train"], a["X_test"], a["p_test"]
    if key == "econml_x":
        from econml.metalearners import XLearner

        model = XLearner(models=_lgbm())
        model.fit(y, t, X=X)
        return np.ravel(model.effect(Xt))
    if key == "econml_dr":
        from econml.dr import DRLearner

        model = DRLearner(model_propensity=_lgbm(classifier=True), model_regression=_lgbm(), random_state=0)
        model.fit(y, t, X=X)
        return np.ravel(model.effect(Xt))
    if key == "causalml_x":
        from causalml.inference.meta import BaseXRegressor

        model = BaseXRegressor(learner=_lgbm())
        model.fit(X=X, treatment=t, y=y, p=p)
        return np.ravel(model.predict(X=Xt, p=pt, verbose=False))
    raise ValueError(f"unknown method {key!r}")


def worker(key: str, directory: Path, out: Path, repo: Path = REPO) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(repo))
    if key.startswith("ours"):
        # Before the clock, as for the peers: uplift and the libraries it imports when first used.
        import lightgbm  # noqa: F401
        import numba  # noqa: F401
        import scipy.stats  # noqa: F401
        import sklearn.linear_model  # noqa: F401

        import uplift  # noqa: F401

        uplift_hat, extra = run_ours(directory, 3 if key == "ours_3_folds" else None, race=key == "ours_race")
    else:
        import causalml.inference.meta  # noqa: F401
        import econml.dr
        import econml.metalearners  # noqa: F401

        a = dict(np.load(directory / "arrays.npz"))
        t0 = time.perf_counter()
        uplift_hat = run_peer(key, a)
        extra = {"seconds": time.perf_counter() - t0}
    np.save(out.with_suffix(".npy"), np.asarray(uplift_hat, dtype=np.float64).reshape(len(uplift_hat), -1))
    out.write_text(json.dumps(extra))


# ----------------------------------------------------------------------------------------------- parent
def run_method(key: str, directory: Path, repo: Path | None = None) -> dict:
    out = directory / f"speed_{key.replace('@', '_at_')}.json"
    # -X faulthandler: a crash in compiled code (LightGBM, numba) writes its Python stack to stderr, kept below.
    cmd = [sys.executable, "-X", "faulthandler", str(Path(__file__).resolve()), "--worker", key.split("@")[0],
           "--data", str(directory), "--out", str(out), *(["--repo", str(repo)] if repo else [])]
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (kB on Linux)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    load = max(load_before, os.getloadavg()[0])
    if status != 0 or not out.exists():
        lines = stderr.strip().splitlines()
        crash = [line.strip() for line in lines if line.startswith("Fatal Python error") or line.startswith("  File")]
        tail = "; ".join(crash[:3]) if crash else (lines or [f"exit status {status}"])[-1]
        return {"key": key, "status": f"failed: {tail[:200]}", "load": load}
    res = json.loads(out.read_text())
    # CPU seconds of the child (user + system, the whole process): steadier than wall time on a shared machine.
    return {"key": key, "status": "ok", **res, "process_wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
            "process_cpu_s": usage.ru_utime + usage.ru_stime,
            "load": load, "uplift": np.load(out.with_suffix(".npy"))}


def quality(directory: Path, rows: list[dict], reference: str = "econml_x", n_boot: int = 200) -> None:
    """Held-out PEHE, Qini and top-20% policy value of every row; paired-bootstrap CI of the PEHE difference."""
    import pandas as pd
    from sklift.metrics import qini_auc_score

    test = pd.read_parquet(directory / "test.parquet")
    arms = sorted(c.removeprefix("true_uplift_") for c in test if c.startswith("true_uplift_"))
    tau = test[["true_uplift"]].to_numpy() if not arms else test[[f"true_uplift_{a}" for a in arms]].to_numpy()
    y, t = test["conversion"].to_numpy(), test["treatment"].astype(str).to_numpy()
    control = "0" if not arms else "control"
    rng = np.random.default_rng(0)
    boot = rng.integers(0, len(tau), size=(n_boot, len(tau)))

    def pehe_of(u: np.ndarray, truth: np.ndarray) -> float:
        return float(np.sqrt(np.mean((u - truth) ** 2, axis=0)).mean())  # per arm, averaged over arms

    ok = [r for r in rows if r["status"] == "ok"]
    preds = {r["key"]: r.pop("uplift") for r in ok}
    ref = preds.get(reference)
    k = int(0.2 * len(tau))
    for r in ok:
        u = preds[r["key"]]
        r["pehe"] = pehe_of(u, tau)
        qini, policy = [], []
        for j in range(tau.shape[1]):
            arm = "1" if not arms else arms[j]
            pair = (t == control) | (t == arm)
            qini.append(qini_auc_score(y[pair], u[pair, j], (t[pair] == arm).astype(int)))
            policy.append(tau[np.argsort(-u[:, j])[:k], j].mean() / tau[np.argsort(-tau[:, j])[:k], j].mean())
        r["qini"], r["policy_top20"] = float(np.mean(qini)), float(np.mean(policy))
        if ref is not None and r["key"] != reference:
            diff = np.array([pehe_of(u[b], tau[b]) - pehe_of(ref[b], tau[b]) for b in boot])
            r["pehe_vs_ref"] = [r["pehe"] - pehe_of(ref, tau), *map(float, np.quantile(diff, [0.025, 0.975]))]
    for r in ok:  # each --compare revision against the current code, paired on the same held-out rows
        if "@" in r["key"] and "ours" in preds:
            a, b = preds["ours"], preds[r["key"]]
            diff = np.array([pehe_of(a[i], tau[i]) - pehe_of(b[i], tau[i]) for i in boot])
            r["ours_vs_this"] = [pehe_of(a, tau) - pehe_of(b, tau), *map(float, np.quantile(diff, [0.025, 0.975]))]
    if "ours" in preds and "ours_race" in preds:  # racing against the full field, paired
        a, b = preds["ours_race"], preds["ours"]
        diff = np.array([pehe_of(a[i], tau[i]) - pehe_of(b[i], tau[i]) for i in boot])
        row = next(r for r in ok if r["key"] == "ours_race")
        row["pehe_vs_ours"] = [pehe_of(a, tau) - pehe_of(b, tau), *map(float, np.quantile(diff, [0.025, 0.975]))]
    if "ours" in preds and "ours_3_folds" in preds:  # the fold rule's own accuracy check, paired
        a, b3 = preds["ours"], preds["ours_3_folds"]
        diff = np.array([pehe_of(b3[b], tau[b]) - pehe_of(a[b], tau[b]) for b in boot])
        row = next(r for r in ok if r["key"] == "ours_3_folds")
        row["pehe_vs_ours"] = [pehe_of(b3, tau) - pehe_of(a, tau), *map(float, np.quantile(diff, [0.025, 0.975]))]


def _fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def render(blocks: list[dict], env: dict) -> str:
    design = env.get("design", "rct")
    kind = "randomised" if design == "rct" else "observational (confounded)"
    out = ["## Speed benchmark: the default study against one peer learner, one run", "",
           f"`benchmarks/speed.py`: simulated {kind} campaign (`simulate_campaign(design=\"{design}\", seed={SEED})`), "
           f"{N_TEST:,} held-out customers with known uplift. {env['cpus']} CPUs, library default threads, Python "
           f"{env['python']}, uplift at `{env['git']}`. Load = the 1-minute load average around each method (above "
           f"{env['cpus']}: other work competed for the CPUs).", ""]
    for b in blocks:
        out += [f"### {b['title']}", "",
                "| method | wall s | / XLearner | process CPU s | peak RSS MB | / XLearner | PEHE | PEHE − XLearner "
                "[95% CI] | Qini | top-20% value / oracle | ATE covered | folds | chosen | load |",
                "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---:|"]
        ref = next((r for r in b["rows"] if r["key"] == "econml_x" and r["status"] == "ok"), None)
        for r in b["rows"]:
            if r["status"] != "ok":
                out.append(f"| {METHODS.get(r['key'], r['key'])} | {r['status']} |" + " |" * 12)
                continue
            def ratio(key: str, r: dict = r, ref: dict | None = ref) -> str:
                return _fmt(r[key] / ref[key], ".2f") if ref else "—"

            d = r.get("pehe_vs_ref")
            ci = f"{d[0]:+.5f} [{d[1]:+.5f}, {d[2]:+.5f}]" if d else "—"
            cov = "—" if "ate_covered" not in r else ("yes" if all(r["ate_covered"]) else
                                                       f"{sum(r['ate_covered'])}/{len(r['ate_covered'])}")
            out.append(f"| {r.get('label', METHODS.get(r['key'], r['key']))} | {r['seconds']:.1f} | "
                       f"{ratio('seconds')} | {_fmt(r.get('process_cpu_s'), '.0f')} | "
                       f"{r['peak_rss_mb']:.0f} | {ratio('peak_rss_mb')} | {r['pehe']:.5f} | "
                       f"{ci} | {r['qini']:.4f} | {r['policy_top20']:.3f} | {cov} | {r.get('n_folds', '—')} | "
                       f"{r.get('chosen', '—')} | {r['load']:.1f} |")
        out.append("")
        for r in b["rows"]:
            if r.get("ours_vs_this"):
                d, other = r["ours_vs_this"], next((x for x in b["rows"] if x["key"] == "ours"), {})
                ratio = _fmt(other["seconds"] / r["seconds"], ".2f") if other.get("seconds") else "—"
                cpu = (_fmt(other["process_cpu_s"] / r["process_cpu_s"], ".2f")
                       if other.get("process_cpu_s") and r.get("process_cpu_s") else "—")
                out += [f"Against {r['label']}: PEHE of the current study minus its PEHE, same held-out rows: "
                        f"{d[0]:+.5f} [{d[1]:+.5f}, {d[2]:+.5f}] (paired bootstrap 95% CI); wall time ratio "
                        f"{ratio}, CPU time ratio {cpu} (current / earlier).", ""]
        current = next((x for x in b["rows"] if x["key"] == "ours" and x.get("timings")), None)
        for r in b["rows"]:
            if r.get("ours_vs_this") and current and r.get("timings"):
                out += [f"Per phase, before ({r['label']}) and after (the current study), seconds:", "",
                        "| phase | before | after | after − before |", "|---|---:|---:|---:|"]
                for name in dict.fromkeys([*r["timings"], *current["timings"]]):
                    old, new = r["timings"].get(name), current["timings"].get(name)
                    change = "—" if old is None or new is None else f"{new - old:+.1f}"
                    out.append(f"| {name} | {_fmt(old, '.1f')} | {_fmt(new, '.1f')} | {change} |")
                total_old, total_new = sum(r["timings"].values()), sum(current["timings"].values())
                out += [f"| **sum of phases** | {total_old:.1f} | {total_new:.1f} | {total_new - total_old:+.1f} |",
                        ""]
        for r in b["rows"]:
            if r["key"] == "ours_race" and r.get("pehe_vs_ours"):
                d = r["pehe_vs_ours"]
                kept = "; ".join(f"{g['rows']:,} rows: kept {', '.join(g['kept'])}" for g in r.get("race") or [])
                out += [f"Racing: PEHE with racing minus PEHE of the full field, same held-out rows: "
                        f"{d[0]:+.5f} [{d[1]:+.5f}, {d[2]:+.5f}] (paired bootstrap 95% CI); {kept}.", ""]
        for r in b["rows"]:
            if r["key"] == "ours_3_folds" and r.get("pehe_vs_ours"):
                d = r["pehe_vs_ours"]
                ours = next((o for o in b["rows"] if o["key"] == "ours" and o["status"] == "ok"), None)
                ratio = f"; wall time {r['seconds'] / ours['seconds']:.2f}x the default's" if ours else ""
                out += [f"Fold rule: PEHE with 3 folds minus PEHE of the default ({ours['n_folds'] if ours else '?'} "
                        f"folds), same held-out rows: {d[0]:+.5f} [{d[1]:+.5f}, {d[2]:+.5f}] (paired bootstrap 95% "
                        f"CI){ratio}. Fewer folds are the default only if this CI includes zero.", ""]
        for r in b["rows"]:
            if r.get("timings"):
                total = sum(r["timings"].values())
                out += [f"Per phase, {r.get('label') or METHODS[r['key']]} (`FitResult.timings`, seconds):", "",
                        "| phase | s | share |", "|---|---:|---:|"]
                out += [f"| {name} | {s:.1f} | {s / total:.0%} |" for name, s in r["timings"].items()]
                out.append("")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,100000")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--multi-arm", type=int, default=200_000, help="rows of the 5-arm vs 2-arm run (0: skip)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/uplift-speed"))
    ap.add_argument("--design", default="rct", choices=["rct", "observational"],
                    help="simulator design of the 2-arm and multi-arm data (the study declares it)")
    ap.add_argument("--name", default="speed")
    ap.add_argument("--compare", action="append", default=[], metavar="LABEL=DIR",
                    help="also run the default study from the code in DIR (repeatable), interleaved after 'ours'")
    ap.add_argument("--repo", type=Path, default=REPO)
    ap.add_argument("--worker")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.data, args.out, args.repo)
        return
    peers = _peers()
    env = {"cpus": os.cpu_count(), "python": platform.python_version(), "git": peers.git_state(),
           "versions": peers._versions(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "design": args.design}
    methods = [m for m in ORDER if m in args.methods.split(",")]
    compare = dict(c.split("=", 1) for c in args.compare)
    if compare:  # each earlier revision right after the current code, so both see the same load
        at = methods.index("ours") + 1 if "ours" in methods else len(methods)
        methods[at:at] = [f"ours@{label}" for label in compare]
    blocks = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        directory = args.work / f"{args.design}_{n}"
        info = make_data(n, 1, directory, args.design)
        rows = []
        for key in methods:
            print(f"{n:,} rows: {key} ...", flush=True)
            label = key.split("@")[1] if "@" in key else None
            rows.append(run_method(key, directory, Path(compare[label]) if label else None))
            if label:
                rows[-1]["label"] = f"uplift default study at {label}"
            print(f"  {rows[-1]['status']} {rows[-1].get('seconds', 0):.1f} s", flush=True)
        quality(directory, rows)
        blocks.append({"title": f"{n:,} training rows, 2 arms", "n": n, "data": info, "rows": rows})
    if args.multi_arm:
        n, rows = args.multi_arm, []
        for n_arms in (4, 1):
            directory = args.work / f"{args.design}_{n}_{n_arms + 1}arms"
            make_data(n, n_arms, directory, args.design)
            print(f"{n:,} rows, {n_arms + 1} arms: ours ...", flush=True)
            r = run_method("ours", directory)
            quality(directory, [r], reference="")
            r["label"] = f"uplift default study, {n_arms + 1} arms"
            rows.append(r)
        blocks.append({"title": f"{n:,} training rows: 5 arms (control + 4 coupons) against 2 arms", "n": n,
                       "rows": rows})
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"env": env, "blocks": blocks}, indent=1, default=str))
    (RESULTS / f"{args.name}.md").write_text(render(blocks, env))
    print(render(blocks, env))


if __name__ == "__main__":
    main()

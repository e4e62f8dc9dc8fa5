"""One-machine scale benchmark: a full default study on a Criteo-sized campaign, and streamed scoring speed.

The data imitate the Criteo uplift prediction dataset's schema (Diemert et al. 2018): twelve dense float
features ``f0``..``f11``, a randomised binary ``treatment`` with ~85% treated, and two binary outcomes, ``visit``
(~4.7%) and ``conversion`` (~0.3%). The uplift is heterogeneous and known: the true per-customer uplift of both
outcomes is written to a separate ``*_truth.parquet`` file, never seen by the study. The treatment share of the
design (0.85) is declared through a constant ``propensity`` column, as an analyst who knows the design would.
Files are written in 1M-row chunks, so generating 14M rows needs little memory.

The study runs the way a user runs it, as separate CLI processes, each timed and with its peak RSS measured
(the largest RSS summed over the process tree, sampled every 0.1 s from /proc, and ``getrusage`` of the reaped
children):

1. ``uplift fit train.parquet --treatment treatment --outcome conversion --outcome visit --propensity
   propensity --out MODEL`` (validation and design checks, cross-fitted default learners, leaderboard with
   bootstrap CIs, ATE, calibration, saved model);
2. ``uplift predict MODEL holdout.parquet --out scores.parquet`` (streamed) → held-out PEHE and Qini against
   the known truth;
3. ``uplift target MODEL holdout.parquet --out list.parquet --cost ... --value ... --budget ...``.

``--scoring`` measures streamed scoring throughput (rows/s) of an already fitted model: the distilled fast
scorer (``--learner fast``) on a 5M-row file, the ``t`` learner and the study's selected learner (fold-averaged
models) on a 1M-row file, each through ``uplift predict`` (whole command, including start-up and the output
file) and through :func:`uplift.scoring.score_file` in-process.

``--stages`` runs the same study in-process and records the wall time and RSS at every progress step (where
time and memory go).

Run::

    python benchmarks/scale.py --n 1000000                # fit + predict + target at 1M rows
    python benchmarks/scale.py                            # 14M rows (30-60 min on 2 cores)
    python benchmarks/scale.py --n 1000000 --stages       # per-stage time and RSS, in-process
    python benchmarks/scale.py --scoring --model DIR      # scoring throughput of a fitted model

Results go to ``benchmarks/results/scale.md`` and ``scale.json`` (one entry per run, keyed by mode and size).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CHUNK = 1_000_000
N_FEATURES = 12
TREATED_SHARE = 0.85
#: Criteo-like base rates: visit 4.7%, conversion 0.3% (treated and control pooled).
VISIT_RATE, CONVERSION_RATE = 0.047, 0.003
FEATURES = [f"f{j}" for j in range(N_FEATURES)]


# ----------------------------------------------------------------------------------------------- data
def _latent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Six latent customer traits and twelve observed features derived from them (some discrete, some noise)."""
    z = rng.standard_normal((n, 6)).astype(np.float32)
    f = np.empty((n, N_FEATURES), np.float32)
    f[:, 0] = 12 + 3 * z[:, 0]
    f[:, 1] = 10 + np.round(2 * z[:, 1] + 0.5 * z[:, 0])  # a few integer levels
    f[:, 2] = 8 + np.exp(0.8 * z[:, 2])  # skewed
    f[:, 3] = 4 + 0.7 * z[:, 3] + 0.3 * z[:, 0]
    f[:, 4] = 10 + np.round(np.abs(z[:, 4]) * 2) / 2  # discrete, half steps
    f[:, 5] = 4 + 1.5 * np.tanh(z[:, 5])
    f[:, 6] = -3 + 2 * z[:, 1] + rng.standard_normal(n, dtype=np.float32)
    f[:, 7] = 5 + np.floor(np.exp(0.6 * z[:, 3] + 1))  # count-like
    f[:, 8] = 3.9 + (rng.random(n, dtype=np.float32) < 0.3 + 0.2 * (z[:, 4] > 0))  # binary-like
    f[:, 9] = 10 + 3 * rng.standard_normal(n, dtype=np.float32)  # pure noise
    f[:, 10] = 5 + 0.5 * z[:, 5] + 0.5 * z[:, 2]
    f[:, 11] = -0.2 + rng.standard_normal(n, dtype=np.float32) ** 2 / 5  # skewed noise
    return z, f


def _scores(z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Logit-scale baseline and treatment shift of visiting, and of converting given a visit."""
    z = z.astype(np.float64)
    visit_base = 0.8 * z[:, 0] - 0.5 * z[:, 1] + 0.4 * z[:, 2] + 0.3 * np.sin(2 * z[:, 3])
    visit_shift = 0.15 + 0.3 * np.tanh(z[:, 0]) + 0.2 * (z[:, 4] > 0.5) - 0.2 * (z[:, 5] < -1)
    conv_base = 0.6 * z[:, 2] + 0.4 * z[:, 3] - 0.3 * z[:, 5]
    conv_shift = 0.05 + 0.3 * np.tanh(z[:, 2]) + 0.1 * (z[:, 1] < 0)
    return visit_base, visit_shift, conv_base, conv_shift


def _intercepts() -> tuple[float, float]:
    """Intercepts that give the Criteo base rates (solved once on a fixed reference sample)."""
    from scipy.optimize import brentq
    from scipy.special import expit

    z, _ = _latent(np.random.default_rng(12345), 400_000)
    vb, vs, cb, cs = _scores(z)
    p = TREATED_SHARE
    a_v = brentq(lambda a: (p * expit(a + vb + vs) + (1 - p) * expit(a + vb)).mean() - VISIT_RATE, -12, 5)
    v0, v1 = expit(a_v + vb), expit(a_v + vb + vs)
    a_c = brentq(lambda a: (p * v1 * expit(a + cb + cs) + (1 - p) * v0 * expit(a + cb)).mean()
                 - CONVERSION_RATE, -12, 5)
    return float(a_v), float(a_c)


def _chunk(rng: np.random.Generator, n: int, a_v: float, a_c: float) -> tuple[dict, dict]:
    from scipy.special import expit

    z, f = _latent(rng, n)
    vb, vs, cb, cs = _scores(z)
    t = rng.random(n) < TREATED_SHARE
    v0, v1 = expit(a_v + vb), expit(a_v + vb + vs)
    q0, q1 = expit(a_c + cb), expit(a_c + cb + cs)
    visit = rng.random(n) < np.where(t, v1, v0)
    conversion = visit & (rng.random(n) < np.where(t, q1, q0))  # a conversion needs a visit
    data = {name: f[:, j] for j, name in enumerate(FEATURES)}
    data.update(treatment=t.astype(np.int8), visit=visit.astype(np.int8), conversion=conversion.astype(np.int8),
                propensity=np.full(n, TREATED_SHARE, np.float32))
    truth = {"true_uplift_conversion": (v1 * q1 - v0 * q0).astype(np.float32),
             "true_uplift_visit": (v1 - v0).astype(np.float32)}
    return data, truth


def generate(path: Path, n: int, seed: int) -> dict:
    """Write ``path`` (features, treatment, outcomes, propensity) and ``<stem>_truth.parquet``, in chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    a_v, a_c = _intercepts()
    truth_path = path.with_name(path.stem + "_truth.parquet")
    writers: dict[str, pq.ParquetWriter] = {}
    sums = {"treatment": 0, "visit": 0, "conversion": 0, "true_ate_conversion": 0.0, "true_ate_visit": 0.0}
    for i, start in enumerate(range(0, n, CHUNK)):
        rng = np.random.default_rng([seed, i])
        data, truth = _chunk(rng, min(CHUNK, n - start), a_v, a_c)
        for target, cols in ((path, data), (truth_path, truth)):
            table = pa.table(cols)
            if target not in writers:
                writers[target] = pq.ParquetWriter(target, table.schema, compression="snappy")
            writers[target].write_table(table, row_group_size=CHUNK)
        for key in ("treatment", "visit", "conversion"):
            sums[key] += int(data[key].sum())
        sums["true_ate_conversion"] += float(truth["true_uplift_conversion"].sum(dtype=np.float64))
        sums["true_ate_visit"] += float(truth["true_uplift_visit"].sum(dtype=np.float64))
    for w in writers.values():
        w.close()
    return {"rows": n, "seed": seed, "treated_share": sums["treatment"] / n, "visit_rate": sums["visit"] / n,
            "conversion_rate": sums["conversion"] / n, "true_ate_conversion": sums["true_ate_conversion"] / n,
            "true_ate_visit": sums["true_ate_visit"] / n, "bytes": path.stat().st_size}


# ----------------------------------------------------------------------------------------------- measuring
def _load_peers():
    # benchmarks/ is not a package: load peers.py by file (as learners.py does) for its process-tree RSS sampler.
    spec = importlib.util.spec_from_file_location("benchmarks_peers", HERE / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


_tree_rss_mb = _load_peers()._tree_rss_mb


def run_command(cmd: list[str], log: Path, *, show_progress: bool = False) -> dict:
    """Run ``cmd``, sampling its process tree's RSS; return wall seconds, peak RSS (MB), load and exit code.

    ``show_progress`` makes rich draw its progress bar into the log as on a terminal (to see how far it got).
    """
    env = {**os.environ, **({"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1", "COLUMNS": "140"}
                            if show_progress else {})}
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    start = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        peak, loads = 0.0, [load_before]
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mb(proc.pid))
            loads.append(os.getloadavg()[0])
            time.sleep(0.1)
    seconds = time.perf_counter() - start
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # ru_maxrss of children is the largest single reaped child so far: it only counts when it grew.
    peak = max(peak, children if children > before else 0.0)
    return {"cmd": " ".join(cmd), "seconds": seconds, "peak_rss_mb": peak, "exit_code": proc.returncode,
            "load_avg_max": max(loads), "load_avg_mean": float(np.mean(loads)),
            "log_tail": log.read_text(errors="replace")[-2000:] if proc.returncode else ""}


def _uplift_cmd() -> list[str]:
    return [sys.executable, "-c", "import sys; from uplift.cli import main; sys.argv[0] = 'uplift'; main()"]


def _matrix_mb(n: int) -> float:
    return n * N_FEATURES * 4 / 1e6


def held_out_quality(scores: Path, holdout: Path, outcome: str = "conversion") -> dict:
    """PEHE of the predicted uplift against the true uplift, and the Qini coefficient on held-out outcomes."""
    import pyarrow.parquet as pq

    from uplift.evaluate.metrics import qini_auc_score

    pred = pq.read_table(scores, columns=["uplift"]).column(0).to_numpy().astype(np.float64)
    truth = pq.read_table(holdout.with_name(holdout.stem + "_truth.parquet"),
                          columns=[f"true_uplift_{outcome}"]).column(0).to_numpy().astype(np.float64)
    obs = pq.read_table(holdout, columns=["treatment", outcome])
    t, y = obs.column("treatment").to_numpy(), obs.column(outcome).to_numpy()
    return {"pehe": float(np.sqrt(np.mean((pred - truth) ** 2))), "true_uplift_sd": float(truth.std()),
            "predicted_ate": float(pred.mean()), "true_ate": float(truth.mean()),
            "corr_with_truth": float(np.corrcoef(pred, truth)[0, 1]),
            "qini_held_out": float(qini_auc_score(y, pred, t)),
            "qini_held_out_truth_ranking": float(qini_auc_score(y, truth, t))}


# ----------------------------------------------------------------------------------------------- modes
def run_study(args, work: Path) -> dict:
    train, holdout = work / f"train_{args.n}.parquet", work / f"holdout_{args.holdout}.parquet"
    info = {}
    for path, n, seed in ((train, args.n, args.seed), (holdout, args.holdout, args.seed + 1)):
        if not path.exists():
            t0 = time.perf_counter()
            print(f"generating {n:,} rows -> {path}", flush=True)
            info[path.stem] = {**generate(path, n, seed), "seconds": time.perf_counter() - t0}
    model = work / f"model_{args.n}"
    fit_cmd = [*_uplift_cmd(), "fit", str(train), "--treatment", "treatment", "--outcome", "conversion",
               "--outcome", "visit", "--propensity", "propensity", "--out", str(model)]
    if args.learners:
        fit_cmd += ["--learners", args.learners]
    steps = {}
    print(f"fit: {' '.join(fit_cmd[3:])}", flush=True)
    steps["fit"] = run_command(fit_cmd, work / f"fit_{args.n}.log", show_progress=True)
    _report_step("fit", steps["fit"], args.n)
    if steps["fit"]["exit_code"] != 0:
        return {"data": info, "steps": steps}
    scores = work / f"scores_{args.n}.parquet"
    steps["predict"] = run_command([*_uplift_cmd(), "predict", str(model), str(holdout), "--out", str(scores)],
                                   work / f"predict_{args.n}.log")
    steps["predict"]["rows_per_s"] = args.holdout / steps["predict"]["seconds"]
    _report_step("predict", steps["predict"], args.n)
    quality = held_out_quality(scores, holdout) if steps["predict"]["exit_code"] == 0 else {}
    fast_scores = work / f"scores_fast_{args.n}.parquet"
    steps["predict_fast"] = run_command([*_uplift_cmd(), "predict", str(model), str(holdout), "--out",
                                         str(fast_scores), "--fast"], work / f"predict_fast_{args.n}.log")
    steps["predict_fast"]["rows_per_s"] = args.holdout / steps["predict_fast"]["seconds"]
    _report_step("predict_fast", steps["predict_fast"], args.n)
    if steps["predict_fast"]["exit_code"] == 0:
        quality_fast = held_out_quality(fast_scores, holdout)
        quality.update({f"fast_{k}": v for k, v in quality_fast.items()})
    targets = work / f"list_{args.n}.parquet"
    steps["target"] = run_command(
        [*_uplift_cmd(), "target", str(model), str(holdout), "--out", str(targets), "--cost", "0.01",
         "--value", "20", "--budget", str(0.01 * args.holdout * 0.2)], work / f"target_{args.n}.log")
    _report_step("target", steps["target"], args.n)
    study = json.loads((model / "study.json").read_text())
    board = study["leaderboard"]
    cols = board["columns"]
    summary = {"chosen_learner": study["best_learner"],
               "leaderboard": [dict(zip(cols, row, strict=True)) for row in board["data"]],
               "ate": [dict(zip(study["ate"]["columns"], r, strict=True)) for r in study["ate"]["data"]]}
    return {"data": info, "steps": steps, "held_out": quality, "study": summary}


def _report_step(name: str, step: dict, n: int) -> None:
    ratio = step["peak_rss_mb"] * 2**20 / 1e6 / _matrix_mb(n)
    print(f"  {name}: exit {step['exit_code']}, {step['seconds']:.1f} s, peak RSS {step['peak_rss_mb']:.0f} MB "
          f"({ratio:.2f}x the float32 matrix), load {step['load_avg_mean']:.1f}", flush=True)
    if step["exit_code"]:
        print(step["log_tail"], flush=True)


class _StageRecorder:
    """Progress hook recording, at every step, the time the step took, the RSS after it and the peak during it
    (a sampler thread reads /proc every 0.05 s). ``advance(description)`` says which step just finished."""

    def __init__(self) -> None:
        self.t0 = self.last = time.perf_counter()
        self.events: list[dict] = []
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss_mb(os.getpid()))
            self._stop.wait(0.05)

    def mark(self, finished: str) -> None:
        now, rss = time.perf_counter(), _tree_rss_mb(os.getpid())
        ev = {"stage": finished, "seconds": round(now - self.last, 2), "ended_s": round(now - self.t0, 1),
              "rss_mb": round(rss), "peak_mb": round(max(self.peak, rss))}
        self.events.append(ev)
        print(f"  {ev['ended_s']:8.1f} s  {ev['seconds']:7.1f} s  rss {rss:6.0f} MB  peak {ev['peak_mb']:6.0f} MB  "
              f"{finished}", flush=True)
        self.last, self.peak = now, rss

    def start(self, total: int, description: str) -> None:
        self.mark(f"(until start of: {description})")

    def advance(self, description: str) -> None:
        self.mark(description)

    def close(self) -> None:
        self._stop.set()


def run_stages(args, work: Path) -> dict:
    """The CLI's fit, in-process, with time and RSS per progress step."""
    from uplift.data.tables import read_table
    from uplift.study import Study

    train = work / f"train_{args.n}.parquet"
    if not train.exists():
        generate(train, args.n, args.seed)
    rec = _StageRecorder()
    frame = read_table(train)
    rec.mark("read_table (parquet -> DataFrame)")
    study = Study(frame, treatment="treatment", outcome=["conversion", "visit"], propensity="propensity")
    rec.mark("Study(...): validation, float32 matrix")
    learners = args.learners.split(",") if args.learners else None
    study.fit(**({"learners": learners} if learners else {}), progress=rec)
    rec.mark("fit: rest")
    study.save(work / f"model_stages_{args.n}")
    rec.mark("save")
    rec.close()
    return {"events": rec.events, "chosen_learner": study.best_learner_}


def run_scoring(args, work: Path) -> dict:
    """Streamed scoring throughput of a fitted model: ``uplift predict`` and ``score_file`` per learner."""
    from uplift.scoring import score_file
    from uplift.study import Study

    model = Path(args.model) if args.model else work / f"model_{args.n}"
    big = work / f"score_{args.score_rows}.parquet"
    if not big.exists():
        generate(big, args.score_rows, args.seed + 2)
    # The fold-averaged models score tens of thousands of rows a second: time them on a smaller file.
    small = work / f"score_{args.full_rows}.parquet"
    if not small.exists():
        generate(small, args.full_rows, args.seed + 3)
    study = Study.load(model)
    learners = list(dict.fromkeys(["fast", "t", study.best_learner_, *(args.score_learners.split(",")
                                                                       if args.score_learners else [])]))
    rows = []
    for learner in learners:
        data = big if learner == "fast" else small
        out = work / f"scored_{learner}.parquet"
        cli = run_command([*_uplift_cmd(), "predict", str(model), str(data), "--out", str(out), "--learner", learner],
                          work / f"scoring_{learner}.log")
        t0 = time.perf_counter()
        n = score_file(study, data, out, learner=learner)
        seconds = time.perf_counter() - t0
        rows.append({"learner": learner, "rows": n, "cli_seconds": cli["seconds"],
                     "cli_rows_per_s": n / cli["seconds"], "cli_peak_rss_mb": cli["peak_rss_mb"],
                     "in_process_seconds": seconds, "in_process_rows_per_s": n / seconds,
                     "load_avg_mean": cli["load_avg_mean"], "exit_code": cli["exit_code"]})
        print(f"  {learner}: uplift predict {n / cli['seconds']:,.0f} rows/s ({cli['seconds']:.1f} s, "
              f"{cli['peak_rss_mb']:.0f} MB); score_file {n / seconds:,.0f} rows/s", flush=True)
    trees = {}
    for path, m in ((p, m) for k, fm in enumerate(study.crossfit_.fold_models) for p, m in _models(k, fm)):
        booster = getattr(m, "booster_", None)
        trees[path] = None if booster is None else booster.num_trees()
    return {"model": str(model), "scoring_rows": args.score_rows, "learners": rows, "trees_per_model": trees}


def _models(k: int, fm):
    for a, m in fm.mu.items():
        yield f"fold{k}/mu{a}", m
    for (name, a), lrn in fm.learners.items():
        for key, m in lrn.models_.items():
            yield f"fold{k}/{name}_{a}_{key}", m


def run_peers(args, work: Path) -> dict:
    """The peers' single estimators on the same Criteo-like data (``--peers``): each in its own process, as in
    ``peers.py`` (same workers, same wall/RSS measurement), on the training file; PEHE and Qini on the holdout."""
    import pyarrow.parquet as pq

    peers = _load_peers()
    directory = work / f"peers_{args.n}"
    directory.mkdir(exist_ok=True)
    arrays = directory / "arrays.npz"
    if not arrays.exists():
        names = [f"f{j}" for j in range(N_FEATURES)]

        def load(path: Path) -> dict:
            table = pq.read_table(path, columns=[*names, "treatment", "conversion", "propensity"])
            X = np.column_stack([table.column(c).to_numpy() for c in names]).astype(np.float32)
            return {"X": X, "t": table.column("treatment").to_numpy().astype(np.int64),
                    "y": table.column("conversion").to_numpy().astype(np.float64),
                    "p": table.column("propensity").to_numpy().astype(np.float64)}

        holdout = work / f"holdout_{args.holdout}.parquet"
        tr, te = load(work / f"train_{args.n}.parquet"), load(holdout)
        tau = pq.read_table(holdout.with_name(holdout.stem + "_truth.parquet"),
                            columns=["true_uplift_conversion"]).column(0).to_numpy().astype(np.float64)
        np.savez(arrays, X_train=tr["X"], t_train=tr["t"], y_train=tr["y"], p_train=tr["p"], X_test=te["X"],
                 t_test=te["t"], y_test=te["y"], p_test=te["p"], tau_test=tau)
        del tr, te
    peers.set_threads(args.threads)
    rows = []
    for key in args.peer_methods.split(","):
        print(f"  {key} ...", end=" ", flush=True)
        res = {"key": key, "label": peers.BY_KEY[key].label, **peers.run_method(key, directory, args.timeout)}
        print(res["status"] if res["status"] != "ok" else
              f"{res['seconds']:.1f} s, {res['peak_rss_mb']:.0f} MB, PEHE {res['pehe']:.5f}, Qini {res['qini']:.4f}",
              flush=True)
        rows.append(res)
    return {"threads": args.threads, "timeout": args.timeout, "rows": rows}


# ----------------------------------------------------------------------------------------------- results
def _env() -> dict:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "uplift"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        commit = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "mem_gib": round(int(mem) / 2**20, 1),
            "uplift_commit": commit, "when": time.strftime("%Y-%m-%d %H:%M")}


def save(key: str, result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "scale.json"
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything[key] = result
    path.write_text(json.dumps(everything, indent=1, default=float))
    (RESULTS / "scale.md").write_text(render(everything))


def add_note(key: str, text: str) -> None:
    """Store a free-text note (e.g. a measurement made by hand) with the results; it is rendered in scale.md."""
    save(f"note_{key}", {"text": text})


def render(everything: dict) -> str:
    lines = ["## Scale benchmark: full default study on a Criteo-like campaign (one machine)", "",
             "`benchmarks/scale.py`: 12 float32 features, ~85% treated, visit ~4.7%, conversion ~0.3%, known "
             "heterogeneous uplift. Each step is a separate `uplift` CLI process; peak RSS is the process tree's "
             "(sampled every 0.1 s). The memory target is 4x the raw float32 feature matrix (n x 12 x 4 B). "
             "Load = mean 1-minute load average during the step (2 CPUs; above 2 means other work competed).", "",
             "| rows | step | wall s | peak RSS MiB | RSS / matrix | load | note |",
             "|---:|---|---:|---:|---:|---:|---|"]
    for key, res in sorted(everything.items(), key=lambda kv: (kv[0].split("_")[0], kv[1].get("n", 0))):
        if not key.startswith("study_"):
            continue
        n = res["n"]
        tag = key.split("_", 2)[2] if key.count("_") >= 2 else ""
        rows_label = f"{n:,}" + (f" ({tag})" if tag else "")
        for name, step in res.get("steps", {}).items():
            ratio = step["peak_rss_mb"] * 2**20 / 1e6 / _matrix_mb(n)
            note = f"exit {step['exit_code']}" if step["exit_code"] else ""
            if name in ("predict", "predict_fast"):
                note = f"{step.get('rows_per_s', 0):,.0f} rows/s (holdout file, whole command)"
            if name == "fit" and res.get("study"):
                note = f"chosen: {res['study']['chosen_learner']}"
            lines.append(f"| {rows_label} | {name} | {step['seconds']:.1f} | {step['peak_rss_mb']:.0f} | {ratio:.2f} | "
                         f"{step['load_avg_mean']:.1f} | {note} |")
    quality = [(k, r) for k, r in everything.items() if k.startswith("study_") and r.get("held_out")]
    if quality:
        lines += ["", "Held-out quality of the chosen learner (conversion uplift; the same 1M held-out customers for "
                  "every size), and of its distilled fast scorer (`--fast`, where measured):", "",
                  "| rows | chosen | PEHE | true uplift SD | corr with truth | Qini | Qini of true uplift | "
                  "fast PEHE | fast Qini |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for _, r in sorted(quality, key=lambda kv: kv[1]["n"]):
            q = r["held_out"]
            fast = (f"{q['fast_pehe']:.5f} | {q['fast_qini_held_out']:.4f}" if "fast_pehe" in q else "— | —")
            lines.append(f"| {r['n']:,} | {r['study']['chosen_learner']} | {q['pehe']:.5f} | "
                         f"{q['true_uplift_sd']:.5f} | {q['corr_with_truth']:.3f} | {q['qini_held_out']:.4f} | "
                         f"{q['qini_held_out_truth_ranking']:.4f} | {fast} |")
    scoring = [(k, r) for k, r in everything.items() if k.startswith("scoring_")]
    if scoring:
        lines += ["", "Streamed scoring throughput (`fast`: the distilled scorer, `uplift predict --fast`; other rows: "
                  "the fold-averaged model, as `uplift predict` scores by default):", "",
                  "| model | learner | rows | `uplift predict` rows/s | in-process `score_file` rows/s | "
                  "peak RSS MiB | load |", "|---|---|---:|---:|---:|---:|---:|"]
        for _, r in scoring:
            for row in r["learners"]:
                lines.append(f"| {Path(r['model']).name} | {row['learner']} | {row['rows']:,} | "
                             f"{row['cli_rows_per_s']:,.0f} | {row['in_process_rows_per_s']:,.0f} | "
                             f"{row['cli_peak_rss_mb']:.0f} | {row['load_avg_mean']:.1f} |")
    for key, r in everything.items():
        if not key.startswith("peers_"):
            continue
        # Our study on the same file: the latest run of that size that has held-out results.
        ours = next((everything[k] for k in reversed(list(everything)) if k.split("_")[:2] == ["study", str(r["n"])]
                     and everything[k].get("held_out")), None)
        fit = ours["steps"]["fit"] if ours else None
        lines += ["", f"Peers on the same {r['n']:,}-row training file (`--peers`, `{key}`; {r['threads'] or 'all'} "
                  f"thread(s) per method, {r['timeout']:.0f} s limit; held-out = the same 1M customers):", "",
                  "| method | wall s | peak RSS MiB | PEHE | Qini | time / ours | load |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        if fit and ours.get("held_out"):
            q = ours["held_out"]
            lines.append(f"| uplift fit (full default study) | {fit['seconds']:.0f} | {fit['peak_rss_mb']:.0f} | "
                         f"{q['pehe']:.5f} | {q['qini_held_out']:.4f} | 1.00 | {fit['load_avg_mean']:.1f} |")
        for row in r["rows"]:
            if row["status"] != "ok":
                lines.append(f"| {row['label']} | {row['status']} | {row['peak_rss_mb']:.0f} | — | — | — | "
                             f"{row['load']:.1f} |")
                continue
            ratio = f"{row['seconds'] / fit['seconds']:.3f}" if fit else "—"
            lines.append(f"| {row['label']} | {row['seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['pehe']:.5f} | "
                         f"{row['qini']:.4f} | {ratio} | {row['load']:.1f} |")
    for key, r in everything.items():
        if key.startswith("note_"):
            lines += ["", r["text"]]
    stages = [(k, r) for k, r in everything.items() if k.startswith("stages_")]
    for key, r in stages:
        lines += ["", f"Per-stage time and RSS, in-process (`{key}`):", "",
                  "| finished step | seconds | ended at s | RSS after MB | peak during MB |",
                  "|---|---:|---:|---:|---:|"]
        for ev in r["events"]:
            lines.append(f"| {ev['stage']} | {ev.get('seconds', '')} | {ev['ended_s']} | {ev['rss_mb']} | "
                         f"{ev['peak_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=14_000_000, help="training rows")
    ap.add_argument("--holdout", type=int, default=1_000_000, help="held-out rows (predict, quality, target)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--workdir", default="/tmp/uplift_scale", help="where data, models and logs go")
    ap.add_argument("--learners", default="", help="learners for fit (default: the CLI's default set)")
    ap.add_argument("--stages", action="store_true", help="in-process fit with time and RSS per progress step")
    ap.add_argument("--scoring", action="store_true", help="scoring throughput of a fitted model")
    ap.add_argument("--model", default="", help="model directory for --scoring (default: the --n study's)")
    ap.add_argument("--score-rows", type=int, default=5_000_000, help="rows of the scoring file")
    ap.add_argument("--score-learners", default="", help="more learners to time in --scoring")
    ap.add_argument("--full-rows", type=int, default=1_000_000,
                    help="rows scored by the fold-averaged (not distilled) models in --scoring")
    ap.add_argument("--tag", default="", help="suffix of the result key")
    ap.add_argument("--peers", action="store_true", help="the peers' estimators on the same training file")
    ap.add_argument("--peer-methods", default="causalml_t,causalml_x,econml_x,causalml_dr,econml_dr,sklift_two_models",
                    help="peers.py method keys for --peers")
    ap.add_argument("--threads", type=int, default=2, help="threads per peer method (--peers)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per peer method (--peers)")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    mode = "scoring" if args.scoring else "stages" if args.stages else "peers" if args.peers else "study"
    print(f"{mode}: n={args.n:,}, load average {os.getloadavg()[0]:.1f}", flush=True)
    run = {"scoring": run_scoring, "stages": run_stages, "study": run_study, "peers": run_peers}[mode]
    result = {"n": args.n, "env": _env(), "matrix_mb": _matrix_mb(args.n), **run(args, work)}
    key = f"{mode}_{args.n}" + (f"_{args.tag}" if args.tag else "")
    save(key, result)
    print(f"saved {key} to {RESULTS / 'scale.json'}")


if __name__ == "__main__":
    main()

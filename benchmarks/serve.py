"""Benchmark of ``uplift serve``: a real server on a loopback port, driven by an async HTTP load generator.

What is measured, in one run:

1. **The floor** (in this process, no HTTP): LightGBM's own ``Booster.predict`` on one row (one fold's
   outcome model), the fast scorer's compiled tree walk on one row, ``FitResult.predict_uplift`` (the scoring
   call ``uplift predict`` makes, with the schema encoding) on one row and on 1,000 rows, and the service's
   whole in-process path (request checks, scoring, decision) for one customer and for 1,000.
2. **Through HTTP**: ``uplift serve MODEL --no-access-log --workers N`` in a subprocess, for each N of
   ``--workers`` (default 1 and 2); an asyncio HTTP/1.1 client
   (kept-alive connections, request bytes built once; httpx costs ~2-3 ms of CPU a request here) keeps
   ``concurrency`` requests in flight (1, 8, 64) for a fixed time per scenario: single-customer ``/v1/decide``
   and ``/v1/uplift``, and 1,000-customer batches of both. Per scenario: latency p50/p95/p99 (client side,
   request sent to response parsed), requests/s, rows/s, errors, the server's CPU (its CPU seconds over
   wall seconds; 1.0 = one core), its CPU milliseconds per request (all worker processes), peak RSS (psutil,
   sampled every 0.2 s) and the machine's mean 1-minute load average during the scenario.
3. **Sustained load**: single-customer ``/v1/decide`` at concurrency 8 for ``--sustain`` seconds (default the
   issue's 10 minutes) with the last worker count; errors, p99 per minute, RSS of all server processes after
   warm-up (the first 30 s) and at the end.

The load generator runs on the same machine as the server (and, on the shared development machine, next to
other people's work): the latencies include its CPU time and are pessimistic, and they depend on how busy the
machine is. The server's CPU time per request does not, nearly: it is the figure to compare between runs.

Run::

    python benchmarks/serve.py                         # fits a 20,000-customer, two-coupon model first
    python benchmarks/serve.py --model DIR --seconds 10 --sustain 600 --workers 2

Results go to ``benchmarks/results/serve.md`` and ``serve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Run as a script, this folder is sys.path[0], and its coverage.py would shadow the coverage package that numba
# (the fast scorer's compiler) imports.
if sys.path and Path(sys.path[0]).resolve() == HERE:
    sys.path.pop(0)
RESULTS = HERE / "results"
COST = {"coupon_a": 0.5, "coupon_b": 1.5}
VALUE = 40.0


def fit_model(n: int, directory: Path) -> Path:
    from uplift import Study, simulate_campaign

    df = simulate_campaign(n, design="rct", n_arms=2, seed=7)
    truth = [c for c in df.columns if c.startswith(("true_", "propensity"))]
    study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"])
    study.fit(learners=["t", "x"], n_folds=3, n_boot=50)
    return study.save(directory / "model")


def customers(n: int, seed: int) -> list[dict]:
    from uplift.datasets import simulate_campaign

    df = simulate_campaign(n, design="rct", n_arms=2, seed=seed)
    drop = [c for c in df.columns if c.startswith(("true_", "propensity"))] + ["treatment", "conversion", "revenue"]
    return df.drop(columns=drop).to_dict(orient="records")


def timed(fn, repeat: int) -> dict:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "n": repeat}


def floor(model_dir: Path, one: list[dict], batch: list[dict]) -> dict:
    """The same model without HTTP."""
    import lightgbm as lgb
    import pandas as pd

    from uplift.serving.requests import DecisionOptions, parse_customers
    from uplift.serving.service import ModelService

    service = ModelService(model_dir)
    result = service.result
    schema = result.schema
    frame1, frame_k = pd.DataFrame(one), pd.DataFrame(batch)
    X1 = schema.encode(frame1)
    booster = lgb.Booster(model_file=str(model_dir / "fold0" / "mu1.txt"))
    options = DecisionOptions(cost=COST, value=VALUE)

    def service_path(records):
        parsed = parse_customers({"customers": records}, schema, result.id_column)
        return service.decide(parsed.ids, service.scores(parsed), options)

    out = {
        "lightgbm Booster.predict, 1 row (one fold's outcome model)": timed(lambda: booster.predict(X1), 2000),
        "fast scorer tree walk, 1 row": timed(lambda: result.scorer.predict(X1), 2000),
        "FitResult.predict_uplift (fast), 1 row": timed(lambda: result.predict_uplift(frame1, learner="fast"), 1000),
        f"FitResult.predict_uplift ({result.best_learner}, fold models), 1 row":
            timed(lambda: result.predict_uplift(frame1), 300),
        "FitResult.predict_uplift (fast), 1,000 rows": timed(lambda: result.predict_uplift(frame_k, learner="fast"),
                                                             200),
        "service in-process: check + score + decide, 1 customer": timed(lambda: service_path(one), 1000),
        "service in-process: check + score + decide, 1,000 customers": timed(lambda: service_path(batch), 100),
    }
    return out


class Sampler:
    """The server's CPU seconds and RSS (psutil) and the machine's 1-minute load average, sampled every 0.2 s
    while a scenario runs."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float, int]] = []
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        procs = [self.proc, *self.proc.children(recursive=True)]
        cpu = sum(p.cpu_times().user + p.cpu_times().system for p in procs)
        rss = sum(p.memory_info().rss for p in procs)
        self.samples.append((time.monotonic(), cpu, rss))
        self.loads.append(os.getloadavg()[0])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(0.2)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def cpu(self) -> float:
        (t0, c0, _), (t1, c1, _) = self.samples[0], self.samples[-1]
        return (c1 - c0) / (t1 - t0)

    @property
    def cpu_seconds(self) -> float:
        return self.samples[-1][1] - self.samples[0][1]

    @property
    def peak_rss_mb(self) -> float:
        return max(s[2] for s in self.samples) / 2**20

    @property
    def load(self) -> float:
        """Mean 1-minute load average during the scenario (2.0 = both cores busy)."""
        return float(np.mean(self.loads))


async def _post(reader, writer, request: bytes) -> int:
    """One request on a kept-alive HTTP/1.1 connection; returns the status (the body is read whole)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def drive(host: str, port: int, path: str, body: bytes, concurrency: int, seconds: float,
                warmup: float = 1.0, per_minute: bool = False) -> dict:
    """Keep ``concurrency`` requests in flight for ``warmup + seconds``; latencies of the last ``seconds``.

    The client is a minimal asyncio HTTP/1.1 client (one kept-alive connection per concurrent request, the request
    bytes built once): httpx spends ~2-3 ms of CPU per request on this machine, which would be measured as the
    server's latency.
    """
    request = (f"POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[tuple[float, float]] = []
    errors: dict[str, int] = {}
    start = time.monotonic()
    measure_from = start + warmup
    stop = measure_from + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        try:
            while True:
                t = time.monotonic()
                if t >= stop:
                    return
                t0 = time.perf_counter()
                try:
                    status = await _post(reader, writer, request)
                    key = str(status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status, key = 0, type(exc).__name__
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port, limit=2**24)
                elapsed = time.perf_counter() - t0
                if t >= measure_from:
                    if status == 200:
                        latencies.append((t - measure_from, elapsed))
                    else:
                        errors[key] = errors.get(key, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    lat = np.array([x[1] for x in latencies]) * 1e3
    if not len(lat):  # nothing answered in the measured window (too short for the load): no latencies
        lat = np.array([np.nan])
        latencies = []
    out = {"requests": len(latencies), "errors": errors, "seconds": seconds,
           "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
           "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
           "requests_per_s": len(latencies) / seconds}
    if per_minute:
        at = np.array([x[0] for x in latencies])
        minutes = [(at >= m * 60) & (at < (m + 1) * 60) for m in range(int(np.ceil(seconds / 60)))]
        out["p99_ms_per_minute"] = [float(np.percentile(lat[m], 99)) for m in minutes if m.any()]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    import httpx

    # One thread per worker for OpenMP and numba: with ``workers`` processes on the two cores, more threads
    # only compete (a single-customer call never uses a second thread).
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from uplift.cli import main; main()", "serve", str(model_dir),
                             "--port", str(port), "--no-access-log", "--workers", str(workers)],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,  # noqa: SIM115
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready in 180 s")


def markdown(doc: dict) -> str:
    workers = ", ".join(str(w) for w in doc["workers"])
    lines = ["# `uplift serve` benchmark", "",
             f"Model: `simulate_campaign(n={doc['n_train']:,}, n_arms=2)`, learners {doc['learners']}, chosen "
             f"**{doc['chosen']}**, served with **{doc['scorer']}** (12 features, 2 coupons). Machine: "
             f"{doc['machine']}; {doc['cpus']} CPUs **shared with other engineers' jobs during the run** (1-minute "
             f"load average {doc['load_start']:.1f} at the start, {doc['load_end']:.1f} at the end; 2.0 = both "
             "cores busy), the load generator on the same cores: latencies and throughput are pessimistic, and "
             "the load column says how busy the machine was during each scenario. Server: `uplift serve "
             f"--workers N` (N = {workers}), OMP_NUM_THREADS=1, NUMBA_NUM_THREADS = cores / N, no access log, "
             f"{doc['http_stack']}. Latency is client-side (request sent to response parsed); server "
             "CPU is its CPU seconds per wall second (1.0 = one core). Generated by `benchmarks/serve.py` in "
             f"{doc['elapsed_s'] / 60:.1f} min, uplift at `{doc['commit']}`.", "",
             "## The floor: the same model without HTTP (in-process)", "",
             "| what | p50 ms | p99 ms |", "|---|---:|---:|"]
    for name, r in doc["floor"].items():
        lines.append(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |")
    lines += ["", "## Through HTTP (loopback)", "",
              "Body formats: `object` = `{\"customer\": {...}}`, `rows` = `{\"customers\": [{...}, ...]}`, `columns` = "
              "`{\"columns\": {feature: [...]}}`.", "",
              "Server CPU ms / request is the server's CPU time (all workers) per answered request: what one "
              "request costs the server whatever else runs on the machine, so it compares across runs on a busy "
              "machine where latencies do not (its inverse bounds the requests/s of one dedicated core).", "",
              "| workers | endpoint | customers / request | format | concurrency | requests | p50 ms | p95 ms | "
              "p99 ms | requests/s | rows/s | errors | server CPU | server CPU ms / request | server peak RSS MB | "
              "load |",
              "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in doc["http"]:
        errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "0"
        lines.append(f"| {r['workers']} | {r['endpoint']} | {r['rows']:,} | {r['format']} | {r['concurrency']} | "
                     f"{r['requests']:,} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} | "
                     f"{r['requests_per_s']:,.0f} | {r['requests_per_s'] * r['rows']:,.0f} | {errors} | "
                     f"{r['server_cpu']:.2f} | {r['server_cpu_ms_per_request']:.2f} | {r['server_peak_rss_mb']:.0f} | "
                     f"{r['load']:.1f} |")
    s = doc["sustained"]
    errors = ", ".join(f"{k}: {v}" for k, v in s["errors"].items()) or "none"
    short = "" if s["seconds"] >= 600 else " (shorter than the issue's 10 minutes)"
    lines += ["", "## Sustained load", "",
              f"Single-customer `/v1/decide` at concurrency 8 for {s['seconds'] / 60:.1f} min{short}, "
              f"{s['workers']} worker(s): {s['requests']:,} requests, errors: {errors}; p50 {s['p50_ms']:.2f} ms, "
              f"p99 {s['p99_ms']:.2f} ms (per minute: {', '.join(f'{x:.1f}' for x in s['p99_ms_per_minute'])} ms); "
              f"server CPU {s['server_cpu_ms_per_request']:.2f} ms / request; server RSS "
              f"{s['rss_after_warmup_mb']:.0f} MB after the first 30 s, {s['rss_end_mb']:.0f} MB at the end "
              f"({s['rss_change_pct']:+.1f}%); load average {s['load']:.1f}.", "",
              "## Against the issue's targets", ""]
    lines += [f"- {t}" for t in doc["targets"]]
    return "\n".join(lines) + "\n"


def scenario(proc: subprocess.Popen, port: int, endpoint: str, raw: bytes, concurrency: int, seconds: float,
             **drive_options) -> dict:
    """One load level against the running server: the client's latencies and the server's CPU, RSS, load."""
    with Sampler(proc.pid) as sampler:
        r = asyncio.run(drive("127.0.0.1", port, endpoint, raw, concurrency, seconds, **drive_options))
    return {**r, "server_cpu": sampler.cpu, "server_cpu_ms_per_request": 1e3 * sampler.cpu_seconds / max(
        1, r["requests"] + sum(r["errors"].values())) * (seconds / (seconds + drive_options.get("warmup", 1.0))),
        "server_peak_rss_mb": sampler.peak_rss_mb, "load": sampler.load, "sampler": sampler}


def sustain(proc: subprocess.Popen, port: int, raw: bytes, seconds: float) -> dict:
    """Single-customer decisions at concurrency 8 for ``seconds``: errors, p99 per minute, and the server's RSS
    (all its processes) after warm-up (the first 30 s) and at the end."""
    marks: dict[str, float] = {}
    with Sampler(proc.pid) as sampler:
        def mark_rss() -> None:
            time.sleep(min(30.0, seconds / 4))
            procs = [sampler.proc, *sampler.proc.children(recursive=True)]
            marks["after_warmup"] = sum(p.memory_info().rss for p in procs) / 2**20

        threading.Thread(target=mark_rss, daemon=True).start()
        out = asyncio.run(drive("127.0.0.1", port, "/v1/decide", raw, 8, seconds, warmup=0.0, per_minute=True))
    end_rss = sampler.samples[-1][2] / 2**20
    out.update({"rss_after_warmup_mb": marks["after_warmup"], "rss_end_mb": end_rss,
                "rss_change_pct": 100 * (end_rss / marks["after_warmup"] - 1), "server_cpu": sampler.cpu,
                "load": sampler.load,
                "server_cpu_ms_per_request": 1e3 * sampler.cpu_seconds / max(1, out["requests"])})
    return out


def targets(http: list[dict], sustained: dict) -> list[str]:
    out = []
    for w in sorted({r["workers"] for r in http}):
        single8 = next(r for r in http if r["workers"] == w and r["endpoint"] == "/v1/decide" and r["rows"] == 1
                       and r["concurrency"] == 8)
        out.append(f"single-customer `/v1/decide` p99 at concurrency 8 (fast scorer), {w} worker(s): "
                   f"{single8['p99_ms']:.1f} ms at load {single8['load']:.1f} (target ≤ 10 ms: "
                   f"{'met' if single8['p99_ms'] <= 10 else 'missed'}); server CPU "
                   f"{single8['server_cpu_ms_per_request']:.2f} ms / request")
    best_batch = max((r for r in http if r["rows"] == 1000), key=lambda r: r["requests_per_s"])
    best_rows = max((r for r in http if r["format"] == "rows"), key=lambda r: r["requests_per_s"])
    out.append(f"batch scoring through HTTP: best {best_batch['requests_per_s'] * 1000:,.0f} rows/s "
               f"({best_batch['endpoint']}, {best_batch['format']}, concurrency {best_batch['concurrency']}, "
               f"{best_batch['workers']} worker(s), load {best_batch['load']:.1f}; "
               f"{best_rows['requests_per_s'] * 1000:,.0f} rows/s with one object per customer; target ≥ 200,000 "
               f"rows/s: {'met' if best_batch['requests_per_s'] * 1000 >= 200_000 else 'missed'}); at "
               f"{best_batch['server_cpu_ms_per_request']:.2f} ms of server CPU per 1,000 rows, one dedicated core "
               f"is {1e6 / best_batch['server_cpu_ms_per_request']:,.0f} rows/s")
    out.append(f"errors under {sustained['seconds'] / 60:.1f} min of sustained load: "
               f"{sum(sustained['errors'].values())}")
    out.append(f"memory flat: RSS {sustained['rss_change_pct']:+.1f}% from after warm-up to the end (target within "
               f"10%: {'met' if abs(sustained['rss_change_pct']) <= 10 else 'missed'})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="a saved model directory (default: fit one)")
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=8.0, help="measured seconds per HTTP scenario")
    ap.add_argument("--sustain", type=float, default=600.0, help="seconds of sustained load (the issue's 10 min)")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2 (the sustained run uses "
                    "the last)")
    ap.add_argument("--render", action="store_true", help="only rewrite serve.md from serve.json")
    args = ap.parse_args()
    if args.render:
        (RESULTS / "serve.md").write_text(markdown(json.loads((RESULTS / "serve.json").read_text())))
        return
    worker_counts = [int(w) for w in args.workers.split(",")]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    begin = time.monotonic()
    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="uplift-serve-bench-"))
    model_dir = args.model or fit_model(args.n_train, tmp)
    from uplift.persist import load_result

    result = load_result(model_dir)
    one, batch = customers(1, seed=101), customers(1000, seed=102)
    print("floor ...", flush=True)
    floor_doc = floor(model_dir, one, batch)
    econ = {"cost": COST, "value": VALUE}
    columns = {k: [r[k] for r in batch] for k in batch[0]}
    bodies = {("/v1/decide", 1, "object"): {"customer": one[0], **econ},
              ("/v1/uplift", 1, "object"): {"customer": one[0]},
              ("/v1/decide", 1000, "rows"): {"customers": batch, **econ},
              ("/v1/uplift", 1000, "rows"): {"customers": batch},
              ("/v1/decide", 1000, "columns"): {"columns": columns, **econ},
              ("/v1/uplift", 1000, "columns"): {"columns": columns}}
    http = []
    for workers in worker_counts:
        port = free_port()
        proc = start_server(model_dir, port, tmp / f"server-{workers}.log", workers)
        try:
            for (endpoint, rows, form), body in bodies.items():
                raw = json.dumps(body).encode()
                for concurrency in (1, 8, 64):
                    print(f"{workers} worker(s): {endpoint} x{rows} ({form}) at concurrency {concurrency} ...",
                          flush=True)
                    r = scenario(proc, port, endpoint, raw, concurrency, args.seconds)
                    r.pop("sampler")
                    http.append({"workers": workers, "endpoint": endpoint, "rows": rows, "format": form,
                                 "concurrency": concurrency, **r})
                    print(f"   p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, {r['requests_per_s']:.0f} req/s, "
                          f"{r['server_cpu_ms_per_request']:.3f} ms server CPU / request, load {r['load']:.1f}, "
                          f"errors {r['errors']}", flush=True)
            if workers != worker_counts[-1]:
                continue
            print(f"sustained {args.sustain:.0f} s ...", flush=True)
            raw = json.dumps(bodies[("/v1/decide", 1, "object")]).encode()
            sustained = sustain(proc, port, raw, args.sustain)
            sustained["workers"] = workers
            base = f"http://127.0.0.1:{port}"
            metrics = subprocess.run(["curl", "-s", f"{base}/metrics"], capture_output=True, text=True).stdout
        finally:
            os.killpg(proc.pid, 15)  # the server's own process group: its workers too
            proc.wait(timeout=30)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    doc = {"n_train": result.training.n, "learners": list(result.fit_params.get("learners", [])),
           "chosen": result.best_learner, "scorer": f"fast scorer distilled from {result.best_learner}",
           "machine": f"{platform.machine()}, Python {platform.python_version()}", "cpus": os.cpu_count(),
           "http_stack": ("uvloop + httptools" if importlib.util.find_spec("uvloop") and importlib.util.find_spec(
               "httptools") else "asyncio + h11"), "workers": worker_counts,
           "load_start": load_start, "load_end": os.getloadavg()[0], "floor": floor_doc, "http": http,
           "sustained": sustained, "targets": targets(http, sustained), "elapsed_s": time.monotonic() - begin,
           "commit": commit + ("+dirty" if dirty else ""),
           "metrics_excerpt": [ln for ln in metrics.splitlines() if ln.startswith(("uplift_decisions_total",
                                                                                 "uplift_requests_total"))]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve.json").write_text(json.dumps(doc, indent=1))
    (RESULTS / "serve.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()

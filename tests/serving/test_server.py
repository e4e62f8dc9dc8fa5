"""`uplift serve` for real: a uvicorn server in a subprocess on a free loopback port, driven over HTTP, stopped
with no process left behind. Every endpoint, every class of bad request, decisions equal to `uplift target`,
drift metrics that move when drifted customers arrive, and no customer id in the logs."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from uplift.cli import app
from uplift.serving.service import model_digest

ROOT = Path(__file__).resolve().parents[2]
SECRET_ID = "customer-7fa3-private"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`uplift serve MODEL_DIR ...` in a subprocess (its own process group, so its workers stop with it)."""

    def __init__(self, model_dir: Path, *args: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.log = log
        self._log_file = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from uplift.cli import main; main()", "serve", str(model_dir), "--port",
             str(self.port), *args], stdout=self._log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group: uvicorn's worker processes too
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log_file.close()


def group_alive(pgid: int, grace: float = 15.0) -> bool:
    """Whether any process of the group is still running ``grace`` seconds after the server stopped."""
    deadline = time.monotonic() + grace
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(fitted, tmp_path_factory):
    model_dir = fitted[0]
    log = tmp_path_factory.mktemp("server") / "server.log"
    srv = Server(model_dir, "--cost", "coupon_a=0.5", "--cost", "coupon_b=1.5", "--value", "40",
                 "--max-rows", "2000", "--drift-window", "1000", log=log)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
    assert srv.proc.returncode is not None
    assert not group_alive(srv.proc.pid), "a server process was left running"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", srv.port)) != 0, "the port still answers"


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}(\{{{re.escape(want)}\}})? (\S+)$" if want else rf"^{re.escape(name)} (\S+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.groups()[-1])
    return 0.0


def test_health_ready_and_model(server, fitted):
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/ready").json()
    assert ready["ready"] is True and ready["digest"] == model_digest(fitted[0])
    info = httpx.get(f"{server.url}/v1/model").json()
    assert info["digest"] == model_digest(fitted[0])
    assert info["arms"] == ["coupon_a", "coupon_b"] and info["control"] == "control"
    assert info["learner"] == "fast" and info["scorer"] == "fast scorer distilled from t"
    assert info["training"]["n"] == 3000 and sum(info["training"]["arm_counts"].values()) == 3000
    assert [f["name"] for f in info["schema"]["features"]][:2] == ["recency_days", "frequency"]
    assert {f["name"]: f.get("levels") for f in info["schema"]["features"]}["channel"] == ["app", "store", "web"]
    assert info["default_cost"] == {"coupon_a": 0.5, "coupon_b": 1.5} and info["default_value"] == 40.0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", info["saved_at"])


def test_uplift_over_http_equals_uplift_predict(server, fitted, tmp_path):
    model_dir, _, customers = fitted
    customers.to_parquet(tmp_path / "c.parquet")
    res = CliRunner().invoke(app, ["predict", str(model_dir), str(tmp_path / "c.parquet"), "--out",
                                   str(tmp_path / "p.parquet"), "--fast"])
    assert res.exit_code == 0, res.output
    expected = pd.read_parquet(tmp_path / "p.parquet")
    r = httpx.post(f"{server.url}/v1/uplift", json={"customers": records(customers)})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["learner"] == "fast" and doc["arms"] == ["coupon_a", "coupon_b"] and "probability" in doc["units"]
    got = pd.DataFrame([{"customer_id": c["id"], "uplift_coupon_a": c["uplift"]["coupon_a"],
                         "uplift_coupon_b": c["uplift"]["coupon_b"], "best_arm": c["best_arm"]}
                        for c in doc["customers"]])
    pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False, rtol=1e-12)
    one = httpx.post(f"{server.url}/v1/uplift", json={"customer": records(customers.head(1))[0]}).json()
    assert one["customers"] == doc["customers"][:1]
    columns = httpx.post(f"{server.url}/v1/uplift", json={"columns": customers.to_dict(orient="list")}).json()
    table = pd.DataFrame(columns["columns"]).rename(columns={"id": "customer_id"})
    pd.testing.assert_frame_equal(table, expected, check_dtype=False, rtol=1e-12)


def test_decide_over_http_equals_uplift_target(server, fitted, tmp_path):
    model_dir, _, customers = fitted
    customers.to_parquet(tmp_path / "c.parquet")
    res = CliRunner().invoke(app, ["target", str(model_dir), str(tmp_path / "c.parquet"), "--out",
                                   str(tmp_path / "list.parquet"), "--all", "--fast", "--cost", "coupon_a=0.5",
                                   "--cost", "coupon_b=1.5", "--value", "40"])
    assert res.exit_code == 0, res.output
    listed = pd.read_parquet(tmp_path / "list.parquet").set_index("customer_id").loc[customers["customer_id"]]
    # the server's default economics (--cost/--value at start), and the same given per request
    for extra in ({}, {"cost": {"coupon_a": 0.5, "coupon_b": 1.5}, "value": 40}):
        r = httpx.post(f"{server.url}/v1/decide", json={"customers": records(customers), **extra})
        assert r.status_code == 200, r.text
        got = pd.DataFrame(r.json()["customers"]).set_index("id")
        selected = listed["selected"].to_numpy()
        assert 0 < selected.sum() < len(selected)
        assert (got["arm"].notna().to_numpy() == selected).all()
        np.testing.assert_array_equal(got["arm"][selected], listed["coupon"][selected])
        np.testing.assert_allclose(got["expected_profit"][selected], listed["expected_profit"][selected], rtol=1e-12)
    by_columns = httpx.post(f"{server.url}/v1/decide", json={"columns": customers.to_dict(orient="list")}).json()
    assert pd.DataFrame(by_columns["columns"]).equals(pd.DataFrame(r.json()["customers"]))
    cheap = httpx.post(f"{server.url}/v1/decide", json={"customers": records(customers), "cost": 0.0}).json()
    assert sum(c["arm"] is not None for c in cheap["customers"]) > selected.sum()  # per-request costs are used


@pytest.mark.parametrize("path, payload, status, starts", [
    ("/v1/uplift", b'{"customers": [{"recency_days": 3,', 422, "body: not valid JSON"),
    ("/v1/uplift", b"", 422, "body: empty"),
    ("/v1/uplift", {"customers": [{"recency_days": 3}]}, 422, "customers[0].frequency: missing"),
    ("/v1/uplift", "wrong_type", 422, "customers[1].monetary: expected a number or null"),
    ("/v1/uplift", "oversized", 413, "customers: 2,001 customers in one request; at most 2,000"),
    ("/v1/decide", {"cost": {"coupon_a": 1, "coupon_b": 1, "gold": 1}}, 422, "cost: cost given for unknown coupon"),
    ("/v1/decide", {"cost": {"coupon_a": 1}}, 422, "cost: no cost given for coupon 'coupon_b'"),
    ("/v1/decide", {"cost": {"coupon_a": -1, "coupon_b": 1}}, 422, "cost.coupon_a: must be >= 0"),
    ("/v1/decide", {"value": -3}, 422, "value: money per unit of outcome must be positive"),
    ("/v1/decide", {"holdout": 0.2, "no_ids": True}, 422, "holdout: the draw is seeded by the customer id"),
])
def test_bad_requests_get_one_line_naming_the_field(server, fitted, path, payload, status, starts):
    customers = records(fitted[2].head(3))
    if payload == "wrong_type":
        customers[1]["monetary"] = "a lot"
        payload = {"customers": customers}
    elif payload == "oversized":
        payload = {"customers": customers * 667}
    elif isinstance(payload, dict) and path == "/v1/decide":
        if payload.pop("no_ids", False):
            customers = [{k: v for k, v in c.items() if k != "customer_id"} for c in customers]
        payload = {"customers": customers, **payload}
    if isinstance(payload, bytes):
        r = httpx.post(f"{server.url}{path}", content=payload, headers={"content-type": "application/json"})
    else:
        r = httpx.post(f"{server.url}{path}", json=payload)
    assert r.status_code == status, r.text
    assert r.json()["error"].startswith(starts), r.json()
    assert "\n" not in r.json()["error"]


def test_an_oversized_body_is_refused_before_it_is_read(fitted, tmp_path):
    srv = Server(fitted[0], "--max-rows", "5", log=tmp_path / "small.log")
    try:
        srv.wait_ready()
        # --max-rows 5 keeps the byte limit at its default; a body above 16 MB is refused by its length alone
        big = b'{"customers": [' + b" " * (17 * 1024 * 1024) + b"]}"
        r = httpx.post(f"{srv.url}/v1/uplift", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"].startswith("body: ")
        rows = httpx.post(f"{srv.url}/v1/uplift", json={"customers": records(fitted[2].head(6))})
        assert rows.status_code == 413
    finally:
        srv.stop()
    assert not group_alive(srv.proc.pid)


def test_concurrent_requests_each_get_their_own_answer(server, fitted):
    import asyncio

    customers = records(fitted[2].head(40))
    alone = [httpx.post(f"{server.url}/v1/uplift", json={"customer": c}).json()["customers"][0] for c in customers]

    async def together():
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=40)) as client:
            replies = await asyncio.gather(*(client.post(f"{server.url}/v1/uplift", json={"customer": c})
                                             for c in customers))
        return [r.json()["customers"][0] for r in replies]

    assert asyncio.run(together()) == alone


def test_metrics_count_requests_rows_and_decisions(server, fitted):
    customers = records(fitted[2].head(20))
    before = httpx.get(f"{server.url}/metrics").text
    decided = httpx.post(f"{server.url}/v1/decide", json={"customers": customers}).json()["customers"]
    httpx.post(f"{server.url}/v1/uplift", json={"customers": [{"recency_days": 1}]})
    after = httpx.get(f"{server.url}/metrics").text
    assert metric(after, "uplift_requests_total", endpoint="/v1/decide", status="200") == \
        metric(before, "uplift_requests_total", endpoint="/v1/decide", status="200") + 1
    assert metric(after, "uplift_requests_total", endpoint="/v1/uplift", status="422") == \
        metric(before, "uplift_requests_total", endpoint="/v1/uplift", status="422") + 1
    assert metric(after, "uplift_rows_scored_total", endpoint="/v1/decide") == \
        metric(before, "uplift_rows_scored_total", endpoint="/v1/decide") + 20
    for arm in ("coupon_a", "coupon_b", "none"):
        n = sum((d["arm"] or "none") == arm for d in decided)
        grew = sum(metric(after, "uplift_decisions_total", arm=arm, group=g)
                   - metric(before, "uplift_decisions_total", arm=arm, group=g) for g in ("targeted", "not_targeted"))
        assert grew == n
    assert metric(after, "uplift_request_duration_seconds_count", endpoint="/v1/decide") >= 1
    assert metric(after, "uplift_model_info", digest=model_digest(fitted[0]), learner="fast",
                  scorer="fast scorer distilled from t") == 1


def test_drift_metrics_move_when_drifted_customers_arrive(server, new_customers):
    normal = new_customers
    httpx.post(f"{server.url}/v1/uplift", json={"customers": records(normal)}).raise_for_status()
    time.sleep(1.1)  # the drift gauges are recomputed at most once a second
    calm = httpx.get(f"{server.url}/metrics").text
    assert metric(calm, "uplift_drift_window_customers") == 1000
    assert metric(calm, "uplift_drift_psi", feature="monetary") < 0.1
    assert metric(calm, "uplift_drift_detected") == 0
    drifted = normal.copy()
    drifted["monetary"] *= 4  # prices went up
    drifted["channel"] = "kiosk"  # a channel the model never saw
    httpx.post(f"{server.url}/v1/uplift", json={"customers": records(drifted)}).raise_for_status()
    time.sleep(1.1)
    moved = httpx.get(f"{server.url}/metrics").text
    assert metric(moved, "uplift_drift_psi", feature="monetary") > 0.5
    assert metric(moved, "uplift_drift_unseen_share", feature="channel") == 1.0
    assert metric(moved, "uplift_drift_psi", feature="age") < 0.1  # what did not move stays put
    assert metric(moved, "uplift_drift_detected") == 1
    assert metric(moved, "uplift_drift_uplift_psi", arm="coupon_a") != metric(calm, "uplift_drift_uplift_psi",
                                                                            arm="coupon_a")


def test_customer_ids_are_not_logged(server, fitted):
    customer = records(fitted[2].head(1))[0]
    customer["customer_id"] = SECRET_ID
    httpx.post(f"{server.url}/v1/decide", json={"customer": customer}).raise_for_status()
    customer["monetary"] = "x"
    assert httpx.post(f"{server.url}/v1/decide", json={"customer": customer}).status_code == 422
    time.sleep(0.2)
    log = server.log.read_text()
    assert "POST /v1/decide" in log  # the access log is on ...
    assert SECRET_ID not in log  # ... and holds no id


def test_log_ids_logs_decisions_with_ids_when_asked(fitted, tmp_path):
    srv = Server(fitted[0], "--log-ids", "--no-access-log", log=tmp_path / "ids.log")
    try:
        srv.wait_ready()
        customer = records(fitted[2].head(1))[0]
        customer["customer_id"] = SECRET_ID
        r = httpx.post(f"{srv.url}/v1/decide", json={"customer": customer, "cost": 0.1, "value": 40})
        assert r.status_code == 200
        time.sleep(0.2)
    finally:
        srv.stop()
    assert f"decision id={SECRET_ID}" in srv.log.read_text()


def test_several_workers_share_the_counters(fitted, tmp_path):
    srv = Server(fitted[0], "--workers", "2", log=tmp_path / "workers.log")
    try:
        srv.wait_ready()
        customers = records(fitted[2].head(5))
        with httpx.Client() as client:  # new connections, so both workers get requests
            for _ in range(20):
                client.post(f"{srv.url}/v1/uplift", json={"customers": customers},
                            headers={"connection": "close"}).raise_for_status()
        text = httpx.get(f"{srv.url}/metrics").text
        assert metric(text, "uplift_rows_scored_total", endpoint="/v1/uplift") == 100
    finally:
        srv.stop()
    assert not group_alive(srv.proc.pid), "a worker process was left running"


def test_refuses_to_start_on_a_model_that_fails_verification(fitted, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = [sys.executable, "-c", "from uplift.cli import main; main()", "serve", str(fitted[0]), "--port",
           str(free_port())]
    wrong = subprocess.run([*run, "--expect-digest", "0" * 64], capture_output=True, text=True, env=env, timeout=120)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().startswith("error: model") and "not the expected" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1 and "Traceback" not in wrong.stderr
    broken = tmp_path / "model"
    shutil.copytree(fitted[0], broken)
    (broken / "study.json").write_text("{}")
    run[4] = str(broken)
    bad = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "does not match its sha256" in bad.stderr

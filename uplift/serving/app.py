"""The HTTP face of the scoring service: a FastAPI app around one :class:`~uplift.serving.service.ModelService`.

Endpoints: ``POST /v1/uplift`` (uplift per arm), ``POST /v1/decide`` (the coupon per customer), ``GET /v1/model``,
``GET /health`` (the process answers), ``GET /ready`` (the model is loaded and its scorer compiled) and
``GET /metrics`` (Prometheus text). A bad request is answered with HTTP 422 (413 when too large) and
``{"error": "<one line naming the field>"}``. Request bodies are parsed here, not by pydantic models: the
features are the saved model's, known only at start-up, and the one-line messages name them.

Nothing is logged about a customer: error lines name the field, never the value, and customer ids are logged
only with ``log_ids=True`` (``uplift serve --log-ids``).

fastapi, uvicorn, prometheus-client and orjson are the ``serve`` extra (``pip install 'uplift[serve]'``); they are
imported when an app is created, never by ``import uplift``.
"""

# No `from __future__ import annotations` here: FastAPI reads the route functions' `request: Request` annotation
# at run time, and Request is imported inside create_app (the web packages are an optional extra).
import json
import logging
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from uplift._files import plain_json
from uplift.errors import UpliftInputError
from uplift.serving.batching import ScoringBatcher
from uplift.serving.drift import DRIFT_WINDOW, DriftWindow
from uplift.serving.metrics import ServiceMetrics
from uplift.serving.requests import (
    MAX_BATCH_ROWS,
    MAX_BODY_BYTES,
    RequestError,
    decision_options,
    parse_customers,
)
from uplift.serving.service import ModelService, as_records

log = logging.getLogger("uplift.serving")

#: Customers of the second warm-up call: more than one block of the fast scorer (its threaded tree walk).
WARM_UP_ROWS = 5_000
#: Environment variable through which ``uplift serve --workers N`` hands its options to each worker process.
CONFIG_ENV = "UPLIFT_SERVE_CONFIG"


def _extra(name: str) -> None:
    raise UpliftInputError(f"the service needs {name}: pip install 'uplift[serve]'")


def create_app(model_dir: str | Path, *, learner: str | None = None, expect_digest: str | None = None,
               cost: float | dict | list | None = None, value: float | None = None,
               max_rows: int = MAX_BATCH_ROWS, max_body_bytes: int = MAX_BODY_BYTES,
               drift_window: int = DRIFT_WINDOW, log_ids: bool = False, trust: bool = False,
               require_signature: bool = False, skip_extrapolated: bool = False):
    """The FastAPI app serving one saved study (embed it, mount it, or test it in-process).

    The model directory is verified and loaded here, once: a directory that fails verification (a changed
    file, another digest than ``expect_digest``) raises :class:`~uplift.errors.UpliftInputError` and no app is made.

    Parameters
    ----------
    model_dir : str or path
        Model directory written by ``uplift fit``.
    learner : str, optional
        ``"fast"`` or a fitted learner; default the fast scorer when the study has one, else the chosen model.
    expect_digest : str, optional
        The model digest to insist on (see :func:`uplift.serving.service.model_digest`).
    cost, value : optional
        Default cost per coupon and value per conversion of ``/v1/decide`` (a request may give its own).
    skip_extrapolated : bool, default False
        Default of ``/v1/decide``'s ``skip_extrapolated`` (a request may give its own): customers outside an
        observational study's overlap get no coupon by the rule.
    max_rows, max_body_bytes : int
        Largest batch (customers) and request body (bytes) accepted; larger: HTTP 413.
    drift_window : int
        Customers in the rolling window of the drift metrics.
    log_ids : bool
        Log each decision with the customer id the caller sent (off by default: ids are not logged).

    Returns
    -------
    fastapi.FastAPI

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from fastapi.testclient import TestClient
    >>> from uplift import Study, simulate_campaign
    >>> df = simulate_campaign(2000, seed=4)
    >>> truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> _ = Study(df, "treatment", "conversion", id="customer_id", exclude=truth + ["revenue"]).fit(
    ...     learners=["t"], n_folds=2, n_boot=10).save(d)
    >>> customer = df.drop(columns=truth + ["treatment", "conversion", "revenue"]).iloc[0].to_dict()
    >>> with TestClient(create_app(d, value=40.0)) as client:
    ...     r = client.post("/v1/decide", json={"customer": customer, "cost": 0.5})
    >>> r.status_code, sorted(r.json()["customers"][0])[:3]
    (200, ['arm', 'cost', 'expected_incremental_outcome'])
    """
    try:
        import orjson
        from fastapi import FastAPI, Request
        from fastapi.responses import Response
    except ImportError as exc:
        _extra(exc.name or "fastapi")

    service = ModelService(model_dir, learner=learner, expect_digest=expect_digest, cost=cost, value=value,
                           trust=trust, require_signature=require_signature, skip_extrapolated=skip_extrapolated)
    result = service.result
    window = DriftWindow(result.schema, len(service.arms), size=drift_window)
    metrics = ServiceMetrics(service, window)
    batcher = ScoringBatcher(service, window=window)
    state = {"ready": False}

    def warm_up() -> None:
        # The first calls compile the fast scorer's tree walks (numba: one for a few customers, one threaded
        # for large batches); do it before /ready says yes.
        blank = {name: None for name in result.schema.names}
        for n in (1, WARM_UP_ROWS):
            service.scores(parse_customers({"customers": [blank] * n}, result.schema, max_rows=n))
        state["ready"] = True

    @asynccontextmanager
    async def lifespan(app):
        warm_up()
        log.info("serving model %s (%s), digest %s", service.model_dir, service.scorer_name, service.digest)
        yield

    app = FastAPI(title="uplift scoring service", version=result.manifest.get("uplift_version") or "",
                  lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.service = service

    def reply(payload: dict, status: int = 200) -> Response:
        return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status_code=status,
                        media_type="application/json")

    async def read_body(request: Request) -> object:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            raise RequestError(f"body: {int(length):,} bytes; at most {max_body_bytes:,} per request (split the "
                               "batch)", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise RequestError(f"body: more than {max_body_bytes:,} bytes; split the batch", status=413)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise RequestError('body: empty; send JSON such as {"customer": {...}}')
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RequestError(f"body: not valid JSON ({str(exc).splitlines()[0]})") from None

    async def answer(endpoint: str, request: Request, work) -> Response:
        start = time.perf_counter()
        rows = 0
        try:
            payload, rows = await work(await read_body(request))
            status = 200
        except RequestError as exc:
            payload, status = {"error": str(exc)}, exc.status
        except UpliftInputError as exc:  # raised by the scoring functions themselves: still the caller's input
            payload, status = {"error": str(exc)}, 422
        if status != 200:
            log.info("%s %d: %s", endpoint, status, payload["error"])
        response = reply(payload, status)
        metrics.observe(endpoint, status, time.perf_counter() - start, rows)
        return response

    async def uplift_work(body: object):
        customers = parse_customers(body, result.schema, result.id_column, max_rows=max_rows)
        scores = await batcher.scores(customers)
        payload = {"learner": service.learner, "scorer": service.scorer_name, "outcome": result.outcome,
                   "units": _units(result.kind, result.outcome), "arms": list(service.arms)}
        if customers.columnar:
            payload["columns"] = service.uplift_table(customers.ids, scores)
        else:
            payload["customers"] = service.uplift_records(customers, scores)
        return payload, len(customers)

    async def decide_work(body: object):
        customers = parse_customers(body, result.schema, result.id_column, max_rows=max_rows)
        options = decision_options(body)
        service.economics(options)  # cost and value checked before any scoring
        answer = await batcher.decide(customers, options)
        decisions = answer.decisions
        metrics.count_decisions(decisions["arm"], decisions["group"])
        if log_ids:
            for i, arm, group in zip(decisions.get("id", [None] * len(customers)), decisions["arm"],
                                     decisions["group"], strict=True):
                log.info("decision id=%s arm=%s group=%s", i, arm, group)
        payload = {"learner": service.learner, "scorer": service.scorer_name, "outcome": result.outcome,
                   "units": _units(result.kind, result.outcome), **answer.rule}
        payload["columns" if customers.columnar else "customers"] = (decisions if customers.columnar
                                                                     else as_records(decisions))
        return payload, len(customers)

    @app.post("/v1/uplift")
    async def uplift(request: Request) -> Response:
        """Uplift per arm of one customer or a batch: {"customer": {...}} or {"customers": [...]}."""
        return await answer("/v1/uplift", request, uplift_work)

    @app.post("/v1/decide")
    async def decide(request: Request) -> Response:
        """The coupon per customer (or none), with expected incremental value and profit."""
        return await answer("/v1/decide", request, decide_work)

    @app.get("/v1/model")
    async def model() -> Response:
        """Digest, schema, arms, learner, save time and training sizes of the model being served."""
        start = time.perf_counter()
        response = reply(service.info())
        metrics.observe("/v1/model", 200, time.perf_counter() - start)
        return response

    @app.get("/health")
    async def health() -> Response:
        """The process is up."""
        return reply({"status": "ok"})

    @app.get("/ready")
    async def ready() -> Response:
        """200 once the model is loaded and its scorer compiled; 503 before."""
        if not state["ready"]:
            return reply({"ready": False}, 503)
        return reply({"ready": True, "digest": service.digest, "scorer": service.scorer_name})

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, rows, decisions per arm, live drift."""
        text, content_type = metrics.exposition()
        return Response(text, media_type=content_type)

    return app


def _units(kind: str, outcome: str) -> str:
    if kind == "binary":
        return f"change in the probability of {outcome} (0-1) per customer"
    return f"change in {outcome} per customer (its units)"


def app_from_environment():
    """The app of one ``uplift serve --workers N`` worker process, from the options in :data:`CONFIG_ENV`."""
    options = json.loads(os.environ[CONFIG_ENV])
    return create_app(options.pop("model_dir"), **options)


def environment_config(model_dir: str | Path, **options) -> str:
    """The JSON that :func:`app_from_environment` reads back (the options of :func:`create_app`)."""
    return json.dumps(plain_json({"model_dir": str(model_dir), **options}))

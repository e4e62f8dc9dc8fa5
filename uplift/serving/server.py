"""Running the service: uvicorn, one process or several workers, what ``uplift serve`` calls.

The model is verified and loaded before the server binds its port: a model that fails verification, or whose
digest is not the pinned one, stops ``uplift serve`` with one line and exit code 2, before any request can
reach it. With ``workers > 1`` each worker process loads the same verified directory (its digest is pinned
for them to the one checked here, so a directory swapped in between is refused too) and the Prometheus counters
are shared through a temporary multiprocess directory, removed at exit.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
from pathlib import Path

from uplift.errors import UpliftInputError
from uplift.serving.app import CONFIG_ENV, create_app, environment_config
from uplift.serving.service import ModelService


def _check(model_dir: str, options: dict) -> str:
    service = ModelService(model_dir, learner=options.get("learner"), expect_digest=options.get("expect_digest"),
                           cost=options.get("cost"), value=options.get("value"), trust=options.get("trust", False),
                           require_signature=options.get("require_signature", False),
                           skip_extrapolated=options.get("skip_extrapolated", False))
    return service.digest


def verified_digest(model_dir: str | Path, **options) -> str:
    """The digest of ``model_dir`` once it loads as the service would load it (else
    :class:`~uplift.errors.UpliftInputError`), checked in a child process: the process that supervises
    ``--workers`` then never holds a model, its scorer or LightGBM (it held as much memory as a worker).
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_check, (str(model_dir), options))


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info", access_log: bool = True, **options) -> None:
    """Serve a model directory over HTTP until interrupted (the ``uplift serve`` command).

    Parameters
    ----------
    model_dir : str or path
        Model directory written by ``uplift fit``.
    host, port : str, int
        Where to listen (default loopback only: put a reverse proxy in front to expose it).
    workers : int
        Worker processes (each loads the model; about its size in memory each).
    log_level, access_log
        uvicorn's logging (the access log holds method, path and status, not bodies).
    **options
        Passed to :func:`uplift.serving.app.create_app` (``learner``, ``expect_digest``, ``cost``, ``value``,
        ``max_rows``, ``drift_window``, ``log_ids``, ``trust``, ``require_signature``, ``skip_extrapolated``).
    """
    try:
        import uvicorn
    except ImportError:
        raise UpliftInputError("uplift serve needs uvicorn: pip install 'uplift[serve]'") from None
    if not (isinstance(workers, int) and workers >= 1):
        raise UpliftInputError(f"--workers must be a whole number >= 1, got {workers!r}")
    if not (isinstance(port, int) and 0 <= port < 65536):
        raise UpliftInputError(f"--port must be in 0-65535, got {port!r}")
    log = logging.getLogger("uplift.serving")
    if not log.handlers:  # uvicorn configures its own loggers only; the service's start-up line goes to stderr too
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(log_level.upper())
    if workers == 1:
        app = create_app(model_dir, **options)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
        return
    # Verify once, then pin the verified digest for the workers.
    options["expect_digest"] = verified_digest(model_dir, **options)
    with tempfile.TemporaryDirectory(prefix="uplift-metrics-") as shared:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared
        os.environ[CONFIG_ENV] = environment_config(model_dir, **options)
        try:
            uvicorn.run("uplift.serving.app:app_from_environment", factory=True, host=host, port=port,
                        workers=workers, log_level=log_level, access_log=access_log)
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            os.environ.pop(CONFIG_ENV, None)

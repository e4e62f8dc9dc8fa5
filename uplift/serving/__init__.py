"""Real-time scoring and coupon decisions over HTTP: ``uplift serve`` and :func:`create_app`.

:mod:`uplift.serving.service` holds the model and calls the scoring and targeting functions ``uplift predict``
and ``uplift target`` call; :mod:`uplift.serving.requests` checks request bodies against the saved schema;
:mod:`uplift.serving.drift` keeps the rolling window of live drift and :mod:`uplift.serving.metrics` exports it
with the request metrics; :mod:`uplift.serving.app` is the FastAPI app and :mod:`uplift.serving.server` runs it
under uvicorn. The web packages (the ``serve`` extra) are imported only when an app is created.
"""

from uplift.serving.app import create_app
from uplift.serving.requests import MAX_BATCH_ROWS, RequestError, parse_customers
from uplift.serving.server import serve
from uplift.serving.service import ModelService, as_records, model_digest, unit_draws

__all__ = ["MAX_BATCH_ROWS", "ModelService", "RequestError", "as_records", "create_app", "model_digest",
           "parse_customers", "serve", "unit_draws"]

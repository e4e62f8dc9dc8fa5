"""The service's Prometheus metrics: requests, latency, rows scored, decisions per arm, and live drift.

Counters and histograms are updated as requests are answered. The drift gauges are computed when
``/metrics`` is scraped, from the rolling window of :class:`~uplift.serving.drift.DriftWindow` (at most once per
``refresh`` seconds, so a busy scraper does not turn into load). With several worker processes
(``uplift serve --workers N``) the counters and histograms are summed over the workers through
prometheus-client's multiprocess mode, and the drift gauges are those of the worker that answered the scrape:
each worker sees a random share of the traffic, so its window is a sample of the same customers.

Metric names (all prefixed ``uplift_``): ``requests_total{endpoint,status}``,
``request_duration_seconds{endpoint}`` (histogram), ``rows_scored_total{endpoint}``,
``decisions_total{arm,group}``, ``drift_psi{feature}``, ``drift_psi_chance{feature}``,
``drift_unseen_share{feature}``, ``drift_missing_share{feature}``, ``drift_uplift_psi{arm}``,
``drift_window_customers``, ``drift_detected`` and ``model_info{digest,learner,scorer}``.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from uplift.serving.drift import DriftWindow
from uplift.serving.service import ModelService

#: Latency buckets (seconds): fine below 10 ms, where single-customer decisions should land.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class ServiceMetrics:
    """The metrics of one app, in its own registry (two apps in one process do not mix their counts).

    The drift gauges and the model's info are produced by :meth:`collect` when the registry is scraped (a
    custom collector: no value files in multiprocess mode, so nothing is exported twice).
    """

    def __init__(self, service: ModelService, window: DriftWindow, *, refresh: float = 1.0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.service, self.window, self.refresh = service, window, refresh
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=False)
        reg = None if self.multiprocess else self.registry  # multiprocess values live in files, not a registry
        self.requests = Counter("uplift_requests", "HTTP requests answered, by endpoint and status code.",
                                ["endpoint", "status"], registry=reg)
        self.latency = Histogram("uplift_request_duration_seconds", "Time to answer a request (seconds).",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=reg)
        self.rows = Counter("uplift_rows_scored", "Customers scored.", ["endpoint"], registry=reg)
        self.decisions = Counter("uplift_decisions", "Decisions by coupon shown (none: no coupon) and group "
                                 "(targeted, not_targeted, holdout, explore).", ["arm", "group"], registry=reg)
        self.registry.register(self)
        self._report: dict | None = None
        self._computed_at, self._computed_version = 0.0, -1

    def observe(self, endpoint: str, status: int, seconds: float, rows: int = 0) -> None:
        """Count one answered request."""
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)
        if rows:
            self.rows.labels(endpoint).inc(rows)

    def count_decisions(self, arms: list, groups: list) -> None:
        """Count decisions per coupon shown (None: none) and group."""
        for (arm, group), c in Counter(zip(arms, groups, strict=True)).items():
            self.decisions.labels(arm or "none", group).inc(c)

    def drift(self) -> dict | None:
        """The window's drift report, recomputed when it changed and ``refresh`` seconds have passed."""
        now = time.monotonic()
        if self.window.version != self._computed_version and now - self._computed_at >= self.refresh:
            self._computed_at, self._computed_version = now, self.window.version
            self._report = self.window.report(self.service.result)
        return self._report

    def collect(self):
        """Prometheus collector protocol: the model's info and the drift gauges, at scrape time."""
        from prometheus_client.core import GaugeMetricFamily

        service = self.service
        info = GaugeMetricFamily("uplift_model_info", "The model being served (value 1).",
                                 labels=["digest", "learner", "scorer"])
        info.add_metric([service.digest or "", service.learner, service.scorer_name], 1.0)
        yield info
        yield GaugeMetricFamily("uplift_drift_window_customers", "Customers in the rolling drift window.",
                                value=len(self.window))
        report = self.drift()
        if report is None:
            return
        helps = {"psi": ("uplift_drift_psi", "PSI of each feature, rolling window vs the training customers."),
                 "psi_noise": ("uplift_drift_psi_chance", "PSI that chance alone stays below at this window size; "
                               "a shift needs PSI above it and above 0.2."),
                 "unseen_share": ("uplift_drift_unseen_share", "Share of categories never seen in training."),
                 "missing_share_score": ("uplift_drift_missing_share", "Share of missing values in the window.")}
        rows = report["features"].to_dict(orient="records")
        for key, (name, text) in helps.items():
            family = GaugeMetricFamily(name, text, labels=["feature"])
            for row in rows:
                family.add_metric([row["feature"]], float(row[key]))
            yield family
        family = GaugeMetricFamily("uplift_drift_uplift_psi", "PSI of the predicted uplift per coupon, rolling "
                                   "window vs the training customers' out-of-fold uplift.", labels=["arm"])
        for arm, u in zip(service.arms, report["uplift_psi"] or [], strict=False):
            family.add_metric([arm], float(u["psi"]))
        yield family
        yield GaugeMetricFamily("uplift_drift_detected", "1 when the window has drifted (any drift warning).",
                                value=1.0 if report["drifted"] else 0.0)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of every metric (counters summed over workers in multiprocess mode)."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        text = generate_latest(self.registry)
        if self.multiprocess:
            shared = CollectorRegistry()
            MultiProcessCollector(shared)
            text += generate_latest(shared)
        return text, CONTENT_TYPE_LATEST

"""Request batching: the customers of requests that arrive together are scored in one call.

Scoring one customer costs mostly fixed overhead — turning the request into the frame the model takes, the
schema encoding, the per-call work of the model — not the trees themselves (measured in
``benchmarks/results/serve.md``: about 1-3 ms for one customer, a few ms for a thousand). So when several
requests are waiting, :class:`ScoringBatcher` scores them together and hands each its own rows. A request
alone is scored at once (no timer, no added wait): a batch forms only from requests that are already in,
after letting the event loop turn while their number still grows. The rows of each request are scored exactly
as alone — each customer's uplift depends only on its own features — so batching changes no answer.
"""

from __future__ import annotations

import asyncio

from uplift.errors import UpliftInputError
from uplift.serving.requests import Customers
from uplift.serving.service import ModelService, Scores

#: Most customers scored in one call (larger batches wait for the next call).
BATCH_ROWS = 20_000
#: Event-loop turns a batch may wait for more requests to join, while their number still grows.
MAX_TURNS = 4


class ScoringBatcher:
    """Scores the customers of concurrent requests together (one event loop, one batch at a time).

    Examples
    --------
    >>> import asyncio, tempfile, pathlib
    >>> from uplift import Study, simulate_campaign
    >>> from uplift.serving.requests import parse_customers
    >>> df = simulate_campaign(2000, seed=4)
    >>> truth = [c for c in df if c.startswith("true_") or c.startswith("propensity")]
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "model"
    >>> _ = Study(df, "treatment", "conversion", exclude=truth + ["revenue", "customer_id"]).fit(
    ...     learners=["t"], n_folds=2, n_boot=10).save(d)
    >>> service = ModelService(d)
    >>> requests = [parse_customers({"customers": df.iloc[i:i + 3].to_dict(orient="records")},
    ...                             service.result.schema) for i in (0, 3, 6)]
    >>> async def together():
    ...     batcher = ScoringBatcher(service)
    ...     return await asyncio.gather(*(batcher.scores(r) for r in requests)), batcher.calls
    >>> answers, calls = asyncio.run(together())
    >>> calls, all((a.uplift == service.scores(r).uplift).all() for a, r in zip(answers, requests))
    (1, True)
    """

    def __init__(self, service: ModelService, max_rows: int = BATCH_ROWS) -> None:
        self.service, self.max_rows = service, max_rows
        self._pending: list[tuple[Customers, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.calls = 0  # scoring calls made (for tests and metrics)

    async def scores(self, customers: Customers) -> Scores:
        """The uplift of one request's customers, scored together with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((customers, future))
        if self._task is None:
            self._task = loop.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            for _ in range(MAX_TURNS):
                waiting = len(self._pending)
                await asyncio.sleep(0)
                if len(self._pending) == waiting:
                    break
        finally:
            self._task = None
            batch, self._pending = self._pending, []
        group: list[tuple[Customers, asyncio.Future]] = []
        rows = 0
        for item in batch:
            if group and rows + len(item[0]) > self.max_rows:
                self._score(group)
                group, rows = [], 0
            group.append(item)
            rows += len(item[0])
        if group:
            self._score(group)

    def _score(self, group: list[tuple[Customers, asyncio.Future]]) -> None:
        self.calls += 1
        try:
            scores = self.service.scores(Customers.concat([c for c, _ in group]))
        except Exception as exc:  # never leave a request waiting
            if isinstance(exc, UpliftInputError) and len(group) > 1:
                for item in group:  # one request's customers are at fault: alone, only it gets the error
                    self._score([item])
                return
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for customers, future in group:
            stop = start + len(customers)
            if not future.done():  # the client may have gone away
                future.set_result(scores.rows(start, stop))
            start = stop

"""Request batching: the customers of requests that arrive together are scored, and decided, in one call.

A single customer's request costs mostly fixed overhead — the schema encoding, the per-call work of the model,
the numpy calls of the allocation — not the trees themselves (``benchmarks/results/serve.md``). So when several
requests are waiting, :class:`ScoringBatcher` scores them together and hands each its own rows; the
``/v1/decide`` requests among them that carry the same decision options are decided by one call of
:meth:`ModelService.decide <uplift.serving.service.ModelService.decide>` too. A request alone is answered at
once (no timer, no added wait): a batch forms only from requests that are already in, after letting the event
loop turn while their number still grows.

Batching changes no answer. Each customer's uplift depends only on its own features, and without a budget the
decision of ``uplift target`` is customer by customer too (the best coupon if its expected profit is positive;
the holdout and exploration draws are seeded by the customer id), so a customer gets the same uplift and the
same coupon in a batch as alone (``tests/serving/test_batching.py``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from uplift.errors import UpliftInputError
from uplift.serving.requests import Customers, DecisionOptions
from uplift.serving.service import ModelService, Scores

#: Most customers scored in one call (larger batches wait for the next call).
BATCH_ROWS = 20_000
#: Event-loop turns a batch may wait for more requests to join, while their number still grows.
MAX_TURNS = 4


@dataclass
class Answer:
    """What a request gets back from the batcher: its customers' scores and, for a decision, the decisions
    (column by column, as :meth:`ModelService.decide <uplift.serving.service.ModelService.decide>`) and rule."""

    scores: Scores
    decisions: dict[str, list] | None = None
    rule: dict | None = None


@dataclass
class _Pending:
    customers: Customers
    options: DecisionOptions | None
    future: asyncio.Future
    scores: Scores | None = None


class ScoringBatcher:
    """Scores (and decides) the customers of concurrent requests together (one event loop, one batch at a time).

    ``window`` (a :class:`~uplift.serving.drift.DriftWindow`), when given, receives every scored customer, one
    call per batch.

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

    def __init__(self, service: ModelService, max_rows: int = BATCH_ROWS, window=None) -> None:
        self.service, self.max_rows, self.window = service, max_rows, window
        self._pending: list[_Pending] = []
        self._task: asyncio.Task | None = None
        self.calls = 0  # scoring calls made (for tests and metrics)
        self.decide_calls = 0  # decision calls made

    async def scores(self, customers: Customers) -> Scores:
        """The uplift of one request's customers, scored together with whatever else is waiting."""
        return (await self._submit(customers, None)).scores

    async def decide(self, customers: Customers, options: DecisionOptions) -> Answer:
        """The scores and decisions of one request's customers (the economics already checked)."""
        return await self._submit(customers, options)

    async def _submit(self, customers: Customers, options: DecisionOptions | None) -> Answer:
        loop = asyncio.get_running_loop()
        item = _Pending(customers, options, loop.create_future())
        self._pending.append(item)
        if self._task is None:
            self._task = loop.create_task(self._flush())
        return await item.future

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
        group: list[_Pending] = []
        rows = 0
        for item in batch:
            if group and rows + len(item.customers) > self.max_rows:
                self._answer(group)
                group, rows = [], 0
            group.append(item)
            rows += len(item.customers)
        if group:
            self._answer(group)

    def _answer(self, group: list[_Pending]) -> None:
        scored = self._score(group)
        if not scored:
            return
        if self.window is not None:
            self.window.add(Customers.concat([item.customers for item in scored]).columns,
                            _concat([item.scores for item in scored]).uplift)
        by_rule: dict[tuple, list[_Pending]] = {}
        for item in scored:
            if item.options is None:
                _settle(item, Answer(item.scores))
            else:  # the same options (and ids sent or not): one decision call
                by_rule.setdefault((repr(item.options), item.customers.ids is None), []).append(item)
        for items in by_rule.values():
            self._decide(items)

    def _score(self, group: list[_Pending]) -> list[_Pending]:
        """Score the group in one call; each item gets its rows. Returns the items scored."""
        self.calls += 1
        try:
            scores = self.service.scores(Customers.concat([item.customers for item in group]))
        except Exception as exc:  # never leave a request waiting
            if isinstance(exc, UpliftInputError) and len(group) > 1:
                # one request's customers are at fault: alone, only it gets the error
                return [item for one in group for item in self._score([one])]
            for item in group:
                _fail(item, exc)
            return []
        start = 0
        for item in group:
            stop = start + len(item.customers)
            item.scores = scores.rows(start, stop)
            start = stop
        return group

    def _decide(self, items: list[_Pending]) -> None:
        self.decide_calls += 1
        ids = None if items[0].customers.ids is None else [i for item in items for i in item.customers.ids]
        try:
            decisions, rule = self.service.decide(ids, _concat([item.scores for item in items]), items[0].options)
        except Exception as exc:
            if len(items) > 1:
                for item in items:
                    self._decide([item])
                return
            _fail(items[0], exc)
            return
        start = 0
        for item in items:
            stop = start + len(item.customers)
            _settle(item, Answer(item.scores, {name: values[start:stop] for name, values in decisions.items()},
                                 rule))
            start = stop


def _concat(parts: list[Scores]) -> Scores:
    return parts[0] if len(parts) == 1 else Scores.concat(parts)


def _settle(item: _Pending, answer: Answer) -> None:
    if not item.future.done():  # the client may have gone away
        item.future.set_result(answer)


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)

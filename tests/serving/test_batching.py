"""Requests that arrive together are scored in one call, each gets exactly its own rows, and a request whose
customers fail scoring gets the error alone."""

from __future__ import annotations

import asyncio

import numpy as np

from uplift.errors import UpliftInputError
from uplift.serving.batching import ScoringBatcher
from uplift.serving.requests import Customers, DecisionOptions, parse_customers
from uplift.serving.service import ModelService, Scores


class EchoService:
    """Uplift = the customer's `x` (two arms: x and -x); a negative x cannot be scored."""

    def __init__(self) -> None:
        self.frames: list[int] = []

    def scores(self, customers: Customers) -> Scores:
        self.frames.append(len(customers))
        x = customers.columns["x"]
        if (x < 0).any():
            raise UpliftInputError("x must be >= 0")
        return Scores(np.column_stack([x, -x]), None, None)


def request(*xs: float) -> Customers:
    return Customers({"x": np.array(xs, dtype=float)}, None)


async def run(batcher: ScoringBatcher, requests: list[Customers]):
    return await asyncio.gather(*(batcher.scores(r) for r in requests), return_exceptions=True)


def test_concurrent_requests_share_one_call_and_get_their_own_rows():
    service = EchoService()
    batcher = ScoringBatcher(service)
    answers = asyncio.run(run(batcher, [request(1, 2), request(3), request(4, 5, 6)]))
    assert service.frames == [6] and batcher.calls == 1
    assert [a.uplift[:, 0].tolist() for a in answers] == [[1, 2], [3], [4, 5, 6]]
    assert answers[2].uplift[:, 1].tolist() == [-4, -5, -6]


def test_a_failing_request_gets_the_error_alone():
    service = EchoService()
    answers = asyncio.run(run(ScoringBatcher(service), [request(1), request(-1, 2), request(3)]))
    assert isinstance(answers[1], UpliftInputError)
    assert answers[0].uplift[:, 0].tolist() == [1] and answers[2].uplift[:, 0].tolist() == [3]


def test_batches_are_capped_in_rows():
    service = EchoService()
    batcher = ScoringBatcher(service, max_rows=3)
    answers = asyncio.run(run(batcher, [request(1, 2), request(3, 4), request(5)]))
    assert service.frames == [2, 3]
    assert [a.uplift[:, 0].tolist() for a in answers] == [[1, 2], [3, 4], [5]]


def test_one_request_alone_is_scored_at_once():
    service = EchoService()
    batcher = ScoringBatcher(service)

    async def sequential():
        return [await batcher.scores(request(i)) for i in range(3)]

    answers = asyncio.run(sequential())
    assert service.frames == [1, 1, 1] and [a.uplift[0, 0] for a in answers] == [0, 1, 2]


def test_an_unexpected_failure_never_leaves_a_request_waiting():
    exc = RuntimeError("boom")

    class Broken(EchoService):
        def scores(self, customers):
            raise exc

    answers = asyncio.run(run(ScoringBatcher(Broken()), [request(1), request(2)]))
    assert all(a is exc for a in answers)


def test_decisions_of_one_batch_are_those_of_each_request_alone(fitted):
    """Requests with the same options share one decision call; each gets exactly the coupons (holdout draws
    included) it would get alone, and requests with other options are decided apart."""
    model_dir, _, customers = fitted
    service = ModelService(model_dir)
    schema = service.result.schema
    held = DecisionOptions(cost={"coupon_a": 0.5, "coupon_b": 1.5}, value=40.0, holdout=0.3, seed=3)
    plain = DecisionOptions(cost=0.8, value=40.0)
    parts = [(parse_customers({"customers": customers.iloc[i:i + 40].to_dict(orient="records")}, schema,
                              "customer_id"), held if i % 80 == 0 else plain) for i in range(0, 320, 40)]
    batcher = ScoringBatcher(service)

    async def together():
        return await asyncio.gather(*(batcher.decide(c, o) for c, o in parts))

    answers = asyncio.run(together())
    assert batcher.calls == 1 and batcher.decide_calls == 2
    for (customers_i, options), answer in zip(parts, answers, strict=True):
        alone, rule = service.decide(customers_i.ids, service.scores(customers_i), options)
        assert answer.decisions == alone and answer.rule == rule
    assert any("holdout" in a.decisions["group"] for a in answers)  # the draws were exercised

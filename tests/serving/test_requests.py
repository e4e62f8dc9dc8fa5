"""Request bodies are checked once, against the saved schema: every bad request is one line naming the field, with
the HTTP status to answer (422, or 413 for too large), and never echoes the value sent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from uplift.data.campaign import FeatureSchema
from uplift.serving.requests import RequestError, decision_options, parse_customers

SCHEMA = FeatureSchema(("age", "spend", "channel"), {"channel": ("app", "web")})


def ok(**overrides) -> dict:
    return {"age": 30, "spend": 12.5, "channel": "web", "id": "c-1", **overrides}


def test_a_batch_becomes_the_frame_the_model_encodes_like_uplift_predict():
    body = {"customers": [ok(), ok(age=None, channel="fax", id="c-2"), ok(channel=None, id="c-3"),
                          ok(channel=7, id=4)]}
    c = parse_customers(body, SCHEMA, "id")
    assert c.ids == ["c-1", "c-2", "c-3", 4]
    # the same encoding a CSV with these values gets: null and an unseen category are missing, 7 is the text "7"
    expected = SCHEMA.encode(pd.DataFrame({"age": [30, np.nan, 30, 30], "spend": [12.5] * 4,
                                           "channel": ["web", "fax", None, "7"]}))
    np.testing.assert_array_equal(SCHEMA.encode(c.frame), expected)
    assert np.isnan(expected[1]).tolist() == [True, False, True]


def test_one_customer_and_ids_are_optional():
    c = parse_customers({"customer": {"age": 1, "spend": 2, "channel": "app"}}, SCHEMA, "id")
    assert len(c) == 1 and c.ids is None
    assert SCHEMA.encode(c.frame).tolist() == [[1.0, 2.0, 0.0]]


@pytest.mark.parametrize("body, status, message", [
    ([1, 2], 422, "body: expected a JSON object"),
    ({"people": []}, 422, 'body: give "customer"'),
    ({"customers": {"age": 1}}, 422, "customers: expected a list of objects, got an object"),
    ({"customers": []}, 422, "customers: no customers; send at least one"),
    ({"customers": [ok(), "x"]}, 422, "customers[1]: expected an object keyed by feature name, got a string"),
    ({"customers": [ok(), {"age": 1, "channel": "web"}]}, 422, "customers[1].spend: missing"),
    ({"customer": ok(age="31")}, 422, "customer.age: expected a number or null (numeric feature), got a string"),
    ({"customer": ok(spend=True)}, 422, "customer.spend: expected a number or null (numeric feature), got a boolean"),
    ({"customer": ok(channel=["web"])}, 422, "customer.channel: expected a string, number or null (categorical "
                                             "feature), got a list"),
    ({"customer": ok(spend=1e300)}, 422, "customer.spend: the number is too large for the model (float32)"),
    ({"customers": [ok(), ok(id={"x": 1})]}, 422, "customers[1].id: the customer id must be a string or an integer"),
    ({"customers": [ok()] * 11}, 413, "customers: 11 customers in one request; at most 10"),
])
def test_bad_bodies_are_one_line_naming_the_field(body, status, message):
    with pytest.raises(RequestError) as err:
        parse_customers(body, SCHEMA, "id", max_rows=10)
    assert err.value.status == status
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_a_message_never_repeats_the_value_sent():
    with pytest.raises(RequestError) as err:
        parse_customers({"customer": ok(age="jane.doe@example.com")}, SCHEMA)
    assert "jane" not in str(err.value)


def test_decision_options_read_and_check_the_economics():
    opts = decision_options({"cost": {"a": 0.5, "b": 1}, "value": 40, "min_roi": 0.2, "holdout": 0.1,
                             "explore": 0.05, "seed": 3})
    assert (opts.cost, opts.value, opts.min_roi, opts.holdout, opts.explore, opts.seed) == \
        ({"a": 0.5, "b": 1.0}, 40.0, 0.2, 0.1, 0.05, 3)
    assert decision_options({}).cost is None


@pytest.mark.parametrize("body, message", [
    ({"cost": -1}, "cost: must be >= 0"),
    ({"cost": {"coupon_a": -0.5}}, "cost.coupon_a: must be >= 0"),
    ({"cost": "cheap"}, "cost: expected a number"),
    ({"cost": {"coupon_a": None}}, "cost.coupon_a: expected a number"),
    ({"value": 0}, "value: money per unit of outcome must be positive"),
    ({"value": "40"}, "value: expected a number, got a string"),
    ({"holdout": 1.0}, "holdout: a share in [0, 1)"),
    ({"explore": 0.1}, "explore: needs a holdout as well"),
    ({"seed": 1.5}, "seed: expected a whole number"),
])
def test_bad_decision_options_name_the_field(body, message):
    with pytest.raises(RequestError) as err:
        decision_options(body)
    assert err.value.status == 422 and str(err.value).startswith(message), str(err.value)


def test_a_columnar_batch_is_the_same_customers():
    rows = [ok(), ok(age=None, channel="fax", id="c-2"), ok(channel=7, id=4)]
    by_rows = parse_customers({"customers": rows}, SCHEMA, "id")
    by_columns = parse_customers({"columns": {k: [r[k] for r in rows] for k in rows[0]}}, SCHEMA, "id")
    assert by_columns.columnar and not by_rows.columnar and by_columns.ids == by_rows.ids
    np.testing.assert_array_equal(SCHEMA.encode(by_columns.frame), SCHEMA.encode(by_rows.frame))


@pytest.mark.parametrize("columns, status, message", [
    ([1], 422, "columns: expected an object {feature: [values]}, got a list"),
    ({"age": [1], "spend": [2]}, 422, "columns.channel: missing"),
    ({"age": 1, "spend": [2], "channel": ["web"]}, 422, "columns.age: expected a list of values, got int"),
    ({"age": [1, 2], "spend": [2], "channel": ["web", "app"]}, 422, "columns.spend: 1 values but columns.age has 2"),
    ({"age": [1, "x"], "spend": [2, 3], "channel": ["web", "app"]}, 422, "columns.age[1]: expected a number"),
    ({"age": [], "spend": [], "channel": []}, 422, "columns: no customers"),
    ({"age": [1] * 11, "spend": [2] * 11, "channel": ["web"] * 11}, 413, "columns: 11 customers in one request"),
])
def test_bad_columnar_bodies_name_the_column(columns, status, message):
    with pytest.raises(RequestError) as err:
        parse_customers({"columns": columns}, SCHEMA, "id", max_rows=10)
    assert err.value.status == status and str(err.value).startswith(message), str(err.value)

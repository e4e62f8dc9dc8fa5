"""What a request to the scoring service may hold, checked once at the boundary.

A request body is JSON: ``{"customer": {...}}`` for one customer or ``{"customers": [{...}, ...]}`` for a batch,
each customer an object keyed by feature name (and the study's id column, when it has one), or, for large
batches, ``{"columns": {feature: [values], ...}}``: the same customers column by column (less JSON to parse and
to write; the answer comes back column by column too). The saved
:class:`~uplift.data.campaign.FeatureSchema` decides the types: a numeric feature takes a JSON number or
``null`` (missing), a categorical one a string, a number (read as its text, as ``uplift predict`` reads a
CSV) or ``null``; a category never seen in training is treated as missing, exactly as in ``uplift predict``.
A feature absent from a customer is an error, not a missing value: a caller that forgets a field should hear
so. Keys that are not features are ignored and never echoed, logged or stored.

Errors are :class:`RequestError`, an :class:`~uplift.errors.UpliftInputError` with an HTTP status (422 for a
bad request, 413 for one that is too large) whose one-line message names the field (``customers[3].monetary``)
and never repeats the value sent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from uplift.data.campaign import FeatureSchema
from uplift.errors import UpliftInputError

#: Most customers one request may hold; a larger batch is refused with HTTP 413 (score files with
#: ``uplift predict``). 10,000 rows of a dozen features is about 2 MB of JSON and 30 ms of scoring.
MAX_BATCH_ROWS = 10_000
#: Most bytes of one request body (HTTP 413 above it): room for MAX_BATCH_ROWS customers of ~60 fields.
MAX_BODY_BYTES = 16 * 1024 * 1024

_NUMBER = (int, float)
_MISSING = object()


class RequestError(UpliftInputError):
    """A request the service refuses: one line naming the field, and the HTTP status to answer with.

    Examples
    --------
    >>> err = RequestError("customers[0].age: missing; ...", status=422)
    >>> err.status, str(err)[:20]
    (422, 'customers[0].age: mi')
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Customers:
    """The customers of one request: their features column by column, and their ids.

    Attributes
    ----------
    columns : dict of str to ndarray
        One array per schema feature (numeric as float64 with NaN for missing, categorical as objects: text or
        None), in schema order.
    ids : list or None
        The id each customer was sent with (None when the study has no id column or the request sent none).
    columnar : bool
        Whether the request sent its customers column by column (``"columns"``); the answer does the same.
    """

    columns: dict[str, np.ndarray]
    ids: list | None
    columnar: bool = False

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def frame(self) -> pd.DataFrame:
        """The customers as the DataFrame the model's scoring takes (one row per customer)."""
        return pd.DataFrame(self.columns, copy=False)

    @classmethod
    def concat(cls, parts: list[Customers]) -> Customers:
        """Several requests' customers as one batch, in order (ids are not needed to score)."""
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].columns)
        return cls({n: np.concatenate([p.columns[n] for p in parts]) for n in names}, None)


def _type_name(value: object) -> str:
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _first_bad(values: list, ok: tuple[type, ...]) -> int:
    return next(i for i, v in enumerate(values) if v is not None and (type(v) not in ok))


def customer_records(body: object, max_rows: int = MAX_BATCH_ROWS) -> list[dict]:
    """The customer objects of a parsed request body (``{"customer": {...}}`` or ``{"customers": [...]}``).

    Examples
    --------
    >>> len(customer_records({"customers": [{"age": 30}, {"age": 41}]}))
    2
    >>> customer_records({"people": []})
    Traceback (most recent call last):
    ...
    uplift.serving.requests.RequestError: body: give "customer": {...} (one customer), "customers": [...] (a batch) ...
    """
    if not isinstance(body, dict):
        raise RequestError(f"body: expected a JSON object with \"customer\" or \"customers\", got {_type_name(body)}")
    if "customers" in body:
        records = body["customers"]
        if not isinstance(records, list):
            raise RequestError(f"customers: expected a list of objects, got {_type_name(records)}")
        _check_rows(len(records), "customers", max_rows)
    elif "customer" in body:
        records = [body["customer"]]
    else:
        raise RequestError('body: give "customer": {...} (one customer), "customers": [...] (a batch) or '
                           '"columns": {feature: [...]} (a batch, column by column)')
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            where = f"customers[{i}]" if "customers" in body else "customer"
            raise RequestError(f"{where}: expected an object keyed by feature name, got {_type_name(rec)}")
    return records


def _check_rows(n: int, where: str, max_rows: int) -> None:
    if n == 0:
        raise RequestError(f"{where}: no customers; send at least one")
    if n > max_rows:
        raise RequestError(f"{where}: {n:,} customers in one request; at most {max_rows:,} (split the batch, or "
                           "score files with `uplift predict`)", status=413)


def _columnar(body: dict, names: list[str], max_rows: int) -> tuple[dict, int]:
    columns = body["columns"]
    if not isinstance(columns, dict):
        raise RequestError(f"columns: expected an object {{feature: [values]}}, got {_type_name(columns)}")
    lengths = {}
    for name in names:
        if name in columns:
            if not isinstance(columns[name], list):
                raise RequestError(f"columns.{name}: expected a list of values, got {_type_name(columns[name])}")
            lengths[name] = len(columns[name])
    if len(set(lengths.values())) > 1:
        first, n_first = next(iter(lengths.items()))
        other, n_other = next((k, v) for k, v in lengths.items() if v != n_first)
        raise RequestError(f"columns.{other}: {n_other:,} values but columns.{first} has {n_first:,}; every column "
                           "needs one value per customer")
    n = next(iter(lengths.values()), 0)
    _check_rows(n, "columns", max_rows)
    return columns, n


def parse_customers(body: object, schema: FeatureSchema, id_column: str | None = None, *,
                    max_rows: int = MAX_BATCH_ROWS) -> Customers:
    """Check a request body against the model's schema and turn it into the columns the model scores.

    Parameters
    ----------
    body : object
        The parsed JSON body: ``{"customer": {...}}``, ``{"customers": [{...}, ...]}``, or, for large batches,
        ``{"columns": {feature: [values], ...}}`` (the same customers column by column: less JSON to parse).
    schema : FeatureSchema
        The saved model's features and category levels.
    id_column : str, optional
        The study's customer id column; its values are returned as ``ids``.
    max_rows : int
        Most customers one request may hold (more: HTTP 413).

    Returns
    -------
    Customers

    Examples
    --------
    >>> schema = FeatureSchema(("age", "channel"), {"channel": ("app", "web")})
    >>> c = parse_customers({"customers": [{"age": 30, "channel": "web", "id": 7},
    ...                                    {"age": None, "channel": "fax", "id": 8}]}, schema, "id")
    >>> c.ids, schema.encode(c.frame).tolist()  # null and an unseen category are missing values
    ([7, 8], [[30.0, 1.0], [nan, nan]])
    >>> parse_customers({"columns": {"age": [30, None], "channel": ["web", "fax"], "id": [7, 8]}}, schema, "id").ids
    [7, 8]
    >>> parse_customers({"customer": {"age": "thirty", "channel": "web"}}, schema)
    Traceback (most recent call last):
    ...
    uplift.serving.requests.RequestError: customer.age: expected a number or null (numeric feature), got a string
    """
    names = list(schema.names) + ([id_column] if id_column else [])
    if isinstance(body, dict) and "columns" in body and "customers" not in body and "customer" not in body:
        given, n = _columnar(body, names, max_rows)

        def values_of(name: str) -> list:
            if name not in given:
                raise RequestError(f"columns.{name}: missing; every model feature needs a column (null for a "
                                   f"missing value): {', '.join(schema.names)}")
            return given[name]

        def where(i: int, name: str) -> str:
            return f"columns.{name}[{i}]"

        id_values = given.get(id_column) if id_column else None
        columnar = True
    else:
        records = customer_records(body, max_rows)
        batch = "customers" in body

        def values_of(name: str) -> list:
            values = [rec.get(name, _MISSING) for rec in records]
            if any(v is _MISSING for v in values):
                i = next(i for i, v in enumerate(values) if v is _MISSING)
                raise RequestError(f"{where(i, name)}: missing; every customer needs every model feature (null "
                                   f"for a missing value): {', '.join(schema.names)}")
            return values

        def where(i: int, name: str) -> str:
            return f"customers[{i}].{name}" if batch else f"customer.{name}"

        id_values = [rec.get(id_column) for rec in records] if id_column else None
        columnar = False

    columns = {}
    for name in schema.names:
        values = values_of(name)
        kinds = set(map(type, values))
        if name in schema.categories:
            if kinds - {str, int, float, type(None)}:
                i = _first_bad(values, (str, int, float))
                raise RequestError(f"{where(i, name)}: expected a string, number or null (categorical feature), "
                                   f"got {_type_name(values[i])}")
            text = values if kinds <= {str, type(None)} else [v if v is None or type(v) is str else str(v)
                                                                for v in values]
            columns[name] = np.array(text, dtype=object)
        else:
            if kinds - {int, float, type(None)}:
                i = _first_bad(values, _NUMBER)
                raise RequestError(f"{where(i, name)}: expected a number or null (numeric feature), got "
                                   f"{_type_name(values[i])}")
            arr = np.array(values if type(None) not in kinds else [np.nan if v is None else v for v in values],
                           dtype=np.float64)
            too_big = np.abs(arr) > np.finfo(np.float32).max
            if too_big.any():
                raise RequestError(f"{where(int(np.flatnonzero(too_big)[0]), name)}: the number is too large for "
                                   "the model (float32)")
            columns[name] = arr
    ids = None
    if id_values is not None and any(v is not None for v in id_values):
        if set(map(type, id_values)) - {str, int}:  # (a bool is not an int here: type(True) is bool)
            bad = next(i for i, v in enumerate(id_values) if type(v) not in (str, int))
            raise RequestError(f"{where(bad, id_column)}: the customer id must be a string or an integer, got "
                               f"{_type_name(id_values[bad])}")
        ids = id_values
    return Customers(columns, ids, columnar)


@dataclass(frozen=True)
class DecisionOptions:
    """The economics and the randomisation of a ``/v1/decide`` request (before checking against the model).

    ``cost`` is one number or ``{arm: cost}``; ``value`` the money per unit of outcome; ``min_roi`` the lowest
    ROI a coupon may have; ``holdout`` the share of targeted customers kept back (no coupon) and ``explore``
    the share of the others who get their best coupon anyway, each drawn from the customer id and ``seed``;
    ``skip_extrapolated`` withholds the coupon from customers outside an observational study's overlap (None:
    not given, the service's default applies, ``uplift serve --skip-extrapolated``).
    """

    cost: float | dict | None = None
    value: float | None = None
    min_roi: float | None = None
    holdout: float = 0.0
    explore: float = 0.0
    seed: int = 0
    skip_extrapolated: bool | None = None


def _number(body: dict, key: str, *, share: bool = False) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if type(value) not in _NUMBER or not np.isfinite(value):
        raise RequestError(f"{key}: expected a number, got {_type_name(value)}")
    if share and not 0 <= value < 1:
        raise RequestError(f"{key}: a share in [0, 1) (e.g. 0.1), got {value}")
    return float(value)


def decision_options(body: object) -> DecisionOptions:
    """Read the decision options of a ``/v1/decide`` body (``cost``, ``value``, ``min_roi``, ``holdout``,
    ``explore``, ``seed``, ``skip_extrapolated``), each optional; the model's arms are checked later, by the
    targeting functions.

    Examples
    --------
    >>> decision_options({"cost": {"coupon_a": 0.5}, "value": 40, "holdout": 0.1}).holdout
    0.1
    >>> decision_options({"cost": -1})
    Traceback (most recent call last):
    ...
    uplift.serving.requests.RequestError: cost: must be >= 0 (money per coupon sent), got -1
    """
    assert isinstance(body, dict)  # parse_customers ran first
    cost = body.get("cost")
    if cost is not None:
        items = cost.items() if isinstance(cost, dict) else [("", cost)]
        for arm, c in items:
            key = f"cost.{arm}" if arm else "cost"
            if type(c) not in _NUMBER or not np.isfinite(c):
                raise RequestError(f"{key}: expected a number (money per coupon sent) or an object "
                                   f"{{arm: cost}}, got {_type_name(c)}")
            if c < 0:
                raise RequestError(f"{key}: must be >= 0 (money per coupon sent), got {c}")
        cost = {str(a): float(c) for a, c in cost.items()} if isinstance(cost, dict) else float(cost)
    value = _number(body, "value")
    if value is not None and value <= 0:
        raise RequestError(f"value: money per unit of outcome must be positive, got {value:g}")
    holdout, explore = _number(body, "holdout", share=True) or 0.0, _number(body, "explore", share=True) or 0.0
    if explore > 0 and holdout == 0:
        raise RequestError("explore: needs a holdout as well (holdout > 0, e.g. 0.1), as in `uplift target`")
    seed = body.get("seed", 0)
    if type(seed) is not int or not 0 <= seed < 2**31:
        raise RequestError(f"seed: expected a whole number in [0, 2**31), got {_type_name(seed)}")
    skip = body.get("skip_extrapolated")
    if skip is not None and type(skip) is not bool:
        raise RequestError(f"skip_extrapolated: expected true or false, got {_type_name(skip)}")
    return DecisionOptions(cost=cost, value=value, min_roi=_number(body, "min_roi"), holdout=holdout,
                           explore=explore, seed=seed, skip_extrapolated=skip)

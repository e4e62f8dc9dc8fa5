"""The economics of a targeting decision: what each coupon costs, what one unit of outcome is worth, and who must
not be contacted.

:func:`parse_costs` turns the analyst's cost (one number, ``{arm: cost}`` or ``"ARM=COST"`` strings) into one cost
per coupon; :func:`costs_and_value` also checks the value of one unit of outcome against a fitted result;
:func:`read_exclusions` reads an opt-out file and :func:`exclusion_mask` marks the customers on it. The pandas
list (:func:`uplift.targeting.lists.targeting_list`) and the Spark one (:func:`uplift.spark.target_spark`) both
use these, so a cost, a value or an opt-out means the same thing on either engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from uplift.data.tables import read_table
from uplift.errors import UpliftInputError

__all__ = ["costs_and_value", "exclusion_keys", "exclusion_mask", "parse_costs", "read_exclusions"]


def parse_costs(cost: float | dict[str, float] | Iterable, arms: tuple[str, ...]) -> np.ndarray:
    """Cost per treated arm from one number, a dict ``{arm: cost}`` or ``["arm=cost", ...]`` strings.

    Parameters
    ----------
    cost : float, dict or iterable of str
        One cost for every coupon, or one per coupon.
    arms : tuple of str
        Arm labels, control first (``FitResult.arms``).

    Returns
    -------
    ndarray
        One cost per treated arm, in the order of ``arms[1:]``.

    Examples
    --------
    >>> parse_costs(["b=2", "a=0.5"], ("control", "a", "b")).tolist()
    [0.5, 2.0]
    >>> parse_costs(["0.1"], ("control", "a", "b")).tolist()
    [0.1, 0.1]
    """
    treated = arms[1:]
    if isinstance(cost, int | float | np.floating):
        return np.full(len(treated), float(cost))
    if not isinstance(cost, dict):
        items = list(cost)
        if len(items) == 1 and "=" not in str(items[0]):
            try:
                return parse_costs(float(items[0]), arms)
            except ValueError:
                raise UpliftInputError(
                    f"cost {items[0]!r} is not a number; give one number or ARM=COST pairs") from None
        cost = {}
        for item in items:
            if "=" not in str(item):
                raise UpliftInputError(f"cost {item!r}: give one number for every coupon or ARM=COST pairs")
            name, value = str(item).split("=", 1)
            try:
                cost[name.strip()] = float(value)
            except ValueError:
                raise UpliftInputError(f"cost {item!r}: {value!r} is not a number") from None
    missing = [a for a in treated if a not in cost]
    unknown = [a for a in cost if a not in treated]
    if unknown:
        raise UpliftInputError(f"cost given for unknown coupon {unknown[0]!r}; coupons: {', '.join(treated)}")
    if missing:
        raise UpliftInputError(f"no cost given for coupon {missing[0]!r}; give ARM=COST for every coupon")
    return np.array([float(cost[a]) for a in treated])


def costs_and_value(result, cost: float | dict | Iterable, value: float | None) -> tuple[np.ndarray, float]:
    """Cost per coupon (one per treated arm) and money per unit of outcome, checked against a fitted result.

    Parameters
    ----------
    result : FitResult
        The fitted study (its arms and the kind of its outcome).
    cost : float, dict or iterable of str
        As in :func:`parse_costs`.
    value : float, optional
        Money per unit of outcome. Defaults to 1 for a continuous (revenue) outcome; required for a binary one.

    Returns
    -------
    costs : ndarray
        One cost per coupon.
    value : float
    """
    costs = parse_costs(cost, result.arms)
    if value is None:
        if result.kind == "binary":
            raise UpliftInputError("give the value of one conversion (value=..., CLI --value) "
                                   "to turn uplift into money")
        value = 1.0
    if value <= 0:
        raise UpliftInputError(f"value must be positive, got {value}")
    return costs, float(value)


def _clean(values) -> list[str]:
    """Ids as the customers file's are matched: text, without surrounding spaces or a byte-order mark."""
    return [t for t in (str(v).replace("\ufeff", "").strip() for v in values) if t]


def read_exclusions(path: str | Path, id_col: str | None) -> list[str]:
    """Customer ids never to contact, as text, from a file.

    Parameters
    ----------
    path : str or path
        A ``.txt`` file (or one without extension) with one id a line, or a table (``.csv``, ``.tsv``, optionally
        gzipped, or ``.parquet``) with the id column (``id_col``; else its first column). A one-column CSV without
        a header line (just the ids) is read as a plain list. A byte-order mark (Excel's "CSV UTF-8"), Windows line
        ends and spaces around an id are dropped, as they are from the customers file's ids.
    id_col : str, optional
        The study's customer id column.

    Returns
    -------
    list of str
        The ids exactly as written: a CSV's ``007`` stays ``"007"`` (a CSV reader would make it the number 7).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "optout.csv").write_text("customer_id,reason\\n007,asked\\n42,bounced\\n")
    >>> read_exclusions(d / "optout.csv", "customer_id")
    ['007', '42']
    >>> _ = (d / "optout.txt").write_bytes("\\ufeff000120\\r\\n000121\\r\\n".encode())
    >>> read_exclusions(d / "optout.txt", "customer_id")
    ['000120', '000121']
    """
    path = Path(path)
    if path.suffix in (".txt", ""):
        try:
            lines = _clean(path.read_text(encoding="utf-8-sig").splitlines())
        except (OSError, UnicodeDecodeError) as exc:
            raise UpliftInputError(f"cannot read exclusion list {path}: {exc}") from None
        return lines[1:] if lines and id_col and lines[0] == id_col else lines  # a header line, not an id
    names = list(read_table(path).columns)  # every check of a user's table, once
    col = id_col if id_col in names else names[0]
    ids = read_table(path, columns=[col], text=[col])[col]
    plain = id_col is not None and id_col not in names and len(names) == 1
    return _clean([col, *ids] if plain else ids.dropna())


def exclusion_keys(exclude: Iterable, *, integer_ids: bool = False) -> pd.Index:
    """The ids never to contact, as the keys customer ids are matched with.

    Ids match as text (``"007"`` is not ``"7"``). When the customers' id column holds integers (a CSV reader
    turns ``007`` into 7), an id that spells an integer matches that integer and any other id matches nobody.

    Examples
    --------
    >>> exclusion_keys(["007", 8]).tolist(), exclusion_keys(["007", "x"], integer_ids=True).tolist()
    (['007', '8'], [7])
    """
    text = pd.Series(_clean(exclude), dtype=object)
    if not integer_ids:
        return pd.Index(text)
    return pd.Index(pd.to_numeric(text[text.str.fullmatch(r"[+-]?\d+")]))


def exclusion_mask(customer_ids, exclude) -> np.ndarray:
    """True for each customer on the exclusion list.

    Parameters
    ----------
    customer_ids : array-like
        The customers' ids (the id column of the customer table).
    exclude : iterable of ids, or an Index from :func:`exclusion_keys`
        The ids never to contact (see :func:`exclusion_keys` for how they match).

    Examples
    --------
    >>> exclusion_mask(["007", "7", "8"], ["007"]).tolist()
    [True, False, False]
    >>> exclusion_mask([7, 8], ["007"]).tolist()
    [True, False]
    """
    ids = pd.Series(np.asarray(customer_ids))
    integer = pd.api.types.is_integer_dtype(ids.dtype)
    keys = exclude if isinstance(exclude, pd.Index) else exclusion_keys(exclude, integer_ids=integer)
    return (ids if integer else ids.astype(str).str.strip()).isin(keys).to_numpy(dtype=bool)

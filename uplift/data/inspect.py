"""A data-quality report of a campaign table, before any fit: what each column holds and what looks wrong.

:func:`inspect_data` is what ``uplift inspect``, :meth:`uplift.Study.inspect`, the summary at the top of
``uplift fit`` and the report's data-quality section show. It judges columns with the same functions the
validation of :func:`uplift.data.campaign_data` uses (:mod:`uplift.data.columns`), so a column it calls a date
is one the fit turns into ``days_since_<column>``, and a sentinel it names is one the fit warns about.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from uplift.data.campaign import blank_ids, high_cardinality_reason, similar_arm
from uplift.data.columns import date_format_of, outlier_share, sentinels, sorted_numbers, stray_text
from uplift.data.tables import locate
from uplift.errors import UpliftInputError

__all__ = ["DataQuality", "inspect_data"]

#: A column whose most common value fills at least this share of the rows is called near-constant.
NEAR_CONSTANT = 0.99


@dataclass
class DataQuality:
    """What :func:`inspect_data` found.

    Attributes
    ----------
    rows : int
        Rows of the table.
    columns : DataFrame
        One row per column: ``column``, ``role`` (treatment, outcome, id or feature), ``type`` (number, binary,
        category, date, text, number with stray text, constant, empty), ``missing_share``, ``levels`` (distinct
        values), ``sentinels`` (e.g. ``-999 x 1,204``), ``outlier_share`` (robust z beyond 5), ``date_format``
        and ``note`` (what the fit will do about it).
    duplicate_rows : int
        Rows identical to an earlier row in every column.
    duplicate_ids, blank_ids : int
        Repeated and blank ids (with an id column).
    arms : DataFrame
        ``arm``, ``rows``, ``share`` of each treatment label (with a treatment column).
    notes : list of str
        The findings in words, most important first.
    """

    rows: int
    columns: pd.DataFrame
    duplicate_rows: int = 0
    duplicate_ids: int | None = None
    blank_ids: int | None = None
    arms: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as plain JSON-ready values."""
        return {"rows": self.rows, "duplicate_rows": self.duplicate_rows, "duplicate_ids": self.duplicate_ids,
                "blank_ids": self.blank_ids, "notes": list(self.notes),
                "columns": self.columns.replace({np.nan: None}).to_dict(orient="records"),
                "arms": None if self.arms is None else self.arms.to_dict(orient="records")}

    def summary(self, max_notes: int = 6, said: Sequence[str] = ()) -> list[str]:
        """A few lines for a terminal: the table's shape, column types and the main findings.

        ``said``: notes printed elsewhere in the same output (the fit's own notes): a finding one of them already
        gives (the same missing-value code of the same column, the same date column) is left out here, so each
        is said once.

        Examples
        --------
        >>> import pandas as pd
        >>> q = inspect_data(pd.DataFrame({"income": [-999] * 5 + list(range(20_000, 20_950, 10)),
        ...                                "signup": pd.date_range("2023-01-01", periods=100).astype(str)}))
        >>> len(q.summary()), len(q.summary(said=["column 'income': 5 rows equal -999, probably a missing-value "
        ...                                       "code; pass --na-values -999 to read it as missing"]))
        (3, 2)
        """
        kinds = self.columns["type"].value_counts()
        lines = [f"data: {self.rows:,} rows, {len(self.columns)} columns ("
                 + ", ".join(f"{n} {k}" for k, n in kinds.items()) + ")"]
        known = set().union(*(_findings(note) for note in said)) if said else set()
        notes = [note for note in self.notes if not (_ONLY.fullmatch(note) and _findings(note) <= known)]
        shown = notes[:max_notes]
        lines += [f"  {note}" for note in shown]
        if len(notes) > len(shown):
            lines.append(f"  ... and {len(notes) - len(shown)} more (uplift inspect for all)")
        return lines


_SENTINEL = re.compile(r"column '(.+?)': [\d,]+ rows equal (\S+?),? probably a missing-value code")
_DATE = re.compile(r"\bdays_since_(\w+)")
#: A summary line that is one such finding and nothing more (a date column that is also near-constant stays).
_ONLY = re.compile(r"column '.+?'(?: \(date\): modelled as days_since_\w+|: [\d,]+ rows equal \S+, probably a "
                   r"missing-value code \(--na-values \S+\))")


def _findings(note: str) -> set[tuple[str, ...]]:
    """The data findings a note gives, whichever part of the package worded it: a column's missing-value code
    (``("code", column, value)``) and a date column modelled as days (``("date", column)``)."""
    found = {("code", col, code) for col, code in _SENTINEL.findall(note)}
    return found | {("date", col) for col in _DATE.findall(note)}


def _levels_and_top(col: pd.Series, ordered: np.ndarray | None) -> tuple[int, object, int]:
    """(distinct present values, most common value or missing, its rows) of a column; ``ordered`` is the column's
    :func:`~uplift.data.columns.sorted_numbers` (None: counted by hashing).

    From the sorted values the most common one is found exactly whenever it fills at least half the rows, which
    is all the near-constant test (:data:`NEAR_CONSTANT`) asks: such a value holds the middle of the sorted rows.
    Below half, the count returned may be another value's (it is then below half too).

    Examples
    --------
    >>> col = pd.Series([5.0, 5.0, None, 5.0, 1.0])
    >>> _levels_and_top(col, np.sort(col.dropna().to_numpy()))
    (2, np.float64(5.0), 3)
    >>> _levels_and_top(pd.Series(["a", "a", None, "a", "b"]), None)
    (2, 'a', 3)
    """
    if ordered is None:
        top = col.value_counts(dropna=False)
        levels = int(((top > 0) & top.index.notna()).sum())
        return levels, (top.index[0] if len(top) else None), (int(top.iloc[0]) if len(top) else 0)
    missing, na = len(col) - len(ordered), getattr(col.dtype, "na_value", np.nan)  # NaN, or <NA> (Int64 ...)
    if len(ordered) == 0:
        return 0, na, missing
    levels = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
    middle = ordered[len(ordered) // 2]
    count = int(np.searchsorted(ordered, middle, "right") - np.searchsorted(ordered, middle, "left"))
    return (levels, na, missing) if missing > count else (levels, middle, count)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of every row, sorted ascending: equal rows give equal hashes (pandas' hash of each column,
    combined column by column into one array, so a 14M-row table needs ~3 arrays of 112 MB, not 5).

    Examples
    --------
    >>> frame = pd.DataFrame({"a": [1, 2, 1], "b": ["x", "y", "x"]})
    >>> int(np.count_nonzero(np.diff(_row_hashes(frame)) == 0))
    1
    """
    rows = np.zeros(len(frame), np.uint64)
    for name in frame.columns:
        with np.errstate(over="ignore"):
            rows *= np.uint64(0x9E3779B97F4A7C15)  # mixes the columns so far before the next is added
        rows ^= pd.util.hash_pandas_object(frame[name], index=False).to_numpy()
    rows.sort()
    return rows


def _kind(col: pd.Series, name: str, date_format: str | None, levels: int) -> tuple[str, str | None, str]:
    """(type, date format, note) of one column with ``levels`` distinct non-missing values."""
    present = int(col.notna().sum())
    if present == 0:
        return "empty", None, "every value is missing: not used"
    if pd.api.types.is_bool_dtype(col):
        return "binary", None, ""
    if pd.api.types.is_numeric_dtype(col):
        if levels == 1:
            return "constant", None, "one value in every row: not used"
        # More than two distinct values cannot all be 0 or 1: only a column of at most two is checked.
        return ("binary" if levels <= 2 and col.dropna().isin((0, 1)).all() else "number"), None, ""
    try:
        fmt = date_format_of(col, name, date_format)
    except UpliftInputError:
        return "date (ambiguous)", None, "reads both day-first and month-first: give date_format / --date-format"
    if fmt is not None:
        return "date", fmt, f"modelled as days_since_{name}"
    stray = stray_text(col)
    if stray is not None:
        count, rows = stray
        shown = ", ".join(repr(str(col.iloc[r])) for r in rows[:3])
        return "number with stray text", None, f"{count:,} non-numeric values ({shown}): fit refuses; --na-values"
    if levels <= 1:
        return "constant", None, "one value in every row: not used"
    if high_cardinality_reason(col) is not None:
        return "text", None, f"{levels:,} levels: not modelled unless --high-cardinality {name}"
    return "category", None, ""


def inspect_data(frame: pd.DataFrame, *, treatment: str | None = None, outcome: str | list[str] | None = None,
                 id: str | None = None, na_values: list[str] | tuple[str, ...] = (),
                 date_format: str | None = None) -> DataQuality:
    """Report the quality of a campaign table, column by column, without fitting anything.

    Parameters
    ----------
    frame : DataFrame
        The table (e.g. :func:`uplift.read_table` of the campaign export).
    treatment, outcome, id : str, optional
        Column roles, when known: arm shares and a possible typo in an arm label, outcome zero share, blank and
        repeated ids are then reported too.
    na_values : list of str, optional
        Values already meant as missing (they are not reported as sentinels).
    date_format : str, optional
        Format of ambiguous date columns.

    Returns
    -------
    DataQuality

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"cid": [f"{i:06d}" for i in range(100)], "coupon": ["none", "10%"] * 50,
    ...                    "signup": pd.date_range("2023-01-01", periods=100).strftime("%Y-%m-%d"),
    ...                    "income": [-999] * 5 + list(range(20_000, 20_950, 10)), "buy": [0, 1] * 50})
    >>> q = inspect_data(df, treatment="coupon", outcome="buy", id="cid")
    >>> q.columns.set_index("column")["type"].to_dict()
    {'cid': 'id', 'coupon': 'arm label', 'signup': 'date', 'income': 'number', 'buy': 'binary'}
    >>> q.notes[0]
    "column 'income': 5 rows equal -999, probably a missing-value code (--na-values -999)"
    """
    if not isinstance(frame, pd.DataFrame):
        raise UpliftInputError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome or [])
    role = {c: "feature" for c in frame.columns}
    role.update({c: "outcome" for c in outcomes if c in frame.columns})
    for name, r in ((treatment, "treatment"), (id, "id")):
        if name is not None:
            if name not in frame.columns:
                raise UpliftInputError(f"{r} column {name!r} not found; columns: {', '.join(map(str, frame.columns))}")
            role[name] = r
    na = {str(v).strip() for v in na_values}
    rows, notes, sentinel_notes = [], [], []
    n = len(frame)
    for name in frame.columns:
        col = frame[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        # One pass per column gives its levels and its most frequent value (a 1M-row table has columns with a
        # million distinct values): a sort for numbers, a hash count for the rest.
        ordered = sorted_numbers(col) if numeric else None
        levels, top_value, top_count = _levels_and_top(col, ordered)
        kind, fmt, note = _kind(col, str(name), date_format, levels)
        if role[name] in ("id", "treatment") and kind in ("text", "category", "number", "binary"):
            kind, note = ("id" if role[name] == "id" else "arm label"), ""
        found, outliers = [], None
        if kind in ("number", "binary") and numeric:
            values = ordered.astype(np.float64, copy=False)
            found = [(v, c) for v, c in sentinels(values, presorted=True) if f"{v:g}" not in na]
            outliers = 0.0
            if kind == "number":  # without the codes' rows: what stays is still sorted
                outliers = outlier_share(values[~np.isin(values, [v for v, _ in found])] if found else values,
                                         presorted=True)
        del ordered
        share = top_count / n if n else 0.0
        if kind not in ("constant", "empty", "id") and share >= NEAR_CONSTANT:
            value = top_value.item() if isinstance(top_value, np.generic) else top_value  # 0, not np.int64(0)
            note = (note + "; " if note else "") + f"near-constant ({share:.1%} {value!r})"
        rows.append({"column": str(name), "role": role[name], "type": kind,
                     "missing_share": float(col.isna().mean()), "levels": levels,
                     "sentinels": ", ".join(f"{v:g} x {c:,}" for v, c in found), "outlier_share": outliers,
                     "date_format": fmt, "note": note})
        for v, c in found:
            sentinel_notes.append(f"column {name!r}: {c:,} rows equal {v:g}, probably a missing-value code "
                                  f"(--na-values {v:g})")
        if note and role[name] == "feature":
            notes.append(f"column {name!r} ({kind}): {note}")
    columns = pd.DataFrame(rows)
    # Rows that repeat an earlier one: equal neighbours among the sorted row hashes (n minus the distinct hashes,
    # what ``duplicated().sum()`` counts, without its hash table of every row).
    hashes = _row_hashes(frame)
    dup_rows = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
    del hashes
    dup_ids = n_blank = None
    if id is not None:
        ids = frame[id]
        blank = blank_ids(ids)
        n_blank = int(blank.sum())
        dup_ids = int(ids[~blank].duplicated().sum())
        if n_blank:
            notes.insert(0, f"id column {id!r}: {n_blank:,} blank id(s), first at "
                            f"{locate(frame, int(np.flatnonzero(blank)[0]))}")
        if dup_ids:
            notes.insert(0, f"id column {id!r}: {dup_ids:,} repeated id(s)")
    if dup_rows:
        notes.append(f"{dup_rows:,} rows repeat an earlier row exactly (a doubled export?)")
    arms = None
    if treatment is not None:
        counts = frame[treatment].astype("string").fillna("(missing)").value_counts()
        arms = pd.DataFrame({"arm": counts.index.astype(str), "rows": counts.to_numpy(),
                             "share": counts.to_numpy() / max(n, 1)})
        pair = similar_arm(list(arms["arm"]), list(arms["rows"]))
        if pair is not None:
            notes.insert(0, f"treatment {treatment!r}: arm {pair[0]!r} looks like a typo of {pair[1]!r}")
        if "(missing)" in counts.index:
            notes.insert(0, f"treatment {treatment!r}: {int(counts['(missing)']):,} rows without an arm")
    for name in outcomes:
        if name in frame.columns and pd.api.types.is_numeric_dtype(frame[name]):
            zero = float((frame[name] == 0).mean())
            if zero >= 0.5 and frame[name].nunique() > 2:
                notes.append(f"outcome {name!r}: {zero:.0%} zeros (zero-heavy revenue: expect wide intervals)")
    return DataQuality(rows=n, columns=columns, duplicate_rows=dup_rows, duplicate_ids=dup_ids, blank_ids=n_blank,
                       arms=arms, notes=[*sentinel_notes, *notes])

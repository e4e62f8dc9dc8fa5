"""Point-in-time behaviour features from an event log, computed in DuckDB, with a leakage guard.

An uplift study needs one row per customer: what the customer did *before* the campaign, which arm they were
in, and what they did *after*. :func:`build_features` builds that row from an event log (customer, time, event
type, optional amount, category and channel) and a campaign table (customer, arm, exposure time or one campaign
start), in one DuckDB ``GROUP BY`` over the joined events:

* per event type and window (default 7/30/90/365 days): frequency ``<type>_count_<w>d`` and, for types with
  amounts, monetary value ``<type>_amount_<w>d``; recency ``<type>_recency_days``; trend
  ``<type>_trend_30v90`` (events per day in the last 30 days minus per day in the 90 before them);
* over the longest window: category and channel shares, average order value and redeem / return rates
  (per purchase); ``days_since_first_event`` over the whole history;
* the outcome over a follow-up window after exposure (``purchase:14d``: ``conversion_14d`` 0/1 and
  ``revenue_14d``).

Every feature counts only events strictly before its customer's reference time (the exposure by default), and
the schema records each window's start and end. A reference time after a customer's exposure (a single
"as of" date later than some exposures, the classic leak: the coupon causes a visit, the visit becomes a
feature) is refused unless forced with ``allow_leakage``, which the schema then records.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from uplift._files import PathLike, atomic_write_text, json_text
from uplift.data.campaign import check_ids
from uplift.data.sql import SqlSource, import_duckdb, quote_name, read_source
from uplift.data.tables import file_kind
from uplift.errors import UpliftInputError

__all__ = ["DEFAULT_WINDOWS", "FeatureTable", "build_features", "parse_outcome", "schema_path"]

#: Feature windows in days before the reference time.
DEFAULT_WINDOWS = (7, 30, 90, 365)
#: The trend compares the last ``_TREND[0]`` days with the ``_TREND[1]`` days before them.
_TREND = (30, 90)
#: Most distinct event types, categories and channels turned into columns (the most frequent ones).
MAX_EVENT_TYPES, MAX_LEVELS = 30, 20
_DAY = 86400.0


@dataclass
class FeatureTable:
    """The campaign table with its point-in-time features and outcomes, and the schema of every column built.

    Attributes
    ----------
    frame : DataFrame
        The campaign table's columns, in its row order, then the features, then the outcomes.
    schema : dict
        ``as_of``, ``exposure``, ``features`` (name, event type, window start and end), ``outcomes``, ``leakage``
        (customers whose feature windows reach past their exposure and whether that was allowed) and ``notes``.
    """

    frame: pd.DataFrame
    schema: dict
    notes: list[str] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.schema["features"]]

    @property
    def outcome_names(self) -> list[str]:
        return [o["name"] for o in self.schema["outcomes"]]

    def save_schema(self, path: PathLike, protect: Sequence[PathLike] = ()) -> Path:
        """Write the schema as JSON (atomically) and return its path."""
        atomic_write_text(path, json_text(self.schema), protect=list(protect))
        return Path(path)


def schema_path(out: PathLike) -> Path:
    """Where the feature schema of output table ``out`` is saved: beside it, ``<name>.features.json``.

    Examples
    --------
    >>> schema_path("study/campaign_table.parquet").as_posix()
    'study/campaign_table.parquet.features.json'
    """
    out = Path(out)
    return out.with_name(out.name + ".features.json")


def parse_outcome(spec: str) -> tuple[str, int]:
    """``"purchase:14d"`` → ``("purchase", 14)``: an event type and a follow-up window in days.

    Examples
    --------
    >>> parse_outcome("purchase:14d"), parse_outcome("visit:7")
    (('purchase', 14), ('visit', 7))
    >>> parse_outcome("purchase")
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: --outcome 'purchase': give EVENT_TYPE:DAYS, e.g. purchase:14d
    """
    m = re.fullmatch(r"\s*([^:]+?)\s*:\s*(\d+)\s*d?\s*", spec)
    if m is None or int(m.group(2)) < 1:
        raise UpliftInputError(f"--outcome {spec!r}: give EVENT_TYPE:DAYS, e.g. purchase:14d")
    return m.group(1), int(m.group(2))


def _slug(value: object) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _relation(source, name: str, id_col: str, con) -> str:
    """The SQL relation of an events source: a file read by DuckDB, a query, or a registered DataFrame."""
    if isinstance(source, pd.DataFrame):
        con.register(name, source)
        return name
    if isinstance(source, SqlSource):
        if source.table is not None:
            return quote_name(source.table)
        return f"({source.query})"
    path = Path(source)
    if not path.is_file():
        raise UpliftInputError(f"{path} does not exist (or is not a file); check the events path")
    if file_kind(path) == "parquet":
        return f"read_parquet({_literal(str(path))})"
    if path.name.lower().endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        # The id as text, byte for byte, as the campaign table's reader keeps it ('007' stays '007').
        return f"read_csv({_literal(str(path))}, types={{{_literal(id_col)}: 'VARCHAR'}})"
    raise UpliftInputError(f"{path}: events are read from .parquet or .csv(.gz) files (or --events-sql)")


def _columns(con, relation: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def _require(available: list[str], wanted: dict[str, str | None], what: str) -> None:
    for option, name in wanted.items():
        if name is not None and name not in available:
            listed = ", ".join(available[:20])
            raise UpliftInputError(f"{what} have no column {name!r} (the {option}); map it with --{option}-col; "
                                   f"their columns are: {listed}")


def _reference_times(campaign: pd.DataFrame, id_col: str, exposure: str | None, campaign_start: str | None,
                     as_of: str | None) -> tuple[pd.Series, pd.Series]:
    """Each customer's exposure time and feature reference time (``as_of``), checked."""
    if exposure is not None:
        if exposure not in campaign.columns:
            raise UpliftInputError(f"the campaign table has no exposure column {exposure!r}; name it with "
                                   "--exposure-col, or give --campaign-start DATE")
        exposed = pd.to_datetime(campaign[exposure], errors="coerce", utc=False)
        bad = exposed.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise UpliftInputError(f"exposure column {exposure!r} has {int(bad.sum())} missing or unreadable "
                                   f"time(s), first at row {row} ({campaign[exposure].iloc[row]!r}); every "
                                   "customer needs an exposure (assignment) time, control customers too")
    elif campaign_start is not None:
        exposed = pd.Series(_timestamp(campaign_start, "--campaign-start"), index=campaign.index)
    else:
        raise UpliftInputError("give each customer's exposure time (--exposure-col) or one --campaign-start DATE")
    if getattr(exposed.dt, "tz", None) is not None:
        exposed = exposed.dt.tz_convert(None)
    reference = exposed if as_of is None else pd.Series(_timestamp(as_of, "--as-of"), index=campaign.index)
    return exposed.astype("datetime64[us]"), reference.astype("datetime64[us]")


def _timestamp(value: str, option: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UpliftInputError(f"{option} {value!r} is not a date or time; give YYYY-MM-DD[ HH:MM]") from None
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def build_features(
    events: pd.DataFrame | PathLike | SqlSource,
    campaign: pd.DataFrame | PathLike | SqlSource,
    *,
    id: str = "customer_id",  # the analyst's word for it
    time: str = "timestamp",
    event_type: str = "event_type",
    amount: str | None = "amount",
    category: str | None = "category",
    channel: str | None = "channel",
    campaign_id: str | None = None,
    treatment: str | None = None,
    exposure: str | None = "exposure_time",
    campaign_start: str | None = None,
    as_of: str | None = None,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    outcomes: Sequence[str] = ("purchase:14d",),
    purchase: str = "purchase",
    redeem: str = "coupon_redeem",
    returned: str = "return",
    allow_leakage: bool = False,
    observed_until: str | None = None,
) -> FeatureTable:
    """Point-in-time behaviour features and follow-up outcomes for every customer of a campaign.

    Parameters
    ----------
    events : DataFrame, path or SqlSource
        The event log: one row per event (a Parquet/CSV file is read by DuckDB directly, a query runs in DuckDB).
    campaign : DataFrame, path or SqlSource
        One row per customer: id, arm, exposure time (read with the typed reader, ids and arms as text).
    id, time, event_type, amount, category, channel : str
        Column names in the events (``amount``, ``category``, ``channel`` optional: ``None`` or absent).
    campaign_id : str, optional
        The id column of the campaign table (default: ``id``).
    treatment : str, optional
        The arm column of the campaign table, read as text (it is kept as it is either way).
    exposure : str, optional
        The exposure (assignment) time column of the campaign table; ``None`` with ``campaign_start``.
    campaign_start : str, optional
        One exposure time for everyone (when the campaign table has none).
    as_of : str, optional
        The reference time of the features for everyone (default: each customer's exposure). A date after some
        customer's exposure is refused unless ``allow_leakage``.
    windows : sequence of int
        Feature windows in days.
    outcomes : sequence of str
        ``EVENT_TYPE:DAYS`` follow-ups after exposure; the purchase type gives ``conversion_<N>d`` and
        ``revenue_<N>d``, another type ``<type>_conversion_<N>d`` and ``<type>_amount_<N>d``.
    purchase, redeem, returned : str
        The event types of a purchase, a coupon redemption and a return (for AOV and the rates).
    allow_leakage : bool
        Build the features although their window reaches past some exposures (a loud warning; recorded).
    observed_until : str, optional
        When the log ends (default: its last event); a follow-up ending after it is noted as incomplete.

    Returns
    -------
    FeatureTable

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...     "timestamp": pd.to_datetime(["2024-05-20", "2024-05-30", "2024-06-03", "2024-04-01"]),
    ...     "event_type": ["view", "purchase", "purchase", "view"], "amount": [None, 20.0, 35.0, None]})
    >>> sent = pd.DataFrame({"customer_id": ["a", "b"], "coupon": [1, 0],
    ...                      "exposure_time": pd.to_datetime(["2024-06-01", "2024-06-01"])})
    >>> t = build_features(events, sent, windows=[30], outcomes=["purchase:14d"])
    >>> t.frame[["customer_id", "view_count_30d", "purchase_amount_30d", "conversion_14d", "revenue_14d"]]
      customer_id  view_count_30d  purchase_amount_30d  conversion_14d  revenue_14d
    0           a               1                 20.0               1         35.0
    1           b               0                  0.0               0          0.0
    """
    windows = sorted({int(w) for w in windows})
    if not windows or windows[0] < 1 or windows[-1] > 36500:
        raise UpliftInputError(f"--window: give whole days between 1 and 36500, got {windows}")
    campaign_id = campaign_id or id
    follow = [parse_outcome(o) for o in outcomes]
    if not isinstance(campaign, pd.DataFrame):
        campaign = read_source(campaign, text=[c for c in (campaign_id, treatment) if c])
    if campaign_id not in campaign.columns:
        raise UpliftInputError(f"the campaign table has no id column {campaign_id!r}; name it with --campaign-id-col "
                               f"(its columns: {', '.join(map(str, campaign.columns[:20]))})")
    check_ids(campaign[campaign_id], campaign_id, campaign, what="the campaign table")
    exposed, reference = _reference_times(campaign, campaign_id, exposure, campaign_start, as_of)
    ahead = (reference - exposed).dt.total_seconds() / _DAY
    leaking = int((ahead > 0).sum())
    notes: list[str] = []
    if leaking:
        first = int(ahead.to_numpy().argmax())
        message = (f"feature windows end at {reference.iloc[first]}, after the exposure of {leaking:,} customer(s) "
                   f"(e.g. {campaign[campaign_id].iloc[first]!r}, exposed {exposed.iloc[first]}, "
                   f"{ahead.max():.1f} days earlier): their features would count what the campaign caused")
        if not allow_leakage:
            raise UpliftInputError(message + "; build them as of each exposure (--as-of-exposure) or an --as-of "
                                   "date before the first exposure (--allow-leakage forces it, not advised)")
        warnings.warn("LEAKAGE FORCED: " + message, UserWarning, stacklevel=2)
        notes.append("LEAKAGE FORCED: " + message)

    duckdb = import_duckdb()
    # A query or table of a database runs in it (read-only); a file or frame in an in-memory database.
    con = events.connect() if isinstance(events, SqlSource) else duckdb.connect(":memory:")
    try:
        relation = _relation(events, "uplift_events", id, con)
        try:
            available = _columns(con, relation)
        except duckdb.Error as err:
            raise UpliftInputError(f"the events cannot be read: {str(err).strip().splitlines()[0]}") from None
        _require(available, {"id": id, "time": time, "event-type": event_type}, "the events")
        optional = {k: (v if v in available else None) for k, v in
                    (("amount", amount), ("category", category), ("channel", channel))}
        keys = pd.DataFrame({"_cid": campaign[campaign_id].astype(str).to_numpy(),
                             "_exposure": exposed.to_numpy(), "_as_of": reference.to_numpy(),
                             "_row": range(len(campaign))})
        con.register("uplift_customers", keys)
        sql_events = (f"SELECT CAST({quote_name(id)} AS VARCHAR) AS _cid, CAST({quote_name(time)} AS TIMESTAMP) AS _ts,"
                      f" CAST({quote_name(event_type)} AS VARCHAR) AS _type, "
                      + ", ".join(f"CAST({quote_name(v)} AS {'DOUBLE' if k == 'amount' else 'VARCHAR'}) AS _{k}"
                                  if v else f"CAST(NULL AS {'DOUBLE' if k == 'amount' else 'VARCHAR'}) AS _{k}"
                                  for k, v in optional.items())
                      + f" FROM {relation}")
        joined = (f"SELECT e.*, (epoch(c._as_of) - epoch(e._ts)) / {_DAY} AS _age, "
                  f"(epoch(e._ts) - epoch(c._exposure)) / {_DAY} AS _after FROM ({sql_events}) e "
                  "JOIN uplift_customers c USING (_cid)")
        con.execute(f"CREATE TEMP VIEW uplift_joined AS {joined}")
        try:
            levels = _levels(con, optional)
        except duckdb.Error as err:
            raise UpliftInputError(f"the events cannot be read ({str(err).strip().splitlines()[0]}); check the "
                                   f"--time-col {time!r} holds timestamps") from None
        if len(levels["types"]) > MAX_EVENT_TYPES:
            notes.append(f"{len(levels['types'])} event types: features for the {MAX_EVENT_TYPES} most frequent")
            levels["types"] = levels["types"][:MAX_EVENT_TYPES]
        columns, schema_features = _feature_sql(levels, windows, purchase, redeem, returned)
        out_cols, schema_outcomes = _outcome_sql(follow, purchase, levels["with_amount"])
        select = ", ".join(f"{expr} AS {quote_name(name)}" for name, expr in [*columns, *out_cols])
        query = (f"WITH f AS (SELECT _cid, {select} FROM uplift_joined GROUP BY _cid) "
                 f"SELECT f.* EXCLUDE (_cid) FROM uplift_customers c LEFT JOIN f USING (_cid) ORDER BY c._row")
        built = con.sql(query).df()
        last_event = con.execute("SELECT max(_ts) FROM uplift_joined").fetchone()[0]
    finally:
        con.close()
    zero = [name for name, expr in [*columns, *out_cols] if not expr.startswith(("min(", "max(")) and
            "nullif" not in expr]
    built[zero] = built[zero].fillna(0)
    whole = [e["name"] for e in [*schema_features, *schema_outcomes] if e["kind"] in ("frequency", "conversion")]
    built[whole] = built[whole].astype("int64")
    clash = [c for c in built.columns if c in campaign.columns]
    if clash:
        raise UpliftInputError(f"the campaign table already has a column {clash[0]!r}, a feature name; rename it")
    end = _timestamp(observed_until, "--observed-until") if observed_until is not None else last_event
    notes += _censoring_notes(exposed, end, follow)
    if not levels["types"]:
        notes.append("no event of any campaign customer: check that the id columns of both tables match")
    frame = pd.concat([campaign.reset_index(drop=True), built.reset_index(drop=True)], axis=1)
    past = float(max(ahead.max(), 0.0))
    for entry in schema_features:  # each window's end against the exposure: 0 unless the leak was forced
        entry["end_after_exposure_days_max"] = past
    schema = {
        "as_of": "exposure" if as_of is None else str(reference.iloc[0]),
        "exposure": exposure if exposure is not None else f"campaign start {exposed.iloc[0]}",
        "id": campaign_id,
        "windows_days": windows,
        "features": schema_features,
        "outcomes": schema_outcomes,
        "leakage": {"customers_with_window_past_exposure": leaking,
                    "max_days_past_exposure": past, "allowed": bool(allow_leakage and leaking)},
        "last_event": None if last_event is None else str(last_event),
        "notes": notes,
    }
    return FeatureTable(frame, schema, notes)


def _levels(con, optional: dict) -> dict:
    rows = con.execute("SELECT _type, count(*) AS n, count(_amount) AS n_amount FROM uplift_joined "
                       "WHERE _age > 0 AND _type IS NOT NULL GROUP BY _type ORDER BY n DESC, _type").fetchall()
    levels = {"types": [r[0] for r in rows], "with_amount": {r[0] for r in rows if r[2] > 0}}
    for key in ("category", "channel"):
        if optional[key] is None:
            levels[key] = []
            continue
        top = con.execute(f"SELECT _{key} FROM uplift_joined WHERE _age > 0 AND _{key} IS NOT NULL GROUP BY 1 "
                          f"ORDER BY count(*) DESC, 1 LIMIT {MAX_LEVELS}").fetchall()
        levels[key] = [r[0] for r in top]
    return levels


def _window(w: float | None) -> str:
    """Events at most ``w`` days (or any time) before the reference time, and strictly before it."""
    return "_age > 0" if w is None else f"_age > 0 AND _age <= {w}"


def _entry(name: str, kind: str, event: str | None, start: float | None, end: float = 0.0) -> dict:
    return {"name": name, "kind": kind, "event_type": event,
            "window_start_days": None if start is None else -float(start), "window_end_days": -float(end) or 0.0,
            "window": (f"[as_of - {start:g} days, as_of - {end:g} days)" if start is not None else
                       f"(all history, as_of - {end:g} days)") if end else
                      (f"[as_of - {start:g} days, as_of)" if start is not None else "(all history, as_of)")}


def _feature_sql(levels: dict, windows: list[int], purchase: str, redeem: str,
                 returned: str) -> tuple[list[tuple[str, str]], list[dict]]:
    cols: list[tuple[str, str]] = []
    schema: list[dict] = []
    longest = windows[-1]
    used: set[str] = set()

    def add(name: str, expr: str, entry: dict) -> None:
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        entry["name"] = name
        cols.append((name, expr))
        schema.append(entry)

    for t in levels["types"]:
        s, is_t = _slug(t), f"_type = {_literal(t)}"
        for w in windows:
            add(f"{s}_count_{w}d", f"count(*) FILTER (WHERE {is_t} AND {_window(w)})", _entry("", "frequency", t, w))
            if t in levels["with_amount"]:
                add(f"{s}_amount_{w}d", f"coalesce(sum(_amount) FILTER (WHERE {is_t} AND {_window(w)}), 0)",
                    _entry("", "monetary", t, w))
        add(f"{s}_recency_days", f"min(_age) FILTER (WHERE {is_t} AND {_window(None)})",
            _entry("", "recency", t, None))
        recent, before = _TREND
        add(f"{s}_trend_{recent}v{before}",
            f"count(*) FILTER (WHERE {is_t} AND {_window(recent)}) / {float(recent)} - count(*) FILTER (WHERE {is_t} "
            f"AND _age > {recent} AND _age <= {recent + before}) / {float(before)}",
            _entry("", "trend", t, recent + before))
    add("days_since_first_event", f"max(_age) FILTER (WHERE {_window(None)})", _entry("", "tenure", None, None))
    for key in ("category", "channel"):
        known = f"_{key} IS NOT NULL AND {_window(longest)}"
        for level in levels[key]:
            add(f"{key}_share_{_slug(level)}_{longest}d",
                f"count(*) FILTER (WHERE _{key} = {_literal(level)} AND {_window(longest)}) / "
                f"nullif(count(*) FILTER (WHERE {known}), 0)", _entry("", f"{key} share", None, longest))
    if purchase in levels["types"]:
        bought = f"count(*) FILTER (WHERE _type = {_literal(purchase)} AND {_window(longest)})"
        if purchase in levels["with_amount"]:
            add(f"aov_{longest}d", f"sum(_amount) FILTER (WHERE _type = {_literal(purchase)} AND "
                f"{_window(longest)}) / nullif({bought}, 0)", _entry("", "average order value", purchase, longest))
        for event, label in ((redeem, "redeem"), (returned, "return")):
            if event in levels["types"]:
                add(f"{label}_rate_{longest}d", f"count(*) FILTER (WHERE _type = {_literal(event)} AND "
                    f"{_window(longest)}) / nullif({bought}, 0)", _entry("", f"{label} rate", event, longest))
    return cols, schema


def _outcome_sql(follow: list[tuple[str, int]], purchase: str,
                 with_amount: set) -> tuple[list[tuple[str, str]], list[dict]]:
    cols, schema = [], []
    for event, days in follow:
        prefix = "" if event == purchase else f"{_slug(event)}_"
        inside = f"_type = {_literal(event)} AND _after >= 0 AND _after < {days}"
        window = f"[exposure, exposure + {days} days)"
        cols.append((f"{prefix}conversion_{days}d", f"(count(*) FILTER (WHERE {inside}) > 0)::INTEGER"))
        schema.append({"name": f"{prefix}conversion_{days}d", "kind": "conversion", "event_type": event,
                       "window": window})
        money = "revenue" if event == purchase else "amount"
        cols.append((f"{prefix}{money}_{days}d", f"coalesce(sum(_amount) FILTER (WHERE {inside}), 0)"))
        schema.append({"name": f"{prefix}{money}_{days}d", "kind": money, "event_type": event, "window": window})
    return cols, schema


def _censoring_notes(exposed: pd.Series, last_event, follow: list[tuple[str, int]]) -> list[str]:
    if last_event is None:
        return []
    notes = []
    for event, days in follow:
        # A day of slack: a log's last event is a little before its end (nobody acts in the last minutes).
        short = int((exposed + pd.Timedelta(days=days) > pd.Timestamp(last_event)).sum())
        if short:
            notes.append(f"the {event}:{days}d follow-up of {short:,} customer(s) ends after the log does "
                         f"({last_event}; --observed-until sets it): their outcome may be incomplete")
    return notes

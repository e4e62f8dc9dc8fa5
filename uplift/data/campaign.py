"""The campaign data contract: a DataFrame plus column roles, validated once at the boundary.

Everything downstream (learners, evaluation, effects, targeting) works on the arrays of a
:class:`CampaignData`: a float32 feature matrix (categoricals as integer codes, so LightGBM can
split on them natively), integer arm codes (0 = control), float outcomes, optional ids and known
propensities. The :class:`FeatureSchema` remembers feature names and category levels so that new
data is encoded exactly as the training data was (unseen categories become missing values).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from uplift.data.columns import date_format_of, days_before, parse_dates, sentinels, stray_text
from uplift.data.sql import read_source, read_source_batches
from uplift.data.tables import locate
from uplift.errors import UpliftInputError

Design = Literal["rct", "observational"]

#: Labels taken to mean "no campaign" when the user does not name the control arm.
CONTROL_WORDS = ("control", "ctrl", "no", "none", "false", "0", "holdout", "untreated", "no e-mail", "no email")
#: Outcomes beyond this magnitude are export errors (and would overflow variance estimates).
MAX_OUTCOME = 1e12
#: Fewest rows an arm may have before fitting is refused.
MIN_ROWS_PER_ARM = 30
#: A text feature with more levels than this is not modelled as a category unless asked (``high_cardinality``):
#: LightGBM's category splits slow down with the level count and generalise poorly on rare levels.
MAX_CATEGORY_LEVELS = 200
#: ... nor one with (nearly) one level per row: an identifier or free text, not a category.
UNIQUE_SHARE = 0.9
#: An arm with less than this share of the rows whose label is a near-copy of another arm's is taken as a typo.
TYPO_ARM_SHARE = 0.01


@dataclass(frozen=True)
class FeatureSchema:
    """Names, order, types and category levels of the model features, and how the raw columns become them.

    Parameters
    ----------
    names : tuple of str
        Feature columns in model order (a date column appears as its numeric ``days_since_<column>``).
    categories : dict
        For each categorical feature, its training levels (as strings) in code order.
    dates : dict, optional
        For each date-derived feature, ``{"column": raw column, "format": strftime format, "as_of": ISO date}``:
        the feature is the number of days from the raw date to ``as_of``.
    na_values : tuple of str, optional
        Values read as missing in the feature columns (e.g. ``("-999",)``), at fit and at scoring alike.

    Examples
    --------
    >>> import pandas as pd
    >>> s = FeatureSchema.infer(pd.DataFrame({"age": [30, 40], "channel": ["web", "app"]}))
    >>> s.encode(pd.DataFrame({"age": [50], "channel": ["store"]})).tolist()  # unseen level -> NaN
    [[50.0, nan]]
    >>> d = FeatureSchema(("days_since_signup",), dates={"days_since_signup": {
    ...     "column": "signup", "format": "%Y-%m-%d", "as_of": "2024-01-31"}})
    >>> d.source_columns, d.encode(pd.DataFrame({"signup": ["2024-01-01"]})).tolist()
    (['signup'], [[30.0]])
    """

    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dates: dict[str, dict] = field(default_factory=dict)
    na_values: tuple[str, ...] = ()

    @classmethod
    def infer(cls, frame: pd.DataFrame, *, dates: dict[str, dict] | None = None,
              na_values: tuple[str, ...] = ()) -> FeatureSchema:
        cats = {}
        for name in frame.columns:
            col = frame[name]
            if not _is_numeric(col):
                levels = pd.unique(col.dropna().astype(str))
                cats[str(name)] = tuple(sorted(levels))
        return cls(tuple(str(c) for c in frame.columns), cats, dict(dates or {}), tuple(map(str, na_values)))

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.names) if n in self.categories]

    @property
    def source_columns(self) -> list[str]:
        """The columns a table to score must have (a date feature's raw date column, not the derived one)."""
        return [self.dates[n]["column"] if n in self.dates else n for n in self.names]

    @property
    def text_columns(self) -> list[str]:
        """The columns read as text at scoring: category codes (``'01'`` stays ``'01'``) and raw dates."""
        return [*self.categories, *(spec["column"] for spec in self.dates.values())]

    def read_options(self, text: list[str | None] | tuple = ()) -> dict:
        """The :func:`~uplift.data.tables.read_table` options that read a table as the model saw its training
        table: category codes and raw dates as strings, the missing-value codes missing, and ``text`` (ids, arm
        labels; ``None`` entries ignored) byte for byte."""
        return {"text": [c for c in text if c], "strings": self.text_columns, "na_values": list(self.na_values)}

    def read(self, path, *, text: list[str | None] | tuple = (), columns: list[str] | None = None) -> pd.DataFrame:
        """Read a table to score (or the training table again) with the types the model was trained on, so the
        result never depends on what pandas guesses from a file's first rows (see :meth:`read_options`).
        ``path`` is a file or a :class:`~uplift.data.sql.SqlSource`.

        Examples
        --------
        >>> import pandas as pd, tempfile, pathlib
        >>> s = FeatureSchema(("store",), {"store": ("01", "02", "other")})
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
        >>> _ = p.write_text("id,store\\n0007,01\\n0008,02\\n")
        >>> s.read(p, text=["id"]).to_dict("list")
        {'id': ['0007', '0008'], 'store': ['01', '02']}
        """
        return read_source(path, columns=columns, **self.read_options(text))

    def read_batches(self, path, *, batch_rows: int, text: list[str | None] | tuple = ()):
        """:meth:`read` in batches of the columns scoring needs (the features' raw columns and ``text``)."""
        columns = list(dict.fromkeys([*[c for c in text if c], *self.source_columns]))
        return read_source_batches(path, columns=columns, batch_rows=batch_rows, **self.read_options(text))

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the features as the model saw them in training: the missing-value codes missing and
        each date turned into days before the training reference date (a frame that has them already is
        returned as it is)."""
        derived = {}
        for name, spec in self.dates.items():
            if name not in frame.columns and spec["column"] in frame.columns:
                dates = parse_dates(frame[spec["column"]], spec["format"], spec["column"])
                derived[name] = days_before(dates, pd.Timestamp(spec["as_of"]))
        if derived:
            frame = frame.assign(**derived)
        if self.na_values:
            frame = _mask_na_values(frame, [n for n in self.names if n in frame.columns and n not in self.dates],
                                    self.na_values)
        return frame

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the float32 feature matrix of ``frame`` (missing columns are an error)."""
        missing = [s for n, s in zip(self.names, self.source_columns, strict=True)
                   if n not in frame.columns and s not in frame.columns]
        if missing:
            raise UpliftInputError(
                f"feature column(s) {', '.join(map(repr, missing))} missing from the data to score; "
                f"the model was trained on: {', '.join(self.source_columns)}"
            )
        frame = self.prepare(frame)
        if not self.categories and all(frame[name].dtype == np.float32 for name in self.names):
            return _float32_matrix(frame, list(self.names))
        columns = {name: frame[name] if name in self.categories else _to_float(frame[name], name, frame)
                   for name in self.names}
        return self.encode_columns(columns, len(frame))

    def encode_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The float32 feature matrix of ``n`` customers given column by column, already typed and checked: each
        numeric feature finite numbers or NaN (missing) that fit in float32, each categorical one an object array
        of text or None, or a Series (its values compared with the training levels as text). :meth:`encode`
        checks and types a frame, then calls this; the scoring service's requests
        arrive typed and call it directly (no DataFrame per request).

        A category never seen in training, like a missing one, becomes NaN (LightGBM's missing value).

        Examples
        --------
        >>> s = FeatureSchema(("age", "channel"), {"channel": ("app", "web")})
        >>> s.encode_columns({"age": np.array([30.0, np.nan]), "channel": np.array(["web", "fax"], dtype=object)},
        ...                  2).tolist()
        [[30.0, 1.0], [nan, nan]]
        """
        # Filled feature by feature into contiguous rows of the transpose, then copied row-major in one pass:
        # writing the columns of a row-major matrix strides through memory (500,000 x 12: 14 vs 7 ms).
        by_feature = np.empty((len(self.names), n), dtype=np.float32)
        codes = self._level_codes
        for j, name in enumerate(self.names):
            if name in codes:
                by_feature[j] = _category_codes(columns[name], codes[name])
            else:
                by_feature[j] = columns[name]
        return np.ascontiguousarray(by_feature.T)

    @cached_property
    def _level_codes(self) -> dict[str, dict[str, float]]:
        """Each categorical feature's training levels and their codes (built once per schema)."""
        return {name: {level: float(i) for i, level in enumerate(levels)} for name, levels in self.categories.items()}

    def decode_column(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Map a column of codes back to level labels (numeric features are returned unchanged)."""
        if name not in self.categories:
            return codes
        levels = np.asarray(self.categories[name] + ("(missing)",), dtype=object)
        idx = np.where(np.isnan(codes), len(levels) - 1, codes).astype(int)
        return levels[idx]

    def to_dict(self) -> dict:
        return {"names": list(self.names), "categories": {k: list(v) for k, v in self.categories.items()},
                "dates": {k: dict(v) for k, v in self.dates.items()}, "na_values": list(self.na_values)}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSchema:
        # "dates" and "na_values" are absent from schemas saved before they existed: none, then.
        return cls(tuple(d["names"]), {k: tuple(v) for k, v in d["categories"].items()},
                   {k: dict(v) for k, v in d.get("dates", {}).items()}, tuple(d.get("na_values", ())))


#: Up to this many values, categorical codes are one dict lookup per value; above it, per distinct value.
_LOOKUP_ROWS = 1024


def _category_codes(values: np.ndarray | pd.Series, codes: dict[str, float]) -> np.ndarray:
    """The training code of each categorical value (as text), NaN for a missing or unseen one.

    A few values (a scoring service's request) are one dict lookup each, in numpy's loop: pandas costs ~100 us
    a call even for one customer (measured). Many (a batch of a file) are factorized first, so only the
    distinct values are turned into text and looked up: a 500,000-row batch of a two-level column took 87 ms
    to turn into text and 21 ms to look up, and takes 3 ms.

    Examples
    --------
    >>> _category_codes(pd.Series(["web", None, "fax", "web"] * 300), {"app": 0.0, "web": 1.0})[:4].tolist()
    [1.0, nan, nan, 1.0]
    """
    if isinstance(values, np.ndarray) and len(values) <= _LOOKUP_ROWS:
        return np.frompyfunc(codes.get, 2, 1)(values, np.nan)
    index, text = factorized_text(values)
    lookup = np.array([codes.get(v, np.nan) for v in text] + [np.nan], np.float32)
    return lookup[index]


def factorized_text(values: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each value's index among the distinct values (-1: missing), and those distinct values as text: a
    categorical column is compared with its levels as text, and only its distinct values are turned into text.

    Examples
    --------
    >>> index, text = factorized_text(pd.Series([2, None, 2, 7]))
    >>> index.tolist(), text.tolist()
    ([0, -1, 0, 1], ['2.0', '7.0'])
    """
    index, distinct = pd.factorize(values)
    text = pd.Series(distinct, dtype=None if len(distinct) else object).astype("string")
    return index, text.to_numpy(dtype=object, na_value=None)


def _mask_na_values(frame: pd.DataFrame, names: list[str], na_values) -> pd.DataFrame:
    """``frame`` with the cells of ``names`` that equal a missing-value code set to missing."""
    tokens = [str(v).strip() for v in na_values]
    numbers = pd.to_numeric(pd.Series(tokens, dtype=object), errors="coerce").dropna().tolist()
    masked = {}
    for name in names:
        col = frame[name]
        hit = col.isin(numbers) if _is_numeric(col) else col.astype("string").str.strip().isin(tokens)
        hit = hit.to_numpy(dtype=bool, na_value=False) if hasattr(hit, "to_numpy") else hit
        if hit.any():
            masked[name] = col.mask(hit)
    return frame.assign(**masked) if masked else frame


@dataclass
class CampaignData:
    """A validated campaign dataset: arrays plus the roles they came from.

    Build it with :func:`campaign_data`; do not construct it by hand.
    """

    frame: pd.DataFrame
    X: np.ndarray
    schema: FeatureSchema
    treatment: np.ndarray
    arms: tuple[str, ...]
    outcomes: dict[str, np.ndarray]
    outcome_kinds: dict[str, str]
    design: Design
    ids: np.ndarray | None = None
    propensity: np.ndarray | None = None
    roles: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.treatment)

    @property
    def control(self) -> str:
        return self.arms[0]

    @property
    def treated_arms(self) -> tuple[str, ...]:
        return self.arms[1:]

    @property
    def outcome(self) -> str:
        """The primary outcome (the first declared)."""
        return next(iter(self.outcomes))

    def arm_counts(self) -> dict[str, int]:
        counts = np.bincount(self.treatment, minlength=len(self.arms))
        return {a: int(c) for a, c in zip(self.arms, counts, strict=True)}


def _show(value: object) -> str:
    """A value as the user wrote it (no numpy type names in messages)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def _to_float(col: pd.Series, name: str, frame: pd.DataFrame | None = None) -> np.ndarray:
    where = (lambda row: locate(frame, row)) if frame is not None else (lambda row: f"row {row}")
    if not _is_numeric(col):
        converted = pd.to_numeric(col, errors="coerce")
        bad = converted.isna() & col.notna()
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            raise UpliftInputError(
                f"feature {name!r} was numeric in training but {where(rows[0])} holds {_show(col.iloc[rows[0]])} "
                f"({len(rows):,} value(s) are not numbers); fix them, or pass na_values=[...] (CLI --na-values) "
                "if they mean missing"
            )
        col = converted
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise UpliftInputError(f"feature {name!r} has an infinite value ({where(row)}); replace it with a number "
                               "or blank")
    big = np.abs(values) > np.finfo(np.float32).max
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise UpliftInputError(f"feature {name!r} value {_show(values[row])} at {where(row)} is too large for "
                               "float32")
    return values.astype(np.float32)


def _float32_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The float32 columns ``names`` as one matrix, without a copy when pandas holds them in one block.

    A Parquet file of float32 features (read with pyarrow) arrives as one float32 block, so the feature matrix
    is a read-only, column-major view of the frame's own memory: the features are stored once, not twice.
    """
    X = frame[names].to_numpy(dtype=np.float32, copy=False)
    for j, name in enumerate(names):
        bad = np.isinf(X[:, j])
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UpliftInputError(f"feature {name!r} has an infinite value (row {row}); "
                                   "replace it with a number or blank")
    return X


def _is_constant(col: pd.Series) -> bool:
    """One value in every row (missing counts as a value). Numeric columns are checked without hashing."""
    if _is_numeric(col) and not pd.api.types.is_bool_dtype(col):
        return bool(col.min() == col.max() and not col.isna().any())
    return col.nunique(dropna=False) <= 1


def _require_columns(frame: pd.DataFrame, cols: list[str], role: str) -> None:
    for c in cols:
        if c not in frame.columns:
            close = difflib.get_close_matches(str(c), [str(x) for x in frame.columns], n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise UpliftInputError(
                f"{role} column {c!r} not found in the data{hint} (columns: {', '.join(map(str, frame.columns[:20]))})"
            )


def _edit_distance(a: str, b: str) -> int:
    """Levenshtein distance of two (short) labels."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _squash(label: str) -> str:
    return "".join(ch for ch in label.lower() if not ch.isspace() and ch not in "_-")


def similar_arm(labels: list[str], counts: list[int]) -> tuple[str, str] | None:
    """A pair ``(label, meant)`` where ``label`` looks like a mistyped ``meant``: the two differ only by case or
    spaces, or ``label`` has under 1% of the rows and is within two edits of a larger arm's label.

    Examples
    --------
    >>> similar_arm(["control", "free_shipping", "free_shiping"], [5000, 4000, 30])
    ('free_shiping', 'free_shipping')
    >>> similar_arm(["control", "Free Shipping", "free_shipping"], [5000, 2000, 2000])
    ('Free Shipping', 'free_shipping')
    >>> similar_arm(["control", "10%", "20%"], [5000, 40, 4000]) is None
    True
    """
    total = sum(counts)
    order = sorted(range(len(labels)), key=lambda i: counts[i])  # the smaller arm is the suspect
    for i in order:
        for j in order[::-1]:
            if i == j or counts[j] < counts[i]:
                continue
            a, b = labels[i], labels[j]
            if _squash(a) == _squash(b):
                return a, b
            short = min(len(a), len(b))
            if counts[i] < TYPO_ARM_SHARE * total and short >= 4 and not _numbered(a, b) and _edit_distance(
                    a.lower(), b.lower()) <= (1 if short < 8 else 2):
                return a, b
    return None


def _numbered(a: str, b: str) -> bool:
    """Two labels of one numbered family (``10%``/``20%``, ``wave_1``/``wave_2``): only their numbers differ."""
    def split(label: str) -> tuple[str, str]:
        return "".join(c for c in label if c.isdigit()), "".join(c for c in label.lower() if not c.isdigit())
    (da, ta), (db, tb) = split(a), split(b)
    return bool(da) and bool(db) and da != db and ta == tb


def _arm_labels(col: pd.Series, values: np.ndarray) -> list[str]:
    if pd.api.types.is_bool_dtype(col):
        return ["1" if v else "0" for v in values]
    if pd.api.types.is_float_dtype(col) and np.all(np.mod(values.astype(np.float64), 1) == 0):
        return [str(int(v)) for v in values]
    labels = [str(v).strip() if isinstance(v, str) else str(v) for v in values]
    # A 0/1 arm column exported through a float ("1.0") reads as text "1.0": the same arms as 0 and 1.
    return [lab.split(".")[0] if lab.replace(".", "", 1).isdigit() and set(lab.partition(".")[2]) <= {"0"}
            and lab.partition(".")[1] else lab for lab in labels]


def _arm_codes(col: pd.Series, name: str, control: str | None, frame: pd.DataFrame,
               allow_similar_arms: bool = False) -> tuple[np.ndarray, tuple[str, ...]]:
    blank = col.isna().to_numpy()
    if not _is_numeric(col):
        blank = blank | (col.astype("string").str.strip() == "").to_numpy(dtype=bool, na_value=False)
    if blank.any():
        rows = np.flatnonzero(blank)
        raise UpliftInputError(
            f"treatment column {name!r} has {len(rows)} missing value(s) (first at {locate(frame, rows[0])}); "
            "every row must say which arm it was in"
        )
    # Labels are made per distinct value, not per row: 14M per-row strings would cost ~1 GB of Python objects.
    values = pd.unique(col)
    value_labels = _arm_labels(col, values)
    levels = sorted(set(value_labels))
    if len(levels) < 2:
        raise UpliftInputError(
            f"treatment column {name!r} has only one arm ({_show(levels[0])}); an uplift study needs a control and at "
            "least one treated arm"
        )
    value_index = pd.Index(values).get_indexer(col.to_numpy())
    if not allow_similar_arms:
        label_codes = pd.Index(levels).get_indexer(value_labels)[value_index]
        counts = np.bincount(label_codes, minlength=len(levels)).tolist()
        pair = similar_arm(levels, counts)
        if pair is not None:
            typo, meant = pair
            first = int(np.flatnonzero(label_codes == levels.index(typo))[0])
            raise UpliftInputError(
                f"treatment column {name!r}: arm {typo!r} ({counts[levels.index(typo)]:,} rows, first at "
                f"{locate(frame, first)}) looks like a typo of {meant!r} ({counts[levels.index(meant)]:,} rows): did "
                f"you mean {meant!r}? Fix the labels, or pass allow_similar_arms=True (CLI --allow-similar-arms) if "
                "they really are different arms")
    if control is not None:
        control = str(control)
        if control not in levels:
            raise UpliftInputError(
                f"control label {control!r} not found in treatment column {name!r} (labels: {', '.join(levels)})"
            )
    elif set(levels) == {"0", "1"}:
        control = "0"
    else:
        matches = [lv for lv in levels if lv.strip().lower() in CONTROL_WORDS]
        if len(matches) != 1:
            raise UpliftInputError(
                f"treatment column {name!r} has labels {', '.join(map(repr, levels))}: name the control arm "
                "with control=... (CLI: --control LABEL)"
            )
        control = matches[0]
    arms = (control, *[lv for lv in levels if lv != control])
    arm_of_value = pd.Index(arms).get_indexer(value_labels).astype(np.int8)
    codes = arm_of_value[value_index]
    return codes, arms


def _outcome_array(col: pd.Series, name: str, frame: pd.DataFrame) -> tuple[np.ndarray, str]:
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(np.int8)
    if not pd.api.types.is_numeric_dtype(col):
        sample = col.dropna().astype(str).unique()[:3]
        raise UpliftInputError(
            f"outcome column {name!r} is not numeric (values like {', '.join(map(_show, sample))}); "
            "encode conversion as 0/1 or revenue as a number"
        )
    y = col.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(y)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise UpliftInputError(
            f"outcome column {name!r} has {len(rows)} missing or infinite value(s) (first at "
            f"{locate(frame, rows[0])}); "
            "drop those rows or fill them (e.g. 0 for no conversion)"
        )
    if np.all(y == y[0]):
        raise UpliftInputError(f"outcome column {name!r} is constant ({y[0]:g} in every row): "
                               "there is nothing to model")
    big = np.abs(y) > MAX_OUTCOME
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise UpliftInputError(
            f"outcome column {name!r} holds {y[row]:g} at {locate(frame, row)}, beyond {MAX_OUTCOME:g}: no campaign "
            "outcome is "
            "that large; check the units or the export")
    kind = "binary" if np.isin(y, (0.0, 1.0)).all() else "continuous"
    # 0/1 is exact in float32, and at 14M rows each float64 outcome would cost 112 MB; money stays float64.
    return (y.astype(np.float32) if kind == "binary" else y), kind


def _stray_error(frame: pd.DataFrame, name: str, count: int, rows: np.ndarray) -> UpliftInputError:
    col = frame[name]
    shown = ", ".join(f"{_show(col.iloc[r])} at {locate(frame, r).split(' of ')[0]}" for r in rows[:3])
    tokens = list(dict.fromkeys(str(col.iloc[r]).strip() for r in rows))[:4]
    opts = " ".join(f"--na-values {t!r}" for t in tokens)
    source = frame.attrs.get("uplift_source")
    return UpliftInputError(
        f"feature {name!r}{f' in {Path(source).name}' if source else ''} is numeric but {count:,} of "
        f"{int(col.notna().sum()):,} values are not numbers ({shown}); if they mean missing pass "
        f"na_values={tokens!r} (CLI {opts}), otherwise fix them in the file (e.g. '1,234' written as 1234)")


def high_cardinality_reason(col: pd.Series) -> str | None:
    """Why a text column is not modelled as a category by default (``None``: it is a fine category)."""
    present = int(col.notna().sum())
    levels = col.nunique(dropna=True)
    if present >= 50 and levels >= UNIQUE_SHARE * present:
        return f"{levels:,} distinct text values in {present:,} rows (nearly one per row, like an identifier)"
    if levels > MAX_CATEGORY_LEVELS:
        return f"{levels:,} distinct text values (more than {MAX_CATEGORY_LEVELS})"
    return None


def _as_of(as_of, specs: dict[str, tuple[str, pd.Series]]) -> tuple[pd.Timestamp, str]:
    if as_of is not None:
        try:
            return pd.Timestamp(as_of).tz_localize(None), "as_of"
        except (ValueError, TypeError):
            raise UpliftInputError(f"as_of {as_of!r} is not a date; give it as YYYY-MM-DD") from None
    latest = max(dates.max() for _, dates in specs.values())
    return pd.Timestamp(latest).normalize(), "the latest date in the data"


def _select_features(frame: pd.DataFrame, features: list[str] | None, reserved: set[str],
                     exclude: list[str], notes: list[str], *, na_values: tuple[str, ...] = (),
                     date_format: str | None = None, as_of=None, high_cardinality=()) -> tuple[pd.DataFrame, dict]:
    """The model's feature columns (a date as its numeric ``days_since_<column>``) and the date specs."""
    if features is None:
        cols = [c for c in frame.columns if c not in reserved and c not in set(exclude)]
        explicit = False
    else:
        _require_columns(frame, list(features), "feature")
        clash = [f for f in features if f in reserved]
        if clash:
            raise UpliftInputError(f"column {clash[0]!r} cannot be both a feature and the treatment/outcome/id")
        cols, explicit = list(features), True
    if exclude:
        _require_columns(frame, list(exclude), "excluded")
    keep_text = set(cols) if high_cardinality is True else set(high_cardinality or ())
    source = frame
    if na_values:
        frame = _mask_na_values(frame, cols, na_values)
    keep: list[str] = []
    found_dates: dict[str, tuple[str, pd.Series]] = {}
    for c in cols:
        col = frame[c]
        if col.isna().all():
            if explicit:
                raise UpliftInputError(f"feature {c!r} is empty (every value is missing); drop it")
            notes.append(f"feature {c!r} dropped: every value is missing")
            continue
        if not _is_numeric(col):
            fmt = date_format_of(col, c, date_format)
            if fmt is not None:
                found_dates[c] = (fmt, parse_dates(col, fmt, c))
                keep.append(c)
                continue
            stray = stray_text(col)
            if stray is not None:
                raise _stray_error(source if not na_values else frame, c, *stray)
            why = high_cardinality_reason(col) if c not in keep_text else None
            if why is not None:
                if explicit:
                    raise UpliftInputError(
                        f"feature {c!r} has {why}: not modelled as a category by default; declare it as the id, "
                        f"leave it out, or opt in with high_cardinality=[{c!r}] (CLI --high-cardinality {c})")
                notes.append(f"feature {c!r} not modelled: {why}; opt in with high_cardinality=[{c!r}] "
                             f"(CLI --high-cardinality {c})")
                continue
        elif not pd.api.types.is_bool_dtype(col):
            for code, count in sentinels(col.to_numpy(dtype=np.float64, na_value=np.nan)):
                notes.append(f"column {c!r}: {count:,} rows equal {code:g}, probably a missing-value code; pass "
                             f"na_values=['{code:g}'] (CLI --na-values {code:g}) to read it as missing")
        if _is_constant(col):
            notes.append(f"feature {c!r} dropped: it is constant")
            continue
        keep.append(c)
    if not keep:
        raise UpliftInputError("no usable feature columns: uplift needs at least one customer attribute")
    specs: dict[str, dict] = {}
    derived: dict[str, np.ndarray] = {}
    if found_dates:
        ref, why = _as_of(as_of, found_dates)
        for c, (fmt, dates) in found_dates.items():
            name = f"days_since_{c}"
            if name in frame.columns:
                raise UpliftInputError(f"date column {c!r} would become feature {name!r}, but the data already has a "
                                       f"column of that name; rename one of them")
            derived[name] = days_before(dates, ref)
            specs[name] = {"column": str(c), "format": fmt, "as_of": ref.date().isoformat()}
        pairs = ", ".join(f"{spec['column']!r} -> {n}" for n, spec in specs.items())
        notes.append(f"dates: {pairs} (days before "
                     f"{ref.date().isoformat()}, {why}; set as_of=... / CLI --as-of for the campaign start)")
    names = [f"days_since_{c}" if c in found_dates else c for c in keep]
    feats = frame.assign(**derived)[names] if derived else frame[names]
    return feats, specs


def blank_ids(col: pd.Series) -> np.ndarray:
    """Which ids are blank: missing, or text that is empty after stripping spaces.

    Examples
    --------
    >>> blank_ids(pd.Series(["007", " ", None, "9"])).tolist()
    [False, True, True, False]
    """
    blank = col.isna().to_numpy()
    if not _is_numeric(col):
        blank = blank | (col.astype("string").str.strip() == "").to_numpy(dtype=bool, na_value=False)
    return blank


def check_ids(col: pd.Series, name: str, frame: pd.DataFrame, what: str = "") -> None:
    """Refuse a blank or duplicated customer id, naming the first line (or row) it is on.

    Examples
    --------
    >>> check_ids(pd.Series(["007", "", "9"]), "customer_id", pd.DataFrame(index=range(3)))
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: id column 'customer_id' has 1 blank value(s) (first at row 1); every ...
    """
    blank = blank_ids(col)
    where = f" of {what}" if what else ""
    if blank.any():
        raise UpliftInputError(f"id column {name!r}{where} has {int(blank.sum())} blank value(s) (first at "
                               f"{locate(frame, int(np.flatnonzero(blank)[0]))}); every customer needs an id")
    dup = col.duplicated(keep=False).to_numpy()
    if dup.any():
        rows = np.flatnonzero(dup)
        first = col.iloc[rows[0]]
        again = rows[1:][(col.iloc[rows[1:]] == first).to_numpy()][0]
        raise UpliftInputError(
            f"id column {name!r}{where} has {int(col.duplicated().sum())} duplicated value(s): duplicate customer "
            f"{_show(first)} at {locate(frame, int(rows[0]))} and {locate(frame, int(again)).split(' of ')[0]}; "
            "ids must be unique")


def feature_frame(X) -> pd.DataFrame:
    """Features of an array-level check or model as a DataFrame (an array's columns are named ``x0``, ``x1``...).

    Examples
    --------
    >>> list(feature_frame(np.zeros((2, 3))).columns)
    ['x0', 'x1', 'x2']
    """
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise UpliftInputError(f"features must be a DataFrame or a 2-D array, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[f"x{j}" for j in range(arr.shape[1])])


def campaign_data(
    frame: pd.DataFrame,
    treatment: str,
    outcome: str | list[str],
    *,
    control: str | None = None,
    features: list[str] | None = None,
    exclude: list[str] | None = None,
    id: str | None = None,  # shadows the builtin: `id` is the analyst's word for it
    propensity: str | None = None,
    design: Literal["rct", "observational", "auto"] = "auto",
    min_rows_per_arm: int = MIN_ROWS_PER_ARM,
    na_values: list[str] | tuple[str, ...] = (),
    date_format: str | None = None,
    as_of: str | pd.Timestamp | None = None,
    high_cardinality: list[str] | bool = (),
    allow_similar_arms: bool = False,
    schema: FeatureSchema | None = None,
) -> CampaignData:
    """Validate a campaign table and return its arrays.

    Parameters
    ----------
    frame : DataFrame
        One row per customer.
    treatment : str
        Column with the arm each customer was in (0/1, booleans, or labels such as coupon names).
    outcome : str or list of str
        Outcome column(s): binary conversion (0/1) or continuous revenue. The first is the primary outcome.
    control : str, optional
        Label of the control arm. Needed when the labels are not 0/1 and none reads as a control word.
    features : list of str, optional
        Feature columns. Default: every column except the treatment, outcomes, id, propensity and ``exclude``.
    exclude : list of str, optional
        Columns never to use as features (e.g. post-treatment measurements or known truth).
    id : str, optional
        Customer id column (must be unique).
    propensity : str, optional
        Known probability of treatment per row (e.g. from the experiment's design).
    design : {"rct", "observational", "auto"}
        ``"auto"`` means rct when a declared propensity is constant; without a declared propensity the study
        decides from the data (see :class:`uplift.Study`). ``CampaignData.design`` then holds the provisional
        value ``"rct"`` and ``roles["design_declared"]`` says ``"auto"``.
    min_rows_per_arm : int
        Fewest rows allowed in any arm.
    na_values : list of str, optional
        Values meaning "missing" in the feature columns, e.g. ``["-999"]`` (a sentinel column is reported in
        ``notes`` with this advice). Saved in the schema and applied at scoring too.
    date_format : str, optional
        ``strftime`` format of the date columns when they are ambiguous (``"%d/%m/%Y"``). ISO dates and the
        unambiguous day-first / month-first forms are recognised without it.
    as_of : str or Timestamp, optional
        Reference date (e.g. the campaign start) of the date features: a date column ``signup`` becomes the
        feature ``days_since_signup``, days before ``as_of``. Default: the latest date in the data.
    high_cardinality : list of str or True, optional
        Text columns to model as categories although they have more than ``MAX_CATEGORY_LEVELS`` levels or
        nearly one per row (by default they are left out, with a note naming them).
    allow_similar_arms : bool
        Accept a small arm whose label is within a typo of another arm's (by default an error asks "did you
        mean ...?").
    schema : FeatureSchema, optional
        A fitted model's schema: the features are taken exactly as it defines them (used to re-attach training
        data to a saved model).

    Returns
    -------
    CampaignData

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"coupon": [0, 1] * 40, "buy": [0, 1, 1, 0] * 20, "age": range(80)})
    >>> d = campaign_data(df, "coupon", "buy", design="rct")
    >>> d.arms, d.outcome_kinds, d.X.shape
    (('0', '1'), {'buy': 'binary'}, (80, 1))
    """
    if not isinstance(frame, pd.DataFrame):
        raise UpliftInputError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if frame.columns.duplicated().any():
        dup = frame.columns[frame.columns.duplicated()][0]
        raise UpliftInputError(f"column name {dup!r} appears more than once; rename one of them")
    if len(frame) == 0:
        raise UpliftInputError("the data has no rows")
    if design not in ("rct", "observational", "auto"):
        raise UpliftInputError(f"design must be 'rct', 'observational' or 'auto', got {design!r}")
    outcomes = [outcome] if isinstance(outcome, str) else list(outcome)
    if not outcomes:
        raise UpliftInputError("declare at least one outcome column")
    exclude = list(exclude or [])
    _require_columns(frame, [treatment], "treatment")
    _require_columns(frame, outcomes, "outcome")
    if id is not None:
        _require_columns(frame, [id], "id")
    if propensity is not None:
        _require_columns(frame, [propensity], "propensity")
    if treatment in outcomes:
        raise UpliftInputError(f"column {treatment!r} cannot be both the treatment and an outcome")
    frame = frame.reset_index(drop=True)
    notes: list[str] = []

    codes, arms = _arm_codes(frame[treatment], treatment, control, frame, allow_similar_arms)
    counts = np.bincount(codes, minlength=len(arms))
    for arm, c in zip(arms, counts, strict=True):
        if c < min_rows_per_arm:
            raise UpliftInputError(
                f"arm {arm!r} of treatment column {treatment!r} has {c} rows; at least {min_rows_per_arm} are needed "
                "per arm to estimate anything"
            )

    ys, kinds = {}, {}
    for name in outcomes:
        ys[name], kinds[name] = _outcome_array(frame[name], name, frame)

    ids = None
    if id is not None:
        check_ids(frame[id], id, frame)
        ids = frame[id].to_numpy()

    e = None
    if propensity is not None:
        e = pd.to_numeric(frame[propensity], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~((e > 0) & (e < 1))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise UpliftInputError(
                f"propensity column {propensity!r} must lie strictly between 0 and 1; row {row} has "
                f"{_show(frame[propensity].iloc[row])} "
                "(a customer who could never, or always, be treated tells us nothing)"
            )
        if len(arms) > 2:
            raise UpliftInputError("a single propensity column is only supported for one treated arm")
        e = e.astype(np.float32)  # the out-of-fold propensities are float32 too

    reserved = {treatment, *outcomes} | ({id} if id else set()) | ({propensity} if propensity else set())
    if schema is None:
        feats, dates = _select_features(frame, features, reserved, exclude, notes, na_values=tuple(na_values),
                                        date_format=date_format, as_of=as_of, high_cardinality=high_cardinality)
        schema = FeatureSchema.infer(feats, dates=dates, na_values=tuple(map(str, na_values)))
    else:
        _require_columns(frame, schema.source_columns, "feature")
        feats = schema.prepare(frame)[list(schema.names)]
    X = schema.encode(feats)
    # The features as the model sees them (dates as days_since_<column>, missing-value codes missing) are columns
    # of the study's frame too: segments, the drift profile and the report read them there.
    shown = [n for n in schema.names if n in schema.dates or (schema.na_values and n in frame.columns)]
    frame = frame.assign(**{n: feats[n] for n in shown}) if shown else frame

    declared = design
    if design == "auto":
        design = "rct" if (e is None or np.ptp(e) < 1e-9) else "observational"
    for note in notes:
        warnings.warn(note, stacklevel=2)
    roles = {
        "treatment": treatment, "outcomes": outcomes, "control": arms[0], "id": id,
        "propensity": propensity, "features": list(schema.names), "exclude": exclude,
        "design_declared": declared,
    }
    return CampaignData(frame=frame, X=X, schema=schema, treatment=codes, arms=arms, outcomes=ys,
                        outcome_kinds=kinds, design=design, ids=ids, propensity=e, roles=roles, notes=notes)

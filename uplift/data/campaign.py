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
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from uplift.errors import UpliftInputError

Design = Literal["rct", "observational"]

#: Labels taken to mean "no campaign" when the user does not name the control arm.
CONTROL_WORDS = ("control", "ctrl", "no", "none", "false", "0", "holdout", "untreated", "no e-mail", "no email")
#: Outcomes beyond this magnitude are export errors (and would overflow variance estimates).
MAX_OUTCOME = 1e12
#: Fewest rows an arm may have before fitting is refused.
MIN_ROWS_PER_ARM = 30
#: A string feature with more levels than this (and mostly unique values) is treated as an identifier.
MAX_CATEGORY_LEVELS = 1000


@dataclass(frozen=True)
class FeatureSchema:
    """Names, order and category levels of the model features.

    Parameters
    ----------
    names : tuple of str
        Feature columns in model order.
    categories : dict
        For each categorical feature, its training levels (as strings) in code order.

    Examples
    --------
    >>> import pandas as pd
    >>> s = FeatureSchema.infer(pd.DataFrame({"age": [30, 40], "channel": ["web", "app"]}))
    >>> s.encode(pd.DataFrame({"age": [50], "channel": ["store"]})).tolist()  # unseen level -> NaN
    [[50.0, nan]]
    """

    names: tuple[str, ...]
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def infer(cls, frame: pd.DataFrame) -> FeatureSchema:
        cats = {}
        for name in frame.columns:
            col = frame[name]
            if not _is_numeric(col):
                levels = pd.unique(col.dropna().astype(str))
                cats[str(name)] = tuple(sorted(levels))
        return cls(tuple(str(c) for c in frame.columns), cats)

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.names) if n in self.categories]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Return the float32 feature matrix of ``frame`` (missing columns are an error)."""
        missing = [n for n in self.names if n not in frame.columns]
        if missing:
            raise UpliftInputError(
                f"feature column(s) {', '.join(map(repr, missing))} missing from the data to score; "
                f"the model was trained on: {', '.join(self.names)}"
            )
        if not self.categories and all(frame[name].dtype == np.float32 for name in self.names):
            return _float32_matrix(frame, list(self.names))
        out = np.empty((len(frame), len(self.names)), dtype=np.float32)
        for j, name in enumerate(self.names):
            col = frame[name]
            if name in self.categories:
                levels = pd.Index(self.categories[name])
                values = col.astype("string").to_numpy(dtype=object, na_value=None)
                codes = levels.get_indexer(values).astype(np.float32)
                codes[codes < 0] = np.nan  # unseen or missing level
                out[:, j] = codes
            else:
                out[:, j] = _to_float(col, name)
        return out

    def decode_column(self, name: str, codes: np.ndarray) -> np.ndarray:
        """Map a column of codes back to level labels (numeric features are returned unchanged)."""
        if name not in self.categories:
            return codes
        levels = np.asarray(self.categories[name] + ("(missing)",), dtype=object)
        idx = np.where(np.isnan(codes), len(levels) - 1, codes).astype(int)
        return levels[idx]

    def to_dict(self) -> dict:
        return {"names": list(self.names), "categories": {k: list(v) for k, v in self.categories.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSchema:
        return cls(tuple(d["names"]), {k: tuple(v) for k, v in d["categories"].items()})


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


def _to_float(col: pd.Series, name: str) -> np.ndarray:
    if not _is_numeric(col):
        converted = pd.to_numeric(col, errors="coerce")
        bad = converted.isna() & col.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UpliftInputError(
                f"feature {name!r} was numeric in training but row {row} holds {_show(col.iloc[row])}; "
                "fix the value or re-fit with the column as a category"
            )
        col = converted
    values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isinf(values).any():
        row = int(np.flatnonzero(np.isinf(values))[0])
        raise UpliftInputError(f"feature {name!r} has an infinite value (row {row}); replace it with a number or blank")
    big = np.abs(values) > np.finfo(np.float32).max
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise UpliftInputError(f"feature {name!r} value {_show(values[row])} at row {row} is too large for float32")
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


def _arm_codes(col: pd.Series, name: str, control: str | None) -> tuple[np.ndarray, tuple[str, ...]]:
    if col.isna().any():
        rows = np.flatnonzero(col.isna().to_numpy())
        raise UpliftInputError(
            f"treatment column {name!r} has {len(rows)} missing value(s) (first at row {rows[0]}); "
            "every row must say which arm it was in"
        )
    # Labels are made per distinct value, not per row: 14M per-row strings would cost ~1 GB of Python objects.
    values = pd.unique(col)
    if pd.api.types.is_bool_dtype(col):
        value_labels = ["1" if v else "0" for v in values]
    elif pd.api.types.is_float_dtype(col) and np.all(np.mod(values.astype(np.float64), 1) == 0):
        value_labels = [str(int(v)) for v in values]
    else:
        value_labels = [str(v) for v in values]
    levels = sorted(set(value_labels))
    if len(levels) < 2:
        raise UpliftInputError(
            f"treatment column {name!r} has only one arm ({_show(levels[0])}); an uplift study needs a control and at "
            "least one treated arm"
        )
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
    codes = arm_of_value[pd.Index(values).get_indexer(col.to_numpy())]
    return codes, arms


def _outcome_array(col: pd.Series, name: str) -> tuple[np.ndarray, str]:
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
            f"outcome column {name!r} has {len(rows)} missing or infinite value(s) (first at row {rows[0]}); "
            "drop those rows or fill them (e.g. 0 for no conversion)"
        )
    if np.all(y == y[0]):
        raise UpliftInputError(f"outcome column {name!r} is constant ({y[0]:g} in every row): "
                               "there is nothing to model")
    big = np.abs(y) > MAX_OUTCOME
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise UpliftInputError(
            f"outcome column {name!r} holds {y[row]:g} at row {row}, beyond {MAX_OUTCOME:g}: no campaign outcome is "
            "that large; check the units or the export")
    kind = "binary" if np.isin(y, (0.0, 1.0)).all() else "continuous"
    # 0/1 is exact in float32, and at 14M rows each float64 outcome would cost 112 MB; money stays float64.
    return (y.astype(np.float32) if kind == "binary" else y), kind


def _select_features(frame: pd.DataFrame, features: list[str] | None, reserved: set[str],
                     exclude: list[str], notes: list[str]) -> pd.DataFrame:
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
    keep = []
    for c in cols:
        col = frame[c]
        if col.isna().all():
            if explicit:
                raise UpliftInputError(f"feature {c!r} is empty (every value is missing); drop it")
            notes.append(f"feature {c!r} dropped: every value is missing")
            continue
        if not _is_numeric(col):
            nunique = col.nunique(dropna=True)
            if nunique > MAX_CATEGORY_LEVELS and nunique > 0.5 * col.notna().sum():
                if explicit:
                    raise UpliftInputError(
                        f"feature {c!r} looks like an identifier ({nunique} distinct text values); "
                        "declare it with id=... or leave it out of the features"
                    )
                notes.append(f"feature {c!r} dropped: {nunique} distinct text values look like an identifier")
                continue
        if _is_constant(col):
            notes.append(f"feature {c!r} dropped: it is constant")
            continue
        keep.append(c)
    if not keep:
        raise UpliftInputError("no usable feature columns: uplift needs at least one customer attribute")
    return frame[keep]


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

    codes, arms = _arm_codes(frame[treatment], treatment, control)
    counts = np.bincount(codes, minlength=len(arms))
    for arm, c in zip(arms, counts, strict=True):
        if c < min_rows_per_arm:
            raise UpliftInputError(
                f"arm {arm!r} of treatment column {treatment!r} has {c} rows; at least {min_rows_per_arm} are needed "
                "per arm to estimate anything"
            )

    ys, kinds = {}, {}
    for name in outcomes:
        ys[name], kinds[name] = _outcome_array(frame[name], name)

    ids = None
    if id is not None:
        col = frame[id]
        if col.isna().any():
            raise UpliftInputError(f"id column {id!r} has missing values (first at row {int(col.isna().argmax())})")
        dup = col.duplicated()
        if dup.any():
            row = int(dup.to_numpy().argmax())
            raise UpliftInputError(
                f"id column {id!r} has {int(dup.sum())} duplicated value(s) "
                f"(e.g. {_show(col.iloc[row])} at row {row}); "
                "ids must be unique"
            )
        ids = col.to_numpy()

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
    feats = _select_features(frame, features, reserved, exclude, notes)
    schema = FeatureSchema.infer(feats)
    X = schema.encode(feats)

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

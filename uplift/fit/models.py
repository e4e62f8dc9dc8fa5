"""Base models: the regressors and classifiers every learner is built from.

The default is LightGBM trained through its native API (early stopping on an inner validation split,
categorical features split natively, deterministic with a seed) and saved in LightGBM's own text format,
so a saved study never needs pickle for its default models. Any scikit-learn regressor or classifier can
be passed instead; it is cloned per fit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from uplift.fit.sizing import sized_params
from uplift.fit.trees import CompiledTrees, Forest
from uplift.fit.workers import available_cpus, model_threads

if TYPE_CHECKING:  # imported where used: LightGBM and scikit-learn cost ~0.5 s that `uplift --help` need not pay
    import lightgbm as lgb

#: Defaults for outcome/propensity (nuisance) models.
NUISANCE_PARAMS = {
    "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50, "feature_fraction": 0.9,
    "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0, "max_bin": 255,
}
#: Defaults for final-stage effect models, which fit noisy pseudo-outcomes: smaller, more regularised trees.
EFFECT_PARAMS = {
    "learning_rate": 0.03, "num_leaves": 15, "min_data_in_leaf": 200, "feature_fraction": 0.9,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 10.0, "max_bin": 127,
}


#: Fits on fewer rows than this use one thread.
SMALL_FIT_ROWS = 20_000
#: Default cap on the rows one base model trains on: beyond it, each model trains on its own random sample of
#: this many of its training rows (every row still gets out-of-fold predictions and counts in evaluation).
#: A LightGBM fit holds ~65 bytes of training state per row, so at 14M rows an uncapped final stage alone
#: needs ~0.75 GB on top of the data; with the cap it needs ~0.26 GB, and the study stays under 4x the
#: float32 feature matrix (see docs/spark.md for what the cap costs in accuracy).
MAX_TRAIN_ROWS = 4_000_000
#: From this many rows a booster's raw score is summed by the compiled bit-vector forest
#: (:class:`uplift.fit.trees.Forest`) instead of LightGBM's ``Booster.predict``: the same numbers bit for bit
#: (``tests/fit/test_trees.py``) for about a quarter of the CPU (800,000 rows through a 150-tree, 31-leaf
#: outcome model: 1.2 s of CPU vs 4.4 s). Below it, building the forest (~50 ms) costs more than it saves.
COMPILED_PREDICT_ROWS = 20_000
#: A booster's forest is kept for its next prediction when its table takes at most this many bytes, else built
#: again per call. Kept, the 1M study's forests (~1.7 MB each, 150 trees) cost 67 MB of peak RSS; keeping the
#: 14M study's larger ones too (up to ~25 MB a table) measured ~70 MB more at the fit's peak (3,781 vs 3,708 MiB;
#: that run's 5.8x the float32 matrix had other causes, benchmarks/results/scale.md), while building one again
#: (~0.25 s for 600 trees) is small next to scoring the millions of rows such a model predicts.
CACHED_FOREST_BYTES = 2 * 2**20
#: Rounds without a gain on the inner validation split after which a booster stops (its trees after the best
#: round are dropped). The models stop early: at 1M rows a fold's models keep 64-170 trees and at 100k the final
#: stages 20-120, so every round of patience is a round grown to be thrown away. 40 -> 20 (at 100k: study wall
#: x0.68, held-out PEHE -0.00009 [-0.00010, -0.00009], ``speed_100k_es20.md``), then 20 -> 10, paired on the same
#: held-out rows (``speed_es10.md``): wall x0.92 / x0.85 and PEHE -0.00011 / -0.00003 on the randomised campaign
#: at 100k / 1M rows, x0.93 / x0.84 and -0.00011 / -0.00011 on the observational one; on the small-study
#: benchmarks (700-5,000 rows) identical or within noise. Stopping sooner costs nothing here because the noisy
#: pseudo-outcomes and rare conversions make the validation loss flat near its best: the extra rounds mostly fit
#: noise. (Fits on fewer than 1,000 rows do not stop early.)
EARLY_STOPPING_ROUNDS = 10
#: The S-learner's matrix (the features plus the treatment column) is binned from one float32 copy when that copy
#: takes at most this many bytes, else served to LightGBM in row batches (:class:`_WithExtra`), so a large study
#: never holds a second matrix. The batches cost time: LightGBM samples rows for the bin boundaries one Python
#: call at a time (1M rows, 13 columns: 2.38 s against 0.66 s from the copy, the same bins and trees).
WIDENED_COPY_BYTES = 128 << 20
#: LightGBM parameters that fix how a Dataset is binned (the rest only steer training).
_BINNING = ("max_bin",)


class BinnedMatrix:
    """A feature matrix binned once by LightGBM, from which every model on a subset of its rows trains.

    Binning is a large share of a LightGBM fit, and copying ``X[rows]`` for every model costs memory that grows
    with ``n``. Cross-fitting therefore bins all rows once per binning setting (``max_bin``) and hands each model
    a subset of the binned rows (``lightgbm.Dataset.subset``, one byte per cell instead of four per copy).

    Parameters
    ----------
    X : (n, p) float32 array
    categorical : list of int
        Categorical column indices of ``X``.
    extra : (n,) array, optional
        One more column appended to ``X`` (the S-learner's treatment indicator); it is binned in batches, so
        ``X`` is never copied whole.
    max_rows : int, optional
        The models' training-row cap (:data:`MAX_TRAIN_ROWS`). When ``X`` has more rows than that, most models
        train on a sample, so binning every row would cost memory (one byte per cell) for rows no model reads:
        the matrix is then not binned whole, and each model bins its own rows (:attr:`prebinned` is False).
    """

    def __init__(self, X: np.ndarray, categorical: list[int] | None = None, extra: np.ndarray | None = None,
                 treated: np.ndarray | None = None, max_rows: int | None = None) -> None:
        self.X, self.categorical, self.extra, self.treated = X, list(categorical or []), extra, treated
        self.max_rows = max_rows
        self.prebinned = max_rows is None or len(X) <= max_rows
        self._datasets: dict[tuple, lgb.Dataset] = {}
        self._with_treatment: BinnedMatrix | None = None
        # Folds fit side by side (uplift.fit.workers): the first to need a binned dataset builds it, the others wait.
        self._lock = threading.RLock()

    def for_arm(self, treated: np.ndarray) -> BinnedMatrix:
        """This matrix (sharing its binned datasets) knowing the 0/1 indicator of the arm being modelled."""
        other = BinnedMatrix(self.X, self.categorical, self.extra, treated, self.max_rows)
        other._datasets = self._datasets  # shared: releasing one releases both
        other._lock = self._lock
        return other

    def release(self) -> None:
        """Free the binned datasets built so far (they are rebuilt if used again), including the widened ones."""
        self._datasets.clear()
        self._with_treatment = None

    def with_treatment(self) -> BinnedMatrix:
        """The matrix with the arm indicator (see :meth:`for_arm`) as one more column, binned once."""
        if self.treated is None:
            raise ValueError("for_arm(treated) first: the matrix does not know the treatment column")
        with self._lock:
            if self._with_treatment is None:
                self._with_treatment = BinnedMatrix(self.X, self.categorical, self.treated, max_rows=self.max_rows)
            return self._with_treatment

    def __len__(self) -> int:
        return len(self.X)

    def rows(self, index: np.ndarray) -> Rows:
        """The rows ``index`` (sorted row numbers) of the matrix, not copied."""
        return Rows(self, np.asarray(index, dtype=_index_dtype(len(self.X))))

    def materialize(self, index: np.ndarray) -> np.ndarray:
        X = self.X[index]
        return X if self.extra is None else np.column_stack([X, self.extra[index].astype(np.float32)])

    def dataset(self, params: dict) -> lgb.Dataset:
        key = tuple(params.get(k) for k in _BINNING)
        with self._lock:
            if key not in self._datasets:
                self._datasets[key] = self._build(params)
            return self._datasets[key]

    def _build(self, params: dict) -> lgb.Dataset:
        import lightgbm as lgb
        ds_params = {**{k: params[k] for k in _BINNING if k in params}, "verbosity": -1,
                     "num_threads": model_threads(),  # the pool's count, as every LightGBM call in it (_threads)
                     # Training may lower min_data_in_leaf for small subsets: keep every feature binned.
                     "feature_pre_filter": False}
        if self.extra is None:
            data = self.X
        elif self.X.nbytes + 4 * len(self.X) <= WIDENED_COPY_BYTES:
            data = np.column_stack([self.X, np.asarray(self.extra, dtype=np.float32)])
        else:
            lgb.Sequence.register(_WithExtra)
            data = [_WithExtra(self.X, self.extra)]
        cat = self.categorical or "auto"
        ds = lgb.Dataset(data, label=np.zeros(len(self.X), np.float32), params=ds_params,
                         categorical_feature=cat, free_raw_data=True).construct()
        ds.label = None  # each subset gets its own label; the placeholder need not stay in Python
        return ds


def _threads(n_rows: int) -> int:
    """LightGBM ``num_threads`` for fitting or predicting ``n_rows`` rows.

    Inside a pool of fits side by side (:func:`~uplift.fit.workers.run_concurrently`) every LightGBM call takes
    the pool's share of the cores, whatever its size. LightGBM keeps its thread count in one process-wide
    variable, set by every call that is given ``num_threads``, and sizes per-thread buffers from it before a
    parallel loop that reads it again: two calls at once with different counts (a small fit on one thread, a
    subset built on every core) wrote past those buffers and crashed the process (SIGSEGV, seen in 5 of 12 runs
    of 30 small studies; ``tests/fit/test_workers.py``). Outside a pool: one thread below
    :data:`SMALL_FIT_ROWS` rows (thread start-up outweighs the work), else every core. The trees do not depend on
    the count (:func:`_histogram_layout`).
    """
    return model_threads() or (1 if n_rows < SMALL_FIT_ROWS else 0)


def _histogram_layout(threads: int) -> dict:
    """How LightGBM builds its histograms for a fit on ``threads`` threads (0: every core), so that the trees never
    depend on the thread count.

    Column-wise (``force_col_wise``) sums each feature's histogram on one thread, in row order, however many
    threads there are. On one thread, row-wise (``force_row_wise``) sums every bin in the same row order, so it
    grows the same trees bit for bit, and it is faster: one pass over the rows for all features instead of one
    per feature (measured on a 360k-row outcome model of the 1M benchmark, 12 features: 4.57 vs 4.81 s binary,
    4.46 vs 5.03 s regression, identical model text; ``tests/fit/test_workers.py``). On several threads row-wise
    splits the rows between threads and adds their histograms, which changes the sums' rounding, so it is used
    only on one.
    """
    one = threads == 1 or (threads == 0 and available_cpus() == 1)
    return {"force_row_wise": True} if one else {"force_col_wise": True}


def _index_dtype(n: int) -> type:
    """int32 row numbers when they fit (half the memory of int64; LightGBM reads int32 anyway)."""
    return np.int32 if n < 2**31 else np.int64


def row_numbers(mask: np.ndarray) -> np.ndarray:
    """``np.flatnonzero(mask)`` as int32 when the row count allows it (an 11M-row index: 45 MB instead of 90)."""
    return np.flatnonzero(mask).astype(_index_dtype(len(mask)), copy=False)


def _subset(reference: lgb.Dataset, index: np.ndarray) -> lgb.Dataset:
    """``reference.subset(index).construct()`` for a sorted integer array, without LightGBM's ``sorted(index)``.

    ``Dataset.subset`` keeps the indices as a Python list of numpy scalars (~40 bytes a row, and seconds to sort at
    10M rows); here they stay one int32 array, which is what LightGBM's C API reads anyway.
    """
    import lightgbm as lgb
    # Built with the calling pool's thread count, as every LightGBM call in it (see _threads).
    ds = lgb.Dataset(None, reference=reference, feature_name=reference.feature_name,
                     categorical_feature=reference.categorical_feature,
                     params={**reference.params, "num_threads": model_threads()},
                     free_raw_data=reference.free_raw_data)
    ds._predictor = reference._predictor
    ds.pandas_categorical = reference.pandas_categorical
    ds.used_indices = np.ascontiguousarray(index, dtype=np.int32)
    return ds.construct()


class _WithExtra:
    """``[X, extra]`` served to LightGBM in row batches, so the wider matrix never exists whole (registered as a
    ``lightgbm.Sequence`` when LightGBM is first used, :meth:`BinnedMatrix.dataset`)."""

    batch_size = 65_536

    def __init__(self, X: np.ndarray, extra: np.ndarray) -> None:
        self.X, self.extra = X, extra

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx):
        # LightGBM's sequence reader takes float64 rows.
        if isinstance(idx, int | np.integer):
            return np.append(self.X[idx].astype(np.float64), float(self.extra[idx]))
        return np.column_stack([self.X[idx].astype(np.float64), np.asarray(self.extra[idx], dtype=np.float64)])


class Rows:
    """Rows of a :class:`BinnedMatrix`, not copied: LightGBM trains on their binned subset, and any other
    model gets ``np.asarray(rows)`` (a copy of those rows of ``X``, plus the extra column if any).

    Index with a boolean mask over these rows (``rows[mask]``) to narrow them further.
    """

    def __init__(self, matrix: BinnedMatrix, index: np.ndarray) -> None:
        self.matrix, self.index = matrix, index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.index), self.matrix.X.shape[1] + (self.matrix.extra is not None)

    def __getitem__(self, mask: np.ndarray) -> Rows:
        return Rows(self.matrix, self.index[mask])

    def with_treatment(self) -> Rows:
        """The same rows with the arm indicator appended as the last column (S-learner)."""
        return Rows(self.matrix.with_treatment(), self.index)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        X = self.matrix.materialize(self.index)
        return X if dtype is None else X.astype(dtype, copy=False)

    def dataset(self, params: dict, index: np.ndarray | None = None) -> lgb.Dataset:
        """A LightGBM Dataset of these rows (or of ``index``, a subset of them), binned like the whole matrix."""
        index = self.index if index is None else index
        return _subset(self.matrix.dataset(params), index)


@dataclass
class LGBMModel:
    """LightGBM model with early stopping; ``kind`` is ``"binary"`` (predicts a probability) or ``"regression"``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)).astype("float32"); y = X[:, 0] + rng.normal(size=2000)
    >>> m = LGBMModel("regression").fit(X, y)
    >>> float(np.corrcoef(m.predict(X), X[:, 0])[0, 1]) > 0.9
    True
    """

    kind: str = "regression"
    params: dict = field(default_factory=lambda: dict(NUISANCE_PARAMS))
    categorical: list[int] = field(default_factory=list)
    max_rounds: int = 1000
    early_stopping: int = EARLY_STOPPING_ROUNDS
    random_state: int = 0
    max_rows: int | None = None
    booster_: lgb.Booster | None = None
    constant_: float | None = None
    #: A model this one boosts on top of (:meth:`fit` with ``base``): the prediction is the link of the sum of
    #: both raw scores. Saved with it in one text (:meth:`to_bytes`).
    base_: LGBMModel | None = None
    #: The booster and its compiled forest (:meth:`_forest`), not saved: rebuilt from the booster when needed.
    _compiled: tuple | None = field(default=None, repr=False, compare=False)

    def fit(self, X: np.ndarray | Rows, y: np.ndarray, weight: np.ndarray | None = None, *,
            base: LGBMModel | None = None, base_score: np.ndarray | None = None) -> LGBMModel:
        """Fit on ``X`` (an array, or :class:`Rows` of a binned matrix) and outcome ``y``, optionally weighted.

        With ``base`` (a fitted model of the same kind) and ``base_score`` (its :meth:`raw_score` on these rows),
        the trees are boosted from the base's predictions instead of from the mean of ``y``: early stopping and
        the L2 penalty then shrink this model toward the base, not toward its own rows' average.

        With more than ``max_rows`` rows, the model trains on a random sample of ``max_rows`` of them.
        """
        import lightgbm as lgb
        keep = sample_positions(len(y), self.max_rows, self.random_state)
        if base_score is not None and keep is not None:
            base_score = np.asarray(base_score)[keep]
        X, y, weight = cap_rows(X, y, weight, self.max_rows, self.random_state)
        self.base_ = base
        # LightGBM stores labels as float32 whatever it is given: converting first halves the copies held.
        y = np.asarray(y, dtype=np.float32)
        if self.kind == "binary" and (y.min() == y.max()):
            # A class that never happens in this subset: its probability is the constant rate.
            self.constant_ = float(y[0])
            return self
        n = len(y)
        threads = _threads(n)
        params = {
            **self.params, "objective": self.kind, "verbosity": -1, "seed": self.random_state,
            "deterministic": True, "num_threads": threads, **_histogram_layout(threads),
        }
        params["min_data_in_leaf"] = int(min(params["min_data_in_leaf"], max(5, n // 20)))
        rng = np.random.default_rng(self.random_state)
        if n >= 1000:
            val = rng.random(n, dtype=np.float32) < 0.1
            tr = ~val
            dtrain = self._dataset(X, y, weight, tr, params)
            dval = self._dataset(X, y, weight, val, params, reference=dtrain)
            if base_score is not None:
                dtrain.set_init_score(np.asarray(base_score, dtype=np.float64)[tr])
                dval.set_init_score(np.asarray(base_score, dtype=np.float64)[val])
            del y, weight, tr, val  # LightGBM holds its own copies of labels and weights now
            booster = lgb.train(params, dtrain, num_boost_round=self.max_rounds, valid_sets=[dval],
                                callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
            # Refit-free: keep the early-stopped model (its 10% hold-out is the price of an honest stop).
            booster = booster if booster.best_iteration <= 0 else _trim(booster)
        else:
            dtrain = self._dataset(X, y, weight, None, params)
            if base_score is not None:
                dtrain.set_init_score(np.asarray(base_score, dtype=np.float64))
            booster = lgb.train(params, dtrain, num_boost_round=min(100, self.max_rounds))
        self.booster_ = booster
        return self

    def _dataset(self, X: np.ndarray | Rows, y: np.ndarray, weight: np.ndarray | None, mask: np.ndarray | None,
                 params: dict, reference: lgb.Dataset | None = None) -> lgb.Dataset:
        """The Dataset of rows ``mask`` (all if None): a subset of the binned matrix, or built from ``X[mask]``."""
        import lightgbm as lgb
        label = y if mask is None else y[mask]
        w = None if weight is None or mask is None else weight[mask]
        w = weight if mask is None else w
        if isinstance(X, Rows) and not X.matrix.prebinned:
            X = X.matrix.materialize(X.index if mask is None else X.index[mask])
            mask = None
        if isinstance(X, Rows):
            ds = X.dataset(params, None if mask is None else X.index[mask])
            ds.set_label(label)
            if w is not None:
                ds.set_weight(np.asarray(w, dtype=np.float32))  # LightGBM keeps float32 weights
            return ds
        return lgb.Dataset(X if mask is None else X[mask], label, weight=w, reference=reference,
                           categorical_feature=self.categorical or "auto", free_raw_data=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.constant_ is not None:
            return np.full(len(X), self.constant_)
        raw = self.raw_score(X)
        # LightGBM's own link for binary (1 / (1 + exp(-raw)), sigmoid 1), the same numbers as Booster.predict
        return 1.0 / (1.0 + np.exp(-raw)) if self.kind == "binary" else raw

    @property
    def n_trees(self) -> int:
        """Trees this model kept (after early stopping; 0 for a constant fit; a base model's not counted)."""
        return 0 if self.booster_ is None else int(self.booster_.num_trees())

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """The model's score before the link (log-odds for ``"binary"``), base model included."""
        X = np.asarray(X)
        if self.constant_ is not None:
            c = min(max(self.constant_, 1e-12), 1 - 1e-12)
            return np.full(len(X), np.log(c / (1 - c)) if self.kind == "binary" else self.constant_)
        threads = _threads(len(X))
        forest = self._forest() if len(X) >= COMPILED_PREDICT_ROWS else None
        if forest is None:
            raw = self.booster_.predict(X, raw_score=True, num_threads=threads)
        else:
            raw = forest.predict(X, threads)[:, 0]
        return raw if self.base_ is None else raw + self.base_.raw_score(X)

    def _forest(self) -> Forest | None:
        """The booster's trees as a compiled :class:`~uplift.fit.trees.Forest` (built once per booster), or
        None where the forest does not take them (then LightGBM predicts)."""
        cached = self._compiled
        if cached is not None and cached[0] is self.booster_:
            return cached[1]
        try:
            forest = Forest.from_trees([CompiledTrees.from_booster(self.booster_, raw_score=True)])
        except ValueError:  # a kind of tree the compiled reader does not take
            forest = None
        if forest is None or forest.table.nbytes <= CACHED_FOREST_BYTES:
            self._compiled = (self.booster_, forest)
        return forest

    def to_bytes(self) -> bytes:
        """LightGBM's model text (``constant:<p>`` for a one-class fit); a model boosted on a base is
        ``offset:<bytes of the base's text>`` on the first line, then the base's text, then its own."""
        own = f"constant:{self.constant_!r}".encode() if self.constant_ is not None else \
            self.booster_.model_to_string().encode()
        if self.base_ is None or self.constant_ is not None:
            return own
        base = self.base_.to_bytes()
        return f"offset:{len(base)}\n".encode() + base + own

    @classmethod
    def from_bytes(cls, data: bytes, kind: str = "regression") -> LGBMModel:
        """The model in ``data`` (written by :meth:`to_bytes`); ``ValueError`` when it is not one."""
        import lightgbm as lgb
        m = cls(kind)
        if data.startswith(b"offset:"):
            head, _, rest = data.partition(b"\n")
            size = int(head[len(b"offset:"):])
            if not 0 < size < len(rest):
                raise ValueError("the base model's length does not fit the file")
            m.base_ = cls.from_bytes(rest[:size], kind)
            data = rest[size:]
        text = data.decode()
        if text.startswith("constant:"):
            m.constant_ = float(text.split(":", 1)[1])
        else:
            m.booster_ = lgb.Booster(model_str=text)
        return m


class _Silent:
    def info(self, msg: str) -> None:
        pass

    warning = info


@contextlib.contextmanager
def quiet_lightgbm() -> Iterator[None]:
    """Keep LightGBM's own messages off the terminal while parsing model text: on a damaged file its C++ code
    writes ``[LightGBM] [Fatal] ...`` straight to file descriptor 2 before raising, and the caller's one-line
    error already says what failed. File descriptor 2 points to the null device meanwhile (a model load is
    short; anything else written to stderr in that moment is lost too)."""
    import lightgbm as lgb
    basic = lgb.basic
    names = ("_LOGGER", "_INFO_METHOD_NAME", "_WARNING_METHOD_NAME")
    previous = [getattr(basic, n) for n in names] if all(hasattr(basic, n) for n in names) else None
    if previous is not None:
        lgb.register_logger(_Silent())  # messages LightGBM routes through Python
    saved = devnull = None
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        if devnull is not None:
            os.close(devnull)
        if previous is not None:
            for name, value in zip(names, previous, strict=True):
                setattr(basic, name, value)


def cap_rows(X, y: np.ndarray, weight: np.ndarray | None, max_rows: int | None, seed: int):
    """``X``, ``y`` and ``weight`` (all rows), or the same random sample of ``max_rows`` of their rows."""
    keep = sample_positions(len(y), max_rows, seed)
    if keep is None:
        return X, y, weight
    return X[keep], np.asarray(y)[keep], None if weight is None else np.asarray(weight)[keep]


def sample_positions(n: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """Sorted positions of a random sample of ``max_rows`` of ``n`` rows (None when ``n <= max_rows``).

    Drawn from its own seeded stream: a fit below the cap is exactly the uncapped fit.
    """
    if max_rows is None or n <= max_rows:
        return None
    keep = np.random.default_rng([seed, 7919]).choice(n, max_rows, replace=False)
    keep.sort()
    return keep.astype(_index_dtype(n))


def _trim(booster: lgb.Booster) -> lgb.Booster:
    """Drop the trees grown after the best validation round."""
    import lightgbm as lgb
    text = booster.model_to_string(num_iteration=booster.best_iteration)
    return lgb.Booster(model_str=text)


@dataclass
class SklearnModel:
    """Adapter for any scikit-learn estimator (classifiers predict the positive-class probability)."""

    estimator: object
    kind: str = "regression"
    max_rows: int | None = None
    random_state: int = 0
    fitted_: object | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> SklearnModel:
        from sklearn.base import clone, is_classifier
        from sklearn.pipeline import Pipeline

        est = clone(self.estimator)
        X, y, weight = cap_rows(X, y, weight, self.max_rows, self.random_state)
        X, y = np.asarray(X), np.asarray(y)
        if is_classifier(est):
            y = y.astype(int)
            if len(np.unique(y)) < 2:
                self.fitted_ = float(y[0])
                return self
        # A pipeline takes a weight only as a parameter of one of its steps: the final estimator's.
        weight_name = f"{est.steps[-1][0]}__sample_weight" if isinstance(est, Pipeline) else "sample_weight"
        kw = {} if weight is None else {weight_name: weight}
        self.fitted_ = est.fit(X, y, **kw)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        from sklearn.base import is_classifier
        if isinstance(self.fitted_, float):
            return np.full(len(X), self.fitted_)
        if is_classifier(self.fitted_):
            return self.fitted_.predict_proba(X)[:, 1]
        return np.asarray(self.fitted_.predict(X), dtype=np.float64)


#: Ridge penalties the linear final stage chooses from by leave-one-out error (:meth:`LinearModel.fit`).
RIDGE_ALPHAS = np.logspace(-1, 5, 13)


def _ridge_loo(D: np.ndarray, y: np.ndarray, weight: np.ndarray | None,
               alphas: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of the ridge fit of ``y`` on ``D`` whose penalty has the smallest leave-one-out
    error; ``D`` is overwritten (centred and scaled in place).

    With weights ``w``, rows are centred on the weighted means and scaled by ``sqrt(w)``; the eigenvectors ``V``
    of ``Dc'Dc`` (eigenvalues ``s``) give, per penalty ``a``, the fitted values ``P f P'yc`` with ``P = Dc V`` and
    ``f = 1 / (s + a)``, the hat diagonal ``(P * P) f``, and the intercept's own leverage ``w_i / sum(w)``;
    the leave-one-out residual is the residual over ``1 - hat - leverage``. Ties go to the first penalty.
    """
    n = len(y)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    total = w.sum()
    d_mean = (w @ D) / total
    y_mean = float(w @ y) / total
    root = np.sqrt(w)
    D -= d_mean
    D *= root[:, None]
    yc = (y - y_mean) * root
    s, V = np.linalg.eigh(D.T @ D)
    s = np.clip(s, 0.0, None)
    P = D @ V
    Py = P.T @ yc
    P2 = P * P
    leverage = w / total
    best, best_f = np.inf, None
    for a in alphas:
        f = 1.0 / (s + a)
        loo = (yc - P @ (f * Py)) / (1.0 - P2 @ f - leverage)
        score = float(np.mean(loo * loo))
        if score < best:
            best, best_f = score, f
    coef = V @ (best_f * Py) if best_f is not None else np.zeros(D.shape[1])
    return coef, float(y_mean - d_mean @ coef)


@dataclass
class LinearModel:
    """A fitted linear final stage as plain numbers, predicting with numpy (saved as JSON, never pickled).

    It is the ridge pipeline of :func:`uplift.fit.learners.linear_final_stage` read out after fitting:
    numeric columns are median-imputed and standardised, categorical codes (missing as ``-1``) one-hot
    encoded with unseen codes getting no coefficient, then ``intercept + x @ coef``. Scores equal the
    scikit-learn pipeline's to float tolerance (``tests/fit/test_linear_model.py``).

    Examples
    --------
    >>> import numpy as np
    >>> m = LinearModel(numeric=[0], medians=[1.0], means=[0.0], scales=[2.0], numeric_coef=[3.0],
    ...                 categorical=[1], categories=[[0.0, 1.0]], categorical_coef=[[0.5, -0.5]], intercept=0.1)
    >>> m.predict(np.array([[2.0, 1.0], [np.nan, 7.0]])).round(6).tolist()  # row 2: median, unseen code
    [2.6, 1.6]
    """

    numeric: list[int]
    medians: list[float]
    means: list[float]
    scales: list[float]
    numeric_coef: list[float]
    categorical: list[int]
    categories: list[list[float]]
    categorical_coef: list[list[float]]
    intercept: float
    kind: str = "regression"

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, categorical: list[int] | tuple = (),
            weight: np.ndarray | None = None, alphas: np.ndarray = RIDGE_ALPHAS) -> LinearModel:
        """Ridge regression on median-imputed, standardised numeric columns and one-hot categorical codes.

        The penalty is the one of ``alphas`` with the smallest (weighted) leave-one-out squared error, computed
        in closed form from one eigendecomposition of the ``q x q`` cross-product of the design (``q`` = numeric
        columns + categorical levels), with an unpenalised intercept: the numbers of scikit-learn's
        ``RidgeCV(alphas)`` after ``SimpleImputer(median) + StandardScaler`` and ``SimpleImputer(-1) +
        OneHotEncoder(handle_unknown="ignore")`` to float tolerance (``tests/fit/test_linear_model.py``, which
        fits that pipeline as the reference), 500,000 rows of 12 columns in 0.33 s against its 1.9-3.0 s.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = np.column_stack([rng.normal(size=5000), rng.integers(0, 3, 5000)]).astype(np.float32)
        >>> y = 2 * X[:, 0] + (X[:, 1] == 2) + rng.normal(size=5000) * 0.1
        >>> m = LinearModel.fit(X, y, categorical=[1])
        >>> level = m.categorical_coef[0]
        >>> round(m.numeric_coef[0] / m.scales[0], 2), [round(c - level[0], 2) for c in level]
        (2.0, [0.0, 0.0, 1.0])
        """
        X = np.asarray(X)
        n, p = X.shape
        cat = sorted({int(j) for j in categorical})
        num = [j for j in range(p) if j not in set(cat)]
        codes, categories = [], []
        for j in cat:
            levels, inverse = np.unique(np.nan_to_num(np.asarray(X[:, j], dtype=np.float64), nan=-1.0),
                                        return_inverse=True)
            codes.append(inverse)
            categories.append(levels.tolist())
        # The design is filled in place, one float64 array: standardised numeric columns, then one-hot levels.
        D = np.zeros((n, len(num) + sum(len(c) for c in categories)))
        medians, means, scales = [], [], []
        if num:
            Z = D[:, :len(num)]
            Z[:] = X[:, num]
            with warnings.catch_warnings():  # the median of the float32 values (as sklearn; faster than of Z)
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: median 0, as sklearn
                med = np.nan_to_num(np.nanmedian(np.asarray(X[:, num], dtype=np.float32), axis=0).astype(np.float64))
            np.copyto(Z, med, where=np.isnan(Z))
            mean = Z.mean(axis=0)
            var = Z.var(axis=0)
            eps = np.finfo(np.float64).eps  # sklearn's test for a constant column (StandardScaler)
            scale = np.where(var <= n * eps * var + (n * mean * eps) ** 2, 1.0, np.sqrt(var))
            Z -= mean
            Z /= scale
            medians, means, scales = med.tolist(), mean.tolist(), scale.tolist()
        start = len(num)
        for inverse, levels in zip(codes, categories, strict=True):
            D[np.arange(n), start + inverse] = 1.0
            start += len(levels)
        coef, intercept = _ridge_loo(D, np.asarray(y, dtype=np.float64), weight, np.asarray(alphas, dtype=float))
        parts = np.split(coef, np.cumsum([len(num), *[len(c) for c in categories]])[:-1])
        return cls(num, medians, means, scales, parts[0].tolist(), cat, categories,
                   [q.tolist() for q in parts[1:]], intercept)

    def predict(self, X: np.ndarray) -> np.ndarray:
        # Column by column, in float64: a float64 copy of the whole block (and its standardised copies) would cost
        # ~4 x 96 MB for a 1M-row, 12-column batch; one column's temporaries cost 8 MB each.
        X = np.asarray(X)
        out = np.full(len(X), self.intercept)
        for j, median, mean, scale, coef in zip(self.numeric, self.medians, self.means, self.scales,
                                                self.numeric_coef, strict=True):
            z = np.array(X[:, j], dtype=np.float64)  # a copy: the caller's X is not touched
            z[np.isnan(z)] = median
            z -= mean
            z *= coef / scale
            out += z
        for j, levels, coef in zip(self.categorical, self.categories, self.categorical_coef, strict=True):
            code = np.nan_to_num(np.asarray(X[:, j], dtype=np.float64), nan=-1.0)
            levels_arr = np.asarray(levels)
            pos = np.clip(np.searchsorted(levels_arr, code), 0, max(len(levels_arr) - 1, 0))
            known = levels_arr[pos] == code if len(levels_arr) else np.zeros(len(X), bool)
            out += np.where(known, np.asarray(coef + [0.0])[pos], 0.0)
        return out

    def to_bytes(self) -> bytes:
        doc = {k: getattr(self, k) for k in ("numeric", "medians", "means", "scales", "numeric_coef",
                                             "categorical", "categories", "categorical_coef", "intercept")}
        return (json.dumps({"model": "linear", **doc}, sort_keys=True, allow_nan=False) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, kind: str = "regression") -> LinearModel:
        """The model in ``data`` (written by :meth:`to_bytes`); ``ValueError`` when it is not one."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as err:
            raise ValueError(f"not a JSON document ({err})") from None
        if not isinstance(doc, dict) or doc.get("model") != "linear":
            raise ValueError("not a linear model document")

        def numbers(key: str, depth: int = 1, integer: bool = False) -> list:
            value = doc.get(key)
            ok = (lambda v: type(v) is int) if integer else (lambda v: type(v) in (int, float) and np.isfinite(v))
            rows = [value] if depth == 1 else value
            if not isinstance(rows, list) or not all(isinstance(r, list) and all(ok(v) for v in r) for r in rows):
                raise ValueError(f"field {key!r} must be a list of {'integers' if integer else 'finite numbers'}")
            return value

        num, cat = numbers("numeric", integer=True), numbers("categorical", integer=True)
        fields = {"numeric": num, "categorical": cat, **{k: numbers(k) for k in ("medians", "means", "scales",
                                                                                  "numeric_coef")},
                  "categories": numbers("categories", 2), "categorical_coef": numbers("categorical_coef", 2)}
        if any(len(fields[k]) != len(num) for k in ("medians", "means", "scales", "numeric_coef")):
            raise ValueError("numeric fields differ in length")
        if len(fields["categories"]) != len(cat) or any(
                len(a) != len(b) or a != sorted(a) for a, b in zip(fields["categories"], fields["categorical_coef"],
                                                                   strict=False)) or \
                len(fields["categorical_coef"]) != len(cat):
            raise ValueError("categorical fields differ in length or levels are not sorted")
        if min(num + cat, default=0) < 0 or not all(s > 0 for s in fields["scales"]):
            raise ValueError("negative column index or non-positive scale")
        intercept = doc.get("intercept")
        if type(intercept) not in (int, float) or not np.isfinite(intercept):
            raise ValueError("field 'intercept' must be a finite number")
        return cls(**fields, intercept=float(intercept), kind=kind)


@dataclass
class ModelFactory:
    """Makes fresh base models: LightGBM by default, or clones of user-supplied sklearn estimators.

    ``max_rows`` caps the rows each model trains on (None: no cap); see :data:`MAX_TRAIN_ROWS`.
    ``nuisance_params``, ``nuisance_rounds`` and ``nuisance_early_stopping`` set the LightGBM outcome and
    propensity models (default :data:`NUISANCE_PARAMS`, up to 1000 rounds, stopping after
    :data:`EARLY_STOPPING_ROUNDS` without gain).
    """

    regressor: object | None = None
    classifier: object | None = None
    categorical: list[int] = field(default_factory=list)
    random_state: int = 0
    max_rows: int | None = MAX_TRAIN_ROWS
    nuisance_params: dict | None = None
    nuisance_rounds: int = 1000
    nuisance_early_stopping: int = EARLY_STOPPING_ROUNDS
    n_rows: int | None = None
    outcome_kind: str = "continuous"

    def outcome(self, kind: str, seed: int = 0):
        user = self.classifier if kind == "binary" else self.regressor
        if user is not None:
            return SklearnModel(user, kind, self.max_rows, self.random_state + seed)
        return self._nuisance("binary" if kind == "binary" else "regression", seed)

    def propensity(self, seed: int = 0):
        if self.classifier is not None:
            return SklearnModel(self.classifier, "binary", self.max_rows, self.random_state + seed)
        return self._nuisance("binary", seed)

    def _nuisance(self, objective: str, seed: int) -> LGBMModel:
        kind = "binary" if objective == "binary" else "continuous"  # a propensity's label is binary too
        params = self.nuisance_params or sized_params(NUISANCE_PARAMS, self.n_rows, kind, "nuisance")
        return LGBMModel(objective, dict(params), self.categorical,
                         max_rounds=self.nuisance_rounds, early_stopping=self.nuisance_early_stopping,
                         random_state=self.random_state + seed, max_rows=self.max_rows)

    def effect(self, seed: int = 0):
        if self.regressor is not None:
            return SklearnModel(self.regressor, "regression", self.max_rows, self.random_state + seed)
        params = sized_params(EFFECT_PARAMS, self.n_rows, self.outcome_kind, "effect")
        return LGBMModel("regression", params, self.categorical, max_rounds=600,
                         random_state=self.random_state + seed, max_rows=self.max_rows)

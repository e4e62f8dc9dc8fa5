"""A fast scorer: the chosen model distilled into one small tree ensemble per arm, evaluated by compiled code.

A study's prediction averages its K fold models (for a T-learner that is 2K boosters, for the ensemble every
learner's), i.e. thousands of trees per customer: tens of thousands of customers a second. Scoring a customer
base of hundreds of millions needs more. :class:`DistilledScorer` is fitted at the end of :meth:`Study.fit`
to reproduce the study's own prediction (the *teacher*, exactly what :meth:`Study.predict_uplift` returns) on a
random sample of training customers, with one LightGBM regressor of at most a few hundred shallow trees per
treated arm. Its **fidelity** to the teacher (R², correlation, overlap of the top 20%) is measured on sampled
customers it did not learn from and travels with the model, so a user sees what the speed costs.

The trees are evaluated by :class:`CompiledTrees`, a numba-compiled, multi-threaded walk of LightGBM's
decision rules (numerical thresholds with LightGBM's missing-value handling, categorical bitsets), checked
against ``lightgbm.Booster.predict`` in ``tests/fit/test_distill.py``.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(5000, 4)).astype("float32")
>>> teacher = (0.02 * np.tanh(X[:, 0]) + 0.01 * (X[:, 1] > 0)).reshape(-1, 1)
>>> scorer = DistilledScorer().fit(X, teacher)
>>> scorer.fidelity_[0]["r2"] > 0.95
True
>>> bool(np.abs(scorer.predict(X) - teacher).mean() < 0.002)
True
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from uplift._numba import cacheable

if TYPE_CHECKING:  # imported where used, so that importing the package does not pay for LightGBM
    import lightgbm as lgb

#: Learner name that selects the fast scorer wherever a learner can be named (``--learner fast``).
FAST = "fast"
#: The student's trees: deep enough to copy a boosted teacher, few enough to score ~500k customers a
#: second on two cores (the tree walk alone; ``benchmarks/results/predict_fast.md``).
STUDENT_PARAMS = {
    "objective": "regression", "learning_rate": 0.3, "num_leaves": 31, "min_data_in_leaf": 20,
    "lambda_l2": 0.0, "max_bin": 255, "feature_fraction": 1.0, "bagging_fraction": 1.0,
}
#: Most boosting rounds of the student (early stopping usually ends sooner).
MAX_TREES = 80
#: Share of the sampled customers kept out of the student's training, to measure its fidelity.
VALIDATION_SHARE = 0.2
#: Rows per thread chunk in the compiled evaluator.
_BLOCK = 4096


# --------------------------------------------------------------------------------------- compiled trees
def _in_set_py(value, values, start, length):
    for j in range(start, start + length):
        if values[j] == value:
            return True
    return False


def _predict_py(X, roots, feature, threshold, flags, left, right, leaf_value, cat_start, cat_len, cat_values, out):
    """LightGBM's decision rules (``Tree::NumericalDecision`` / ``CategoricalDecision``), rows in parallel."""
    n, n_trees = X.shape[0], roots.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    for b in prange(n_blocks):
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            total = 0.0
            for t in range(n_trees):
                node = roots[t]
                while node >= 0:
                    fval = np.float64(X[i, feature[node]])
                    f = flags[node]
                    missing = (f >> 2) & 3  # 0: none, 1: zero, 2: NaN (LightGBM's MissingType)
                    if f & 1:  # categorical: left when the category is in the node's set; NaN goes right
                        go_left = False
                        if not np.isnan(fval) and fval >= 0.0:
                            go_left = _in_set(int(fval), cat_values, cat_start[node], cat_len[node])
                    else:
                        if np.isnan(fval) and missing != 2:
                            fval = 0.0
                        if (missing == 1 and -1e-35 <= fval <= 1e-35) or (missing == 2 and np.isnan(fval)):
                            go_left = (f & 2) != 0  # the node's default direction
                        else:
                            go_left = fval <= threshold[node]
                    node = left[node] if go_left else right[node]
                total += leaf_value[-node - 1]
            out[i] = total


def _step_py(X, i, node, feature, threshold, nan_sub, left, right):
    fval = np.float64(X[i, feature[node]])
    if fval != fval:  # NaN: LightGBM's rule for this node, folded into a substitute value (see from_booster)
        fval = nan_sub[node]
    return left[node] if fval <= threshold[node] else right[node]


def _predict_numeric_py(X, roots, feature, threshold, nan_sub, left, right, leaf_value, out):
    """Numerical splits only: four rows walk each tree together, so the CPU has four independent chains of
    node loads in flight instead of one (about 1.2x faster than one row at a time)."""
    n, n_trees = X.shape[0], roots.shape[0]
    n4 = n // 4
    quads = _BLOCK // 4
    for b in prange((n4 + quads - 1) // quads):
        for q in range(b * quads, min(n4, (b + 1) * quads)):
            i = 4 * q
            s0 = s1 = s2 = s3 = 0.0
            for t in range(n_trees):
                a0 = a1 = a2 = a3 = roots[t]
                while a0 >= 0 or a1 >= 0 or a2 >= 0 or a3 >= 0:
                    if a0 >= 0:
                        a0 = _step(X, i, a0, feature, threshold, nan_sub, left, right)
                    if a1 >= 0:
                        a1 = _step(X, i + 1, a1, feature, threshold, nan_sub, left, right)
                    if a2 >= 0:
                        a2 = _step(X, i + 2, a2, feature, threshold, nan_sub, left, right)
                    if a3 >= 0:
                        a3 = _step(X, i + 3, a3, feature, threshold, nan_sub, left, right)
                s0 += leaf_value[-a0 - 1]
                s1 += leaf_value[-a1 - 1]
                s2 += leaf_value[-a2 - 1]
                s3 += leaf_value[-a3 - 1]
            out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
    for i in range(4 * n4, n):
        total = 0.0
        for t in range(n_trees):
            a = roots[t]
            while a >= 0:
                a = _step(X, i, a, feature, threshold, nan_sub, left, right)
            total += leaf_value[-a - 1]
        out[i] = total


_NAN_BIN = 2147483647  # the bin of a missing numeric value (every node says where it goes)


def _bins_py(X, thresholds, offsets, categorical, n_levels, out):
    """Each value of ``X`` as its bin: for a numeric feature the number of the forest's thresholds of that feature
    below it (so ``value <= threshold j`` is ``bin <= j``, exactly), NaN as :data:`_NAN_BIN`; for a categorical
    feature its category as LightGBM reads it (``int(value)``), or ``n_levels`` (in no node's set) for NaN, values
    of -1 or less and categories no split names."""
    n, p = X.shape[0], offsets.shape[0] - 1
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            for f in range(p):
                v = np.float64(X[i, f])
                if categorical[f]:
                    k = n_levels[f]
                    out[i, f] = np.int32(v) if v > -1.0 and v < k else k
                elif v != v:
                    out[i, f] = _NAN_BIN
                else:
                    lo, hi = offsets[f], offsets[f + 1]
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if thresholds[mid] < v:
                            lo = mid + 1
                        else:
                            hi = mid
                    out[i, f] = lo - offsets[f]


#: Rows that walk a tree together, level by level, in the forest kernel.
_LANES = 256


def _forest_py(bins, roots, depths, arm, nodes, leaf_value, out):
    """All trees of all arms over binned rows, level-synchronous: ``_LANES`` rows take one step of one tree
    before any row takes the next, so the steps are independent (no branch to predict, loads in flight
    together); a leaf is a node that leads to itself, so every row of a tree takes the tree's depth in steps.
    Each node is 8 int32: feature, threshold bin (numeric; -1 categorical), category bit mask (categorical; 0
    numeric), whether a missing value goes left, right child, left child. About 2x the row-by-row walk."""
    n, p = bins.shape
    flat = bins.ravel()
    for b in prange((n + _BLOCK - 1) // _BLOCK):
        node = np.empty(_LANES, np.int64)
        for lo in range(b * _BLOCK, min(n, (b + 1) * _BLOCK), _LANES):
            m = min(_LANES, n - lo)
            for t in range(roots.shape[0]):
                start = np.int64(8 * roots[t])
                for k in range(m):
                    node[k] = start
                for _ in range(depths[t]):
                    for k in range(m):
                        nd = np.uint64(node[k])  # unsigned: no negative-index wraparound in the hot loop
                        v = flat[np.uint64((lo + k) * p + nodes[nd])]
                        left = ((v <= nodes[nd + np.uint64(1)])
                                | (((nodes[nd + np.uint64(2)] >> (v & 31)) & 1) != 0)) ^ (
                            (v == _NAN_BIN) & (nodes[nd + np.uint64(3)] != 0))
                        node[k] = 8 * np.int64(nodes[nd + np.uint64(5)] if left else nodes[nd + np.uint64(4)])
                a = arm[t]
                for k in range(m):
                    out[lo + k, a] += leaf_value[node[k] >> 3]


_in_set = _step = None
_KERNELS: dict[str, object] = {}
prange = range  # numba.prange once the kernels are compiled (numba is imported only when first needed)


def _kernel(numeric: bool, parallel: bool = True):
    """The compiled evaluator, built on first use (numba compiles in ~1 s, or loads its on-disk cache).

    ``parallel=False`` is the same code compiled without threads, for at most one block of rows: a parallel
    call wakes the thread pool even for one block, which costs a scoring service more than the trees of a
    few customers (on a busy machine, milliseconds of waiting for a thread to be scheduled).
    """
    global _in_set, _step, prange
    if not _KERNELS:
        import numba

        prange = numba.prange
        cache = cacheable(__file__)
        _in_set = numba.njit(cache=cache, nogil=True)(_in_set_py)
        _step = numba.njit(cache=cache, nogil=True, inline="always")(_step_py)
        for name, fn in (("general", _predict_py), ("numeric", _predict_numeric_py), ("bins", _bins_py),
                         ("forest", _forest_py)):
            _KERNELS[name] = numba.njit(parallel=True, nogil=True, cache=cache)(fn)
            # A copy under its own name: numba's on-disk cache is keyed by the function's name and argument
            # types, not by ``parallel``, so the same function compiled both ways shared one cache entry and
            # whichever was compiled first served both (the "parallel" kernels ran on one thread).
            serial = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__)
            serial.__qualname__ = fn.__qualname__ + "_serial"
            _KERNELS[name + "_serial"] = numba.njit(nogil=True, cache=cache)(serial)
    return _KERNELS[("numeric" if numeric else "general") + ("" if parallel else "_serial")]


def _forest_kernels(parallel: bool):
    """The binning and forest kernels of :class:`Forest` (compiled with the others on first use)."""
    _kernel(True)
    suffix = "" if parallel else "_serial"
    return _KERNELS["bins" + suffix], _KERNELS["forest" + suffix]


def _feature_block(X: np.ndarray, n_features: int) -> np.ndarray:
    """``X`` as a C-contiguous float32/float64 matrix of at least ``n_features`` columns, what the kernels read."""
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float32)
    X = np.ascontiguousarray(X)
    if X.ndim != 2 or X.shape[1] < n_features:
        raise ValueError(f"expected {n_features} feature columns, got shape {X.shape}")
    return X


@dataclass
class CompiledTrees:
    """A LightGBM regression booster flattened into arrays and evaluated by compiled, multi-threaded code.

    Nodes are numbered per ensemble; a child index ``c < 0`` is the leaf ``-c - 1``. ``flags`` holds LightGBM's
    decision type: bit 0 categorical, bit 1 default-left, bits 2-3 the missing-value type.
    """

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    flags: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    cat_start: np.ndarray
    cat_len: np.ndarray
    cat_values: np.ndarray
    n_features: int

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> CompiledTrees:
        model = booster.dump_model()
        if model.get("objective", "regression").split()[0] not in ("regression", "regression_l2"):
            raise ValueError("only regression boosters (raw score = sum of leaves) can be compiled")
        feature, threshold, flags, left, right, leaves, cat_start, cat_len, cat_values, roots = ([] for _ in
                                                                                                range(10))
        missing_code = {"None": 0, "Zero": 1, "NaN": 2}

        def walk(node: dict) -> int:
            if "leaf_value" in node:
                leaves.append(node["leaf_value"])
                return -len(leaves)
            i = len(feature)
            feature.append(node["split_feature"])
            categorical = node["decision_type"] == "=="
            flags.append(int(categorical) | (int(bool(node["default_left"])) << 1)
                         | (missing_code[node["missing_type"]] << 2))
            if categorical:
                cats = [int(c) for c in str(node["threshold"]).split("||")]
                cat_start.append(len(cat_values))
                cat_len.append(len(cats))
                cat_values.extend(cats)
                threshold.append(0.0)
            else:
                cat_start.append(0)
                cat_len.append(0)
                threshold.append(float(node["threshold"]))
            left.append(0)
            right.append(0)
            left[i] = walk(node["left_child"])
            right[i] = walk(node["right_child"])
            return i

        for tree in model["tree_info"]:
            roots.append(walk(tree["tree_structure"]))
        i32 = np.int32
        return cls(np.asarray(roots, i32), np.asarray(feature, i32), np.asarray(threshold, np.float64),
                   np.asarray(flags, np.uint8), np.asarray(left, i32), np.asarray(right, i32),
                   np.asarray(leaves, np.float64), np.asarray(cat_start, i32), np.asarray(cat_len, i32),
                   np.asarray(cat_values, i32), int(model["max_feature_idx"]) + 1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values per row of ``X`` (float32 or float64, shape (n, n_features))."""
        X = _feature_block(X, self.n_features)
        out = np.empty(len(X), np.float64)
        if not len(X):
            return out
        missing = (self.flags >> 2) & 3
        parallel = len(X) > _BLOCK  # one block runs on one thread anyway
        if not (self.flags & 1).any() and not (missing == 1).any():
            # Numerical splits without zero-as-missing: NaN goes where LightGBM sends it through a per-node
            # substitute (missing type None: treated as 0.0; NaN: -inf/+inf for default left/right).
            nan_sub = np.where(missing == 2, np.where(self.flags & 2, -np.inf, np.inf), 0.0)
            _kernel(True, parallel)(X, self.roots, self.feature, self.threshold, nan_sub, self.left, self.right,
                          self.leaf_value, out)
        else:
            _kernel(False, parallel)(X, self.roots, self.feature, self.threshold, self.flags, self.left, self.right,
                           self.leaf_value, self.cat_start, self.cat_len, self.cat_values, out)
        return out


@dataclass
class Forest:
    """The trees of several boosters (one per arm) as one table of nodes over binned features, evaluated together.

    Built by :meth:`from_trees` when every split is numerical without zero-as-missing, or categorical on a
    feature whose categories LightGBM names are all below 31 (a 32-bit set per node); otherwise it is None and
    :class:`CompiledTrees` scores each booster. Its sums are those of :class:`CompiledTrees` bit for bit (the
    same leaves added in the same order per row), checked against ``lightgbm.Booster.predict`` in
    ``tests/fit/test_distill.py``.
    """

    thresholds: np.ndarray  # float64: the numeric thresholds, sorted, feature after feature
    offsets: np.ndarray  # int32 (p + 1): where each feature's thresholds start
    categorical: np.ndarray  # uint8 (p): categorical features
    n_levels: np.ndarray  # int32 (p): the bin of an unknown category (one past the largest in any split)
    roots: np.ndarray  # int32 (trees): root node of each tree
    depths: np.ndarray  # int32 (trees)
    arm: np.ndarray  # int32 (trees): output column of each tree
    nodes: np.ndarray  # int32 (nodes * 8), see _forest_py
    leaf_value: np.ndarray  # float64 (nodes): 0 for a split
    n_arms: int
    n_features: int

    @classmethod
    def from_trees(cls, trees: list[CompiledTrees]) -> Forest | None:
        """One forest of the arms' compiled trees, or None when a split is of a kind it does not take."""
        p = max(t.n_features for t in trees)
        thresholds: list[set[float]] = [set() for _ in range(p)]
        kind: list[set[bool]] = [set() for _ in range(p)]
        levels = np.zeros(p, np.int64)
        for t in trees:
            if (((t.flags >> 2) & 3) == 1).any():
                return None  # zero-as-missing: a value range, not a bin, decides
            for i in range(len(t.feature)):
                f, cat = int(t.feature[i]), bool(t.flags[i] & 1)
                kind[f].add(cat)
                if cat:
                    values = t.cat_values[t.cat_start[i]:t.cat_start[i] + t.cat_len[i]]
                    levels[f] = max(levels[f], int(values.max()) + 1 if len(values) else 0)
                else:
                    thresholds[f].add(float(t.threshold[i]))
        if any(len(k) > 1 for k in kind) or (levels > 31).any():
            return None
        sorted_thr = [np.array(sorted(x), np.float64) for x in thresholds]
        offsets = np.cumsum([0] + [len(x) for x in sorted_thr])
        nodes: list[list[int]] = []
        leaf_value: list[float] = []
        roots, depths, arm = [], [], []
        for a, t in enumerate(trees):
            missing = (t.flags >> 2) & 3

            def add(old: int, t=t, missing=missing) -> tuple[int, int]:
                i = len(nodes)
                nodes.append([0, 2**31 - 1, 0, 1, i, i, 0, 0])  # a leaf: every value goes left, to itself
                leaf_value.append(0.0)
                if old < 0:
                    leaf_value[i] = float(t.leaf_value[-old - 1])
                    return i, 0
                f, flags = int(t.feature[old]), int(t.flags[old])
                rec = nodes[i]
                rec[0] = f
                if flags & 1:
                    mask = 0
                    for c in t.cat_values[t.cat_start[old]:t.cat_start[old] + t.cat_len[old]].tolist():
                        mask |= 1 << int(c)
                    rec[1], rec[2], rec[3] = -1, mask, 0  # < 2**31: categories below 31
                else:
                    threshold = float(t.threshold[old])
                    rec[1] = int(np.searchsorted(sorted_thr[f], threshold))
                    rec[2] = 0
                    # missing type NaN: the default direction; None: NaN is read as 0.0
                    rec[3] = int(bool(flags & 2)) if missing[old] == 2 else int(0.0 <= threshold)
                rec[5], left_depth = add(int(t.left[old]))
                rec[4], right_depth = add(int(t.right[old]))
                return i, 1 + max(left_depth, right_depth)

            for root in t.roots.tolist():
                r, d = add(root)
                roots.append(r)
                depths.append(d)
                arm.append(a)
        i32 = np.int32
        return cls(np.concatenate([np.zeros(0), *sorted_thr]), offsets.astype(i32),
                   np.array([True in k for k in kind], np.uint8), levels.astype(i32), np.asarray(roots, i32),
                   np.asarray(depths, i32), np.asarray(arm, i32), np.asarray(nodes, i32).ravel(),
                   np.asarray(leaf_value, np.float64), len(trees), p)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of each arm's trees per row of ``X`` (float32 or float64), shape (n, n_arms)."""
        X = _feature_block(X, self.n_features)
        out = np.zeros((len(X), self.n_arms), np.float64)
        if not len(X):
            return out
        bin_rows, walk = _forest_kernels(parallel=len(X) > _BLOCK)
        bins = np.empty((len(X), self.n_features), np.int32)
        bin_rows(X[:, :self.n_features] if X.shape[1] > self.n_features else X, self.thresholds, self.offsets,
                 self.categorical, self.n_levels, bins)
        walk(bins, self.roots, self.depths, self.arm, self.nodes, self.leaf_value, out)
        return out


# --------------------------------------------------------------------------------------- distillation
def _fidelity(teacher: np.ndarray, student: np.ndarray, top: float = 0.2) -> dict:
    """How well ``student`` reproduces ``teacher`` on the same customers."""
    resid = teacher - student
    var = float(np.var(teacher))
    k = max(1, int(round(top * len(teacher))))
    top_t = set(np.argsort(-teacher, kind="stable")[:k].tolist())
    top_s = np.argsort(-student, kind="stable")[:k]
    return {
        "n": int(len(teacher)),
        "r2": float(1.0 - np.mean(resid**2) / var) if var > 0 else float(np.allclose(resid, 0)),
        "corr": float(np.corrcoef(teacher, student)[0, 1]) if var > 0 and np.std(student) > 0 else float("nan"),
        "mean_abs_error": float(np.mean(np.abs(resid))),
        "teacher_sd": float(np.sqrt(var)),
        "top20_overlap": float(np.mean([i in top_t for i in top_s.tolist()])),
    }


@dataclass
class DistilledScorer:
    """One small LightGBM regressor per treated arm that reproduces a study's uplift prediction.

    Parameters
    ----------
    max_trees : int
        Most trees per arm (early stopping on the validation share usually stops sooner).
    categorical : list of int
        Categorical column indices of ``X``.
    random_state : int
        Seed of the train/validation split and of LightGBM.
    """

    max_trees: int = MAX_TREES
    categorical: list[int] = field(default_factory=list)
    random_state: int = 0
    boosters_: list[lgb.Booster] = field(default_factory=list)
    fidelity_: list[dict] = field(default_factory=list)
    _compiled: list[CompiledTrees] = field(default_factory=list, repr=False)
    _forest: Forest | None = field(default=None, repr=False)

    def fit(self, X: np.ndarray, teacher: np.ndarray) -> DistilledScorer:
        """Learn ``teacher`` (n, n_treated) from ``X`` (n, p); fidelity is measured on a held-out share."""
        import lightgbm as lgb
        X = np.ascontiguousarray(X, dtype=np.float32)
        teacher = np.asarray(teacher, dtype=np.float64).reshape(len(X), -1)
        n = len(X)
        val = np.random.default_rng(self.random_state).random(n) < VALIDATION_SHARE
        if n < 50 or val.all() or not val.any():
            val = np.zeros(n, bool)
        tr = ~val
        params = {**STUDENT_PARAMS, "verbosity": -1, "seed": self.random_state, "deterministic": True,
                  "force_col_wise": True, "min_data_in_leaf": int(min(STUDENT_PARAMS["min_data_in_leaf"],
                                                                        max(2, tr.sum() // 20)))}
        self.boosters_, self.fidelity_, self._compiled = [], [], []
        for j in range(teacher.shape[1]):
            dtrain = lgb.Dataset(X[tr], teacher[tr, j], categorical_feature=self.categorical or "auto",
                                 free_raw_data=True, params={"max_bin": params["max_bin"]})
            if val.any():
                dval = lgb.Dataset(X[val], teacher[val, j], reference=dtrain)
                booster = lgb.train(params, dtrain, num_boost_round=self.max_trees, valid_sets=[dval],
                                    callbacks=[lgb.early_stopping(20, verbose=False)])
                if 0 < booster.best_iteration < booster.current_iteration():
                    booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
            else:
                booster = lgb.train(params, dtrain, num_boost_round=min(self.max_trees, 100))
            self.boosters_.append(booster)
            self._compiled.append(CompiledTrees.from_booster(booster))
            rows = val if val.any() else tr
            fid = _fidelity(teacher[rows, j], self._compiled[-1].predict(X[rows]))
            fid.update(trees=booster.num_trees(), on="held-out sample" if val.any() else "training sample")
            self.fidelity_.append(fid)
        self._forest = Forest.from_trees(self._compiled)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Uplift per row and treated arm, shape (n, n_treated)."""
        if not self._compiled:
            self._compiled = [CompiledTrees.from_booster(b) for b in self.boosters_]
            self._forest = Forest.from_trees(self._compiled)
        if self._forest is not None:
            return self._forest.predict(X)
        return np.column_stack([c.predict(X) for c in self._compiled])

    def to_bytes(self) -> list[bytes]:
        """LightGBM's text format per arm (no pickle)."""
        return [b.model_to_string().encode() for b in self.boosters_]

    @classmethod
    def from_bytes(cls, models: list[bytes], fidelity: list[dict]) -> DistilledScorer:
        import lightgbm as lgb
        scorer = cls()
        scorer.boosters_ = [lgb.Booster(model_str=m.decode()) for m in models]
        scorer.fidelity_ = list(fidelity)
        return scorer

"""A fast scorer: the chosen model distilled into one small tree ensemble per arm, evaluated by compiled code.

A study's prediction averages its K fold models (for a T-learner that is 2K boosters, for the ensemble every
learner's), i.e. thousands of trees per customer: tens of thousands of customers a second. Scoring a customer
base of hundreds of millions needs more. :class:`DistilledScorer` is fitted at the end of :meth:`Study.fit`
to reproduce the study's own prediction (the *teacher*, exactly what :meth:`Study.predict_uplift` returns) on a
random sample of training customers, with one LightGBM regressor of at most a few hundred shallow trees per
treated arm. Its **fidelity** to the teacher (R², correlation, overlap of the top 20%) is measured on sampled
customers it did not learn from and travels with the model, so a user sees what the speed costs.

The trees of all arms are scored together by :class:`Forest`: each feature's value binned by the forest's own
thresholds, then one bit-vector AND per feature and tree (QuickScorer on bins; no branch on the data inside a
tree), compiled by numba and run in threads. :class:`CompiledTrees`, a compiled walk of LightGBM's decision
rules (numerical thresholds with LightGBM's missing-value handling, categorical bitsets), scores what the forest
does not take (trees past 64 leaves, zero-as-missing splits). A saved scorer's trees are read from LightGBM's
model text without LightGBM (:meth:`CompiledTrees.from_model_text`). Both evaluators are checked
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

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from uplift._numba import cacheable

if TYPE_CHECKING:  # imported where used, so that importing the package does not pay for LightGBM
    import lightgbm as lgb

#: Learner name that selects the fast scorer wherever a learner can be named (``--learner fast``).
FAST = "fast"
#: The student's trees: deep enough to copy a boosted teacher, few enough to score ~2.5M customers a
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
    """LightGBM's decision rules (``Tree::NumericalDecision`` / ``CategoricalDecision``), row by row."""
    n, n_trees = X.shape[0], roots.shape[0]
    for i in range(n):
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
    for q in range(n4):
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


#: Leaves of a tree the bit-vector forest takes: one bit each in a 64-bit word.
_MAX_LEAVES = 64
#: Largest bit-vector table (bytes) a forest builds; past it each booster is walked by :class:`CompiledTrees`.
MAX_TABLE_BYTES = 256 * 2**20
_ONES = np.uint64(2**64 - 1)
#: A de Bruijn sequence of order 6: ``(x & -x) * _DEBRUIJN >> 58`` numbers the 64 one-bit words uniquely, so
#: ``_LOWEST[...]`` is the index of the lowest set bit of ``x`` (no count-trailing-zeros needed).
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_LOWEST = np.zeros(64, np.int64)
for _k in range(64):
    _LOWEST[((1 << _k) * int(_DEBRUIJN) % 2**64) >> 58] = _k
assert len(set(((1 << k) * int(_DEBRUIJN) % 2**64) >> 58 for k in range(64))) == 64


def _quick_py(X, used, categorical, thresholds, offsets, n_levels, base, table, arm_start, leaves, lowest, out):
    """All trees of all arms, scored by bit vectors (the QuickScorer idea, Lucchese et al., SIGIR 2015, on bins).

    A tree's leaves are numbered left to right; a node's *mask* clears the bits of the leaves of its left
    subtree. A row leaves a tree at the lowest set bit of the AND of the masks of the nodes whose test sends it
    right (whether or not the row passes through them). Every such test depends on one feature's bin, so the
    AND over one feature's nodes is precomputed per bin: ``table[base[u] + bin, t]``. A row is one binary search
    and one AND of ``n_trees`` words per used feature, then one lookup per tree: no branch depends on the data
    inside the trees. The bin of a numeric value is the number of the forest's thresholds of its feature below
    it (``value <= threshold j`` is ``bin <= j``, exactly); a missing value is one past the last bin; a category
    is ``int(value)`` as LightGBM reads it, or ``n_levels`` (in no node's set) for NaN, values of -1 or less
    and categories no split names. Leaves are added tree after tree, so the sums are those of
    :class:`CompiledTrees` bit for bit."""
    n, n_used, n_arms = X.shape[0], used.shape[0], arm_start.shape[0] - 1
    n_trees = table.shape[1]
    acc = np.empty(n_trees, np.uint64)
    rows = np.empty((_LANES, n_used), np.int64)
    for lo_row in range(0, n, _LANES):
        m_rows = min(_LANES, n - lo_row)
        # The table row of each feature's bin, feature by feature: the rows' searches are independent, so
        # the CPU runs several at once (row by row, one search waited for the last: 2x slower).
        for u in range(n_used):
            f = used[u]
            first, count = offsets[f], offsets[f + 1] - offsets[f]
            if categorical[f]:
                k = n_levels[f]
                for j in range(m_rows):
                    v = np.float64(X[lo_row + j, f])
                    rows[j, u] = base[u] + (np.int64(v) if v > -1.0 and v < k else k)
                continue
            for j in range(m_rows):
                v = np.float64(X[lo_row + j, f])
                lo, m = first, count  # the count of thresholds below v, without data-dependent branches
                if m > 0:
                    while m > 1:
                        half = m >> 1
                        lo += half * np.int64(thresholds[lo + half] < v)
                        m -= half
                    lo += np.int64(thresholds[lo] < v)
                rows[j, u] = base[u] + (count + 1 if v != v else lo - first)
        for j in range(m_rows):
            acc[:] = _ONES
            for u in range(n_used):
                row = table[rows[j, u]]
                for t in range(n_trees):
                    acc[t] &= row[t]
            for a in range(n_arms):
                total = 0.0
                for t in range(arm_start[a], arm_start[a + 1]):
                    x = acc[t]
                    total += leaves[t, lowest[((x & (~x + np.uint64(1))) * _DEBRUIJN) >> np.uint64(58)]]
                out[lo_row + j, a] = total


#: Rows whose bins are found together, feature by feature, in the forest kernel.
_LANES = 256


_in_set = _step = None
_KERNELS: dict[str, object] = {}


def _kernel(name: str):
    """The compiled evaluator ``"forest"``, ``"numeric"`` or ``"general"``, built on first use (numba compiles
    them in ~1 s, or loads its on-disk cache).

    Each is compiled once without numba's threads, and releases the interpreter lock: the callers run it on
    slices of rows in a thread pool of their own (:func:`_in_threads`). That is as fast as numba's parallel
    loop (500,000 rows through the forest: 187 vs 189 ms on two cores), compiles in a third of the time (which
    the first ``uplift predict --fast`` after an install pays), and a few customers (a scoring service's
    request) are scored on the calling thread without waking any pool.
    """
    global _in_set, _step
    if not _KERNELS:
        import numba

        cache = cacheable(__file__)
        _in_set = numba.njit(cache=cache, nogil=True)(_in_set_py)
        _step = numba.njit(cache=cache, nogil=True, inline="always")(_step_py)
        for key, fn in (("forest", _quick_py), ("general", _predict_py), ("numeric", _predict_numeric_py)):
            _KERNELS[key] = numba.njit(nogil=True, cache=cache)(fn)
    return _KERNELS[name]


_POOL: list = []


def _threads() -> int:
    """CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _in_threads(n: int, work) -> None:
    """``work(rows)`` over slices of ``range(n)`` (at least :data:`_BLOCK` rows each), in a pool of one thread
    per CPU; the calling thread alone when there is one slice."""
    threads = _threads()
    size = max(_BLOCK, -(-n // (4 * threads)))  # four slices a thread: a thread slowed by other work is caught up
    slices = [slice(lo, min(n, lo + size)) for lo in range(0, n, size)]
    if len(slices) == 1 or threads == 1:
        for rows in slices:
            work(rows)
        return
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(threads, thread_name_prefix="uplift-forest"))
    list(_POOL[0].map(work, slices))  # a worker's error is raised here


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
    def from_model_text(cls, text: str) -> CompiledTrees:
        """The trees of a LightGBM regression model in its text format (``Booster.model_to_string()``), read
        without LightGBM: scoring with the fast scorer then does not import it (with scikit-learn, which it
        imports, ~1.9 s of every ``uplift predict --fast``). Each tree's ``decision_type`` is LightGBM's
        (categorical, default-left and missing-type bits, as ``flags`` holds them); a categorical split's
        ``threshold`` indexes its bitset in ``cat_threshold`` via ``cat_boundaries``. Equal to LightGBM's
        own predictions, bit for bit (tests/fit/test_distill.py).
        """
        head, _, body = text.partition("\nTree=")
        fields = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
        if fields.get("objective", "regression").split()[0] not in ("regression", "regression_l2"):
            raise ValueError("only regression boosters (raw score = sum of leaves) can be compiled")
        if int(fields.get("num_tree_per_iteration", 1)) != 1:
            raise ValueError("expected one tree per iteration")
        n_features = int(fields["max_feature_idx"]) + 1
        body = body.split("\nend of trees", 1)[0]
        parts: dict[str, list] = {k: [] for k in ("feature", "threshold", "flags", "left", "right", "leaves",
                                                  "cat_start", "cat_len", "cat_values", "roots")}
        n_nodes = n_leaves = n_cat_values = 0
        for block in body.split("\nTree=") if body.strip() else []:
            tree = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if int(tree.get("is_linear", 0)):
                raise ValueError("linear trees cannot be compiled")
            leaf_value = np.array(tree["leaf_value"].split(), np.float64)
            k = int(tree["num_leaves"])
            if len(leaf_value) != k:
                raise ValueError("leaf count does not match num_leaves")
            if k == 1:
                parts["roots"].append(-(n_leaves + 1))
                parts["leaves"].append(leaf_value)
                n_leaves += 1
                continue

            def ints(key: str, tree=tree) -> np.ndarray:
                return np.array(tree[key].split(), np.int64)

            feature, decision = ints("split_feature"), ints("decision_type")
            threshold = np.array(tree["threshold"].split(), np.float64)
            left, right = ints("left_child"), ints("right_child")
            if not (len(feature) == len(decision) == len(threshold) == len(left) == len(right) == k - 1):
                raise ValueError("split arrays do not match num_leaves")
            cat_start, cat_len = np.zeros(k - 1, np.int64), np.zeros(k - 1, np.int64)
            categorical = (decision & 1).astype(bool)
            if categorical.any():
                bounds, words = ints("cat_boundaries"), np.array(tree["cat_threshold"].split(), np.uint64)
                for i in np.flatnonzero(categorical).tolist():
                    j = int(threshold[i])
                    bits = words[bounds[j]:bounds[j + 1]]
                    cats = np.flatnonzero((bits[:, None] >> np.arange(32, dtype=np.uint64)) & np.uint64(1))
                    cat_start[i], cat_len[i] = n_cat_values, len(cats)
                    parts["cat_values"].append(cats)
                    n_cat_values += len(cats)
                threshold = np.where(categorical, 0.0, threshold)

            parts["feature"].append(feature)
            parts["threshold"].append(threshold)
            parts["flags"].append(decision)
            for key, c in (("left", left), ("right", right)):  # to the ensemble's numbers: leaf l is -(l + 1)
                parts[key].append(np.where(c < 0, c - n_leaves, c + n_nodes))
            parts["leaves"].append(leaf_value)
            parts["cat_start"].append(cat_start)
            parts["cat_len"].append(cat_len)
            parts["roots"].append(n_nodes)
            n_nodes += k - 1
            n_leaves += k

        def cat(key: str, dtype) -> np.ndarray:
            items = parts[key]
            return np.concatenate([np.asarray(x, dtype).ravel() for x in items]) if items else np.zeros(0, dtype)

        i32 = np.int32
        return cls(np.asarray(parts["roots"], i32), cat("feature", i32), cat("threshold", np.float64),
                   cat("flags", np.uint8), cat("left", i32), cat("right", i32), cat("leaves", np.float64),
                   cat("cat_start", i32), cat("cat_len", i32), cat("cat_values", i32), n_features)

    @classmethod
    def from_booster(cls, booster: lgb.Booster) -> CompiledTrees:
        """The trees of a trained LightGBM regression booster (read from its model text)."""
        return cls.from_model_text(booster.model_to_string())

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of the trees' leaf values per row of ``X`` (float32 or float64, shape (n, n_features))."""
        X = _feature_block(X, self.n_features)
        out = np.empty(len(X), np.float64)
        if not len(X):
            return out
        missing = (self.flags >> 2) & 3
        if not (self.flags & 1).any() and not (missing == 1).any():
            # Numerical splits without zero-as-missing: NaN goes where LightGBM sends it through a per-node
            # substitute (missing type None: treated as 0.0; NaN: -inf/+inf for default left/right).
            nan_sub = np.where(missing == 2, np.where(self.flags & 2, -np.inf, np.inf), 0.0)
            kernel, args = _kernel("numeric"), (nan_sub, self.left, self.right, self.leaf_value)
        else:
            kernel, args = _kernel("general"), (self.flags, self.left, self.right, self.leaf_value, self.cat_start,
                                                self.cat_len, self.cat_values)

        def work(rows: slice) -> None:
            kernel(X[rows], self.roots, self.feature, self.threshold, *args, out[rows])

        _in_threads(len(X), work)
        return out


@dataclass
class Forest:
    """The trees of several boosters (one per arm) as one bit-vector table over binned features, scored together.

    Built by :meth:`from_trees` when every tree has at most 64 leaves and every split is numerical without
    zero-as-missing or categorical, and the table fits in :data:`MAX_TABLE_BYTES`; otherwise it is None and
    :class:`CompiledTrees` scores each booster. Its sums are those of :class:`CompiledTrees` bit for bit (the
    same leaves added in the same order per row), checked against ``lightgbm.Booster.predict`` in
    ``tests/fit/test_distill.py``. See :func:`_quick_py` for the method.
    """

    thresholds: np.ndarray  # float64: the numeric thresholds, sorted, feature after feature
    offsets: np.ndarray  # int64 (p + 1): where each feature's thresholds start
    categorical: np.ndarray  # uint8 (p): categorical features
    n_levels: np.ndarray  # int64 (p): the bin of an unknown category (one past the largest in any split)
    used: np.ndarray  # int64 (u): the features some split reads
    base: np.ndarray  # int64 (u): the first table row of each used feature
    table: np.ndarray  # uint64 (rows, trees): per bin of a feature, the AND of the masks it sends right
    arm_start: np.ndarray  # int64 (arms + 1): the first tree of each arm (the trees are arm after arm)
    leaves: np.ndarray  # float64 (trees, 64): leaf values, left to right
    n_arms: int
    n_features: int

    @classmethod
    def from_trees(cls, trees: list[CompiledTrees]) -> Forest | None:
        """One forest of the arms' compiled trees, or None when a tree or a split is of a kind it does not take."""
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
        if any(len(k) > 1 for k in kind):
            return None
        categorical = np.array([True in k for k in kind], np.uint8)
        sorted_thr = [np.array(sorted(x), np.float64) for x in thresholds]
        used = np.array([f for f in range(p) if kind[f]], np.int64)
        # rows per used feature: numeric bins 0..n_thr and the missing bin; categories 0..n_levels
        width = np.array([levels[f] + 1 if categorical[f] else len(sorted_thr[f]) + 2 for f in used], np.int64)
        base = np.cumsum(width) - width
        row_of = dict(zip(used.tolist(), base.tolist(), strict=True))
        n_trees = sum(len(t.roots) for t in trees)
        if int(width.sum()) * max(n_trees, 1) * 8 > MAX_TABLE_BYTES:
            return None
        table = np.full((int(width.sum()), n_trees), _ONES, np.uint64)
        leaves = np.zeros((n_trees, _MAX_LEAVES), np.float64)
        g = 0
        for t in trees:
            missing = (t.flags >> 2) & 3
            for root in t.roots.tolist():
                # leaves left to right, and each split's left-subtree leaf range [lo, hi)
                order: list[tuple[int, int, int]] = []
                n_leaves = 0
                stack: list[tuple[int, int]] = [(root, 0)]  # (node, 0: enter / 1: left done, lo on the stack)
                los: list[int] = []
                while stack:
                    node, state = stack.pop()
                    if node < 0:
                        if n_leaves == _MAX_LEAVES:
                            return None
                        leaves[g, n_leaves] = t.leaf_value[-node - 1]
                        n_leaves += 1
                    elif state == 0:
                        los.append(n_leaves)
                        stack.append((node, 1))
                        stack.append((int(t.left[node]), 0))
                    else:
                        order.append((node, los.pop(), n_leaves))
                        stack.append((int(t.right[node]), 0))
                for node, lo, hi in order:
                    mask = np.uint64((2**64 - 1) ^ (((1 << (hi - lo)) - 1) << lo))
                    f, flags = int(t.feature[node]), int(t.flags[node])
                    r0 = row_of[f]
                    if flags & 1:  # categorical: right unless the category is in the node's set
                        in_set = t.cat_values[t.cat_start[node]:t.cat_start[node] + t.cat_len[node]]
                        right = np.ones(levels[f] + 1, bool)
                        right[in_set] = False
                        table[r0 + np.flatnonzero(right), g] &= mask
                    else:
                        threshold = float(t.threshold[node])
                        j = int(np.searchsorted(sorted_thr[f], threshold))
                        n_thr = len(sorted_thr[f])
                        table[r0 + j + 1:r0 + n_thr + 1, g] &= mask  # bins above the threshold
                        # missing type NaN: the default direction; None: NaN is read as 0.0
                        nan_left = bool(flags & 2) if missing[node] == 2 else 0.0 <= threshold
                        if not nan_left:
                            table[r0 + n_thr + 1, g] &= mask
                g += 1
        i64 = np.int64
        return cls(np.concatenate([np.zeros(0), *sorted_thr]),
                   np.cumsum([0] + [len(x) for x in sorted_thr]).astype(i64), categorical, levels, used, base,
                   np.ascontiguousarray(table), np.cumsum([0] + [len(t.roots) for t in trees]).astype(i64), leaves,
                   len(trees), p)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Sum of each arm's trees per row of ``X`` (float32 or float64), shape (n, n_arms)."""
        X = _feature_block(X, self.n_features)
        out = np.zeros((len(X), self.n_arms), np.float64)
        if not len(X) or not self.table.shape[1]:
            return out
        kernel = _kernel("forest")

        def work(rows: slice) -> None:
            kernel(X[rows], self.used, self.categorical, self.thresholds, self.offsets, self.n_levels, self.base,
                   self.table, self.arm_start, self.leaves, _LOWEST, out[rows])

        _in_threads(len(X), work)
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

    The fitted trees are kept as LightGBM's text (``models_``) and scored by compiled code read from it
    (:meth:`CompiledTrees.from_model_text`): a loaded scorer needs no LightGBM.

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
    models_: list[str] = field(default_factory=list)  # LightGBM's text format per arm, what is saved
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
        self.models_, self.fidelity_, self._compiled = [], [], []
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
            self.models_.append(booster.model_to_string())
            self._compiled.append(CompiledTrees.from_model_text(self.models_[-1]))
            rows = val if val.any() else tr
            fid = _fidelity(teacher[rows, j], self._compiled[-1].predict(X[rows]))
            fid.update(trees=booster.num_trees(), on="held-out sample" if val.any() else "training sample")
            self.fidelity_.append(fid)
        self._forest = Forest.from_trees(self._compiled)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Uplift per row and treated arm, shape (n, n_treated)."""
        self._compile()
        if self._forest is not None:
            return self._forest.predict(X)
        return np.column_stack([c.predict(X) for c in self._compiled])

    def _compile(self) -> None:
        """The arms' trees read from :attr:`models_` and joined into one :class:`Forest`, once."""
        if not self._compiled:
            self._compiled = [CompiledTrees.from_model_text(m) for m in self.models_]
            self._forest = Forest.from_trees(self._compiled)

    def to_bytes(self) -> list[bytes]:
        """LightGBM's text format per arm (no pickle)."""
        return [m.encode() for m in self.models_]

    @classmethod
    def from_bytes(cls, models: list[bytes], fidelity: list[dict]) -> DistilledScorer:
        scorer = cls(models_=[m.decode() for m in models], fidelity_=list(fidelity))
        scorer._compile()  # at load: a damaged text raises ValueError here
        return scorer

    def n_trees(self) -> list[int]:
        """Trees per arm."""
        self._compile()
        return [len(c.roots) for c in self._compiled]

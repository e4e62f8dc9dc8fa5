"""A fast scorer: the chosen model distilled into one small tree ensemble per arm, evaluated by compiled code.

A study's prediction averages its K fold models (for a T-learner that is 2K boosters, for the ensemble every
learner's), i.e. thousands of trees per customer: tens of thousands of customers a second. Scoring a customer
base of hundreds of millions needs more. :class:`DistilledScorer` is fitted at the end of :meth:`Study.fit`
to reproduce the study's own prediction (the *teacher*, exactly what :meth:`Study.predict_uplift` returns) on a
random sample of training customers, with one LightGBM regressor of at most a few hundred shallow trees per
treated arm. Its **fidelity** to the teacher (R², correlation, overlap of the top 20%) is measured on sampled
customers it did not learn from and travels with the model, so a user sees what the speed costs.

The trees of all arms are scored together by :class:`~uplift.fit.trees.Forest`: each feature's value binned by
the forest's own thresholds, then one bit-vector AND per feature and tree (QuickScorer on bins; no branch on the
data inside a tree), compiled by numba and run in threads. :class:`~uplift.fit.trees.CompiledTrees`, a compiled
walk of LightGBM's decision rules, scores what the forest does not take (trees past 64 leaves, zero-as-missing
splits). A saved scorer's trees are read from LightGBM's model text without LightGBM. Both evaluators live in
:mod:`uplift.fit.trees` (the study's own boosters predict through them too) and are checked
against ``lightgbm.Booster.predict`` in ``tests/fit/test_trees.py``.

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

from dataclasses import dataclass, field

import numpy as np

from uplift.fit.trees import CompiledTrees, Forest

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

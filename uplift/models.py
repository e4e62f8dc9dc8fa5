"""Base models: the regressors and classifiers every learner is built from.

The default is LightGBM trained through its native API (early stopping on an inner validation split,
categorical features split natively, deterministic with a seed) and saved in LightGBM's own text format,
so a saved study never needs pickle for its default models. Any scikit-learn regressor or classifier can
be passed instead; it is cloned per fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
from sklearn.base import clone, is_classifier

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
    early_stopping: int = 40
    random_state: int = 0
    booster_: lgb.Booster | None = None
    constant_: float | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> LGBMModel:
        y = np.asarray(y, dtype=np.float64)
        if self.kind == "binary" and (y.min() == y.max()):
            # A class that never happens in this subset: its probability is the constant rate.
            self.constant_ = float(y[0])
            return self
        n = len(y)
        params = {
            **self.params, "objective": self.kind, "verbosity": -1, "seed": self.random_state,
            "deterministic": True, "force_col_wise": True,
            # Thread start-up and synchronisation outweigh the work on small fits.
            "num_threads": 1 if n < SMALL_FIT_ROWS else 0,
        }
        params["min_data_in_leaf"] = int(min(params["min_data_in_leaf"], max(5, n // 20)))
        cat = self.categorical or "auto"
        rng = np.random.default_rng(self.random_state)
        if n >= 1000:
            val = rng.random(n) < 0.1
            tr = ~val
            dtrain = lgb.Dataset(X[tr], y[tr], weight=None if weight is None else weight[tr],
                                 categorical_feature=cat, free_raw_data=True)
            dval = lgb.Dataset(X[val], y[val], weight=None if weight is None else weight[val],
                               reference=dtrain, categorical_feature=cat)
            booster = lgb.train(params, dtrain, num_boost_round=self.max_rounds, valid_sets=[dval],
                                callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
            # Refit-free: keep the early-stopped model (its 10% hold-out is the price of an honest stop).
            booster = booster if booster.best_iteration <= 0 else _trim(booster)
        else:
            dtrain = lgb.Dataset(X, y, weight=weight, categorical_feature=cat)
            booster = lgb.train(params, dtrain, num_boost_round=min(100, self.max_rounds))
        self.booster_ = booster
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.constant_ is not None:
            return np.full(len(X), self.constant_)
        return self.booster_.predict(X, num_threads=1 if len(X) < SMALL_FIT_ROWS else 0)

    def to_bytes(self) -> bytes:
        if self.constant_ is not None:
            return f"constant:{self.constant_!r}".encode()
        return self.booster_.model_to_string().encode()

    @classmethod
    def from_bytes(cls, data: bytes, kind: str = "regression") -> LGBMModel:
        text = data.decode()
        m = cls(kind)
        if text.startswith("constant:"):
            m.constant_ = float(text.split(":", 1)[1])
        else:
            m.booster_ = lgb.Booster(model_str=text)
        return m


def _trim(booster: lgb.Booster) -> lgb.Booster:
    """Drop the trees grown after the best validation round."""
    text = booster.model_to_string(num_iteration=booster.best_iteration)
    return lgb.Booster(model_str=text)


@dataclass
class SklearnModel:
    """Adapter for any scikit-learn estimator (classifiers predict the positive-class probability)."""

    estimator: object
    kind: str = "regression"
    fitted_: object | None = None

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> SklearnModel:
        est = clone(self.estimator)
        y = np.asarray(y)
        if is_classifier(est):
            y = y.astype(int)
            if len(np.unique(y)) < 2:
                self.fitted_ = float(y[0])
                return self
        kw = {} if weight is None else {"sample_weight": weight}
        self.fitted_ = est.fit(X, y, **kw)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if isinstance(self.fitted_, float):
            return np.full(len(X), self.fitted_)
        if is_classifier(self.fitted_):
            return self.fitted_.predict_proba(X)[:, 1]
        return np.asarray(self.fitted_.predict(X), dtype=np.float64)


@dataclass
class ModelFactory:
    """Makes fresh base models: LightGBM by default, or clones of user-supplied sklearn estimators."""

    regressor: object | None = None
    classifier: object | None = None
    categorical: list[int] = field(default_factory=list)
    random_state: int = 0

    def outcome(self, kind: str, seed: int = 0):
        user = self.classifier if kind == "binary" else self.regressor
        if user is not None:
            return SklearnModel(user, kind)
        objective = "binary" if kind == "binary" else "regression"
        return LGBMModel(objective, dict(NUISANCE_PARAMS), self.categorical, random_state=self.random_state + seed)

    def propensity(self, seed: int = 0):
        if self.classifier is not None:
            return SklearnModel(self.classifier, "binary")
        return LGBMModel("binary", dict(NUISANCE_PARAMS), self.categorical, random_state=self.random_state + seed)

    def effect(self, seed: int = 0):
        if self.regressor is not None:
            return SklearnModel(self.regressor, "regression")
        return LGBMModel("regression", dict(EFFECT_PARAMS), self.categorical, max_rounds=600,
                         random_state=self.random_state + seed)

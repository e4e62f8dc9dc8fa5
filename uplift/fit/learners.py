"""Uplift learners behind one protocol and a registry of short names.

Every learner answers one binary question, "arm vs control", and is given the cross-fitted nuisance
predictions it needs (outcome per arm ``mu0``/``mu1``, propensity ``e``) instead of refitting them: the
study fits each nuisance once per fold and hands it to every learner (see docs/concepts.md). The
final stages are the textbook estimators:

========  ===================================================================================
``s``     one outcome model with the treatment as a feature; uplift = f(x, 1) − f(x, 0)
``t``     μ₁(x) − μ₀(x)
``x``     X-learner (Künzel et al. 2019): imputed effects per arm, blended by the propensity
``dr``    DR-learner (Kennedy 2020): regression of the AIPW pseudo-outcome on x
``dr_linear``  the same with a ridge (linear) final stage: more bias, far less variance
``r``     R-learner (Nie & Wager 2021): weighted regression of residual ratios
``causal_forest``  econml's generalized random forest on DML residuals, with per-row CIs
``uplift_forest``  causalml's UpliftRandomForestClassifier (binary outcomes)
========  ===================================================================================

The forests are econml's and causalml's own implementations; the meta-learner final stages are a few
lines each and are checked against econml/causalml in ``tests/fit/test_learners.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from uplift.errors import UpliftInputError
from uplift.fit.models import LinearModel, ModelFactory, Rows

#: Propensities are clipped to this range inside pseudo-outcomes (overlap guard).
E_CLIP = (0.01, 0.99)


@dataclass
class Nuisance:
    """Nuisance predictions for a set of rows: outcome under control, under the arm, and propensity."""

    mu0: np.ndarray
    mu1: np.ndarray
    e: np.ndarray

    def subset(self, idx: np.ndarray) -> Nuisance:
        return Nuisance(self.mu0[idx], self.mu1[idx], self.e[idx])

    @property
    def e_clipped(self) -> np.ndarray:
        return np.clip(self.e, *E_CLIP)


def aipw_scores(y: np.ndarray, t: np.ndarray, nuis: Nuisance) -> np.ndarray:
    """Doubly-robust (AIPW) pseudo-outcome per row; its mean over a group estimates the group's uplift.

    Examples
    --------
    >>> import numpy as np
    >>> n = Nuisance(np.zeros(4), np.ones(4), np.full(4, 0.5))
    >>> aipw_scores(np.array([1., 0., 1., 1.]), np.array([1, 0, 0, 1]), n).tolist()
    [1.0, 1.0, -1.0, 1.0]
    """
    e = nuis.e_clipped
    return nuis.mu1 - nuis.mu0 + t * (y - nuis.mu1) / e - (1 - t) * (y - nuis.mu0) / (1 - e)


def overlap_weights(e: np.ndarray) -> np.ndarray | None:
    """Per-row weight ``e(1 − e)`` of the (clipped) propensity, scaled to mean 1; None when every row's is the same.

    The AIPW score's conditional variance grows like ``1 / (e(1 − e))``: where one arm is rare the score is
    mostly noise, and where the propensity is clipped it is mostly the outcome models' own ``μ₁ − μ₀`` (so a
    learner built from those models agrees with it by construction). Weighting by ``e(1 − e)`` is inverse-variance
    weighting under a common outcome noise, the overlap weighting of Li, Morgan & Zaslavsky (2018): conditional
    on ``x`` the weight is fixed, so a regression of the score on ``x`` still targets τ(x), and a loss weighted so
    estimates the overlap-weighted PEHE. The DR final stages, the stacked ensemble and the DR-loss selection all
    weight by it; in a randomised design every weight is 1 and nothing changes.

    Examples
    --------
    >>> overlap_weights(np.array([0.5, 0.1, 0.001])).round(3).tolist()  # e = 0.001 is clipped to 0.01
    [2.143, 0.772, 0.085]
    >>> overlap_weights(np.full(3, 0.3)) is None
    True
    """
    e = np.clip(np.asarray(e, dtype=np.float64), *E_CLIP)
    if e.size == 0 or e.min() == e.max():
        return None
    h = e * (1.0 - e)
    return h / h.mean()


@dataclass
class Learner:
    """Protocol every learner follows. ``fit`` learns the final stage; ``predict`` returns the uplift."""

    name: ClassVar[str] = ""
    needs_binary_outcome: ClassVar[bool] = False
    gives_intervals: ClassVar[bool] = False
    #: Train on the current fold's own nuisance models (fit on the training folds) instead of the shared
    #: out-of-fold nuisances. Clean for learners that only evaluate each arm's outcome model on the *other*
    #: arm's rows (never in-sample), like the X-learner: the study fills only those (mu0 on treated rows, mu1
    #: on control rows; NaN elsewhere).
    in_fold_nuisance: ClassVar[bool] = False
    #: Whether ``fit`` reads the nuisances of its training rows (if not, the study skips copying them).
    uses_nuisance: ClassVar[bool] = True
    #: Whether ``predict`` reads the nuisances of the rows it scores (if no learner scored does, scoring new
    #: customers skips predicting the fold's outcome and propensity models).
    predict_uses_nuisance: ClassVar[bool] = False
    #: Whether ``fit`` trains its models on the rows of both arms together (True) or on each arm's rows apart.
    #: A pooled learner's models would each take a uniform sample under the training-row cap anyway, so the
    #: study hands it such a sample directly and never builds its per-row inputs for the other rows.
    pooled: ClassVar[bool] = True
    models_: dict = field(default_factory=dict)

    def fit(self, X: np.ndarray, t: np.ndarray, y: np.ndarray, nuis: Nuisance, factory: ModelFactory,
            kind: str, seed: int = 0) -> Learner:
        raise NotImplementedError

    def predict(self, X: np.ndarray, nuis: Nuisance) -> np.ndarray:
        raise NotImplementedError

    def predict_interval(self, X: np.ndarray, nuis: Nuisance, alpha: float = 0.05):
        raise NotImplementedError(f"learner {self.name!r} gives no per-row intervals")


class TLearner(Learner):
    name = "t"
    uses_nuisance = False  # the fit is a no-op: the per-arm outcome models are the nuisances
    predict_uses_nuisance = True
    pooled = False

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        return self  # the per-arm outcome models are the nuisances

    def predict(self, X, nuis):
        return nuis.mu1 - nuis.mu0


class SLearner(Learner):
    name = "s"
    uses_nuisance = False  # one outcome model with the treatment as a feature

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        # The treatment is appended as the last column; categorical indices of X are unchanged.
        Xt = X.with_treatment() if isinstance(X, Rows) else np.column_stack([X, t.astype(np.float32)])
        self.models_["s"] = factory.outcome(kind, seed).fit(Xt, y)
        return self

    def predict(self, X, nuis):
        m = self.models_["s"]
        n = len(X)
        Xt = np.column_stack([X, np.ones(n, np.float32)])
        Xc = np.column_stack([X, np.zeros(n, np.float32)])
        return m.predict(Xt) - m.predict(Xc)


class XLearner(Learner):
    name = "x"
    in_fold_nuisance = True  # mu0 is used on treated rows and mu1 on control rows only: never in-sample
    predict_uses_nuisance = True  # the propensity blends the two effect models
    pooled = False  # one effect model per arm: a small control arm keeps all its rows under the cap

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        tr, co = t == 1, t == 0
        self.models_["tau1"] = factory.effect(seed).fit(X[tr], y[tr] - nuis.mu0[tr])
        self.models_["tau0"] = factory.effect(seed + 1).fit(X[co], nuis.mu1[co] - y[co])
        return self

    def predict(self, X, nuis):
        e = nuis.e_clipped
        return e * self.models_["tau0"].predict(X) + (1 - e) * self.models_["tau1"].predict(X)


class DRLearner(Learner):
    name = "dr"

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        self.models_["tau"] = factory.effect(seed).fit(X, aipw_scores(y, t, nuis), weight=overlap_weights(nuis.e))
        return self

    def predict(self, X, nuis):
        return self.models_["tau"].predict(X)


class RLearner(Learner):
    name = "r"

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        e = nuis.e_clipped
        # Residuals in the precision of the nuisances (float32 out of fold): at 14M training rows every
        # float64 temporary here would cost ~90 MB.
        t_res = t - e
        y_res = y - (e * nuis.mu1 + (1 - e) * nuis.mu0)
        y_res /= t_res
        t_res *= t_res
        self.models_["tau"] = factory.effect(seed).fit(X, y_res, weight=t_res)
        return self

    def predict(self, X, nuis):
        return self.models_["tau"].predict(X)


def _fill(X: np.ndarray) -> np.ndarray:
    # Forest libraries reject NaN; a sentinel below every value lets a split isolate "missing".
    X = np.asarray(X)
    return np.where(np.isnan(X), np.float32(-1e9), X).astype(np.float32)


class CausalForestLearner(Learner):
    """econml's honest generalized random forest fit on DML residuals (as CausalForestDML does)."""

    name = "causal_forest"
    gives_intervals = True
    n_estimators: ClassVar[int] = 200
    max_rows: ClassVar[int] = 200_000

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        from econml.grf import CausalForest

        e = nuis.e_clipped
        m = e * nuis.mu1 + (1 - e) * nuis.mu0
        n = len(y)
        # Forest cost grows faster than linearly; past max_rows, grow each tree on a subsample.
        max_samples = min(0.45, self.max_rows / n) if n > self.max_rows else 0.45
        forest = CausalForest(
            n_estimators=self.n_estimators, criterion="het", min_samples_leaf=max(5, n // 2000),
            max_samples=max_samples, honest=True, inference=True, fit_intercept=False,
            n_jobs=1, random_state=seed,
        )
        forest.fit(_fill(X), (t - e).reshape(-1, 1), y - m)
        self.models_["forest"] = forest
        return self

    def predict(self, X, nuis):
        return self.models_["forest"].predict(_fill(X)).ravel()

    def predict_interval(self, X, nuis, alpha=0.05):
        lo, hi = self.models_["forest"].predict_interval(_fill(X), alpha=alpha)
        return lo.ravel(), hi.ravel()


class UpliftForestLearner(Learner):
    """causalml's UpliftRandomForestClassifier (KL-divergence splits); binary outcomes only."""

    name = "uplift_forest"
    needs_binary_outcome = True
    uses_nuisance = False
    n_estimators: ClassVar[int] = 100

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        from causalml.inference.tree import UpliftRandomForestClassifier

        forest = UpliftRandomForestClassifier(
            control_name="0", n_estimators=self.n_estimators, max_depth=8,
            min_samples_leaf=max(100, len(y) // 500), min_samples_treatment=10,
            max_features=min(10, X.shape[1]), random_state=seed, n_jobs=1,
        )
        forest.fit(_fill(X), treatment=np.where(t == 1, "1", "0"), y=y.astype(int))
        self.models_["forest"] = forest
        return self

    def predict(self, X, nuis):
        return np.asarray(self.models_["forest"].predict(_fill(X))).reshape(len(X), -1)[:, 0]


#: The linear final stage learns from at most this many rows (a fixed random sample): a few dozen
#: coefficients need no more, and it bounds the ridge's leave-one-out work (three float64 arrays the size of the design,
#: ~500 bytes a row) at large n.
LINEAR_MAX_ROWS = 500_000


class DRLinearLearner(Learner):
    """DR-learner with a ridge-regularised *linear* final stage (the family of econml DRLearner's default).

    The AIPW pseudo-outcome is very noisy when conversions are rare: a linear projection of it is biased where
    uplift is not linear in the features, but has far less variance than a tree final stage. The study's
    cross-fitted DR loss decides per dataset whether that trade pays, and the stacked ensemble can mix it in.
    """

    name = "dr_linear"

    def fit(self, X, t, y, nuis, factory, kind, seed=0):
        n = len(t)
        keep = np.arange(n)
        if n > LINEAR_MAX_ROWS:
            keep = np.sort(np.random.default_rng(seed).choice(n, LINEAR_MAX_ROWS, replace=False))
        if isinstance(X, Rows):
            mask = np.zeros(n, bool)
            mask[keep] = True
            Xk = X[mask]
        else:
            Xk = X[keep]
        sub = nuis.subset(keep)
        # Plain numbers: predicts with numpy and is saved as JSON, so no pickle is ever needed.
        self.models_["tau"] = LinearModel.fit(Xk, aipw_scores(y[keep], t[keep], sub), factory.categorical,
                                              weight=overlap_weights(sub.e))
        return self

    def predict(self, X, nuis):
        return self.models_["tau"].predict(np.asarray(X, dtype=np.float32))


REGISTRY: dict[str, type[Learner]] = {
    cls.name: cls
    for cls in (SLearner, TLearner, XLearner, RLearner, DRLearner, DRLinearLearner, CausalForestLearner,
                UpliftForestLearner)
}
#: Fast, accurate on every simulator tried, and combinable: the default candidate set of a study.
DEFAULT_LEARNERS = ("t", "x", "dr", "dr_linear", "r", "s")


def make_learner(name: str) -> Learner:
    """Return a fresh learner by short name.

    Examples
    --------
    >>> make_learner("dr").name
    'dr'
    """
    try:
        return REGISTRY[name]()
    except KeyError:
        raise UpliftInputError(
            f"unknown learner {name!r}; choose from {', '.join(REGISTRY)} (or 'ensemble' when selecting)"
        ) from None

"""Fitting: base models, the learners behind one protocol and registry, cross-fitting, the distilled scorer.

:func:`cross_fit` produces every out-of-fold array a study needs (nuisances, doubly-robust scores, each
learner's uplift) and the fold models that score new customers; :class:`FitResult` is the frozen record of a
whole fitted study that :mod:`uplift.persist` saves and loads.
"""

from uplift.fit.crossfit import CrossFit, FoldModels, ProgressHook, cross_fit, predict_uplift
from uplift.fit.distill import FAST, DistilledScorer
from uplift.fit.learners import DEFAULT_LEARNERS, REGISTRY, Learner, make_learner
from uplift.fit.models import MAX_TRAIN_ROWS, ModelFactory

__all__ = [
    "DEFAULT_LEARNERS", "FAST", "MAX_TRAIN_ROWS", "REGISTRY", "CrossFit", "DistilledScorer", "FoldModels",
    "Learner", "ModelFactory", "ProgressHook", "cross_fit", "make_learner", "predict_uplift",
]

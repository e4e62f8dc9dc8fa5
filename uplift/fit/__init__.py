"""Fitting: base models, the learners behind one protocol and registry, the one nuisance cross-fitting loop,
cross-fitting of the learners, the distilled scorer, and the fitted-result record.

:func:`cross_fit` produces every out-of-fold array a study needs (nuisances, doubly-robust scores, each
learner's uplift) and the fold models that score new customers; :func:`fit_nuisances` is the one loop that
fits out-of-fold outcome and propensity models for it, for the design checks and for refutation;
:class:`FitResult` is the frozen record of a whole fitted study that :mod:`uplift.persist` saves and loads.
"""

from uplift.fit.crossfit import CrossFit, cross_fit, predict_uplift
from uplift.fit.distill import FAST, DistilledScorer
from uplift.fit.learners import DEFAULT_LEARNERS, REGISTRY, Learner, make_learner
from uplift.fit.models import MAX_TRAIN_ROWS, ModelFactory
from uplift.fit.nuisance import FoldModels, cross_fit_aipw, cross_fit_propensity, fit_nuisances, make_folds
from uplift.fit.progress import NoProgress, ProgressHook
from uplift.fit.result import FitResult, TrainingSummary

__all__ = [
    "DEFAULT_LEARNERS", "FAST", "MAX_TRAIN_ROWS", "REGISTRY", "CrossFit", "DistilledScorer", "FitResult",
    "FoldModels", "Learner", "ModelFactory", "NoProgress", "ProgressHook", "TrainingSummary", "cross_fit",
    "cross_fit_aipw", "cross_fit_propensity", "fit_nuisances", "make_folds", "make_learner", "predict_uplift",
]

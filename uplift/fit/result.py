"""The record of a fitted study: everything a fit produced, frozen, and what it can do without training data.

A :class:`FitResult` holds the cross-fitted arrays and fold models (:class:`~uplift.fit.crossfit.CrossFit`),
the leaderboard and chosen learner, the average effects, the calibration table, the design checks, the drift
profile of the training customers, the distilled fast scorer and the fit parameters. :mod:`uplift.persist`
saves and loads exactly this record; every analysis takes ``(result, data)`` explicitly, so a model loaded
without its training data is simply a result without data, not a special case checked at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from uplift.data.campaign import FeatureSchema
from uplift.design.drift import drift_from_profile
from uplift.errors import UpliftInputError
from uplift.fit.crossfit import CrossFit, predict_propensity, predict_uplift
from uplift.fit.distill import FAST, DistilledScorer


@dataclass(frozen=True)
class TrainingSummary:
    """What a result remembers of its training rows (the rows themselves are not kept).

    ``arm_counts`` maps arm label to rows; ``data_sha256`` is :func:`uplift.data.data_hash` of the training
    arrays (feature matrix, arm codes, modelled outcome).
    """

    n: int
    arm_counts: dict[str, int]
    outcome_kinds: dict[str, str]
    data_sha256: str


@dataclass(frozen=True)
class FitResult:
    """Everything one fit of a study produced.

    Attributes
    ----------
    schema : FeatureSchema
        The features and their encoding; it encodes new customers the same way.
    roles : dict
        Column roles (treatment, outcomes, control, features, exclude, id, propensity, declared design,
        pre-treatment features).
    arms : tuple of str
        Arm labels, control first.
    design : {"rct", "observational"}
        The design the study was analysed as (``auto`` resolved by the balance check).
    notes : tuple of str
        What validation and the design checks found, in words.
    crossfit : CrossFit
        Out-of-fold arrays (nuisances, doubly-robust scores, each learner's uplift) and the fold models.
    best_learner : str
        The learner chosen by the leaderboard.
    leaderboard, ate, calibration : DataFrame
        Cross-fitted scores per learner; average effects per arm and outcome; calibration by decile.
    diagnostics : Mapping
        The design checks (SRM, balance, overlap, leakage, outcome proxies); see :mod:`uplift.design.checklist`.
    profile : dict
        Training-data profile for drift checks (:func:`uplift.design.drift.training_profile`).
    scorer : DistilledScorer or None
        The distilled fast scorer of the chosen learner.
    fit_params : dict
        The parameters of the fit (learners, folds, seed, selection, bootstrap, k, training-row cap) and what early
        stopping chose: ``trees``, the trees kept per LightGBM model and fold
        (:func:`uplift.fit.crossfit.tree_counts`; absent for models saved before it was recorded); after a raced
        fit (``Study.fit(race=True)``) also ``race``, the rungs of :func:`uplift.evaluate.selection.race_learners`.
    training : TrainingSummary
        Size, arm counts, outcome kinds and fingerprint of the training data.
    manifest : dict
        The model directory's manifest when the result was loaded from disk (package versions, hashes).
    timings : dict
        Wall seconds per phase of the fit, in the order they ran (read, validation, design checks, each
        nuisance, each learner, ensemble, leaderboard, effects, calibration, drift profile, distillation, save);
        see :class:`uplift.fit.progress.PhaseTimes`. Empty for a model saved before they were recorded.
    """

    schema: FeatureSchema
    roles: Mapping
    arms: tuple[str, ...]
    design: str
    notes: tuple[str, ...]
    crossfit: CrossFit
    best_learner: str
    leaderboard: pd.DataFrame
    ate: pd.DataFrame
    calibration: pd.DataFrame
    diagnostics: Mapping
    profile: dict
    scorer: DistilledScorer | None
    fit_params: dict
    training: TrainingSummary
    manifest: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------ facts
    @property
    def outcome(self) -> str:
        """The modelled outcome column."""
        return self.crossfit.outcome

    @property
    def kind(self) -> str:
        """``"binary"`` (conversion) or ``"continuous"`` (e.g. revenue): the modelled outcome's kind."""
        return self.crossfit.kind

    @property
    def treated_arms(self) -> tuple[str, ...]:
        """The treated arms (coupons), in order."""
        return tuple(self.arms[1:])

    @property
    def id_column(self) -> str | None:
        """The customer id column, if the study declared one."""
        return self.roles.get("id")

    def arm_code(self, arm: str | None) -> int:
        """The code (1, 2, ...) of a treated arm; ``None`` is the first treated arm."""
        if arm is None:
            return 1
        if str(arm) not in self.arms[1:]:
            raise UpliftInputError(f"arm {arm!r} is not a treated arm; choose from {', '.join(self.arms[1:])}")
        return self.arms.index(str(arm))

    def oof_uplift(self, learner: str | None = None) -> np.ndarray:
        """Out-of-fold uplift of the training rows, shape (n, n_treated_arms).

        ``learner="fast"`` (the distilled scorer) stands for the chosen learner it imitates.
        """
        learner = learner or self.best_learner
        return self.crossfit.uplift[self.best_learner if learner == FAST else self._learner(learner)]

    def _learner(self, learner: str | None) -> str:
        learner = learner or self.best_learner
        if learner != FAST and learner not in self.crossfit.uplift:
            raise UpliftInputError(f"learner {learner!r} was not fitted; fitted: {', '.join(self.crossfit.uplift)}")
        return learner

    # ------------------------------------------------------------------ new customers
    def predict_uplift(self, data: pd.DataFrame, *, learner: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Predicted uplift for new customers (one row per input row).

        Columns: the id column (when declared and present), ``uplift`` (for several arms: ``uplift_<arm>`` per
        arm, plus ``best_arm`` and ``uplift`` of the best arm), and ``uplift_lower``/``uplift_upper`` when the
        learner gives per-row intervals (``causal_forest``). Observational studies add ``propensity`` (for several
        arms ``propensity_<arm>``) and ``overlap``: True when every arm's propensity lies inside the study's
        trimming bounds (:meth:`overlap_bounds`); a customer outside them resembles only one arm of the study,
        so their uplift is an extrapolation (``targeting_list(..., skip_extrapolated=True)`` leaves them out).

        With ``learner="fast"`` the chosen model's distilled scorer answers instead of the fold models (one small
        compiled tree ensemble per arm, about 2.5 million customers a second on two cores, ~1 million a second from a
        Parquet file end to end; see :mod:`uplift.fit.distill` and ``benchmarks/results/predict_fast.md``).
        """
        if not isinstance(data, pd.DataFrame):
            raise UpliftInputError(f"expected a pandas DataFrame, got {type(data).__name__}")
        learner = self._learner(learner)
        X = self.schema.encode(data)
        up, lo, hi = self.score(X, learner=learner, alpha=alpha)
        out = self.uplift_frame(data, up, lo, hi)
        overlap = self.overlap(X)
        if overlap is not None:
            for name, values in self.overlap_columns(*overlap).items():
                out[name] = values
        return out

    def score(self, X: np.ndarray, *, learner: str | None = None,
              alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Uplift per treated arm of encoded customers (``X`` from :meth:`FeatureSchema.encode
        <uplift.data.campaign.FeatureSchema.encode>`): ``(uplift, lower, upper)``, each (n, n_treated), the
        bounds None unless the learner gives per-row intervals. :meth:`predict_uplift` is this on a table; the
        scoring service calls it on the columns of a request."""
        learner = self._learner(learner)
        if learner == FAST:
            if self.scorer is None:
                raise UpliftInputError("this model has no fast scorer (saved by an older uplift); refit it, or "
                                       "score with the full model (no --fast)")
            return self.scorer.predict(X), None, None
        return predict_uplift(self.crossfit, X, learner, alpha=alpha)

    def overlap_bounds(self) -> dict[str, tuple[float, float]]:
        """Per treated arm, the propensity range ``(α, 1 − α)`` of the customers with overlap (Crump et al.'s
        rule on the study's out-of-fold propensities, see :mod:`uplift.effects.average`); empty for a
        randomised design or a model saved before the bounds were recorded."""
        return dict(self._overlap_bounds)

    @cached_property
    def _overlap_bounds(self) -> dict[str, tuple[float, float]]:
        # Read once from the ATE table: scoring asks on every call (a service on every request).
        t = self.ate
        if self.design != "observational" or "trim_lower" not in t:
            return {}
        rows = t[(t["outcome"] == self.outcome) & (t["estimand"] == "ATE")]
        return {r.arm: (float(r.trim_lower), float(r.trim_upper)) for r in rows.itertuples()
                if np.isfinite(r.trim_lower)}

    def training_overlap(self) -> np.ndarray | None:
        """Whether each training row lies inside :meth:`overlap_bounds` (by its out-of-fold propensity, every
        arm), or None when the study has no bounds: the training-row side of ``overlap`` for honest values."""
        bounds, e = self.overlap_bounds(), self.crossfit.e
        if not bounds or e is None:
            return None
        return self._inside(e[:, 1:])

    def overlap(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The propensity per treated arm (n, n_treated) of encoded customers and whether each lies inside the
        study's overlap (:meth:`overlap_bounds`, every arm), or None when the study has no bounds (randomised)."""
        if not self._overlap_bounds:
            return None
        e = predict_propensity(self.crossfit, X)
        return e, self._inside(e)

    def _inside(self, e: np.ndarray) -> np.ndarray:
        bounds = self._overlap_bounds
        inside = np.ones(len(e), dtype=bool)
        for j, arm in enumerate(self.arms[1:]):
            lo, hi = bounds.get(arm, (0.0, 1.0))
            inside &= (e[:, j] >= lo) & (e[:, j] <= hi)
        return inside

    def overlap_columns(self, propensity: np.ndarray, inside: np.ndarray) -> dict[str, np.ndarray]:
        """The columns :meth:`predict_uplift` adds for :meth:`overlap`: ``propensity`` (several arms:
        ``propensity_<arm>``) and ``overlap``."""
        treated = self.arms[1:]
        names = ["propensity"] if len(treated) == 1 else [f"propensity_{arm}" for arm in treated]
        return {**{name: propensity[:, j] for j, name in enumerate(names)}, "overlap": inside}

    def uplift_columns(self) -> list[str]:
        """Names of the per-arm uplift columns of :meth:`predict_uplift`."""
        treated = self.arms[1:]
        return ["uplift"] if len(treated) == 1 else [f"uplift_{a}" for a in treated]

    def interval_columns(self) -> tuple[list[str], list[str]]:
        """Names of the lower and upper bound columns of :meth:`predict_uplift`, per arm (present when the
        learner gives per-customer intervals)."""
        up = self.uplift_columns()
        return [f"{c}_lower" for c in up], [f"{c}_upper" for c in up]

    def uplift_frame(self, data: pd.DataFrame, up: np.ndarray, lo: np.ndarray | None,
                     hi: np.ndarray | None) -> pd.DataFrame:
        """The table :meth:`predict_uplift` returns, from per-arm uplift (and interval) arrays."""
        id_col = self.id_column
        ids = {id_col: data[id_col].to_numpy()} if id_col and id_col in data.columns else {}
        return pd.DataFrame({**ids, **self.uplift_table(up, lo, hi)}, index=pd.RangeIndex(len(data)))

    def uplift_table(self, up: np.ndarray, lo: np.ndarray | None, hi: np.ndarray | None) -> dict[str, np.ndarray]:
        """The columns of :meth:`uplift_frame` after the id, as arrays: ``uplift`` (several arms:
        ``uplift_<arm>`` per arm, then ``best_arm`` and the best arm's ``uplift``) and the interval columns."""
        out = {}
        lower, upper = self.interval_columns()
        for j, name in enumerate(self.uplift_columns()):
            out[name] = up[:, j]
            if lo is not None:
                out[lower[j]], out[upper[j]] = lo[:, j], hi[:, j]
        treated = self.arms[1:]
        if len(treated) > 1:
            best = up.argmax(axis=1)
            out["best_arm"] = np.asarray(treated, dtype=object)[best]
            out["uplift"] = up[np.arange(len(up)), best]
        return out

    def drift(self, data: pd.DataFrame, *, uplift: pd.DataFrame | np.ndarray | None = None, **kwargs) -> dict:
        """How far customers to score are from the training customers (PSI, unseen levels, missing shares,
        predicted-uplift shift); see :func:`uplift.design.drift.drift_from_profile` for thresholds."""
        if uplift is None:
            uplift = self.predict_uplift(data)
        if isinstance(uplift, pd.DataFrame):
            uplift = uplift[self.uplift_columns()].to_numpy()
        return drift_from_profile(self.profile, data, self.schema, score_uplift=uplift, **kwargs)

    @property
    def fast_fidelity(self) -> pd.DataFrame:
        """How closely the fast scorer reproduces the chosen model, per arm, on sampled customers it did not
        learn from: R², correlation, mean absolute error (outcome units) and overlap of the top 20%."""
        cols = ["arm", "n", "r2", "corr", "mean_abs_error", "teacher_sd", "top20_overlap", "trees", "on"]
        if self.scorer is None:
            return pd.DataFrame(columns=cols)
        return pd.DataFrame([{"arm": arm, **fid} for arm, fid in zip(self.arms[1:], self.scorer.fidelity_,
                                                                     strict=True)], columns=cols)

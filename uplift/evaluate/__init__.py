"""Honest evaluation: uplift metrics as plain functions of ``(y_true, uplift, treatment)`` (scikit-uplift's
definitions), the cross-fitted leaderboard with bootstrap CIs and DR loss, model selection and calibration."""

from uplift.evaluate.metrics import (
    qini_auc_score,
    qini_curve,
    uplift_at_k,
    uplift_auc_score,
    uplift_by_decile,
    uplift_curve,
)
from uplift.evaluate.selection import best_learner, calibration, dr_loss, leaderboard

__all__ = [
    "best_learner", "calibration", "dr_loss", "leaderboard", "qini_auc_score", "qini_curve", "uplift_at_k",
    "uplift_auc_score", "uplift_by_decile", "uplift_curve",
]

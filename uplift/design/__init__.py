"""Design checks: was the split as declared, are the arms comparable, can the features be trusted, and will the
customers to score look like the training customers?

Sample-ratio mismatch, covariate balance (SMD and a cross-fitted propensity AUC), overlap and trimming, leakage
and outcome proxies, E-values and DoWhy refutation (:mod:`uplift.design.checks`, :mod:`uplift.design.refute`),
and drift between training and scoring data (:mod:`uplift.design.drift`). Every function takes arrays or tables.
"""

from uplift.design.checks import (
    balance_auc,
    balance_table,
    crump_bounds,
    declared_split,
    delong_auc,
    e_value,
    ipw_weights,
    leakage_check,
    outcome_proxy_check,
    overlap_summary,
    sample_ratio_check,
    srm_test,
    trim_mask,
)
from uplift.design.drift import drift_from_profile, drift_report, psi, training_profile
from uplift.design.refute import dowhy_refute

__all__ = [
    "balance_auc", "balance_table", "crump_bounds", "declared_split", "delong_auc", "dowhy_refute",
    "drift_from_profile", "drift_report", "e_value", "ipw_weights", "leakage_check", "outcome_proxy_check",
    "overlap_summary", "psi", "sample_ratio_check", "srm_test", "training_profile", "trim_mask",
]

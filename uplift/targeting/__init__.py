"""Targeting: who gets which coupon under a budget, what that is expected to earn (honestly, with CIs), the
holdout that lets the campaign measure itself, and the readout afterwards."""

from uplift.targeting.allocation import (
    Allocation,
    allocate,
    allocation_arms,
    baseline_policies,
    exact_allocation,
    policy_value,
    profit_curve,
)
from uplift.targeting.holdout import assign_holdout, minimum_detectable_uplift, uplift_deciles
from uplift.targeting.lists import TargetingResult, parse_costs, targeting_list
from uplift.targeting.readouts import readout

__all__ = [
    "Allocation", "TargetingResult", "allocate", "allocation_arms", "assign_holdout", "baseline_policies",
    "exact_allocation", "minimum_detectable_uplift", "parse_costs", "policy_value", "profit_curve", "readout",
    "targeting_list", "uplift_deciles",
]

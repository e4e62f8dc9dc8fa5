"""Targeting: who gets which coupon under a budget, what that is expected to earn (honestly, with CIs), the
holdout that lets the campaign measure itself, and the readout afterwards."""

from uplift.targeting.allocation import (
    Allocation,
    TargetingRule,
    allocate,
    allocation_arms,
    baseline_policies,
    check_rule,
    exact_allocation,
    policy_value,
    profit_curve,
)
from uplift.targeting.economics import (
    costs_and_value,
    exclusion_keys,
    exclusion_mask,
    parse_costs,
    read_exclusions,
)
from uplift.targeting.holdout import assign_holdout, minimum_detectable_uplift, uplift_deciles
from uplift.targeting.lists import (
    TargetingResult,
    honest_profit_curve,
    honest_rule,
    list_summary,
    profit_warning,
    targeting_list,
)
from uplift.targeting.readouts import readout

__all__ = [
    "Allocation", "TargetingResult", "TargetingRule", "allocate", "allocation_arms", "assign_holdout",
    "baseline_policies", "check_rule", "costs_and_value", "exact_allocation", "exclusion_keys", "exclusion_mask",
    "honest_profit_curve", "honest_rule", "list_summary", "minimum_detectable_uplift", "parse_costs", "policy_value",
    "profit_curve", "profit_warning", "read_exclusions", "readout", "targeting_list", "uplift_deciles",
]

"""Campaign data to learn and test on: two real randomised experiments and a simulator with known truth.

- :func:`load_hillstrom` -- MineThatData e-mail experiment (64,000 customers, two e-mails + control).
- :func:`load_starbucks` -- Starbucks promotion experiment (84,534 customers, promotion yes/no).
- :func:`simulate_campaign` -- a coupon campaign (RCT or observational, one or several coupons) whose
  per-customer uplift is known, with :func:`true_ate` for its average.
- :func:`simulate_events` -- an e-commerce event log and a randomised coupon campaign (behaviour drives the
  purchase propensity and the coupon's effect), with each customer's true uplift and latent traits.

The real data ship inside the package (``uplift/datasets/data/``) and load offline.
"""

from uplift.datasets._events import EventLog, simulate_events
from uplift.datasets._loaders import load_hillstrom, load_starbucks
from uplift.datasets._simulate import (
    UPLIFT_DRIVERS,
    UPLIFT_DRIVERS_SINGLE,
    arm_names,
    simulate_campaign,
    true_ate,
)

__all__ = [
    "UPLIFT_DRIVERS", "UPLIFT_DRIVERS_SINGLE", "EventLog", "arm_names", "load_hillstrom", "load_starbucks",
    "simulate_campaign", "simulate_events", "true_ate",
]

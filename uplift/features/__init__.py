"""Point-in-time behaviour features from event logs: the step from a warehouse's events to a campaign table.

:func:`build_features` joins an event log to the campaign's customers in DuckDB and computes, strictly before
each customer's exposure, recency, frequency and monetary value per event type and window, category and channel
shares, trend, average order value and redeem / return rates, plus the outcome over a follow-up window after
exposure. Its schema records every window; a window reaching past an exposure is refused (the leakage guard).
"""

from uplift.features.behaviour import DEFAULT_WINDOWS, FeatureTable, build_features, parse_outcome, schema_path

__all__ = ["DEFAULT_WINDOWS", "FeatureTable", "build_features", "parse_outcome", "schema_path"]

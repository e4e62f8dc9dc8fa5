"""What the campaign caused: average effects (ATE/ATT), uplift per segment, and what drives uplift (SHAP)."""

from uplift.effects.average import aipw_ate, average_effects, diff_in_means
from uplift.effects.explanation import Explanation, explain
from uplift.effects.segments import discover_segments, segment_uplift

__all__ = ["Explanation", "aipw_ate", "average_effects", "diff_in_means", "discover_segments", "explain",
           "segment_uplift"]

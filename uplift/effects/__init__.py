"""What the campaign caused: average effects (ATE/ATT), uplift per segment, and what drives uplift (SHAP).

Every analysis takes the fitted result and the data it was fitted on, ``(result, data)``.
"""

from uplift.effects.average import aipw_ate, average_effects, diff_in_means
from uplift.effects.explanation import Explanation, explain, explain_arms
from uplift.effects.segments import default_segment_columns, discover_segments, segment_uplift

__all__ = ["Explanation", "aipw_ate", "average_effects", "default_segment_columns", "diff_in_means",
           "discover_segments", "explain", "explain_arms", "segment_uplift"]

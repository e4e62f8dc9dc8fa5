"""uplift: what did (or will) this personalised campaign cause?

The public API is small: a :class:`Study` for notebooks and the :class:`FitResult` it fits, the dataset loaders
and simulator, the metric functions, and the learner registry. Everything else is reachable from its stage's
package (``uplift.data``, ``uplift.design``, ``uplift.fit``, ``uplift.evaluate``, ``uplift.effects``,
``uplift.targeting``, ``uplift.persist``, ``uplift.viz``); docs/architecture.md maps them.

Examples
--------
>>> import uplift
>>> sorted(uplift.LEARNERS)[:3]
['causal_forest', 'dr', 'dr_linear']
"""

import os as _os

# LightGBM's OpenMP threads spin while waiting by default; on a busy machine (or under a parallel test
# runner) that slows fitting several-fold. Passive waiting costs nothing measurable when the CPU is free.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from uplift._versions import __version__
from uplift.data.campaign import CampaignData, FeatureSchema, campaign_data
from uplift.datasets import load_hillstrom, load_starbucks, simulate_campaign
from uplift.errors import DesignCheckError, UpliftInputError
from uplift.evaluate.metrics import qini_auc_score, uplift_at_k, uplift_auc_score, uplift_by_decile
from uplift.fit.learners import DEFAULT_LEARNERS
from uplift.fit.learners import REGISTRY as LEARNERS
from uplift.fit.result import FitResult
from uplift.study import Study

__all__ = [
    "DEFAULT_LEARNERS", "LEARNERS", "CampaignData", "DesignCheckError", "FeatureSchema", "FitResult", "Study",
    "UpliftInputError", "campaign_data", "load_hillstrom", "load_starbucks", "qini_auc_score",
    "simulate_campaign", "uplift_at_k", "uplift_auc_score", "uplift_by_decile", "__version__",
]

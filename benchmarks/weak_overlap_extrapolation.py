"""Weak overlap: do post-hoc fixes of the extrapolated customers' predictions help? (one replication)

Fits the default study on ``weak_overlap_campaign(n, seed)`` and, for every candidate learner, prints √PEHE over
the constant-ATE baseline's on 20,000 fresh customers: all (``all``), inside (``ov``) and outside (``non``) the
overlap region; with the customers outside it given the study's headline (trimmed) effect (``headfill``); and
with x1..x5 clamped to the 0.5–99.5% range of the training rows inside the overlap before predicting
(``clamp``, ``clamp_non``); ``non_bias``: mean error outside the overlap.

Run::

    python benchmarks/weak_overlap_extrapolation.py 10001
"""
import json
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from benchmarks.coverage import truth_columns, weak_overlap_campaign  # noqa: E402
from uplift import Study  # noqa: E402
from uplift.effects.average import headline_effects  # noqa: E402

seed = int(sys.argv[1])
n = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
df, test = weak_overlap_campaign(n, seed), weak_overlap_campaign(20_000, seed + 10_000)
st = Study(df, treatment="treatment", outcome="conversion", id="customer_id", exclude=truth_columns(df),
           design="observational").fit(random_state=seed, n_boot=20)
tau = test["true_uplift"].to_numpy()
head = float(headline_effects(st.ate()).iloc[0]["estimate"])
kept = st.result.training_overlap()
inside = df[kept]
clamped = test.copy()
for c in ["x1", "x2", "x3", "x4", "x5"]:
    lo, hi = np.quantile(inside[c], [0.005, 0.995])
    clamped[c] = clamped[c].clip(lo, hi).astype(np.float32)


def r(u, m):
    return float(np.sqrt(np.mean((u[m] - tau[m]) ** 2)) / np.sqrt(np.mean((tau[m].mean() - tau[m]) ** 2)))


out = {"seed": seed, "chosen": st.result.best_learner, "head": head}
for name in list(st.result.crossfit.uplift):
    p = st.predict_uplift(test, learner=name)
    u, ov = p["uplift"].to_numpy(), p["overlap"].to_numpy()
    uc = st.predict_uplift(clamped, learner=name)["uplift"].to_numpy()
    allm = np.ones(len(u), bool)
    out[name] = {"all": r(u, allm), "ov": r(u, ov), "non": r(u, ~ov), "headfill": r(np.where(ov, u, head), allm),
                 "clamp": r(uc, allm), "clamp_non": r(uc, ~ov), "non_bias": float(u[~ov].mean() - tau[~ov].mean())}
print(json.dumps(out))

"""Base-model settings that fit the data size: one documented rule of the study's rows and outcome kind.

The LightGBM defaults (:data:`~uplift.fit.models.NUISANCE_PARAMS`, :data:`~uplift.fit.models.EFFECT_PARAMS`)
were chosen on campaigns of 100k rows and more. On a study of a few hundred or thousand rows the same trees are
too deep for a continuous outcome: each leaf averages few customers, and the outcome models chase noise. The
rule below keeps the defaults from :data:`FULL_SIZE_ROWS` rows up and, for continuous outcomes, shrinks the
trees smoothly below it. Measured on IHDP (response surface B, 600 training rows): held-out √PEHE of the
default study 1.31 → 1.17 over 6 replications (``benchmarks/results/small.md`` has the full comparison).
Binary outcomes keep the defaults (see :func:`sized_params` for why).
"""

from __future__ import annotations

#: From this many study rows up, the defaults are used unchanged (the 100k/1M benchmarks' settings).
FULL_SIZE_ROWS = 100_000


def sized_params(base: dict, n_rows: int | None, kind: str, stage: str) -> dict:
    """LightGBM settings ``base`` (the defaults of ``stage``) fitted to a study with ``n_rows`` rows.

    Binary outcomes keep the defaults at every size. A leaf's rate of a rare event needs as many rows in a small
    study as in a large one, and on simulated campaigns (4,000–8,000 rows, ~4% conversion) neither smaller
    leaves nor fewer rows per leaf helped: the learners' PEHE moved both ways by seed, and the stacked ensemble
    of one seed got worse. Continuous outcomes, with ``r = min(1, n_rows / FULL_SIZE_ROWS)`` (``r = 1`` when
    ``n_rows`` is None):

    - leaves: ``num_leaves = max(floor, round(L · r^0.3))`` with ``L`` the default's (31 for
      outcome/propensity models, ``stage="nuisance"``; 15 for final stages, ``stage="effect"``); floors 4 and 3;
    - rows per leaf: ``min_data_in_leaf = max(floor, round(M · r^0.5))`` with ``M`` the default's (50 and 200),
      floors 10 and 20;
    - learning rate, L2 penalty, bagging and binning as in the defaults.

    The result is never larger than the defaults, and grows with ``n_rows`` up to them.

    Parameters
    ----------
    base : dict
        The defaults: :data:`~uplift.fit.models.NUISANCE_PARAMS` or :data:`~uplift.fit.models.EFFECT_PARAMS`.
    n_rows : int or None
        Rows of the study (None: the defaults).
    kind : {"binary", "continuous"}
        The outcome's kind (a propensity model counts as ``"binary"``).
    stage : {"nuisance", "effect"}

    Examples
    --------
    >>> from uplift.fit.models import EFFECT_PARAMS, NUISANCE_PARAMS
    >>> sizes = (700, 5_000, 20_000, 100_000, 10**6)
    >>> [sized_params(NUISANCE_PARAMS, n, "continuous", "nuisance")["num_leaves"] for n in sizes]
    [7, 13, 19, 31, 31]
    >>> [sized_params(EFFECT_PARAMS, n, "continuous", "effect")["min_data_in_leaf"] for n in (700, 5_000, 100_000)]
    [20, 45, 200]
    >>> sized_params(EFFECT_PARAMS, 700, "binary", "effect") == EFFECT_PARAMS
    True
    >>> sized_params(NUISANCE_PARAMS, None, "continuous", "nuisance") == NUISANCE_PARAMS
    True
    """
    if stage not in ("nuisance", "effect"):
        raise ValueError(f"stage must be 'nuisance' or 'effect', got {stage!r}")
    if n_rows is None or n_rows >= FULL_SIZE_ROWS:
        return dict(base)
    r = max(n_rows, 1) / FULL_SIZE_ROWS
    if kind == "binary":
        return dict(base)
    leaf_floor, data_floor = (4, 10) if stage == "nuisance" else (3, 20)
    leaves = int(min(base["num_leaves"], max(leaf_floor, round(base["num_leaves"] * r ** 0.3))))
    return {**base, "num_leaves": leaves, "min_data_in_leaf": int(min(base["min_data_in_leaf"], max(
        data_floor, round(base["min_data_in_leaf"] * r ** 0.5))))}

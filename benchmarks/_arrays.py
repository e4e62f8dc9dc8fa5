"""One fit's arrays for ``benchmarks/selection_rules.py`` (shared by the benchmarks' ``--save-arrays``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_fit_arrays(path: Path, study, held_out: dict[str, np.ndarray], tau_test: np.ndarray, *,
                    dtype=None, **extra) -> None:
    """Write ``path`` (.npz): every candidate's out-of-fold uplift (``oof``) and held-out uplift (``held_out``, the
    columns of ``held_out`` in its order, named in ``names``), the DR scores, propensities and folds of the fit,
    the held-out truth, the design and the study's choice, plus any ``extra`` arrays. ``dtype`` casts the two
    uplift matrices (default: as predicted). First treated arm only, as ``selection_rules.py`` reads them."""
    cf = study.result.crossfit
    names = list(held_out)
    held = np.column_stack(list(held_out.values()))
    oof = np.column_stack([cf.uplift[k][:, 0] for k in names])
    if dtype is not None:
        held, oof = held.astype(dtype), oof.astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, names=np.array(names), held_out=held, oof=oof, dr=cf.dr[:, 0], e=cf.e[:, 1],
                        folds=cf.folds, tau_test=tau_test, design=cf.design, chosen=study.result.best_learner,
                        **extra)

"""The fingerprint of a study's training data: which exact rows a model learned from.

A saved model records it; attaching data to a loaded model, the report's footer and a re-run compare against it.
"""

from __future__ import annotations

import hashlib

import numpy as np


def data_hash(X: np.ndarray, treatment: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the training arrays: identifies the exact data a model learned from."""
    h = hashlib.sha256()
    for arr in (X, treatment, y):
        # The bytes of the C-ordered array, fed in row blocks: no whole copy of a large (or column-major) X.
        step = max(1, (1 << 24) // max(1, arr[:1].nbytes))
        for start in range(0, len(arr), step):
            h.update(np.ascontiguousarray(arr[start:start + step]).data)
    return h.hexdigest()

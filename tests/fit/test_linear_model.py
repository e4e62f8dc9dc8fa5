"""The JSON linear final stage scores exactly as the scikit-learn ridge pipeline it was read out of."""

from __future__ import annotations

import numpy as np
import pytest

from uplift.fit.learners import linear_final_stage
from uplift.fit.models import LinearModel


def _table(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.exponential(3, size=n), rng.integers(0, 5, n),
                         rng.normal(size=n), rng.integers(0, 3, n)]).astype(np.float32)
    X[rng.random(n) < 0.15, 0] = np.nan
    X[rng.random(n) < 0.1, 2] = np.nan
    X[:, 3] = np.nan  # an all-missing numeric column: imputed to 0 (keep_empty_features), scale 1
    return X


@pytest.mark.parametrize("categorical", [[2, 4], [], [0, 1, 2, 3, 4]], ids=["mixed", "numeric-only", "all-codes"])
def test_linear_model_predicts_as_the_pipeline_with_missing_and_unseen_values(categorical):
    X = _table(3000, 1)
    if 0 in categorical:
        X = np.nan_to_num(np.round(X), nan=-1.0)
    y = np.nan_to_num(X[:, 0]) * 0.4 - (X[:, 2] == 3) * 0.7 + np.random.default_rng(2).normal(size=len(X))
    pipe = linear_final_stage(X.shape[1], categorical).fit(X, y)
    model = LinearModel.from_pipeline(pipe)
    new = _table(800, 3)
    new[:50, 2] = 9.0  # a code never seen in training: no coefficient, as OneHotEncoder(handle_unknown="ignore")
    new[50:80, 4] = np.nan
    np.testing.assert_allclose(model.predict(new), pipe.predict(new), rtol=1e-5, atol=1e-6)
    again = LinearModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict(new), model.predict(new))  # JSON floats round-trip exactly


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda d: d.pop("intercept"), "intercept"),
    (lambda d: d.update(scales=[0.0] * len(d["scales"])), "scale"),
    (lambda d: d.update(numeric=["0"] * len(d["numeric"])), "integers"),
    (lambda d: d.update(categories=[[2.0, 1.0]] + d["categories"][1:]), "sorted"),
    (lambda d: d.update(medians=d["medians"][:-1]), "length"),
], ids=["no-intercept", "zero-scale", "string-index", "unsorted-levels", "short-medians"])
def test_a_damaged_linear_model_document_is_refused(edit, needle):
    import json

    X = _table(500, 4)
    doc = json.loads(LinearModel.from_pipeline(linear_final_stage(5, [2, 4]).fit(X, X[:, 1])).to_bytes())
    edit(doc)
    with pytest.raises(ValueError, match=needle):
        LinearModel.from_bytes(json.dumps(doc).encode())

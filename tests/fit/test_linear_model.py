"""The linear final stage: fitted in numpy, it has the numbers of the scikit-learn ridge pipeline it replaces
(the reference implementation below), and its JSON form scores exactly as the fitted model."""

from __future__ import annotations

import numpy as np
import pytest

from uplift.fit.models import RIDGE_ALPHAS, LinearModel


def linear_final_stage(n_features: int, categorical: list[int]):
    """The reference: ridge (penalty by efficient leave-one-out CV) on median-imputed, standardised numeric
    columns and one-hot categorical codes (unseen codes get no coefficient), in scikit-learn."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    cat = sorted(set(categorical))
    num = [j for j in range(n_features) if j not in cat]
    parts = []
    if num:
        parts.append(("num", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                       ("scale", StandardScaler())]), num))
    if cat:
        parts.append(("cat", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
                                       ("onehot", OneHotEncoder(handle_unknown="ignore"))]), cat))
    return Pipeline([("features", ColumnTransformer(parts)), ("ridge", RidgeCV(alphas=RIDGE_ALPHAS))])


def _table(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=n), rng.exponential(3, size=n), rng.integers(0, 5, n),
                         rng.normal(size=n), rng.integers(0, 3, n)]).astype(np.float32)
    X[rng.random(n) < 0.15, 0] = np.nan
    X[rng.random(n) < 0.1, 2] = np.nan
    X[:, 3] = np.nan  # an all-missing numeric column: imputed to 0 (keep_empty_features), scale 1
    return X


@pytest.mark.parametrize("categorical", [[2, 4], [], [0, 1, 2, 3, 4]], ids=["mixed", "numeric-only", "all-codes"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("signal", [0.4, 0.01], ids=["strong", "weak"])
def test_linear_model_fits_and_predicts_as_the_sklearn_pipeline_with_missing_and_unseen_values(categorical, weighted,
                                                                                               signal):
    X = _table(3000, 1)
    if 0 in categorical:
        X = np.nan_to_num(np.round(X), nan=-1.0)
    rng = np.random.default_rng(2)
    y = (np.nan_to_num(X[:, 0]) * signal - (X[:, 2] == 3) * 0.7 * signal + rng.normal(size=len(X))).astype(np.float32)
    weight = rng.uniform(0.05, 1.0, len(X)) if weighted else None
    pipe = linear_final_stage(X.shape[1], categorical).fit(X, y, **({} if weight is None else
                                                                   {"ridge__sample_weight": weight}))
    model = LinearModel.fit(X, y, categorical, weight=weight)
    ridge = pipe.named_steps["ridge"]
    assert ridge.alpha_ in RIDGE_ALPHAS  # a strong signal picks a small penalty, a weak one a large one
    new = _table(800, 3)
    new[:50, 2] = 9.0  # a code never seen in training: no coefficient, as OneHotEncoder(handle_unknown="ignore")
    new[50:80, 4] = np.nan
    reference = pipe.predict(new)
    np.testing.assert_allclose(model.predict(new), reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())
    again = LinearModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.predict(new), model.predict(new))  # JSON floats round-trip exactly
    wide = new.astype(np.float64)
    kept = wide.copy()
    np.testing.assert_allclose(model.predict(wide), model.predict(new))
    np.testing.assert_array_equal(wide, kept)  # predicting fills missing values in its own copies only


def test_the_penalty_is_chosen_by_leave_one_out_error_as_the_reference_chooses_it():
    """Across signal strengths the chosen penalty moves from the smallest to the largest, always the reference's."""
    X = _table(2000, 5)
    rng = np.random.default_rng(6)
    chosen = []
    for signal in (3.0, 0.3, 0.05, 0.0):
        y = np.nan_to_num(X[:, 0]) * signal + rng.normal(size=len(X))
        pipe = linear_final_stage(X.shape[1], [2, 4]).fit(X, y)
        ours = LinearModel.fit(X, y, [2, 4])
        reference = pipe.predict(X)  # another penalty would move the scores by far more than float32 rounding
        np.testing.assert_allclose(ours.predict(X), reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())
        chosen.append(pipe.named_steps["ridge"].alpha_)
    assert chosen == sorted(chosen) and len(set(chosen)) >= 3, chosen  # the test spans penalties


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
    doc = json.loads(LinearModel.fit(X, X[:, 1], [2, 4]).to_bytes())
    edit(doc)
    with pytest.raises(ValueError, match=needle):
        LinearModel.from_bytes(json.dumps(doc).encode())

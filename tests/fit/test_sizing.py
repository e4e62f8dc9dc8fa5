"""The size rule of the base models' settings (uplift.fit.sizing) and its use by the model factory."""

import numpy as np
import pytest

from uplift.fit.models import EFFECT_PARAMS, NUISANCE_PARAMS, ModelFactory
from uplift.fit.sizing import FULL_SIZE_ROWS, sized_params

SIZES = [200, 500, 700, 1_000, 2_000, 5_000, 10_000, 50_000, 99_999, 100_000, 10**6]


@pytest.mark.parametrize("stage, base", [("nuisance", NUISANCE_PARAMS), ("effect", EFFECT_PARAMS)])
def test_continuous_settings_grow_with_rows_up_to_the_defaults(stage, base):
    rows = [sized_params(base, n, "continuous", stage) for n in SIZES]
    for key in ("num_leaves", "min_data_in_leaf"):
        values = [r[key] for r in rows]
        assert values == sorted(values), key  # monotone in n
        assert max(values) == base[key] and values[0] < base[key], key  # smaller below, the default at scale
    for n, r in zip(SIZES, rows, strict=True):
        if n >= FULL_SIZE_ROWS:
            assert r == base
        # Only the tree shape changes: learning rate, penalties, bagging and binning stay the defaults'.
        assert {k: v for k, v in r.items() if k not in ("num_leaves", "min_data_in_leaf")} == \
            {k: v for k, v in base.items() if k not in ("num_leaves", "min_data_in_leaf")}


def test_documented_values_and_binary_outcomes_keep_the_defaults():
    assert sized_params(NUISANCE_PARAMS, 700, "continuous", "nuisance")["num_leaves"] == 7
    assert sized_params(NUISANCE_PARAMS, 700, "continuous", "nuisance")["min_data_in_leaf"] == 10
    assert sized_params(EFFECT_PARAMS, 700, "continuous", "effect")["num_leaves"] == 3
    assert sized_params(EFFECT_PARAMS, 5_000, "continuous", "effect")["min_data_in_leaf"] == 45
    for n in SIZES:
        assert sized_params(NUISANCE_PARAMS, n, "binary", "nuisance") == NUISANCE_PARAMS
        assert sized_params(EFFECT_PARAMS, n, "binary", "effect") == EFFECT_PARAMS
    with pytest.raises(ValueError, match="stage"):
        sized_params(EFFECT_PARAMS, 700, "continuous", "final")


def test_factory_builds_sized_models_and_user_settings_win():
    small = ModelFactory(n_rows=700, outcome_kind="continuous")
    assert small.outcome("continuous").params["num_leaves"] == 7
    assert small.effect().params["num_leaves"] == 3
    assert small.propensity().params == NUISANCE_PARAMS  # a propensity's label is binary
    assert ModelFactory().outcome("continuous").params == NUISANCE_PARAMS  # no size given: the defaults
    own = {**NUISANCE_PARAMS, "num_leaves": 63}
    assert ModelFactory(n_rows=700, nuisance_params=own).outcome("continuous").params["num_leaves"] == 63
    # The sized models fit and predict like the defaults.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 3)).astype(np.float32)
    y = X[:, 0] + rng.normal(scale=0.5, size=700)
    pred = small.outcome("continuous").fit(X, y).predict(X)
    assert np.corrcoef(pred, X[:, 0])[0, 1] > 0.9

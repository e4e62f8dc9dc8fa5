"""The training-row cap: each base model trains on a sample of at most ``max_rows`` rows, every row is still
predicted out of fold, and below the cap nothing changes."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift.data.campaign import campaign_data
from uplift.errors import UpliftInputError
from uplift.fit.crossfit import cross_fit
from uplift.fit.models import BinnedMatrix, LGBMModel, ModelFactory, cap_rows


@pytest.fixture
def trained_rows(monkeypatch):
    """Rows of every LightGBM training and validation set built from here on."""
    seen: list[int] = []
    real_train = lgb.train

    def spy(params, train_set, *args, **kwargs):
        valid = kwargs.get("valid_sets") or []
        booster = real_train(params, train_set, *args, **kwargs)
        seen.append(train_set.num_data() + sum(v.num_data() for v in valid))
        return booster

    monkeypatch.setattr(lgb, "train", spy)
    return seen


def _xy(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, X[:, 0] - 0.5 * X[:, 1] + 0.2 * rng.normal(size=n)


def test_cap_rows_keeps_aligned_sorted_sample_and_passes_small_inputs_through():
    X, y = _xy(5000)
    w = np.arange(5000, dtype=np.float64)
    same = cap_rows(X, y, w, 5000, seed=1)
    assert same[0] is X and same[1] is y and same[2] is w
    Xs, ys, ws = cap_rows(X, y, w, 1200, seed=1)
    keep = ws.astype(int)  # the weights are the row numbers
    assert len(keep) == 1200 and (np.diff(keep) > 0).all()
    np.testing.assert_array_equal(Xs, X[keep])
    np.testing.assert_array_equal(ys, y[keep])
    again = cap_rows(X, y, w, 1200, seed=1)[2]
    np.testing.assert_array_equal(again, ws)
    assert not np.array_equal(cap_rows(X, y, w, 1200, seed=2)[2], ws)


def test_lightgbm_trains_on_at_most_max_rows(trained_rows):
    X, y = _xy(6000)
    LGBMModel("regression", max_rows=2500).fit(X, y)
    LGBMModel("regression").fit(X, y)
    assert trained_rows == [2500, 6000]


def test_below_the_cap_the_fit_is_exactly_the_uncapped_fit():
    X, y = _xy(4000)
    a = LGBMModel("regression", max_rows=4000).fit(X, y).predict(X)
    b = LGBMModel("regression").fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)


def test_matrix_beyond_the_cap_is_not_binned_whole_and_trains_like_the_copied_rows(trained_rows):
    X, y = _xy(6000, seed=3)
    matrix = BinnedMatrix(X, max_rows=2000).for_arm((np.arange(6000) % 2).astype(float))
    assert not matrix.prebinned and BinnedMatrix(X, max_rows=6000).prebinned
    rows = matrix.rows(np.flatnonzero(np.arange(6000) % 3))
    a = LGBMModel("regression", max_rows=2000, random_state=4).fit(rows, y[rows.index]).predict(X)
    b = LGBMModel("regression", max_rows=2000, random_state=4).fit(X[rows.index], y[rows.index]).predict(X)
    np.testing.assert_array_equal(a, b)  # the same sample, binned from the same raw rows
    assert matrix._datasets == {}  # nothing binned all 6000 rows
    s = LGBMModel("regression", max_rows=2000).fit(rows.with_treatment(), y[rows.index])
    assert s.booster_.num_feature() == 5
    assert trained_rows == [2000, 2000, 2000]


def test_capped_cross_fit_predicts_every_row_and_still_finds_the_uplift(rct_df, trained_rows):
    data = campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    factory = ModelFactory(categorical=data.schema.categorical_indices, max_rows=3000)
    cf = cross_fit(data, learners=("t", "x", "dr", "s"), n_folds=3, factory=factory)
    assert max(trained_rows) == 3000 and min(trained_rows) < 3000  # small arms keep all their rows
    full = cross_fit(data, learners=("t", "x", "dr", "s"), n_folds=3)
    truth = rct_df["true_uplift"].to_numpy()
    for name in ("t", "x", "dr", "s", "ensemble"):
        pred = cf.uplift[name][:, 0]
        assert np.isfinite(pred).all(), name
        assert np.corrcoef(pred, truth)[0, 1] > 0.1, name  # every learner keeps signal on ~55% of the rows
    # The chosen-model-like stack loses little: PEHE within 15% of the uncapped study's.
    pehe = {k: float(np.sqrt(np.mean((c.uplift["ensemble"][:, 0] - truth) ** 2))) for k, c in (("cap", cf),
                                                                                                ("full", full))}
    assert pehe["cap"] < 1.15 * pehe["full"], pehe
    assert np.isfinite(cf.mu).all() and np.isfinite(cf.dr[~np.isnan(cf.dr)]).all()


def test_study_records_the_cap_and_rejects_a_tiny_one(rct_df, tmp_path):
    from uplift import Study

    df = rct_df.iloc[:3000]
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_columns(df), "revenue"])
    with pytest.raises(UpliftInputError, match="max_train_rows must be at least 1000"):
        study.fit(["t"], n_folds=2, max_train_rows=10)
    study.fit(["t", "dr"], n_folds=2, n_boot=20, max_train_rows=1500)
    assert study.fit_params_["max_train_rows"] == 1500
    assert Study.load(study.save(tmp_path / "m")).fit_params_["max_train_rows"] == 1500


def test_pooled_learners_get_the_capped_sample_and_x_its_arm_rows(rct_df, monkeypatch):
    from uplift.fit import learners

    seen: dict[str, list] = {"dr": [], "x": []}
    for cls, key in ((learners.DRLearner, "dr"), (learners.XLearner, "x")):
        real = cls.fit

        def spy(self, X, t, y, nuis, *args, _real=real, _key=key, **kwargs):
            seen[_key].append((len(t), np.asarray(t).copy(), np.asarray(nuis.mu0).copy(), np.asarray(nuis.mu1).copy()))
            return _real(self, X, t, y, nuis, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", spy)
    data = campaign_data(rct_df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(rct_df), "revenue"], design="rct")
    factory = ModelFactory(categorical=data.schema.categorical_indices, max_rows=2500)
    cross_fit(data, learners=("x", "dr"), n_folds=3, factory=factory)
    assert [n for n, *_ in seen["dr"]] == [2500] * 3  # a uniform sample of the ~5,300 training rows
    for n, t, mu0, mu1 in seen["x"]:
        assert n > 5000  # per-arm models: the X-learner gets every training row, each model caps its arm
        # the in-fold outcome models are evaluated on the other arm's rows only
        assert np.isfinite(mu0[t == 1]).all() and np.isnan(mu0[t == 0]).all()
        assert np.isfinite(mu1[t == 0]).all() and np.isnan(mu1[t == 1]).all()


@pytest.mark.parametrize("frame", ["rct_df", "multi_df"])
def test_parking_finished_learners_on_disk_changes_nothing(frame, request, monkeypatch):
    import uplift.fit.crossfit as crossfit

    df = request.getfixturevalue(frame)
    data = campaign_data(df, "treatment", "conversion", id="customer_id",
                         exclude=[*truth_columns(df), "revenue"], design="rct")
    kept = cross_fit(data, learners=("t", "dr", "s"), n_folds=2)
    parked_files = []
    real_park = crossfit._Parking.park

    def spy(self, arrays, name):
        real_park(self, arrays, name)
        assert arrays[name] is None  # out of memory while the next learners train
        parked_files.append(self._parked[name])

    monkeypatch.setattr(crossfit, "PARK_ROWS", 1000)
    monkeypatch.setattr(crossfit._Parking, "park", spy)
    parked = cross_fit(data, learners=("t", "dr", "s"), n_folds=2)
    assert len(parked_files) == 3 and not any(p.exists() for p in parked_files)  # cleaned up
    for name in ("t", "dr", "s", "ensemble"):
        np.testing.assert_array_equal(parked.uplift[name], kept.uplift[name])

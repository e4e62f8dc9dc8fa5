"""Folds fitted side by side give the study's numbers exactly, and the pool behaves like a loop."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from uplift.data.campaign import campaign_data
from uplift.datasets import simulate_campaign
from uplift.fit import crossfit as crossfit_module
from uplift.fit.crossfit import cross_fit
from uplift.fit.workers import CONCURRENT_MAX_ROWS, fit_workers, model_threads, run_concurrently


def _data(n: int, design: str = "observational", n_arms: int = 1):
    df = simulate_campaign(n, design=design, n_arms=n_arms, seed=5)
    drop = [c for c in df if c.startswith("true_") or c.startswith("propensity") or c == "revenue"]
    return campaign_data(df, "treatment", "conversion", id="customer_id", exclude=drop, design=design)


@pytest.mark.parametrize(("design", "n_arms"), [("observational", 1), ("rct", 2)])
def test_concurrent_folds_give_the_same_study_as_one_fold_at_a_time(monkeypatch, design, n_arms):
    """Every out-of-fold array and every fold model's prediction is bit-identical with 1 or 3 workers (fits above
    the one-thread size, so LightGBM runs on its pool share of the cores inside the pool)."""
    data = _data(75_000, design, n_arms)
    results = {}
    for workers in (1, 3):
        monkeypatch.setattr(crossfit_module, "fit_workers", lambda n, tasks, w=workers: w)
        results[workers] = cross_fit(data, learners=("t", "x", "dr", "s"), n_folds=3)
    one, many = results[1], results[3]
    np.testing.assert_array_equal(one.mu, many.mu)
    np.testing.assert_array_equal(np.nan_to_num(one.e, nan=-1), np.nan_to_num(many.e, nan=-1))
    for name in one.uplift:
        np.testing.assert_array_equal(one.uplift[name], many.uplift[name])
    X = data.X[:500]
    for fm_one, fm_many in zip(one.fold_models, many.fold_models, strict=True):
        assert fm_one.learners.keys() == fm_many.learners.keys()
        np.testing.assert_array_equal(fm_one.mu[0].predict(X), fm_many.mu[0].predict(X))


def test_results_come_back_in_task_order_and_done_follows_that_order():
    gate = threading.Event()
    seen = []

    def slow():  # the first task ends last
        gate.wait(5)
        return "first"

    def fast():
        gate.set()
        return "second"

    assert run_concurrently([slow, fast], workers=2, done=seen.append) == ["first", "second"]
    assert seen == [0, 1]


def test_the_first_failing_task_raises_once_the_running_ones_ended():
    ran, started = [], threading.Event()

    def boom():
        started.wait(5)  # the other task is running by now
        raise ValueError("fold 0 failed")

    def running():
        started.set()
        threading.Event().wait(0.2)
        ran.append(1)

    with pytest.raises(ValueError, match="fold 0 failed"):
        run_concurrently([boom, running], workers=2)
    assert ran == [1]  # it finished before the error came out; nothing is left running behind the caller


def test_fits_in_the_pool_share_the_cores_and_outside_use_all(monkeypatch):
    monkeypatch.setattr("uplift.fit.workers.available_cpus", lambda: 4)
    assert run_concurrently([model_threads, model_threads], workers=2) == [2, 2]
    assert run_concurrently([model_threads], workers=1) == [0]  # one task: no pool
    assert model_threads() == 0


def test_large_studies_fit_one_model_at_a_time():
    """Each concurrent fit holds its own training state: beyond the bound, memory comes first."""
    assert fit_workers(CONCURRENT_MAX_ROWS + 1, 5, cpus=16) == 1
    assert fit_workers(CONCURRENT_MAX_ROWS, 5, cpus=16) == 5
    assert fit_workers(10_000, 5, cpus=1) == 1


def test_phases_sharing_a_pool_split_its_wall_time_by_their_fits_durations():
    from uplift.fit.progress import PhaseTimes
    from uplift.fit.workers import run_phases

    def sleep(seconds):
        return lambda: threading.Event().wait(seconds) or seconds

    times = PhaseTimes()
    out = run_phases({"long": [sleep(0.3), sleep(0.3)], "short": [sleep(0.1)]}, workers=2, times=times)
    assert out == {"long": [0.3, 0.3], "short": [0.1]}
    long, short = times.seconds["long"], times.seconds["short"]
    assert 0.4 <= long + short < 0.6  # the pool's wall time (0.4 s: two workers), not the 0.7 s of the tasks
    assert long / short == pytest.approx(6, rel=0.2)



@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_one_thread_row_wise_histograms_grow_the_column_wise_trees(monkeypatch, kind):
    """A fit on one thread builds row-wise histograms (faster); the model text equals the column-wise fit's on
    one and on two threads, weighted and with a categorical column, so no result depends on the layout."""
    from uplift.fit import models

    rng = np.random.default_rng(3)
    n = 60_000
    X = rng.normal(size=(n, 5)).astype(np.float32)
    X[:, 4] = rng.integers(0, 6, n)
    signal = X[:, 0] + 0.5 * (X[:, 4] == 2)
    y = (rng.random(n) < 1 / (1 + np.exp(2 - signal))).astype(float) if kind == "binary" else \
        signal + rng.normal(size=n)
    weight = rng.random(n) + 0.5

    def fit(layout: dict, threads: int) -> str:
        monkeypatch.setattr(models, "_threads", lambda rows: threads)
        monkeypatch.setattr(models, "_histogram_layout", lambda t: layout)
        m = models.LGBMModel(kind, categorical=[4]).fit(X, y, weight)
        return m.booster_.model_to_string().split("parameters:")[0]

    assert models._histogram_layout(1) == {"force_row_wise": True}
    assert models._histogram_layout(2) == {"force_col_wise": True}
    row_one = fit({"force_row_wise": True}, 1)
    assert row_one == fit({"force_col_wise": True}, 1) == fit({"force_col_wise": True}, 2)


def test_the_s_learner_matrix_bins_the_same_from_a_copy_and_from_row_batches(monkeypatch):
    """The widened matrix (features + treatment) binned from one float32 copy (small studies) and from row batches
    (large ones, no second matrix in memory) grows the same trees."""
    from uplift.fit import models

    rng = np.random.default_rng(8)
    n = 30_000
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[:, 3] = rng.integers(0, 4, n)
    X[rng.random(n) < 0.05, 0] = np.nan
    t = rng.integers(0, 2, n).astype(np.float32)
    y = (rng.random(n) < 0.1 + 0.1 * t * (X[:, 1] > 0)).astype(float)
    texts = []
    for limit in (models.WIDENED_COPY_BYTES, 0):
        monkeypatch.setattr(models, "WIDENED_COPY_BYTES", limit)
        rows = models.BinnedMatrix(X, [3]).for_arm(t).rows(np.arange(n)).with_treatment()
        m = models.LGBMModel("binary", categorical=[3]).fit(rows, y)
        texts.append(m.booster_.model_to_string().split("parameters:")[0])
    assert texts[0] == texts[1]


def test_every_lightgbm_call_in_the_pool_runs_on_the_pools_thread_count(monkeypatch):
    """LightGBM keeps one process-wide thread count, set by each call given ``num_threads``: two calls at once with
    different counts crashed the process (SIGSEGV). In the pool every parameter string LightGBM gets, when binning
    the matrix, taking a subset, training or predicting, carries the pool's share, also for a small fit."""
    import lightgbm.basic

    from uplift.fit.models import BinnedMatrix, LGBMModel

    monkeypatch.setattr("uplift.fit.workers.available_cpus", lambda: 4)
    seen, to_str = [], lightgbm.basic._param_dict_to_str

    def record(params):
        seen.append(None if params is None else params.get("num_threads", "unset"))
        return to_str(params)

    monkeypatch.setattr(lightgbm.basic, "_param_dict_to_str", record)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3_000, 4)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=3_000) > 0).astype(float)
    matrix = BinnedMatrix(X)

    def fit(rows):
        model = LGBMModel("binary", random_state=1).fit(rows, y[: len(rows)])
        return model.predict(X[:100])

    out = run_concurrently([lambda: fit(matrix.rows(np.arange(2_000))), lambda: fit(X[:2_500])], workers=2)
    assert len(out) == 2 and seen
    assert set(v for v in seen if v is not None) == {2}, seen

"""Racing the learners (successive halving by cross-fitted DR loss on samples): it keeps the learner that wins on
all rows, on the speed benchmark's simulator and seed, and it is deterministic."""

from __future__ import annotations

import pytest

from tests.conftest import truth_columns
from uplift import Study, simulate_campaign
from uplift.data.campaign import campaign_data
from uplift.evaluate.selection import RACE_KEEP, _arm_averaged_loss, race_learners
from uplift.fit.crossfit import cross_fit
from uplift.fit.learners import DEFAULT_LEARNERS

BENCHMARK_SEED = 2024  # benchmarks/speed.py


def _campaign(design: str, n: int = 40_000):
    df = simulate_campaign(n, design=design, seed=BENCHMARK_SEED)
    return campaign_data(df, "treatment", "conversion", id="customer_id", design=design,
                         exclude=[*truth_columns(df), "revenue"])


@pytest.mark.parametrize("design", ["rct", "observational"])
def test_racing_keeps_the_learner_that_wins_on_all_rows(design):
    data = _campaign(design)
    full = cross_fit(data, learners=DEFAULT_LEARNERS, n_folds=3)
    losses = {name: _arm_averaged_loss(full, data.treatment, name) for name in DEFAULT_LEARNERS}
    winner = min(losses, key=losses.__getitem__)
    survivors, rungs = race_learners(data, DEFAULT_LEARNERS, n_folds=3, min_rows=5000)
    assert winner in survivors, (winner, rungs)
    assert RACE_KEEP <= len(survivors) <= len(DEFAULT_LEARNERS)
    assert [round(r["rows"], -2) for r in rungs] == [5000, 10000]  # 1/8 and 1/4 of the rows (stratified rounding)
    for r in rungs:  # every learner that left was beyond the 95% interval of its gap to the rung's best
        out = set(r["dr_loss"]) - set(r["kept"])
        assert all(r["vs_best"][k] - 1.96 * r["vs_best_se"][k] > 0 for k in out)
    assert set(rungs[0]["dr_loss"]) == set(DEFAULT_LEARNERS)
    assert race_learners(data, DEFAULT_LEARNERS, n_folds=3, min_rows=5000) == (survivors, rungs)  # same seed


def test_a_raced_study_ranks_only_the_survivors_out_of_fold_on_every_row(rct_df, monkeypatch, tmp_path):
    import uplift.evaluate.selection as selection
    monkeypatch.setattr(selection, "RACE_MIN_ROWS", 1000)
    study = Study(rct_df, "treatment", "conversion", id="customer_id", exclude=[*truth_columns(rct_df), "revenue"])
    study.fit(learners=["t", "dr", "dr_linear", "r"], n_folds=2, n_boot=20, race=True)
    rungs = study.result.fit_params["race"]
    assert rungs and rungs[-1]["kept"] == list(study.result.crossfit.learners)
    assert set(study.leaderboard_["learner"]) == {*rungs[-1]["kept"], "ensemble"}
    assert (study.leaderboard_["n"] == len(rct_df)).all()  # the final ranking reads every row
    assert abs(rungs[0]["rows"] - len(rct_df) // 8) <= 1  # the first rung: 1/8 of the rows
    from uplift.persist import load_result
    study.save(tmp_path / "model")
    assert load_result(tmp_path / "model").fit_params["race"] == rungs

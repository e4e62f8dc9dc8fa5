"""Model selection: the DR loss (one pass and blocked), the leaderboard's ranking, best_learner, calibration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from uplift.evaluate import selection
from uplift.fit.crossfit import CrossFit


def _record(design: str, arms: tuple[str, ...], uplift: dict[str, np.ndarray], dr: np.ndarray) -> CrossFit:
    """A CrossFit holding only what evaluation reads (out-of-fold uplift and AIPW scores)."""
    n = len(dr)
    return CrossFit(outcome="y", kind="continuous", arms=arms, design=design, learners=tuple(uplift),
                    folds=np.zeros(n, dtype=np.int8), mu=np.zeros((n, len(arms))), e=np.full((n, len(arms)), 0.5),
                    dr=dr, uplift=uplift, fold_models=[])


def _one_pass(dr, uplift) -> tuple[float, float]:
    sq = (np.asarray(dr, dtype=np.float64) - uplift) ** 2
    return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(len(sq)))


# ---------------------------------------------------------------------------------------------------------
# DR loss
# ---------------------------------------------------------------------------------------------------------

def test_dr_loss_by_hand():
    # squares 1, 4, 9: mean 14/3; deviations -11/3, -2/3, 13/3 give variance (121 + 4 + 169) / 9 / 2 = 49/3
    loss, se = selection.dr_loss(np.array([1.0, 2.0, 3.0]), np.zeros(3))
    assert loss == pytest.approx(14 / 3, rel=1e-15)
    assert se == pytest.approx(math.sqrt(49 / 3) / math.sqrt(3), rel=1e-15)


@pytest.mark.parametrize("n", [1001, 1000 * 7 + 1, 1000 * 7, 12_345])
def test_blocked_dr_loss_equals_the_one_pass_formula(monkeypatch, n):
    """Beyond one block the loss is summed block by block; it must equal the vectorised formula."""
    rng = np.random.default_rng(n)
    # float32 AIPW scores as the large-n cross-fit stores them, large and far from zero (cancellation-prone)
    dr = (50 + 8 * rng.standard_normal(n)).astype(np.float32)
    uplift = 50 + rng.normal(0, 2, n)
    expected = _one_pass(dr, uplift)
    monkeypatch.setattr(selection, "_LOSS_BLOCK", 1000)
    blocked = selection.dr_loss(dr, uplift)
    assert blocked[0] == pytest.approx(expected[0], rel=1e-12)
    assert blocked[1] == pytest.approx(expected[1], rel=1e-12)


def test_blocked_dr_loss_reads_each_block_not_the_whole_array(monkeypatch):
    """The blocked path slices its inputs; it never converts the whole score column at once."""

    class Sliced(np.ndarray):
        biggest = 0

        def __getitem__(self, item):
            out = super().__getitem__(item)
            Sliced.biggest = max(Sliced.biggest, np.size(out))
            return out

    rng = np.random.default_rng(0)
    dr = rng.normal(size=5000).view(Sliced)
    uplift = rng.normal(size=5000)
    monkeypatch.setattr(selection, "_LOSS_BLOCK", 1000)
    loss, se = selection.dr_loss(dr, uplift)
    assert Sliced.biggest == 1000
    assert (loss, se) == pytest.approx(_one_pass(np.asarray(dr), uplift), rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# Leaderboard and best_learner
# ---------------------------------------------------------------------------------------------------------

def _rct_with_known_uplift(n: int, seed: int):
    """Randomised campaign with known uplift, AIPW scores at the true outcome model, and three learners."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    t = (rng.random(n) < 0.5).astype(np.int8)
    true_uplift = x
    mu0, mu1 = x, x + true_uplift
    y = np.where(t == 1, mu1, mu0) + rng.normal(0, 0.5, n)
    dr = mu1 - mu0 + t * (y - mu1) / 0.5 - (1 - t) * (y - mu0) / 0.5
    uplift = {"zero": np.zeros((n, 1)), "noisy": (true_uplift + rng.normal(0, 0.3, n))[:, None],
              "oracle": true_uplift[:, None]}
    return _record("rct", ("control", "coupon"), uplift, dr[:, None]), y, t


def test_leaderboard_dr_loss_is_the_blocked_loss_and_ranks_the_truth_first(monkeypatch):
    cf, y, t = _rct_with_known_uplift(3001, seed=1)
    monkeypatch.setattr(selection, "_LOSS_BLOCK", 512)  # the leaderboard's large-n path, on 3,001 rows
    board = selection.leaderboard(cf, y, t, n_boot=20)
    by_learner = board.set_index("learner")
    for name, up in cf.uplift.items():
        loss, se = _one_pass(cf.dr[:, 0], up[:, 0])
        assert by_learner.loc[name, "dr_loss"] == pytest.approx(loss, rel=1e-12)
        assert by_learner.loc[name, "dr_loss_se"] == pytest.approx(se, rel=1e-12)
    # E[DR loss] = E[(Γ - τ)²] + E[(τ - τ̂)²]: the oracle adds 0, the noisy learner 0.09, zero uplift 1/3.
    assert board["learner"].tolist() == ["oracle", "noisy", "zero"]
    excess = by_learner["dr_loss_vs_best"]
    assert excess["oracle"] == 0.0
    assert excess["noisy"] == pytest.approx(0.09, abs=0.03)
    assert excess["zero"] == pytest.approx(1 / 3, abs=0.05)
    assert selection.best_learner(board) == "oracle"


def test_selection_by_qini_picks_the_highest_row_weighted_qini():
    """Two arms of different sizes: the criterion is the Qini averaged over arms weighted by their rows."""
    rng = np.random.default_rng(0)
    n = 20_000
    t = rng.choice([0, 1, 2], size=n, p=[0.3, 0.6, 0.1]).astype(np.int8)
    x = rng.uniform(-1, 1, n)
    y = x + np.where(t == 1, 0.3 * x, 0) + np.where(t == 2, -0.35 * x, 0) + rng.normal(0, 0.5, n)
    # "first" ranks arm A (control + A: 90% of the rows) right and B (40%) backwards, "second" the reverse;
    # B's effect is the larger, so only the weighting by rows makes "first" the better learner.
    uplift = {"second": np.column_stack([-x, -x]), "first": np.column_stack([x, x])}
    dr = np.column_stack([np.where(t == 1, y, -y), np.where(t == 2, y, -y)])  # a DR loss only; ranks use y
    cf = _record("rct", ("control", "A", "B"), uplift, dr)
    board = selection.leaderboard(cf, y, t, n_boot=20, select="qini")
    qini = board.pivot(index="learner", columns="arm", values="qini")
    rows = board.pivot(index="learner", columns="arm", values="n")
    weighted = (qini * rows).sum(axis=1) / rows.sum(axis=1)
    assert weighted["first"] > weighted["second"]
    assert qini.mean(axis=1)["first"] < qini.mean(axis=1)["second"]
    assert selection.best_learner(board) == "first"
    assert board.loc[board["learner"] == "first", "rank"].tolist() == [1, 1]


def test_best_learner_reads_the_rank_not_the_row_order():
    board = pd.DataFrame({"learner": ["t", "x", "dr", "t", "x", "dr"], "arm": ["A", "A", "A", "B", "B", "B"],
                          "dr_loss": [0.30, 0.10, 0.20, 0.31, 0.11, 0.21], "rank": [3, 1, 2, 3, 1, 2]},
                         index=[10, 4, 7, 2, 9, 5])
    assert selection.best_learner(board) == "x"
    assert selection.best_learner(board.iloc[::-1]) == "x"


# ---------------------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------------------

def test_calibration_by_hand_per_arm():
    """Eight control/A rows and four B rows, two bins per arm; every number below is worked out by hand."""
    treatment = np.array([1, 0, 0, 1, 1, 1, 0, 0, 2, 2, 2, 2])
    y = np.array([1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=float)
    up_a = np.array([0.8, 0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4, 0.99, 0.99, 0.99, 0.99])  # B rows must be ignored
    up_b = np.array([0.0, 0.9, 0.05, 0.0, 0.0, 0.0, 0.3, 0.6, 0.8, 0.7, 0.1, 0.2])  # A rows must be ignored
    cf = _record("rct", ("control", "A", "B"), {"t": np.column_stack([up_a, up_b])}, np.zeros((12, 2)))
    table = selection.calibration(cf, y, treatment, "t", n_bins=2)
    assert table["arm"].tolist() == ["A", "A", "B", "B"]
    # A, bin 1 = rows 0, 4, 6, 2 (uplift .8 .7 .6 .5): treated y 1, 1; control y 1, 0
    # A, bin 2 = rows 7, 3, 5, 1 (uplift .4 .3 .2 .1): treated y 1, 0; control y 1, 0
    # B, bin 1 = rows 1, 8, 9, 7 (uplift .9 .8 .7 .6): treated y 1, 0; control y 0, 1
    # B, bin 2 = rows 6, 11, 10, 2 (uplift .3 .2 .1 .05): treated y 1, 1; control y 1, 0
    assert table["n"].tolist() == [4, 4, 4, 4]
    assert table["n_treated"].tolist() == [2, 2, 2, 2]
    np.testing.assert_allclose(table["predicted_uplift"], [0.65, 0.25, 0.75, 0.1625], rtol=1e-12)
    np.testing.assert_allclose(table["observed_uplift"], [0.5, 0.0, 0.0, 0.5], atol=1e-12)
    # Neyman SE of A's bin 1: sqrt(0 / 2 + 0.5 / 2) = 0.5
    half_width = (table["observed_upper"] - table["observed_lower"]).iloc[0] / 2
    assert half_width == pytest.approx(1.959964 * 0.5, rel=1e-6)


def test_calibration_observational_bins_average_the_dr_scores():
    rng = np.random.default_rng(3)
    n = 1003  # 3 bins of 101 rows, then 7 of 100
    treatment = rng.integers(0, 2, n)
    uplift = rng.normal(size=n)
    dr = rng.normal(size=n) + uplift
    cf = _record("observational", ("control", "coupon"), {"x": uplift[:, None]}, dr[:, None])
    table = selection.calibration(cf, rng.normal(size=n), treatment, "x")
    assert table["n"].tolist() == [101] * 3 + [100] * 7
    # the same deciles computed independently: rank by descending uplift, cut consecutive runs
    frame = pd.DataFrame({"uplift": uplift, "dr": dr}).sort_values("uplift", ascending=False)
    frame["bin"] = np.repeat(np.arange(1, 11), table["n"])
    means = frame.groupby("bin")[["uplift", "dr"]].mean()
    np.testing.assert_allclose(table["predicted_uplift"], means["uplift"], rtol=1e-12)
    np.testing.assert_allclose(table["observed_uplift"], means["dr"], rtol=1e-12)


def test_paired_dr_loss_difference_has_its_own_interval_and_ranks_what_the_shared_se_cannot():
    """Two learners whose losses differ by much less than each loss's SE: the paired interval still separates them."""
    rng = np.random.default_rng(11)
    n = 20_000
    tau = rng.normal(0, 1, n)
    dr = tau + rng.normal(0, 5, n)  # noisy AIPW scores: each loss has a large SE
    good, worse = tau + rng.normal(0, 0.1, n), tau + rng.normal(0, 0.4, n)
    cf = _record("rct", ("c", "a"), {"good": good[:, None], "worse": worse[:, None]}, dr[:, None])
    treatment = rng.integers(0, 2, n)
    board = selection.leaderboard(cf, dr, treatment, n_boot=10)
    row = board.set_index("learner")
    assert row.loc["good", "rank"] == 1 and row.loc["good", "dr_loss_vs_chosen"] == 0.0
    diff, se = row.loc["worse", ["dr_loss_vs_chosen", "dr_loss_vs_chosen_se"]]
    # By hand: the mean of the per-row differences and their standard error.
    d = (dr - worse) ** 2 - (dr - good) ** 2
    assert diff == pytest.approx(d.mean()) and se == pytest.approx(d.std(ddof=1) / np.sqrt(n))
    assert row.loc["worse", "dr_loss_vs_chosen_lower"] > 0  # really worse, paired
    assert diff < 1.96 * row.loc["worse", "dr_loss_se"]  # which the unpaired SE could not show
    assert se < row.loc["worse", "dr_loss_se"] / 3



def _stack_choice(n: int, single_noise: float, seed: int = 3, dr_noise: float = 3.0) -> tuple[str, pd.DataFrame]:
    """The leaderboard's choice between a single learner and an ensemble with noise 0.3 on the true uplift,
    when the single learner's own noise is ``single_noise`` (AIPW scores: truth plus noise of SD ``dr_noise``)."""
    rng = np.random.default_rng(seed)
    tau = rng.normal(0, 1, n)
    dr = tau + rng.normal(0, dr_noise, n)
    single, stack = tau + rng.normal(0, single_noise, n), tau + rng.normal(0, 0.3, n)
    cf = _record("rct", ("c", "a"), {"single": single[:, None], "ensemble": stack[:, None]}, dr[:, None])
    board = selection.leaderboard(cf, dr, rng.integers(0, 2, n), n_boot=5)
    return selection.best_learner(board), board


def test_small_study_takes_the_stack_unless_a_single_learner_beats_it_beyond_its_paired_ci():
    # Close candidates at 2,000 rows: the single learner has the lower loss by chance; the stack is kept.
    chosen, board = _stack_choice(2000, 0.29)
    row = board.set_index("learner")
    assert row.loc["single", "dr_loss"] < row.loc["ensemble", "dr_loss"]
    assert chosen == "ensemble" and row.loc["ensemble", "rank"] == 1
    assert row.loc["single", "dr_loss_vs_chosen_lower"] <= 0 <= row.loc["single", "dr_loss_vs_chosen_upper"]
    # A single learner clearly better than the stack (beyond the paired CI) wins.
    assert _stack_choice(2000, 0.0, dr_noise=0.5)[0] == "single"
    # A large study keeps the lowest-loss rule: the same close single learner with the lower loss is chosen.
    chosen, board = _stack_choice(selection.CAPPED_STACK_ROWS, 0.29)
    assert chosen == board.set_index("learner")["dr_loss"].idxmin() == "single"


def test_small_study_stack_first_rule_is_the_paired_difference_by_hand():
    seen = set()
    for seed in range(12):
        chosen, board = _stack_choice(1500, 0.22, seed, dr_noise=1.5)
        rng = np.random.default_rng(seed)  # the same draws as _stack_choice
        tau = rng.normal(0, 1, 1500)
        dr = tau + rng.normal(0, 1.5, 1500)
        single, stack = tau + rng.normal(0, 0.22, 1500), tau + rng.normal(0, 0.3, 1500)
        d = (dr - single) ** 2 - (dr - stack) ** 2
        expected = "single" if d.mean() + 1.959963984540054 * d.std(ddof=1) / np.sqrt(1500) < 0 else "ensemble"
        assert chosen == expected
        seen.add(chosen)
    assert seen == {"single", "ensemble"}  # the draws exercise both outcomes of the rule

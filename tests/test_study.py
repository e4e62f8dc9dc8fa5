"""The Study API end to end: fit, leaderboard, ATE, calibration, predict, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import truth_columns
from uplift import Study
from uplift.errors import UpliftInputError
from uplift.evaluate import dr_loss
from uplift.fit.crossfit import CAPPED_STACK_ROWS


@pytest.fixture(scope="module")
def fitted(rct_df):
    study = Study(rct_df, treatment="treatment", outcome=["conversion", "revenue"], id="customer_id",
                  exclude=truth_columns(rct_df), design="rct")
    return study.fit(learners=["t", "x", "dr", "causal_forest"], n_folds=3, n_boot=100)


def test_leaderboard_is_ranked_and_has_cis(fitted):
    board = fitted.leaderboard()
    assert set(board["learner"]) == {"t", "x", "dr", "causal_forest", "ensemble"}
    assert (board["qini_lower"] <= board["qini"]).all() and (board["qini"] <= board["qini_upper"]).all()
    # Selection (select="dr_loss"): the chosen learner is the one whose out-of-fold uplift is closest to the
    # doubly-robust scores, recomputed here from the arrays, and the ranks follow that loss.
    cf = fitted.crossfit_
    # Below CAPPED_STACK_ROWS rows the stacked ensemble comes first unless the lowest-loss single learner beats
    # it beyond the paired 95% CI (uplift.evaluate.selection._stack_first); the others follow by loss.
    losses = {name: dr_loss(cf.dr[:, 0], cf.uplift[name][:, 0])[0] for name in cf.uplift}
    by_loss = sorted(losses, key=losses.get)
    best_single = next(name for name in by_loss if name != "ensemble")
    d = (cf.dr[:, 0] - cf.uplift[best_single][:, 0]) ** 2 - (cf.dr[:, 0] - cf.uplift["ensemble"][:, 0]) ** 2
    single_wins = by_loss[0] == "ensemble" or d.mean() + 1.96 * d.std(ddof=1) / np.sqrt(len(d)) < 0
    expected = by_loss if single_wins else ["ensemble"] + [n for n in by_loss if n != "ensemble"]
    assert len(d) < CAPPED_STACK_ROWS
    assert fitted.best_learner_ == expected[0]
    assert list(board.sort_values("rank")["learner"]) == expected
    assert board.set_index("learner")["dr_loss"].to_dict() == pytest.approx(losses, rel=1e-9)


def test_selected_model_is_accurate(fitted, rct_df):
    truth = rct_df["true_uplift"].to_numpy()
    errors = {name: np.sqrt(np.mean((fitted.oof_uplift(name)[:, 0] - truth) ** 2))
              for name in fitted.leaderboard()["learner"]}
    # Selection by out-of-fold DR loss picks a learner close to the most accurate one.
    assert errors[fitted.best_learner_] <= 1.15 * min(errors.values())


def test_ate_covers_truth_for_both_outcomes(fitted, rct_df):
    ate = fitted.ate().query("estimand == 'ATE'").set_index("outcome")
    for outcome, truth in (("conversion", "true_uplift"), ("revenue", "true_revenue_uplift")):
        row = ate.loc[outcome]
        assert row["lower"] - row["se"] <= rct_df[truth].mean() <= row["upper"] + row["se"]
    assert ate.loc["conversion", "unit"] == "pp"


def test_calibration_deciles(fitted):
    cal = fitted.calibration()
    assert len(cal) == 10
    # The top decile by predicted uplift shows more observed uplift than the bottom one.
    assert cal.iloc[0]["observed_uplift"] > cal.iloc[-1]["observed_uplift"]


def test_save_load_roundtrip_predicts_identically(fitted, rct_df, tmp_path):
    fitted.save(tmp_path / "model")
    with pytest.raises(UpliftInputError, match="pickled models.*trust=True"):
        Study.load(tmp_path / "model")  # the causal forest is a pickle: refused without trust
    loaded = Study.load(tmp_path / "model", trust=True)
    new = rct_df.sample(300, random_state=1)
    for learner in (None, "causal_forest", "ensemble"):
        a = fitted.predict_uplift(new, learner=learner)
        b = loaded.predict_uplift(new, learner=learner)
        pd.testing.assert_frame_equal(a, b)
    assert list(a.columns[:1]) == ["customer_id"]
    pd.testing.assert_frame_equal(fitted.leaderboard(), loaded.leaderboard(), check_dtype=False)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert "training_data_sha256" in manifest and manifest["versions"]["lightgbm"]


def test_save_is_deterministic(fitted, tmp_path):
    fitted.save(tmp_path / "a")
    fitted.save(tmp_path / "b")
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes(), f.name


def test_tampered_model_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    target = next((tmp_path / "m").rglob("mu0.txt"))
    target.write_bytes(target.read_bytes().replace(b"tree", b"TREE", 1))
    with pytest.raises(UpliftInputError, match="sha256|hash|tamper|modified"):
        Study.load(tmp_path / "m")


def test_predict_with_unseen_category_and_missing_column(fitted, rct_df):
    new = rct_df.head(50).copy()
    cat = next(c for c in fitted.schema.categories)
    new[cat] = "never-seen-before"
    assert np.isfinite(fitted.predict_uplift(new)["uplift"]).all()
    with pytest.raises(UpliftInputError, match=cat):
        fitted.predict_uplift(rct_df.head(5).drop(columns=cat))


def test_multi_arm_study(multi_df):
    study = Study(multi_df, treatment="treatment", outcome="conversion", control="control",
                  exclude=[*truth_columns(multi_df), "revenue"], id="customer_id", design="rct")
    study.fit(learners=["t", "dr"], n_folds=3, n_boot=50)
    arms = study.arms[1:]
    assert set(study.ate()["arm"]) == set(arms)
    pred = study.predict_uplift(multi_df.head(100))
    assert {f"uplift_{a}" for a in arms} <= set(pred.columns) and "best_arm" in pred


def test_observational_auto_design_detected(obs_df):
    study = Study(obs_df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_columns(obs_df), "revenue"])
    study.fit(learners=["t", "dr"], n_folds=3, n_boot=50)
    assert study.design == "observational"
    assert "naive" in set(study.ate()["estimand"])


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/uplift_pwned",))


def test_malicious_model_file_is_refused_even_with_valid_hashes(fitted, tmp_path):
    """An attacker who rewrites the manifest too still cannot make loading run code."""
    import pickle

    from uplift.persist.container import RESERVED_KEYS, read_model_dir, write_model_dir

    fitted.save(tmp_path / "m")
    manifest, files = read_model_dir(tmp_path / "m")
    victim = next(name for name in files if name.endswith(".pkl"))
    files[victim] = pickle.dumps(_Exploit())
    extra = {k: v for k, v in manifest.items() if k not in RESERVED_KEYS}
    write_model_dir(tmp_path / "evil", files, extra)
    with pytest.raises(UpliftInputError, match="not an allowed model type"):
        Study.load(tmp_path / "evil", trust=True)
    import os

    assert not os.path.exists("/tmp/uplift_pwned")


def test_observational_refutation_and_e_values(obs_df):
    study = Study(obs_df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_columns(obs_df), "revenue"], design="observational")
    study.fit(learners=["t"], n_folds=3, n_boot=20)
    table = study.refute(max_rows=3000, refuters=("placebo",), estimate_method="backdoor.linear_regression")
    placebo = table.iloc[0]
    assert placebo["refuter"].startswith("placebo") and bool(placebo["passed"])
    ev = study.e_values()
    assert len(ev) == 1 and ev.iloc[0]["e_value"] >= 1.0
    assert {"overlap", "leakage"} <= set(study.diagnostics())


def test_constant_declared_propensity_is_the_expected_split():
    rng = np.random.default_rng(5)
    n = 4000
    df = pd.DataFrame({"x": rng.normal(size=n), "t": (rng.random(n) < 0.85).astype(int)})
    df["y"] = (rng.random(n) < 0.1 + 0.05 * df["t"]).astype(int)
    df["p"] = 0.85
    study = Study(df, "t", "y", propensity="p").fit(learners=["t"], n_folds=3, n_boot=20)
    assert study.diagnostics()["srm"]["passed"]
    assert study.diagnostics()["srm"]["expected"]["1"] == pytest.approx(0.85 * n)


def test_saved_arrays_load_as_checked_views_of_the_file_bytes():
    import io

    from uplift.persist.store import _npy_view

    arr = np.arange(12, dtype=np.float32).reshape(4, 3)
    buf = io.BytesIO()
    np.save(buf, arr)
    raw = buf.getvalue()
    view = _npy_view(raw, "x")
    np.testing.assert_array_equal(view, arr)
    assert not view.flags.writeable and view.base is not None  # no copy of the bytes
    with pytest.raises(UpliftInputError, match="oof/x.npy is truncated"):
        _npy_view(raw[:-4], "x")
    with pytest.raises(UpliftInputError, match="not a valid .npy"):
        _npy_view(b"not an array", "x")
    obj = io.BytesIO()
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UpliftInputError, match="holds Python objects"):
        _npy_view(obj.getvalue(), "x")


def test_saved_arrays_are_byte_identical_to_np_save():
    import io

    from uplift.persist.store import _npy

    for arr in (np.arange(10, dtype=np.int8), np.full((7, 3), np.nan, np.float32), np.asfortranarray(np.ones((4, 2)))):
        header, data = _npy(arr)
        ref = io.BytesIO()
        np.save(ref, np.ascontiguousarray(arr))
        assert header + bytes(data) == ref.getvalue()

"""An uplift study as an MLflow model: logged to a local file-based tracking store, loaded with
mlflow.pyfunc.load_model, it predicts what `uplift predict` writes and decides what `uplift target` decides."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

mlflow = pytest.importorskip("mlflow")

from uplift.cli import app  # noqa: E402
from uplift.errors import UpliftInputError  # noqa: E402
from uplift.persist import load_result  # noqa: E402

runner = CliRunner()


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    # MLflow 3 keeps the file store only behind this switch; a directory of plain files is all a test needs.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    yield tmp_path
    mlflow.set_tracking_uri(None)


def predict_file(model_dir, customers, tmp_path, *flags) -> pd.DataFrame:
    customers.to_parquet(tmp_path / "c.parquet")
    res = runner.invoke(app, ["predict", str(model_dir), str(tmp_path / "c.parquet"), "--out",
                              str(tmp_path / "p.parquet"), *flags])
    assert res.exit_code == 0, res.output
    return pd.read_parquet(tmp_path / "p.parquet")


def test_logged_model_predicts_what_uplift_predict_writes(fitted, tracking):
    from uplift.mlflow import log_model

    model_dir, _, customers = fitted
    with mlflow.start_run():
        info = log_model(model_dir)
    model = mlflow.pyfunc.load_model(info.model_uri)
    got = model.predict(customers)
    pd.testing.assert_frame_equal(got, predict_file(model_dir, customers, tracking), check_dtype=False, rtol=1e-12)


def test_a_study_logs_too_and_the_fast_scorer_can_be_chosen(fitted, tracking):
    from uplift import Study
    from uplift.mlflow import log_model

    model_dir, _, customers = fitted
    study = Study.from_result(load_result(model_dir))
    info = log_model(study, learner="fast")  # no active run: one is started
    got = mlflow.pyfunc.load_model(info.model_uri).predict(customers)
    expected = predict_file(model_dir, customers, tracking, "--fast")
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)
    mlflow.end_run()


def test_with_params_it_decides_as_uplift_target(fitted, tracking):
    from uplift.mlflow import log_model

    model_dir, _, customers = fitted
    with mlflow.start_run():
        info = log_model(model_dir)
    model = mlflow.pyfunc.load_model(info.model_uri)
    got = model.predict(customers, params={"cost": "coupon_a=0.5,coupon_b=1.5", "value": 40.0}).set_index("id")
    customers.to_parquet(tracking / "c.parquet")
    res = runner.invoke(app, ["target", str(model_dir), str(tracking / "c.parquet"), "--out",
                              str(tracking / "l.parquet"), "--all", "--cost", "coupon_a=0.5", "--cost",
                              "coupon_b=1.5", "--value", "40"])
    assert res.exit_code == 0, res.output
    listed = pd.read_parquet(tracking / "l.parquet").set_index("customer_id").loc[got.index]
    selected = listed["selected"].to_numpy()
    assert 0 < selected.sum() < len(selected)
    assert (got["arm"].notna().to_numpy() == selected).all()
    assert (got["arm"][selected] == listed["coupon"][selected]).all()
    with pytest.raises(UpliftInputError, match="cost 'cheap'"):
        model.predict(customers, params={"cost": "cheap", "value": 40.0})


def test_a_changed_artifact_is_refused_at_load(fitted, tracking):
    from mlflow.artifacts import download_artifacts

    from uplift.mlflow import log_model

    model_dir, _, _ = fitted
    with mlflow.start_run():
        info = log_model(model_dir)
    local = download_artifacts(info.model_uri)  # the file store: this is the logged copy itself
    study = next(Path(local).rglob("study.json"))
    study.write_text(study.read_text().replace('"t"', '"t" '))
    with pytest.raises(UpliftInputError, match="does not match its sha256"):
        mlflow.pyfunc.load_model(info.model_uri)

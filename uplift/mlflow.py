"""An uplift study as an MLflow model: log it, load it with ``mlflow.pyfunc.load_model``, score and decide.

:func:`log_model` copies a verified model directory into an MLflow run as an artifact and logs a pyfunc model
around it. Its ``predict(DataFrame)`` returns what ``uplift predict`` writes for the same customers (the id
column, ``uplift`` or ``uplift_<arm>`` per coupon, ``best_arm``, interval columns where the learner has them);
with ``params={"cost": ..., "value": ...}`` it returns the coupon decision of each customer instead, by the
rule of ``POST /v1/decide`` (:meth:`uplift.serving.service.ModelService.decide`: ``uplift target`` without a
budget). The model's digest is recorded at logging and checked when MLflow loads it, so a model whose files
changed in the artifact store refuses to load.

The pyfunc is logged as *models from code* (a short script whose PythonModel wraps :class:`UpliftPredictor`),
so nothing is pickled. mlflow is the ``mlflow`` extra (``pip install 'uplift[mlflow]'``; the small
``mlflow-skinny`` is enough); it is imported only when a model is logged or loaded, never by ``import uplift``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from uplift._versions import __version__
from uplift.errors import UpliftInputError
from uplift.persist import save_result
from uplift.serving.requests import decision_options
from uplift.serving.service import ModelService, model_digest

#: The decision parameters ``predict`` takes, as (name, MLflow type, default): MLflow needs their types up front.
#: ``cost``: one number or "ARM=COST,ARM=COST" (as ``uplift target --cost``); empty: no decision, the uplift table.
PARAMS = (("cost", "string", ""), ("value", "double", 0.0), ("min_roi", "double", float("nan")),
          ("holdout", "double", 0.0), ("explore", "double", 0.0), ("seed", "long", 0))

# The logged model's code (MLflow's "models from code": nothing is pickled). The PythonModel subclass lives
# here, so that importing uplift.mlflow does not import mlflow.
_CODE = """import mlflow
from uplift.mlflow import UpliftPredictor


class UpliftModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.predictor = UpliftPredictor(context.artifacts)

    def predict(self, context, model_input, params=None):
        return self.predictor.predict(model_input, params)


mlflow.models.set_model(UpliftModel())
"""


class UpliftPredictor:
    """What the logged pyfunc model does: a verified :class:`~uplift.serving.service.ModelService` over the
    logged model directory, pinned to the digest recorded when it was logged.

    Parameters
    ----------
    artifacts : dict
        MLflow's artifact paths: ``model_dir`` (the model directory) and ``settings`` (digest and learner).
    """

    def __init__(self, artifacts: dict) -> None:
        settings = json.loads(Path(artifacts["settings"]).read_text(encoding="utf-8"))
        self.service = ModelService(artifacts["model_dir"], learner=settings["learner"],
                                    expect_digest=settings["digest"])
        self.learner = settings["learner"]

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        """The ``uplift predict`` table of the customers, or with ``params["cost"]`` their decisions."""
        if not isinstance(model_input, pd.DataFrame):
            raise UpliftInputError(f"expected a pandas DataFrame of customers, got {type(model_input).__name__}")
        params = dict(params or {})
        result = self.service.result
        if not params.get("cost"):
            return result.predict_uplift(model_input, learner=self.learner)
        cost = str(params["cost"])
        parts = [p.strip() for p in cost.split(",") if p.strip()]
        if len(parts) == 1 and "=" not in parts[0]:
            try:
                cost_value: float | dict = float(parts[0])
            except ValueError:
                raise UpliftInputError(f"cost {cost!r}: give one number or ARM=COST pairs") from None
        else:
            cost_value = {}
            for part in parts:
                arm, _, number = part.partition("=")
                try:
                    cost_value[arm.strip()] = float(number)
                except ValueError:
                    raise UpliftInputError(f"cost {part!r}: give ARM=COST with a number") from None
        min_roi = params.get("min_roi")
        options = decision_options({
            "cost": cost_value, "value": params.get("value") or None,
            "min_roi": None if min_roi is None or min_roi != min_roi else min_roi,
            "holdout": params.get("holdout") or 0.0, "explore": params.get("explore") or 0.0,
            "seed": int(params.get("seed") or 0)})
        id_col = result.id_column
        ids = model_input[id_col].tolist() if id_col and id_col in model_input else None
        decisions, _ = self.service.decide(ids, self.service.scores(model_input), options)
        return pd.DataFrame(decisions)


def log_model(study_or_model_dir, name: str = "uplift_model", *, learner: str | None = None,
              registered_model_name: str | None = None, pip_requirements: list[str] | None = None,
              input_example: pd.DataFrame | None = None):
    """Log a study (or a saved model directory) as an MLflow pyfunc model in the active run (one is started
    if none is active).

    Parameters
    ----------
    study_or_model_dir : Study, FitResult, str or path
        A fitted study or its result, or a model directory written by ``uplift fit`` (verified first).
    name : str
        The model's name in the run.
    learner : str, optional
        The learner ``predict`` scores with, as ``uplift predict --learner`` (``"fast"``: the distilled scorer).
        Default: the chosen model, as ``uplift predict`` without options.
    registered_model_name : str, optional
        Also register the model under this name.
    pip_requirements : list of str, optional
        The environment of the model; default ``uplift==<this version>`` and ``mlflow-skinny``.
    input_example : DataFrame, optional
        A few customers, stored with the model as MLflow's input example.

    Returns
    -------
    mlflow.models.model.ModelInfo
        Its ``model_uri`` loads the model with :func:`mlflow.pyfunc.load_model`.
    """
    try:
        import mlflow
        from mlflow.models import ModelSignature
        from mlflow.types.schema import ParamSchema, ParamSpec
    except ImportError:
        raise UpliftInputError("logging to MLflow needs mlflow: pip install 'uplift[mlflow]'") from None
    with tempfile.TemporaryDirectory(prefix="uplift-mlflow-") as tmp:
        tmp = Path(tmp)
        if isinstance(study_or_model_dir, str | Path):
            model_dir = Path(study_or_model_dir)
        else:
            result = getattr(study_or_model_dir, "result", study_or_model_dir)
            if result is None or not hasattr(result, "crossfit"):
                raise UpliftInputError("log_model needs a fitted Study, its FitResult or a model directory")
            model_dir = save_result(result, tmp / "model")
        service = ModelService(model_dir, learner=learner or None)  # verifies the directory, checks the learner
        settings = tmp / "settings.json"
        settings.write_text(json.dumps({"digest": service.digest, "learner": learner or service.result.best_learner}),
                            encoding="utf-8")
        code = tmp / "uplift_pyfunc.py"
        code.write_text(_CODE, encoding="utf-8")
        staged = tmp / "artifact"
        shutil.copytree(model_dir, staged)
        if model_digest(staged) != service.digest:
            raise UpliftInputError(f"model {model_dir} changed while it was copied; log it again")
        signature = ModelSignature(inputs=None, params=ParamSchema([ParamSpec(*p) for p in PARAMS]))
        return mlflow.pyfunc.log_model(
            name=name, python_model=str(code), artifacts={"model_dir": str(staged), "settings": str(settings)},
            signature=signature, registered_model_name=registered_model_name, input_example=input_example,
            pip_requirements=pip_requirements or [f"uplift=={__version__}", "mlflow-skinny"])

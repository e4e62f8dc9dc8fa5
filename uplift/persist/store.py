"""Saving and loading a fitted :class:`~uplift.fit.result.FitResult` without trusting pickle.

A saved result is a directory written atomically by :func:`uplift.persist.container.write_model_dir`:
``manifest.json`` (format version, package versions, feature schema, training-data hash, sha256 of every
file; its own sha256 is the model's digest), ``study.json`` (roles, results, ensemble weights), LightGBM
models in LightGBM's own text format, the linear final stage (``dr_linear``) as JSON numbers, and
out-of-fold arrays as ``.npy`` (read without pickle). The default learners' directories hold no pickle at all.

Only the forest learners (econml/causalml objects, whose compiled trees cannot be rebuilt from plain
arrays through a public API) and user-supplied scikit-learn base models are pickles. Loading them needs an
explicit ``trust=True`` (``--trust-model``), and even then the unpickler resolves only the exact
``(module, name)`` pairs of :data:`ALLOWED_GLOBALS`, checked before anything is imported. Digest,
signature, format version and hashes are checked before anything is parsed (docs/security.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from uplift._versions import package_versions
from uplift.data.campaign import FeatureSchema
from uplift.design.checklist import DesignReport
from uplift.errors import UpliftInputError
from uplift.fit.crossfit import CrossFit, FoldModels
from uplift.fit.distill import FAST, DistilledScorer
from uplift.fit.learners import make_learner
from uplift.fit.models import LGBMModel, LinearModel, SklearnModel, quiet_lightgbm
from uplift.fit.result import FitResult, TrainingSummary
from uplift.persist.container import read_model_dir, write_model_dir

#: The only globals a pickled model may name, as exact ``(module, name)`` pairs: the classes of the two forest
#: learners (econml's CausalForest, causalml's UpliftRandomForestClassifier) and of common scikit-learn base
#: models, and numpy's array, scalar and random-state rebuilders. A pair outside this set is refused *before*
#: anything is imported, so neither a gadget class (``numpy.memmap`` creates files) nor a module whose import
#: runs code is ever reached. Listed by recording every global the unpickler asks for while loading fitted
#: models of each kind (``tests/persist/test_tampering.py`` re-checks that the forests load).
ALLOWED_GLOBALS = frozenset({
    *((mod, name) for mod in ("numpy.core.multiarray", "numpy._core.multiarray") for name in ("_reconstruct",
                                                                                                "scalar")),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "float64"), ("numpy", "float32"), ("numpy", "int64"),
    ("numpy", "int32"), ("numpy", "intp"), ("numpy", "uint8"), ("numpy", "bool_"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"), ("numpy.random._mt19937", "MT19937"),
    ("numpy.random._pcg64", "PCG64"), ("numpy.random.bit_generator", "SeedSequence"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"), ("numpy.random.mtrand", "RandomState"),
    ("copyreg", "_reconstructor"),
    *(("builtins", name) for name in ("object", "list", "dict", "tuple", "set", "frozenset", "int", "float",
                                      "str", "bytes", "bytearray", "bool", "complex", "slice")),
    ("econml.grf.classes", "CausalForest"), ("econml.grf._base_grftree", "GRFTree"), ("econml.tree._tree", "Tree"),
    ("causalml.inference.tree._uplift.upliftforest", "UpliftRandomForestClassifier"),
    ("causalml.inference.tree._uplift.uplifttree", "_KernelUpliftTreeClassifier"),
    ("causalml.inference.tree._tree._tree", "Tree"),
    ("sklearn.pipeline", "Pipeline"), ("sklearn.compose._column_transformer", "ColumnTransformer"),
    ("sklearn.impute._base", "SimpleImputer"), ("sklearn.preprocessing._data", "StandardScaler"),
    ("sklearn.preprocessing._encoders", "OneHotEncoder"), ("sklearn.preprocessing._label", "LabelEncoder"),
    ("sklearn.linear_model._ridge", "Ridge"), ("sklearn.linear_model._ridge", "RidgeCV"),
    ("sklearn.linear_model._base", "LinearRegression"), ("sklearn.linear_model._logistic", "LogisticRegression"),
    ("sklearn.tree._classes", "DecisionTreeRegressor"), ("sklearn.tree._classes", "DecisionTreeClassifier"),
    ("sklearn.tree._tree", "Tree"), ("sklearn.dummy", "DummyRegressor"), ("sklearn.dummy", "DummyClassifier"),
    ("sklearn.ensemble._forest", "RandomForestRegressor"), ("sklearn.ensemble._forest", "RandomForestClassifier"),
    ("sklearn.ensemble._gb", "GradientBoostingRegressor"), ("sklearn.ensemble._gb", "GradientBoostingClassifier"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingRegressor"),
    ("sklearn.ensemble._hist_gradient_boosting.gradient_boosting", "HistGradientBoostingClassifier"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor"),
    ("sklearn._loss.loss", "HalfSquaredError"), ("sklearn._loss.loss", "HalfBinomialLoss"),
    ("sklearn._loss._loss", "CyHalfSquaredError"), ("sklearn._loss._loss", "CyHalfBinomialLoss"),
    ("sklearn._loss.link", "IdentityLink"), ("sklearn._loss.link", "LogitLink"), ("sklearn._loss.link", "Interval"),
})


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the exact pairs of :data:`ALLOWED_GLOBALS`; nothing else is imported."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:  # checked before any import
            raise UpliftInputError(f"refers to {module}.{name}, which is not an allowed model type; refusing to "
                                   "load it (the file may be tampered with)")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UpliftInputError("holds a persistent reference, which model files never do; refusing to load it")


def restricted_loads(data: bytes):
    """Unpickle ``data`` resolving only :data:`ALLOWED_GLOBALS` (exact module and name, checked before import).

    Examples
    --------
    >>> restricted_loads(b"cos\\nsystem\\n(Vtrue\\ntR.")
    Traceback (most recent call last):
    ...
    uplift.errors.UpliftInputError: refers to os.system, which is not an allowed model type; ...
    """
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UpliftInputError:
        raise
    except Exception as err:  # a damaged pickle fails in many ways (EOFError, UnpicklingError, ValueError...)
        raise UpliftInputError(f"is not a readable model pickle ({type(err).__name__}: {err})") from None


def _model_bytes(model) -> tuple[str, bytes]:
    if isinstance(model, LGBMModel):
        return "txt", model.to_bytes()
    if isinstance(model, LinearModel):
        return "json", model.to_bytes()
    if isinstance(model, SklearnModel):  # a user-supplied base model: only loadable with trust
        return "pkl", pickle.dumps(model.fitted_, protocol=5)
    return "pkl", pickle.dumps(model, protocol=5)  # the forests' own objects: only loadable with trust


def _npy(arr: np.ndarray) -> tuple[bytes, memoryview]:
    """``.npy`` content as (header, the array's own bytes): written and hashed without a copy of the array
    (a 14M-row study's out-of-fold arrays are ~0.7 GB)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype.hasobject:
        raise TypeError("object arrays are not saved")
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    return buf.getvalue(), memoryview(arr).cast("B")


def _npy_view(raw: bytes, name: str) -> np.ndarray:
    """The array in ``.npy`` bytes as a read-only view of those bytes (no copy: out-of-fold arrays of a 14M-row
    study are ~0.7 GB, and ``np.load`` would hold them twice while loading). Object arrays are refused."""
    buf = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(buf)
    except ValueError as exc:
        raise UpliftInputError(f"model array oof/{name}.npy is not a valid .npy file ({exc})") from exc
    if dtype.hasobject:
        raise UpliftInputError(f"model array oof/{name}.npy holds Python objects; refusing to load it")
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - buf.tell() != count * dtype.itemsize:
        raise UpliftInputError(f"model array oof/{name}.npy is truncated or padded: {len(raw) - buf.tell()} data "
                               f"bytes for shape {shape} of {dtype}")
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=buf.tell())
    return arr.reshape(shape, order="F" if fortran else "C")


def save_result(result: FitResult, directory: Path) -> Path:
    """Save a fitted result as a verified model directory (written atomically; see :mod:`uplift.persist`).

    ``study.json`` keeps the result's phase timings; a result saved for the first time adds ``save``, the time
    spent serialising its models and arrays (writing the files comes after it).
    """
    started = time.perf_counter()
    cf: CrossFit = result.crossfit
    files: dict[str, bytes | tuple] = {}
    models: dict[str, dict] = {}

    def put(path: str, model, kind: str) -> None:
        ext, data = _model_bytes(model)
        files[f"{path}.{ext}"] = data
        models[path] = {"file": f"{path}.{ext}", "kind": kind,
                        "sklearn": isinstance(model, SklearnModel)}

    constants: dict[str, float] = {}
    for k, fm in enumerate(cf.fold_models):
        for a, m in fm.mu.items():
            put(f"fold{k}/mu{a}", m, cf.kind)
        for a, m in fm.e.items():
            if isinstance(m, float):
                constants[f"fold{k}/e{a}"] = m
            else:
                put(f"fold{k}/e{a}", m, "binary")
        for (name, a), lrn in fm.learners.items():
            for key, m in lrn.models_.items():
                put(f"fold{k}/{name}_{a}_{key}", m, getattr(m, "kind", "regression"))
    for name, arr in cf.uplift.items():
        files[f"oof/uplift_{name}.npy"] = _npy(np.asarray(arr, dtype=np.float32))
    for name, arr in (("mu", cf.mu), ("e", cf.e), ("dr", cf.dr), ("policy_dr", cf.policy_dr), ("folds", cf.folds)):
        files[f"oof/{name}.npy"] = _npy(arr)
    for name, arr in (("treatment", cf.treatment), ("y", cf.y)):  # for the report's curves without the data
        if arr is not None:
            files[f"oof/{name}.npy"] = _npy(arr)

    scorer = result.scorer
    if scorer is not None:
        for j, text in enumerate(scorer.to_bytes()):
            files[f"scorer/arm{j + 1}.txt"] = text
    training = result.training
    state = {
        "roles": dict(result.roles), "arms": list(result.arms), "design": result.design,
        "notes": list(result.notes), "outcome": cf.outcome, "kind": cf.kind, "learners": list(cf.learners),
        "n_folds": len(cf.fold_models), "best_learner": result.best_learner, "fit_params": result.fit_params,
        "ensemble_weights": {str(a): w for a, w in cf.ensemble_weights.items()},
        "constants": constants, "models": models,
        "leaderboard": json.loads(result.leaderboard.to_json(orient="split", double_precision=15)),
        "ate": json.loads(result.ate.to_json(orient="split", double_precision=15)),
        "calibration": json.loads(result.calibration.to_json(orient="split", double_precision=15)),
        "diagnostics": _plain(dict(result.diagnostics)),
        "profile": _plain(result.profile),
        "scorer_fidelity": None if scorer is None else _plain(scorer.fidelity_),
        "training": {"n": training.n, "arm_counts": training.arm_counts, "outcome_kinds": training.outcome_kinds},
    }
    # A list of [phase, seconds] pairs: the JSON is written with sorted keys, and the phases' order is their story.
    timings = dict(result.timings)
    timings.setdefault("save", time.perf_counter() - started)  # a re-save keeps the fit's own
    state["timings"] = [[name, round(seconds, 3)] for name, seconds in timings.items()]
    files["study.json"] = json.dumps(state, sort_keys=True, indent=1, default=float).encode()
    manifest = {"versions": package_versions(), "schema": result.schema.to_dict(),
                "training_data_sha256": training.data_sha256}
    write_model_dir(directory, files, manifest)
    return directory


def _plain(obj):
    """JSON-ready copy of diagnostics (DataFrames become lists of records, numpy becomes Python)."""
    if isinstance(obj, pd.DataFrame):
        return json.loads(obj.to_json(orient="records", double_precision=15))
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _frame(split: dict) -> pd.DataFrame:
    return pd.DataFrame(split["data"], columns=split["columns"])


#: Why pickled models need ``trust``: the one line every refusal carries.
PICKLE_RISK = ("pickle files can run code when loaded; load it only if you trust whoever can write the directory, "
               "with Study.load(path, trust=True) or --trust-model")


def pickled_models(state: dict) -> list[str]:
    """The files of ``study.json["models"]`` that are pickles (forest learners, user-supplied base models)."""
    return sorted(info["file"] for info in state.get("models", {}).values() if str(info.get("file")).endswith(".pkl"))


def _load_model(name: str, raw: bytes, info: dict, where: Path):
    from lightgbm.basic import LightGBMError
    kind = info["kind"]
    try:
        if name.endswith(".txt"):
            return LGBMModel.from_bytes(raw, kind)
        if name.endswith(".json"):
            return LinearModel.from_bytes(raw, kind)
        if name.endswith(".pkl"):
            obj = restricted_loads(raw)
            return SklearnModel(obj, kind, fitted_=obj) if info.get("sklearn") else obj
    except UpliftInputError as err:
        raise UpliftInputError(f"model file {name!r} in {where} {err}") from None
    except (UnicodeDecodeError, ValueError, LightGBMError) as err:
        raise UpliftInputError(f"model file {name!r} in {where} is not a readable model "
                               f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}); "
                               "the directory is damaged or foreign - save the model again") from None
    raise UpliftInputError(f"model file {name!r} in {where} has an unknown type; save the model again")


def load_result(directory: Path, *, trust: bool = False, expect_digest: str | None = None,
                require_signature: bool = False, for_scoring: bool = False, learner: str | None = None) -> FitResult:
    """Load a result saved with :func:`save_result`, verifying digest, signature, format version and every
    file's sha256 first (see :func:`~uplift.persist.container.read_model_dir`).

    Parameters
    ----------
    directory : path
        The model directory.
    trust : bool, default False
        Allow pickled models (forest learners, user-supplied scikit-learn base models). Refused by default,
        because a pickle can run code; even with ``trust`` the unpickler resolves only
        :data:`ALLOWED_GLOBALS`. Models of the default learners hold no pickle and need no trust.
    expect_digest : str, optional
        Refuse the directory unless its digest (:func:`~uplift.persist.container.model_digest`) is this.
    require_signature : bool, default False
        Refuse a directory without a valid HMAC signature (needs ``UPLIFT_MODEL_KEY``).
    for_scoring : bool, default False
        Read only what scoring new customers with ``learner`` needs (``uplift predict``): the fold models of that
        learner (every learner's for the ensemble) and the nuisances, or for ``learner="fast"`` the distilled
        scorer and the propensity models; no out-of-fold array is kept or parsed. The verification is that of a
        full load (digest, signature, manifest, every file's sha256, streamed), and each file parsed is checked
        again as it is read. Such a result scores, checks drift and reports its leaderboard,
        effects and calibration, but holds no out-of-fold arrays (its ``crossfit.uplift`` values are None).
    learner : str, optional
        With ``for_scoring``: the learner to score with (default: the chosen one).
    """
    directory = Path(directory)
    manifest, files = read_model_dir(directory, expect_digest=expect_digest, require_signature=require_signature,
                                     lazy=for_scoring)
    where = directory / "study.json"
    try:
        state = json.loads(files["study.json"])
    except KeyError:
        raise UpliftInputError(f"{directory} has no study.json; it is not a saved study - give a directory "
                               "written by `uplift fit`") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise UpliftInputError(f"{where} is not valid JSON ({err}); the model directory is damaged - save the "
                               "model again") from None
    try:
        models = state.get("models") if isinstance(state, dict) else None
        wanted = _scoring_models(state, learner) if for_scoring else None
        # LightGBM (and scikit-learn, which it imports: ~1.9 s) only when a LightGBM model is read; the fast
        # scorer's trees are read without it
        boosted = not isinstance(models, dict) or any(
            str(info.get("file", "")).endswith(".txt") for path, info in models.items()
            if isinstance(info, dict) and (wanted is None or wanted(path)))
        with quiet_lightgbm() if boosted else contextlib.nullcontext():
            return _result(directory, manifest, files, state, trust, wanted)
    except UpliftInputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise UpliftInputError(f"{where} does not describe a saved study ({type(err).__name__}: {err}); the model "
                               "directory is damaged or foreign - save the model again") from None


def _scoring_models(state: dict, learner: str | None):
    """Which model paths scoring with ``learner`` reads (see :func:`load_result`'s ``for_scoring``)."""
    if not isinstance(state, dict) or not isinstance(state.get("models"), dict):
        raise TypeError("expected an object with a 'models' table")
    learner = learner or state["best_learner"]
    names = () if learner == FAST else list(state["learners"]) if learner == "ensemble" else [learner]

    def wanted(path: str) -> bool:
        model = path.split("/", 1)[-1]
        if re.fullmatch(r"e\d+", model):
            return True  # propensities: the overlap flag of observational studies, and the nuisances
        if re.fullmatch(r"mu\d+", model):
            return learner != FAST
        return any(re.match(rf"{re.escape(name)}_\d+_", model) for name in names)

    return wanted


def _result(directory: Path, manifest: dict, files, state: dict, trust: bool, wanted=None) -> FitResult:
    if not isinstance(state, dict) or not isinstance(state.get("models"), dict):
        raise TypeError("expected an object with a 'models' table")
    if wanted is not None:
        state = {**state, "models": {p: info for p, info in state["models"].items() if wanted(p)}}
    pickles = pickled_models(state)
    if pickles and not trust:
        raise UpliftInputError(f"{directory} holds pickled models ({pickles[0]}"
                               f"{f' and {len(pickles) - 1} more' if len(pickles) > 1 else ''}, from a forest "
                               f"learner or a custom base model); {PICKLE_RISK}")
    loaded: dict[str, object] = {}
    for path, info in state["models"].items():
        name = info["file"]
        if name not in files:
            raise UpliftInputError(f"{directory / 'study.json'} lists model file {name!r}, which the directory "
                                   "does not hold; save the model again")
        loaded[path] = _load_model(name, files[name], info, directory)
    n_arms = len(state["arms"])
    fold_models = []
    for k in range(state["n_folds"]):
        mu = {a: loaded[f"fold{k}/mu{a}"] for a in range(n_arms) if f"fold{k}/mu{a}" in loaded or wanted is None}
        e = {a: state["constants"].get(f"fold{k}/e{a}") or loaded[f"fold{k}/e{a}"] for a in range(1, n_arms)}
        fm = FoldModels(mu=mu, e=e)
        for name in state["learners"]:
            for a in range(1, n_arms):
                lrn = make_learner(name)
                prefix = f"fold{k}/{name}_{a}_"
                lrn.models_ = {p[len(prefix):]: m for p, m in loaded.items() if p.startswith(prefix)}
                if wanted is None or lrn.models_ or (name == "t" and mu):  # the T-learner's models are the nuisances
                    fm.learners[(name, a)] = lrn
        fold_models.append(fm)

    def npy(name: str) -> np.ndarray | None:
        if wanted is not None:
            return None  # scoring reads no out-of-fold array
        return _npy_view(files.pop(f"oof/{name}.npy"), name)

    uplift = {name: npy(f"uplift_{name}")  # float32, as fitted
              for name in [*state["learners"], *(["ensemble"] if state["ensemble_weights"] else [])]}
    cf = CrossFit(state["outcome"], state["kind"], tuple(state["arms"]), state["design"], tuple(state["learners"]),
                  npy("folds"), npy("mu"), npy("e"), npy("dr"), uplift, fold_models,
                  {int(a): w for a, w in state["ensemble_weights"].items()}, npy("policy_dr"),
                  *(npy(name) if f"oof/{name}.npy" in files else None for name in ("treatment", "y")))
    scorer = None
    if state.get("scorer_fidelity") is not None:
        try:
            scorer = DistilledScorer.from_bytes([files[f"scorer/arm{a}.txt"] for a in range(1, n_arms)],
                                                state["scorer_fidelity"])
        except (UnicodeDecodeError, ValueError, KeyError, IndexError) as err:
            raise UpliftInputError(f"the fast scorer in {directory}/scorer is not a readable LightGBM model "
                                   f"({type(err).__name__}); the directory is damaged - save the model again") from None
    training = state["training"]
    try:
        schema = FeatureSchema.from_dict(manifest["schema"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise UpliftInputError(f"{directory}/manifest.json has no valid feature schema ({type(err).__name__}: "
                               f"{err}); save the model again") from None
    return FitResult(
        schema=schema, roles=state["roles"], arms=tuple(state["arms"]),
        design=state["design"], notes=tuple(state["notes"]), crossfit=cf, best_learner=state["best_learner"],
        leaderboard=_frame(state["leaderboard"]), ate=_frame(state["ate"]),
        calibration=_frame(state["calibration"]), diagnostics=DesignReport(state.get("diagnostics", {})),
        profile=state["profile"], scorer=scorer, fit_params=state["fit_params"],
        training=TrainingSummary(int(training["n"]), training["arm_counts"], training["outcome_kinds"],
                                 manifest.get("training_data_sha256", "")),
        manifest=manifest, timings={str(name): float(sec) for name, sec in state.get("timings") or []})


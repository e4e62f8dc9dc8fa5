"""Saving and loading a fitted :class:`~uplift.fit.result.FitResult` without trusting pickle.

A saved result is a directory written atomically by :func:`uplift.persist.container.write_model_dir`:
``manifest.json``
(format version, package versions, feature schema, training-data hash, sha256 of every file), ``study.json``
(roles, results, ensemble weights), LightGBM models in LightGBM's own text format, out-of-fold arrays as
``.npy`` (loaded with ``allow_pickle=False``), and forest models (econml/causalml objects, whose compiled
trees skops cannot rebuild) as pickles read by a *restricted* unpickler: it builds only classes from an
allow-list of packages and a handful of named numpy helpers, so a crafted file cannot call ``os.system`` or
any other function. Hashes and the format version are checked before anything is parsed.
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from uplift._versions import package_versions
from uplift.data.campaign import FeatureSchema
from uplift.design.checklist import DesignReport
from uplift.errors import UpliftInputError
from uplift.fit.crossfit import CrossFit, FoldModels
from uplift.fit.distill import DistilledScorer
from uplift.fit.learners import make_learner
from uplift.fit.models import LGBMModel, SklearnModel
from uplift.fit.result import FitResult, TrainingSummary
from uplift.persist.container import read_model_dir, write_model_dir

#: Packages whose *classes* a saved forest may contain. Functions are refused unless listed below.
TRUSTED_CLASS_PREFIXES = ("econml.grf.", "econml.tree.", "econml.utilities", "sklearn.", "numpy.",
                          "causalml.inference.tree.")
#: The only non-class callables a forest pickle may reference (numpy's array/scalar rebuilders).
TRUSTED_FUNCTIONS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "dtype"), ("copyreg", "_reconstructor"), ("builtins", "object"),
    ("numpy.random._pickle", "__randomstate_ctor"), ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__generator_ctor"),
}
SAFE_BUILTINS = {"object", "list", "dict", "tuple", "set", "frozenset", "int", "float", "str", "bytes",
                 "bytearray", "bool", "complex", "slice", "range", "NoneType"}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed classes and numpy rebuild helpers."""

    def find_class(self, module: str, name: str):
        if (module, name) in TRUSTED_FUNCTIONS:
            return super().find_class(module, name)
        if module == "builtins" and name in SAFE_BUILTINS:
            return super().find_class(module, name)
        if (module + ".").startswith(TRUSTED_CLASS_PREFIXES) or module.startswith(TRUSTED_CLASS_PREFIXES):
            obj = super().find_class(module, name)
            if isinstance(obj, type):
                return obj
        raise UpliftInputError(f"model file refers to {module}.{name}, which is not an allowed model type; "
                               "refusing to load it (the file may be tampered with)")



def _model_bytes(model) -> tuple[str, bytes]:
    if isinstance(model, LGBMModel):
        return "txt", model.to_bytes()
    if isinstance(model, SklearnModel):
        return "pkl", pickle.dumps(model.fitted_, protocol=5)
    return "pkl", pickle.dumps(model, protocol=5)


def restricted_loads(data: bytes):
    """Unpickle ``data`` allowing only model classes (see :data:`TRUSTED_CLASS_PREFIXES`)."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()


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
    """Save a fitted result as a verified model directory (written atomically; see :mod:`uplift.persist`)."""
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


def load_result(directory: Path) -> FitResult:
    """Load a result saved with :func:`save_result`, verifying format version and every file's sha256 first."""
    manifest, files = read_model_dir(directory)
    state = json.loads(files["study.json"])
    loaded: dict[str, object] = {}
    for path, info in state["models"].items():
        raw = files[info["file"]]
        if info["file"].endswith(".txt"):
            loaded[path] = LGBMModel.from_bytes(raw, info["kind"])
        else:
            obj = restricted_loads(raw)
            loaded[path] = SklearnModel(obj, info["kind"], fitted_=obj) if info["sklearn"] else obj
    n_arms = len(state["arms"])
    fold_models = []
    for k in range(state["n_folds"]):
        mu = {a: loaded[f"fold{k}/mu{a}"] for a in range(n_arms)}
        e = {a: state["constants"].get(f"fold{k}/e{a}") or loaded[f"fold{k}/e{a}"] for a in range(1, n_arms)}
        fm = FoldModels(mu=mu, e=e)
        for name in state["learners"]:
            for a in range(1, n_arms):
                lrn = make_learner(name)
                prefix = f"fold{k}/{name}_{a}_"
                lrn.models_ = {p[len(prefix):]: m for p, m in loaded.items() if p.startswith(prefix)}
                fm.learners[(name, a)] = lrn
        fold_models.append(fm)

    def npy(name: str) -> np.ndarray:
        return _npy_view(files.pop(f"oof/{name}.npy"), name)

    uplift = {name: npy(f"uplift_{name}")  # float32, as fitted
              for name in [*state["learners"], *(["ensemble"] if state["ensemble_weights"] else [])]}
    cf = CrossFit(state["outcome"], state["kind"], tuple(state["arms"]), state["design"], tuple(state["learners"]),
                  npy("folds"), npy("mu"), npy("e"), npy("dr"), uplift, fold_models,
                  {int(a): w for a, w in state["ensemble_weights"].items()}, npy("policy_dr"),
                  *(npy(name) if f"oof/{name}.npy" in files else None for name in ("treatment", "y")))
    scorer = None
    if state.get("scorer_fidelity") is not None:
        scorer = DistilledScorer.from_bytes([files[f"scorer/arm{a}.txt"] for a in range(1, n_arms)],
                                            state["scorer_fidelity"])
    training = state["training"]
    return FitResult(
        schema=FeatureSchema.from_dict(manifest["schema"]), roles=state["roles"], arms=tuple(state["arms"]),
        design=state["design"], notes=tuple(state["notes"]), crossfit=cf, best_learner=state["best_learner"],
        leaderboard=_frame(state["leaderboard"]), ate=_frame(state["ate"]),
        calibration=_frame(state["calibration"]), diagnostics=DesignReport(state.get("diagnostics", {})),
        profile=state["profile"], scorer=scorer, fit_params=state["fit_params"],
        training=TrainingSummary(int(training["n"]), training["arm_counts"], training["outcome_kinds"],
                                 manifest.get("training_data_sha256", "")),
        manifest=manifest)

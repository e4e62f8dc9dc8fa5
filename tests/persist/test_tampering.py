"""Tampering corpus for model directories: nothing in one can run code, a changed model is caught, a damaged one is a
one-line error naming the file.

The attacker here can write the directory, so every case that changes a file also rewrites the manifest's sha256
list (through :func:`write_model_dir`), which is what makes the payload reach the parser: hashes alone only catch
accidents. One tiny model is fitted per module; each case works on its own copy.

==========================================  ====================================================================
case                                        expected
==========================================  ====================================================================
**default learners**
default-dir-holds-no-pickle                 no ``.pkl``; loading never calls an unpickler (patched to fail)
**pickle gadgets** (in a ``.pkl`` the manifest lists; loaded with ``trust=True``)
memmap-global / memmap-stack-global         ``numpy.memmap`` refused; its marker file is not created
open-memmap                                 ``numpy.lib.format.open_memmap`` refused; no file
reconstructor-with-memmap                   allowed ``copyreg._reconstructor`` cannot reach ``numpy.memmap``
numpy-runstring                             ``numpy.testing._private.utils.runstring`` (exec) refused
numpy-load                                  ``numpy.load`` refused
os-system / builtins-eval / getattr         refused
dotted-name                                 ``builtins.object.__subclasses__`` refused
sklearn-run-script                          a scikit-learn helper that runs Python refused
import-side-effect                          a module under ``sklearn.`` whose import writes a file: never imported
persistent-id                               refused
truncated-pickle                            one-line error naming the file
without-trust                               any ``.pkl`` refused before unpickling, message says why
**trusted pickles**
custom-base-model                           a legitimate pickled Ridge base model loads with ``trust=True`` only
**digest and signature**
category-order-edit                         refused without a pin (self-check); with a recomputed self-check:
                                            refused by a pinned digest or a signature, loads otherwise
expect-digest wrong / malformed / right     refused / refused / loads
signed: verified, wrong key, edited,        verified / refused / refused / refused / loads "not verified" /
garbage signature, no key, symlink          refused
require-signature unsigned / without key    refused
**damaged or foreign files** (hashes fixed so the parser is reached)
lightgbm-binary-garbage / -text-garbage     one line naming the ``.txt``
scorer-garbage                              one line naming ``scorer``
linear-json-wrong-type                      one line naming the ``.json``
study-json-truncated / -wrong-types /       one line naming ``study.json``
-missing-key / -string-folds
npy-truncated                               one line naming the ``.npy``
manifest-not-json / newer-format-version /  one line naming the manifest / "upgrade" / "format version"
format-version-string / schema-wrong-type
symlink-file / symlink-folder               refused: plain files only
==========================================  ====================================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import truth_columns
from uplift import Study, simulate_campaign
from uplift.errors import UpliftInputError
from uplift.fit.learners import DEFAULT_LEARNERS
from uplift.persist import KEY_ENV, MODEL_FORMAT_VERSION, SIGNATURE, load_result, model_digest, read_model_dir
from uplift.persist.container import RESERVED_KEYS, write_model_dir


@pytest.fixture(scope="module")
def campaign():
    df = simulate_campaign(1500, seed=5)
    return df.drop(columns=[*truth_columns(df), "revenue"])


@pytest.fixture(scope="module")
def model(campaign, tmp_path_factory) -> Path:
    """Every default learner, 2 folds: the directory `uplift fit` writes by default."""
    study = Study(campaign, "treatment", "conversion", id="customer_id").fit(n_folds=2, n_boot=20)
    return study.save(tmp_path_factory.mktemp("tamper") / "model")


@pytest.fixture
def copy(model, tmp_path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(model, target)
    return target


def rewrite(directory: Path, change, *, key: str | None = None) -> Path:
    """What someone who can write ``directory`` can do: change its files and write fresh hashes for them."""
    manifest, files = read_model_dir(directory)
    files = {k: bytes(v) for k, v in files.items()}
    state = json.loads(files["study.json"])
    extra = {k: v for k, v in manifest.items() if k not in RESERVED_KEYS}
    change(files, state, extra)
    files["study.json"] = json.dumps(state).encode()
    out = directory.parent / "rewritten"
    old = os.environ.pop(KEY_ENV, None)
    try:
        if key:
            os.environ[KEY_ENV] = key
        write_model_dir(out, files, extra)
    finally:
        os.environ.pop(KEY_ENV, None)
        if old is not None:
            os.environ[KEY_ENV] = old
    return out


def with_pickle(payload: bytes):
    """A change that makes the dr learner's fold-0 model the pickle ``payload``."""
    def change(files, state, extra):
        info = state["models"]["fold0/dr_1_tau"]
        del files[info["file"]]
        info["file"] = "fold0/dr_1_tau.pkl"
        files[info["file"]] = payload
    return change


def refused(directory: Path, *needles: str, **options) -> str:
    with pytest.raises(UpliftInputError) as info:
        load_result(directory, **options)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


# ---------------------------------------------------------------------------------------------------------------
# the default directory holds no pickle
# ---------------------------------------------------------------------------------------------------------------

def test_default_directory_holds_no_pickle_and_loading_never_unpickles(model, campaign, monkeypatch):
    names = sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file())
    assert not [n for n in names if n.endswith(".pkl")], names
    state = json.loads((model / "study.json").read_text())
    assert set(state["learners"]) == set(DEFAULT_LEARNERS) and state["ensemble_weights"]
    assert {Path(i["file"]).suffix for i in state["models"].values()} == {".txt", ".json"}
    for p in model.rglob("*"):  # no file starts like a pickle (protocol 2+ opcode PROTO)
        assert not (p.is_file() and p.read_bytes()[:1] == b"\x80"), p

    def no_unpickling(*args, **kwargs):
        raise AssertionError("the loader unpickled something")

    import _pickle

    import uplift.persist.store as store
    for target, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (_pickle, "loads"),
                         (_pickle, "load"), (store, "restricted_loads"), (store._RestrictedUnpickler, "load")):
        monkeypatch.setattr(target, name, no_unpickling)
    real_np_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: real_np_load(*a, **{**k, "allow_pickle": False}))
    loaded = load_result(model)
    pred = loaded.predict_uplift(campaign.head(200))
    assert np.isfinite(pred["uplift"]).all()
    assert loaded.manifest["digest"] == model_digest(model)


def test_the_loader_does_not_import_pickle_machinery_for_a_default_directory(model, campaign, tmp_path):
    """In a fresh interpreter, loading and scoring a default model raises no ``pickle.find_class`` audit event
    (every unpickler, C or Python, raises one for each global it resolves), while a pickle does."""
    import subprocess

    data = tmp_path / "c.parquet"
    campaign.head(200).to_parquet(data)
    code = f"""
import pickle, sys
import pandas as pd
from uplift.persist import load_result
events = []
sys.addaudithook(lambda event, args: events.append(args) if event == "pickle.find_class" else None)
r = load_result({str(model)!r})
assert len(r.predict_uplift(pd.read_parquet({str(data)!r}))) == 200
print("while loading", events)
pickle.loads(pickle.dumps(pd.Timestamp(0)))
print("a pickle resolves", len(events) > 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "while loading []" in done.stdout and "a pickle resolves True" in done.stdout, done.stdout


# ---------------------------------------------------------------------------------------------------------------
# pickle gadgets: with trust=True the unpickler still resolves nothing outside its explicit list
# ---------------------------------------------------------------------------------------------------------------

def _memmap_global(marker: Path) -> bytes:
    # numpy.memmap(filename, dtype, mode, offset, shape): mode w+ creates (or truncates) the file
    return b"cnumpy\nmemmap\n(V" + str(marker).encode() + b"\nVuint8\nVw+\nI0\n(I8\nttR."


def _memmap_stack_global(marker: Path) -> bytes:
    # protocol-4 style: module and name pushed as strings, then STACK_GLOBAL
    return (b"\x80\x04" + _short(b"numpy") + _short(b"memmap") + b"\x93(V" + str(marker).encode()
            + b"\nVuint8\nVw+\nI0\n(I8\nttR.")


def _open_memmap(marker: Path) -> bytes:
    return b"cnumpy.lib.format\nopen_memmap\n(V" + str(marker).encode() + b"\nVw+\ntR."


def _reconstructor_memmap(marker: Path) -> bytes:
    # copyreg._reconstructor is allowed (old-protocol objects), but the class it is given must be resolved too
    return (b"ccopyreg\n_reconstructor\n(cnumpy\nmemmap\nc__builtin__\nobject\nNtR.")


def _runstring(marker: Path) -> bytes:
    src = f"open({str(marker)!r}, 'w').close()"
    return b"cnumpy.testing._private.utils\nrunstring\n(V" + src.encode() + b"\n(dtR."


def _np_load(marker: Path) -> bytes:
    return b"cnumpy\nload\n(V" + str(marker).encode() + b"\ntR."


def _os_system(marker: Path) -> bytes:
    return b"cos\nsystem\n(Vtouch " + str(marker).encode() + b"\ntR."


def _builtins_eval(marker: Path) -> bytes:
    return b"cbuiltins\neval\n(V" + f"open({str(marker)!r}, 'w')".encode() + b"\ntR."


def _builtins_getattr(marker: Path) -> bytes:
    return b"cbuiltins\ngetattr\n(cbuiltins\nobject\nV__subclasses__\ntR."


def _short(text: bytes) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text  # SHORT_BINUNICODE


def _dotted(marker: Path) -> bytes:
    return b"\x80\x04" + _short(b"builtins") + _short(b"object.__subclasses__") + b"\x93)R."


def _sklearn_script(marker: Path) -> bytes:
    src = f"open({str(marker)!r}, 'w').close()"
    return (b"csklearn.utils._testing\nassert_run_python_script_without_output\n(V" + src.encode() + b"\ntR.")


GADGETS = [
    pytest.param(_memmap_global, "numpy.memmap", id="memmap-global"),
    pytest.param(_memmap_stack_global, "numpy.memmap", id="memmap-stack-global"),
    pytest.param(_open_memmap, "numpy.lib.format.open_memmap", id="open-memmap"),
    pytest.param(_reconstructor_memmap, "numpy.memmap", id="reconstructor-with-memmap"),
    pytest.param(_runstring, "runstring", id="numpy-runstring"),
    pytest.param(_np_load, "numpy.load", id="numpy-load"),
    pytest.param(_os_system, "os.system", id="os-system"),
    pytest.param(_builtins_eval, "builtins.eval", id="builtins-eval"),
    pytest.param(_builtins_getattr, "builtins.getattr", id="builtins-getattr"),
    pytest.param(_dotted, "object.__subclasses__", id="dotted-name"),
    pytest.param(_sklearn_script, "assert_run_python_script", id="sklearn-run-script"),
]


@pytest.mark.parametrize(("gadget", "needle"), GADGETS)
def test_pickle_gadget_is_refused_even_with_trust(copy, tmp_path, gadget, needle):
    marker = tmp_path / "pwned"
    evil = rewrite(copy, with_pickle(gadget(marker)))
    refused(evil, "fold0/dr_1_tau.pkl", needle, "not an allowed model type", trust=True)
    assert not marker.exists()


def test_memmap_gadget_is_real(tmp_path):
    """The payload above does create files when a plain unpickler reads it: the refusal is what stops it."""
    marker = tmp_path / "made-by-plain-pickle"
    pickle.loads(_memmap_global(marker))
    assert marker.exists() and marker.stat().st_size == 8


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    """A module ``sklearn.uplift_gadget`` whose import writes a marker file (a module under a trusted prefix that
    runs code when imported, like a package's ``__main__``)."""
    import sklearn

    home = tmp_path / "extra"
    home.mkdir()
    marker = tmp_path / "imported"
    (home / "uplift_gadget.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Model:\n    pass\n")
    monkeypatch.setattr(sklearn, "__path__", [*sklearn.__path__, str(home)])
    yield marker
    sys.modules.pop("sklearn.uplift_gadget", None)


def test_module_import_side_effect_never_runs(copy, side_effect_module):
    evil = rewrite(copy, with_pickle(b"csklearn.uplift_gadget\nModel\n)R."))
    refused(evil, "sklearn.uplift_gadget.Model", trust=True)
    assert not side_effect_module.exists(), "the module was imported before the name was refused"
    import importlib

    importlib.import_module("sklearn.uplift_gadget")  # the gadget is real: importing it does write the file
    assert side_effect_module.exists()


def test_persistent_id_is_refused(copy):
    refused(rewrite(copy, with_pickle(b"\x80\x04\x8c\x01x\x94Q.")), "persistent reference", trust=True)


def test_truncated_pickle_is_one_line_naming_the_file(copy):
    payload = pickle.dumps(np.arange(10.0), protocol=5)[:-7]
    refused(rewrite(copy, with_pickle(payload)), "fold0/dr_1_tau.pkl", "not a readable model pickle", trust=True)


def test_any_pickle_is_refused_without_trust_before_unpickling(copy, tmp_path):
    marker = tmp_path / "pwned"
    evil = rewrite(copy, with_pickle(_memmap_global(marker)))
    message = refused(evil, "pickled models", "fold0/dr_1_tau.pkl", "can run code", "trust=True", "--trust-model")
    assert "numpy.memmap" not in message  # refused before the pickle was read at all
    assert not marker.exists()


def test_a_custom_base_model_is_a_trusted_pickle(campaign, tmp_path):
    from sklearn.linear_model import LogisticRegression, Ridge

    study = Study(campaign, "treatment", "conversion", id="customer_id").fit(
        ["t", "dr"], n_folds=2, n_boot=20, base_regressor=Ridge(), base_classifier=LogisticRegression(max_iter=1000))
    saved = study.save(tmp_path / "custom")
    refused(saved, "pickled models", "trust")
    loaded = load_result(saved, trust=True)
    np.testing.assert_allclose(loaded.predict_uplift(campaign.head(100))["uplift"],
                               study.predict_uplift(campaign.head(100))["uplift"])


# ---------------------------------------------------------------------------------------------------------------
# the digest, the manifest's self-check and the signature
# ---------------------------------------------------------------------------------------------------------------

def _reverse_categories(manifest_path: Path, recompute: bool) -> None:
    from uplift.persist.container import _self_sha256

    doc = json.loads(manifest_path.read_text())
    cats = doc["schema"]["categories"]
    name = next(iter(cats))
    cats[name] = list(reversed(cats[name]))
    if recompute:
        doc["self_sha256"] = _self_sha256(doc)
    manifest_path.write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n")


def test_category_order_edit_by_hand_is_caught_by_the_self_check(copy):
    _reverse_categories(copy / "manifest.json", recompute=False)
    refused(copy, "manifest.json", "edited", "self_sha256")


def test_category_order_edit_with_recomputed_self_check_is_caught_by_a_pinned_digest(copy, model, campaign):
    pinned = model_digest(model)
    _reverse_categories(copy / "manifest.json", recompute=True)
    refused(copy, "digest", pinned, "refusing to load", expect_digest=pinned)
    # Without a pin or a signature, a writer who recomputes every hash is not detectable (docs/security.md):
    # the scores do change, which is why pipelines pin the digest.
    edited = load_result(copy)
    assert edited.manifest["digest"] != pinned
    assert not np.allclose(edited.predict_uplift(campaign.head(300))["uplift"],
                           load_result(model).predict_uplift(campaign.head(300))["uplift"])


def test_expect_digest(model):
    digest = model_digest(model)
    assert hashlib.sha256((model / "manifest.json").read_bytes()).hexdigest() == digest
    assert load_result(model, expect_digest=digest.upper()).manifest["digest"] == digest
    refused(model, "not the expected", expect_digest="0" * 64)
    refused(model, "not 64 hex digits", expect_digest="abc")


@pytest.fixture
def signed(copy, monkeypatch) -> Path:
    monkeypatch.setenv(KEY_ENV, "correct horse")
    target = rewrite(copy, lambda f, s, e: None, key="correct horse")
    assert (target / SIGNATURE).is_file()
    return target


def test_signed_model_verifies_with_the_key(signed):
    assert load_result(signed, require_signature=True).manifest["signature"] == "verified"


def test_signed_model_with_another_key_is_refused(signed, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "another key")
    refused(signed, "signature", "does not match")


def test_signed_model_edited_after_signing_is_refused(signed):
    _reverse_categories(signed / "manifest.json", recompute=True)
    refused(signed, "signature", "does not match")


def test_garbage_signature_is_refused(signed):
    (signed / SIGNATURE).write_bytes(b"\xff\x00 not hex")
    refused(signed, "signature", "does not match")


def test_signature_as_symlink_is_refused(signed, tmp_path):
    (tmp_path / "sig").write_bytes((signed / SIGNATURE).read_bytes())
    (signed / SIGNATURE).unlink()
    (signed / SIGNATURE).symlink_to(tmp_path / "sig")
    refused(signed, "symbolic link")


def test_signed_model_loads_without_a_key_but_says_it_is_not_verified(signed, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    assert "not verified" in load_result(signed).manifest["signature"]
    refused(signed, "cannot be verified", KEY_ENV, require_signature=True)


def test_unsigned_model_is_refused_when_a_signature_is_required(model, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "correct horse")
    assert load_result(model).manifest["signature"] == "unsigned"
    refused(model, "not signed", require_signature=True)


# ---------------------------------------------------------------------------------------------------------------
# damaged or foreign files: one line naming the file (hashes fixed, so the parser is reached)
# ---------------------------------------------------------------------------------------------------------------

def _set(name: str, data: bytes):
    def change(files, state, extra):
        files[name] = data
    return change


def _state(edit):
    def change(files, state, extra):
        edit(state)
    return change


DAMAGED = [
    pytest.param(_set("fold0/mu0.txt", bytes(range(256)) * 4), ["fold0/mu0.txt", "not a readable model"],
                 id="lightgbm-binary-garbage"),
    pytest.param(_set("fold0/mu0.txt", b"tree\nversion=v4\nnum_class=banana\n"), ["fold0/mu0.txt"],
                 id="lightgbm-text-garbage"),
    pytest.param(_set("scorer/arm1.txt", b"\x00\x01garbage"), ["scorer"], id="scorer-garbage"),
    pytest.param(_set("fold0/dr_linear_1_tau.json", b'{"model": "linear", "intercept": "zero"}'),
                 ["fold0/dr_linear_1_tau.json"], id="linear-json-wrong-type"),
    pytest.param(_set("oof/dr.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, "
                      b"'shape': (1500,), }" + b" " * 50 + b"\n" + b"\x00" * 80), ["oof/dr.npy"], id="npy-truncated"),
    pytest.param(_state(lambda s: s.update(models=list(s["models"]))), ["study.json"], id="study-json-wrong-types"),
    pytest.param(_state(lambda s: s.pop("arms")), ["study.json", "KeyError"], id="study-json-missing-key"),
    pytest.param(_state(lambda s: s.update(n_folds="two")), ["study.json"], id="study-json-string-folds"),
]


@pytest.mark.parametrize(("change", "needles"), DAMAGED)
def test_damaged_file_is_one_line_naming_it(copy, change, needles):
    refused(rewrite(copy, change), *needles)


def test_truncated_study_json_is_one_line(copy):
    manifest, files = read_model_dir(copy)
    files = {k: bytes(v) for k, v in files.items()}
    files["study.json"] = files["study.json"][: len(files["study.json"]) // 2]
    write_model_dir(copy.parent / "cut", files, {k: v for k, v in manifest.items() if k not in RESERVED_KEYS})
    refused(copy.parent / "cut", "study.json", "not valid JSON")


def _manifest_edit(copy: Path, edit) -> None:
    from uplift.persist.container import _self_sha256

    doc = json.loads((copy / "manifest.json").read_text())
    edit(doc)
    doc["self_sha256"] = _self_sha256(doc)
    (copy / "manifest.json").write_text(json.dumps(doc))


def test_manifest_that_is_not_json(copy):
    (copy / "manifest.json").write_bytes(b'{"format": "uplift-study", "sha256": {')
    refused(copy, "manifest.json", "not valid JSON")


def test_newer_format_version_names_the_upgrade(copy):
    _manifest_edit(copy, lambda d: d.update(format_version=MODEL_FORMAT_VERSION + 1, uplift_version="9.0"))
    refused(copy, f"format version {MODEL_FORMAT_VERSION + 1}", "uplift>=9.0")


def test_format_version_of_the_wrong_type(copy):
    _manifest_edit(copy, lambda d: d.update(format_version=str(MODEL_FORMAT_VERSION)))
    refused(copy, "unknown model format version")


def test_manifest_schema_of_the_wrong_type(copy):
    _manifest_edit(copy, lambda d: d.update(schema=["age"]))
    refused(copy, "manifest.json", "feature schema")


def test_symlinked_file_inside_the_directory_is_refused(copy, tmp_path):
    victim = copy / "fold0" / "mu0.txt"
    (tmp_path / "elsewhere.txt").write_bytes(victim.read_bytes())  # same bytes: the hash would still match
    victim.unlink()
    victim.symlink_to(tmp_path / "elsewhere.txt")
    refused(copy, "symbolic link", "fold0/mu0.txt")


def test_symlinked_folder_inside_the_directory_is_refused(copy, tmp_path):
    shutil.move(copy / "oof", tmp_path / "oof")
    (copy / "oof").symlink_to(tmp_path / "oof", target_is_directory=True)
    refused(copy, "symbolic link", "oof")


def test_both_forests_load_with_trust_through_the_explicit_list(campaign, tmp_path):
    """ALLOWED_GLOBALS is complete for the forest learners: saved, refused without trust, equal with it."""
    study = Study(campaign, "treatment", "conversion", id="customer_id").fit(
        ["t", "causal_forest", "uplift_forest"], n_folds=2, n_boot=20)
    saved = study.save(tmp_path / "forests")
    refused(saved, "pickled models", "forest")
    loaded = load_result(saved, trust=True)
    for learner in ("causal_forest", "uplift_forest"):
        np.testing.assert_array_equal(loaded.predict_uplift(campaign.head(100), learner=learner)["uplift"],
                                      study.predict_uplift(campaign.head(100), learner=learner)["uplift"])

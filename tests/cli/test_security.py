"""The command line as an attacker or a careless pipeline would use it: pinned digests, signatures, pickles that
need trust, outputs aliasing inputs, ``--json`` on every design and option values checked before any work.

Every refusal is one line ``error: ...`` with exit code 2 (``assert_cli_error``), before any output is written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.cli.test_bad_inputs import assert_cli_error
from tests.conftest import truth_columns
from uplift import Study, simulate_campaign
from uplift.cli import app
from uplift.persist import KEY_ENV, SIGNATURE, model_digest

runner = CliRunner()
FAST = ["--learners", "t,dr_linear", "--folds", "2"]


def fit_cli(data: Path, out: Path, *extra: str, outcome: str = "conversion"):
    return runner.invoke(app, ["fit", str(data), "--treatment", "treatment", "--outcome", outcome,
                               "--id", "customer_id", *FAST, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("security")
    df = simulate_campaign(1200, seed=3)
    df = df.drop(columns=[*truth_columns(df), "revenue"])
    data = root / "campaign.csv"
    df.to_csv(data, index=False)
    exclude = root / "no_contact.csv"
    df[["customer_id"]].head(20).to_csv(exclude, index=False)
    model = root / "model"
    os.environ.pop(KEY_ENV, None)
    res = fit_cli(data, model)
    assert res.exit_code == 0, res.output
    custom = root / "custom"  # a legitimate pickle: a scikit-learn base model
    from sklearn.linear_model import LogisticRegression

    Study(df, "treatment", "conversion", id="customer_id").fit(
        ["t"], n_folds=2, n_boot=20, base_classifier=LogisticRegression(max_iter=500)).save(custom)
    return {"root": root, "data": data, "exclude": exclude, "model": model, "custom": custom}


def snapshot(*paths: Path) -> dict:
    out = {}
    for p in paths:
        for f in ([p] if p.is_file() else sorted(p.rglob("*"))):
            if f.is_file():
                out[f] = f.read_bytes()
    return out


# ---------------------------------------------------------------------------------------------------------------
# digest, signature, trust
# ---------------------------------------------------------------------------------------------------------------

def test_fit_prints_the_digest_and_evaluate_shows_it(files):
    digest = model_digest(files["model"])
    res = runner.invoke(app, ["evaluate", str(files["model"])])
    assert res.exit_code == 0 and f"model digest: {digest}" in res.output and "signature: unsigned" in res.output
    doc = json.loads(runner.invoke(app, ["evaluate", str(files["model"]), "--json"]).stdout)
    assert doc["model_digest"] == digest and doc["signature"] == "unsigned"


def test_fit_json_holds_the_digest(files, tmp_path):
    res = fit_cli(files["data"], tmp_path / "m", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model_digest"] == model_digest(tmp_path / "m")
    res = fit_cli(files["data"], tmp_path / "m2")
    assert f"model digest: {model_digest(tmp_path / 'm2')}" in res.output


LOADING = [
    pytest.param(lambda f, o: ["evaluate", str(f["model"])], id="evaluate"),
    pytest.param(lambda f, o: ["predict", str(f["model"]), str(f["data"]), "--out", str(o / "s.csv")], id="predict"),
    pytest.param(lambda f, o: ["target", str(f["model"]), str(f["data"]), "--cost", "1", "--value", "40",
                               "--out", str(o / "list.csv")], id="target"),
    pytest.param(lambda f, o: ["segments", str(f["model"]), str(f["data"]), "--no-discover", "--by", "channel"],
                 id="segments"),
    pytest.param(lambda f, o: ["report", str(f["model"]), "--out", str(o / "r.html")], id="report"),
    pytest.param(lambda f, o: ["explain", str(f["model"]), str(f["data"]), "--max-rows", "50"], id="explain"),
    pytest.param(lambda f, o: ["refute", str(f["model"]), str(f["data"]), "--max-rows", "300"], id="refute"),
    pytest.param(lambda f, o: ["serve", str(f["model"]), "--port", "0"], id="serve"),  # refused before it listens
]


@pytest.mark.parametrize("command", LOADING)
def test_every_loading_command_refuses_a_wrong_pinned_digest(files, tmp_path, command):
    args = command(files, tmp_path)
    assert_cli_error(runner.invoke(app, [*args, "--expect-digest", "ab" * 32]), "not the expected", "ab" * 32)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", LOADING[:3])
def test_the_right_digest_loads(files, tmp_path, command):
    res = runner.invoke(app, [*command(files, tmp_path), "--expect-digest", model_digest(files["model"])])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("command", LOADING)
def test_every_loading_command_refuses_pickles_without_trust(files, tmp_path, command):
    args = [a if a != str(files["model"]) else str(files["custom"]) for a in command(files, tmp_path)]
    assert_cli_error(runner.invoke(app, args), "pickled models", "--trust-model")


def test_trust_model_loads_a_pickled_base_model(files, tmp_path):
    res = runner.invoke(app, ["predict", str(files["custom"]), str(files["data"]), "--out", str(tmp_path / "s.csv"),
                              "--trust-model"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 1200


def test_signing_and_require_signature(files, tmp_path, monkeypatch):
    assert_cli_error(runner.invoke(app, ["evaluate", str(files["model"]), "--require-signature"]), KEY_ENV)
    monkeypatch.setenv(KEY_ENV, "s3cret")
    assert_cli_error(runner.invoke(app, ["evaluate", str(files["model"]), "--require-signature"]), "not signed")
    signed = tmp_path / "signed"
    res = fit_cli(files["data"], signed)
    assert res.exit_code == 0 and "signature: signed;" in res.output and (signed / SIGNATURE).is_file()
    res = runner.invoke(app, ["evaluate", str(signed), "--require-signature", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["signature"] == "verified"
    monkeypatch.setenv(KEY_ENV, "not the key")
    assert_cli_error(runner.invoke(app, ["evaluate", str(signed)]), "signature", "does not match")
    monkeypatch.delenv(KEY_ENV)
    res = runner.invoke(app, ["evaluate", str(signed), "--json"])
    assert res.exit_code == 0 and "not verified" in json.loads(res.stdout)["signature"]


def test_a_damaged_model_file_is_one_line_through_the_cli(files, tmp_path):
    from uplift.persist.container import RESERVED_KEYS, read_model_dir, write_model_dir

    manifest, content = read_model_dir(files["model"])
    content = {k: bytes(v) for k, v in content.items()}
    content["fold0/mu0.txt"] = b"\xff\xfe garbage"
    write_model_dir(tmp_path / "bad", content, {k: v for k, v in manifest.items() if k not in RESERVED_KEYS})
    assert_cli_error(runner.invoke(app, ["evaluate", str(tmp_path / "bad")]), "fold0/mu0.txt", "not a readable")
    # In a real process too: LightGBM's own "[LightGBM] [Fatal]" line (written by its C++ code) is kept away.
    import subprocess
    import sys

    for payload in (b"\xff\xfe garbage", b"tree\nversion=v4\nnum_class=banana\n"):
        content["fold0/mu0.txt"] = payload
        write_model_dir(tmp_path / "bad", content, {k: v for k, v in manifest.items() if k not in RESERVED_KEYS})
        done = subprocess.run([sys.executable, "-c", "from uplift.cli.commands import main; main()", "evaluate",
                               str(tmp_path / "bad")], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                   "COLUMNS": "300"})
        assert done.returncode == 2 and done.stdout == "", done.stdout
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "fold0/mu0.txt" in lines[0], done.stderr


# ---------------------------------------------------------------------------------------------------------------
# outputs never destroy an input
# ---------------------------------------------------------------------------------------------------------------

def _alias(files: dict, kind: str) -> Path:
    root = files["root"] / f"alias-{kind}"
    root.mkdir(exist_ok=True)
    if kind == "symlink-data":
        link = root / "scores.csv"
        if not link.is_symlink():
            link.symlink_to(files["data"])
        return link
    if kind == "hardlink-exclude":
        link = root / "list.csv"
        if not link.exists():
            os.link(files["exclude"], link)
        return link
    if kind == "symlink-results":
        link = root / "readout.json"
        if not link.is_symlink():
            link.symlink_to(files["exclude"])
        return link
    if kind == "dotdot-data":
        return root / ".." / "campaign.csv"
    raise ValueError(kind)


ALIASING = [
    pytest.param(lambda f: ["target", str(f["model"]), str(f["data"]), "--cost", "1", "--value", "40",
                            "--exclude", str(f["exclude"]), "--out", str(f["exclude"])],
                 ["refusing to overwrite", "no_contact.csv"], id="target-out-is-exclusion-list"),
    pytest.param(lambda f: ["target", str(f["model"]), str(f["data"]), "--cost", "1", "--value", "40",
                            "--exclude", str(f["exclude"]), "--out", str(_alias(f, "hardlink-exclude"))],
                 ["refusing to overwrite"], id="target-out-hard-link-to-exclusion-list"),
    pytest.param(lambda f: ["target", str(f["model"]), str(f["data"]), "--cost", "1", "--value", "40",
                            "--out", str(f["model"] / "list.csv")], ["inside", "model"], id="target-out-in-model-dir"),
    pytest.param(lambda f: ["report", str(f["model"]), "--data", str(f["data"]), "--out", str(f["data"])],
                 ["refusing to overwrite", "campaign.csv"], id="report-out-is-data"),
    pytest.param(lambda f: ["report", str(f["model"]), "--out", str(f["model"] / "manifest.json")],
                 ["inside"], id="report-out-is-manifest"),
    pytest.param(lambda f: ["explain", str(f["model"]), str(f["data"]), "--plot", str(f["data"])],
                 ["refusing to overwrite"], id="explain-plot-is-data"),
    pytest.param(lambda f: ["explain", str(f["model"]), str(f["data"]), "--plot", str(f["root"] / "x.png"),
                            "--out", str(f["root"] / "x.png")], ["refusing to overwrite"], id="explain-plot-is-out"),
    pytest.param(lambda f: ["predict", str(f["model"]), str(f["data"]), "--out", str(f["root"])],
                 ["is a directory"], id="predict-out-existing-directory"),
    pytest.param(lambda f: ["predict", str(f["model"]), str(f["data"]), "--out", str(_alias(f, "symlink-data"))],
                 ["refusing to overwrite"], id="predict-out-symlink-to-data"),
    pytest.param(lambda f: ["predict", str(f["model"]), str(f["data"]), "--out", str(_alias(f, "dotdot-data"))],
                 ["refusing to overwrite"], id="predict-out-dotdot-to-data"),
    pytest.param(lambda f: ["predict", str(f["model"]), str(f["data"]), "--out", str(f["model"] / "oof" / "s.csv")],
                 ["inside"], id="predict-out-in-model-dir"),
    pytest.param(lambda f: ["segments", str(f["model"]), str(f["data"]), "--by", "channel", "--out",
                            str(f["data"])], ["refusing to overwrite"], id="segments-out-is-data"),
    pytest.param(lambda f: ["readout", str(f["data"]), str(f["exclude"]), "--outcome", "conversion", "--id",
                            "customer_id", "--out", str(_alias(f, "symlink-results"))],
                 ["refusing to overwrite"], id="readout-out-symlink-to-input"),
    pytest.param(lambda f: ["fit", str(f["model"] / "campaign.csv"), "--treatment", "treatment", "--outcome",
                            "conversion", "--out", str(f["model"])], ["is inside it"], id="fit-out-contains-data"),
    pytest.param(lambda f: ["demo", "--out", str(f["root"] / "demo_model"), "--data-out",
                            str(f["root"] / "demo_model" / "h.csv")], ["inside"], id="demo-data-out-in-model-dir"),
]


@pytest.mark.parametrize(("args", "needles"), ALIASING)
def test_output_aliasing_an_input_is_refused_before_any_work(files, args, needles):
    inside = files["model"] / "campaign.csv"
    argv = args(files)
    planted = argv[0] == "fit"
    if planted:
        shutil.copy(files["data"], inside)
    try:
        before = snapshot(files["data"], files["exclude"], files["model"])
        assert_cli_error(runner.invoke(app, argv), *needles)
        assert snapshot(files["data"], files["exclude"], files["model"]) == before
    finally:
        if planted:
            inside.unlink()
    assert not (files["root"] / "demo_model").exists()
    assert not list(files["root"].glob(".*uplift-tmp-*"))


# ---------------------------------------------------------------------------------------------------------------
# --json on every design, and option values checked before work
# ---------------------------------------------------------------------------------------------------------------

def _design(kind: str) -> tuple[pd.DataFrame, list[str]]:
    if kind == "multi-arm":
        df = simulate_campaign(1500, n_arms=2, seed=8)
    elif kind == "observational":
        df = simulate_campaign(1500, design="observational", seed=8)
    else:
        df = simulate_campaign(1500, seed=8)
    outcome = "revenue" if kind == "continuous" else "conversion"
    drop = [c for c in ("revenue", "conversion") if c != outcome]
    return df.drop(columns=[*truth_columns(df), *drop]), ["--outcome", outcome]


@pytest.mark.parametrize("kind", ["rct", "observational", "multi-arm", "continuous"])
def test_fit_and_evaluate_json_on_every_design(tmp_path, kind):
    df, outcome = _design(kind)
    data = tmp_path / "c.csv"
    df.to_csv(data, index=False)
    design = ["--design", "observational"] if kind == "observational" else []
    res = runner.invoke(app, ["fit", str(data), "--treatment", "treatment", *outcome, "--id", "customer_id", *FAST,
                              *design, "--out", str(tmp_path / "m"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["model_digest"] == model_digest(tmp_path / "m") and doc["leaderboard"] and doc["ate"]
    if kind == "observational":
        assert doc["design"] == "observational" and doc["diagnostics"]
    if kind == "multi-arm":
        assert len(doc["arms"]) == 3
    for cmd in (["evaluate", str(tmp_path / "m"), "--json"],
                ["predict", str(tmp_path / "m"), str(data), "--out", str(tmp_path / "s.csv"), "--json"]):
        res = runner.invoke(app, cmd)
        assert res.exit_code == 0, res.output
        assert "NaN" not in res.stdout and json.loads(res.stdout)


OPTIONS = [
    pytest.param(["--seed", "-1"], ["--seed", "between 0 and 4294967295", "-1"], id="fit-seed-negative"),
    pytest.param(["--seed", str(2**32)], ["--seed", str(2**32)], id="fit-seed-too-large"),
    pytest.param(["--folds", "1"], ["--folds", "at least 2"], id="fit-one-fold"),
    pytest.param(["--max-train-rows", "-5"], ["--max-train-rows"], id="fit-negative-row-cap"),
]


@pytest.mark.parametrize(("extra", "needles"), OPTIONS)
def test_fit_option_values_are_checked_before_reading_data(files, tmp_path, extra, needles):
    res = runner.invoke(app, ["fit", str(tmp_path / "absent.csv"), "--treatment", "treatment", "--outcome",
                              "conversion", "--out", str(tmp_path / "m"), *extra])
    assert_cli_error(res, *needles)  # the option, not the missing file: checked first
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("args", "needles"), [
    pytest.param(lambda f, o: ["demo", "--seed", "-1"], ["--seed"], id="demo-seed-negative"),
    pytest.param(lambda f, o: ["demo", "--folds", "0"], ["--folds"], id="demo-zero-folds"),
    pytest.param(lambda f, o: ["target", str(f["model"]), str(f["data"]), "--cost", "1", "--value", "4", "--seed",
                               "-3", "--out", str(o / "l.csv")], ["--seed"], id="target-seed-negative"),
    pytest.param(lambda f, o: ["segments", str(f["model"]), str(f["data"]), "--bins", "1"], ["--bins"],
                 id="segments-one-bin"),
    pytest.param(lambda f, o: ["explain", str(f["model"]), str(f["data"]), "--max-rows", "0"], ["--max-rows"],
                 id="explain-zero-rows"),
])
def test_other_option_values_are_checked_first(files, tmp_path, args, needles):
    assert_cli_error(runner.invoke(app, args(files, tmp_path)), *needles)
    assert list(tmp_path.iterdir()) == []

"""What an analyst reads at 80 columns (a pipe, a notebook cell, a small terminal): tables that fit without breaking
a word, one set of units, rounded numbers (full precision in --json), every arm in its own named block."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import uplift.cli.commands as commands
import uplift.cli.demo as demo
import uplift.cli.render as render
from tests.conftest import truth_columns
from uplift import simulate_campaign
from uplift.cli import app

runner = CliRunner()


@pytest.fixture()
def narrow(monkeypatch):
    """Every table printed to an 80-column console; returns the buffer."""
    buf = io.StringIO()
    console = Console(width=80, file=buf, color_system=None, force_terminal=False)
    for module in (render, commands, demo):
        monkeypatch.setattr(module, "console", console)
    return buf


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A two-coupon campaign and its fitted model directory (two learners, a dr_linear among them)."""
    folder = tmp_path_factory.mktemp("layout")
    df = simulate_campaign(5000, n_arms=2, seed=5)
    path = folder / "shop.csv"
    df.drop(columns=truth_columns(df)).to_csv(path, index=False)
    res = runner.invoke(app, ["fit", str(path), "--treatment", "treatment", "--outcome", "conversion", "--id",
                              "customer_id", "--exclude", "revenue", "--learners", "t,dr_linear", "--folds", "2",
                              "--out", str(folder / "model"), "--json"])
    assert res.exit_code == 0, res.output
    return path, folder / "model"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _fits_80(text: str) -> None:
    assert max(len(line) for line in text.splitlines()) <= 80


def test_evaluate_tables_fit_80_columns_without_breaking_a_word(shop, narrow):
    res = runner.invoke(app, ["evaluate", str(shop[1])])
    assert res.exit_code == 0, res.output
    text = narrow.getvalue()
    _fits_80(text)
    # Words that used to be cut mid-cell ("Qini coeffic|ient", "dr_line|ar") are whole on one line.
    for word in ("Qini [95% CI]", "dr_linear", "coupon_a", "coupon_b", "conversion", "← chosen", "uplift@30%"):
        assert word in text, word
    # One effect row is one line: arm, outcome, effect [CI], relative lift and the control rate; the unit every
    # row shares (pp) is said once, in the header.
    effects = text.split("Average effect")[1].split("Calibration")[0]
    effect_rows = [line for line in _lines(effects) if line.lstrip().startswith("coupon_") and "%" in line
                   and "conversion" in line]
    assert len(effect_rows) == 2
    assert re.search(r"[+-]\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\] +[+-]\d", effect_rows[0])
    assert "pp" not in effect_rows[0] and re.search(r"\bpp\b", "\n".join(_lines(effects)[:4]))
    # The leaderboard: one named block per arm, each row (learner, Qini, uplift@k, DR loss) on one line.
    board = text.split("Leaderboard")[1].split("Average effect")[0]
    assert "arm coupon_a" in board and "arm coupon_b" in board
    rows = [line for line in _lines(board) if line.startswith(("t ", "dr_linear "))]
    assert len(rows) == 4 and all(line.count("[") >= 2 for line in rows)
    # Randomised: the ATE once, no ATT row repeating it.
    assert "ATT" not in text and "(ATE)" in text
    # The paired DR-loss difference to the chosen learner, with its own interval.
    assert "DR loss − chosen" in text


def test_json_keeps_full_precision_while_tables_round(shop, narrow):
    doc = json.loads(runner.invoke(app, ["evaluate", str(shop[1]), "--json"]).stdout)
    row = doc["leaderboard"][0]
    assert {"dr_loss_vs_chosen", "dr_loss_vs_chosen_lower", "dr_loss_vs_chosen_upper"} <= set(row)
    qini = next(r["qini"] for r in doc["leaderboard"])
    assert len(repr(qini)) > 8  # not rounded in JSON
    assert render.cell(0.30000000000000004) == "0.3" and render.cell(11187) == "11,187"


def test_segments_and_explain_cover_every_arm_in_named_blocks(shop, narrow):
    data, model = shop
    res = runner.invoke(app, ["segments", str(model), str(data), "--min-leaf", "300", "--max-depth", "2"])
    assert res.exit_code == 0, res.output
    text = narrow.getvalue()
    _fits_80(text)
    assert "Arm coupon_a — Discovered" in text and "Arm coupon_b — Discovered" in text
    doc = json.loads(runner.invoke(app, ["segments", str(model), str(data), "--min-leaf", "300", "--json"]).stdout)
    assert {r["arm"] for r in doc["discovered"]} == {"coupon_a", "coupon_b"}
    one = json.loads(runner.invoke(app, ["segments", str(model), str(data), "--min-leaf", "300", "--arm",
                                         "coupon_b", "--json"]).stdout)
    assert {r["arm"] for r in one["discovered"]} == {"coupon_b"}
    doc = json.loads(runner.invoke(app, ["explain", str(model), str(data), "--max-rows", "300", "--json"]).stdout)
    assert {r["arm"] for r in doc["importance"]} == {"coupon_a", "coupon_b"}
    assert set(doc["surrogate_r2"]) == {"coupon_a", "coupon_b"}
    assert all("arm" in r for r in doc["top_drivers_preview"])
    narrow.seek(0)
    narrow.truncate(0)
    res = runner.invoke(app, ["explain", str(model), str(data), "--max-rows", "300"])
    assert res.exit_code == 0, res.output
    text = narrow.getvalue()
    assert "Arm coupon_a — what drives" in text and "Arm coupon_b — what drives" in text
    assert not re.search(r"\d\.0*[1-9]\d{4,}", text)  # at most 4 significant digits, no 16-digit floats


def test_target_footer_units_plot_and_honest_warning(shop, narrow, tmp_path):
    data, model = shop
    out, plot = tmp_path / "list.csv", tmp_path / "curve.png"
    # Costly coupons: the model still sees a few profitable customers; honestly the list may well lose money.
    res = runner.invoke(app, ["target", str(model), str(data), "--out", str(out), "--cost", "coupon_a=4",
                              "--cost", "coupon_b=4.9", "--value", "45", "--budget", "15000", "--currency", "EUR",
                              "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    text = narrow.getvalue()
    _fits_80(text)
    assert "{" not in text and "by coupon: coupon_a" in text  # no Python dict in the footer
    assert "Expected result in EUR" in text and "%" in text  # money labelled, ROI as a percentage
    lst = pd.read_csv(out)
    assert lst["rank"].min() == 1 if len(lst) else True
    assert not re.search(r"\.\d{7,}", out.read_text())  # rounded for people (see the readout test)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(runner.invoke(app, ["target", str(model), str(data), "--out", str(out), "--cost",
                                         "coupon_a=4", "--cost", "coupon_b=4.9", "--value", "45", "--budget",
                                         "15000", "--json"]).stdout)
    summary = doc["summary"]
    est = summary["estimated"]
    # The "this list" row, the footer and the written list are the same customers and the same spend.
    assert est["n_selected"] == summary["customers_selected"] == len(lst)
    assert est["spend"] == pytest.approx(summary["spend"]) == pytest.approx(lst["cost"].sum())
    if est["profit_lower"] <= 0:
        assert summary["warning"] and "warning:" in text and "honest 95% interval" in text
    else:
        assert summary["warning"] is None


def test_version_and_help_metavars(narrow):
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and re.search(r"uplift \d", narrow.getvalue() + res.output)
    help_text = runner.invoke(app, ["fit", "--help"], terminal_width=80).output
    assert "<bool>" not in help_text and "<list[str]>" not in help_text and "<str>" not in help_text
    assert "INTEGER" in help_text and "ARM=SHARE" in help_text


def test_demo_names_its_data_first(narrow, monkeypatch):
    """The first line says which data the demo runs on (Hillstrom: rows, arms, source), before any result."""
    from uplift.datasets import load_hillstrom

    frame = load_hillstrom().sample(3000, random_state=0).reset_index(drop=True)
    original = demo.Study.fit
    monkeypatch.setattr(demo.Study, "fit", lambda self, **kw: original(self, **{**kw, "learners": ["t"],
                                                                              "n_boot": 10}))
    demo.run_demo(frame, folds=2)
    first = _lines(narrow.getvalue())[0]
    assert "Hillstrom" in first and "3,000 customers" in first
    assert "MineThatData" in " ".join(_lines(narrow.getvalue())[:3])


def test_leaderboard_label_follows_the_fit_parameter_k():
    board = pd.DataFrame({
        "rank": [1], "learner": ["t"], "arm": ["a"], "qini": [0.1], "qini_lower": [0.0], "qini_upper": [0.2],
        "uplift_at_k": [0.02], "uplift_at_k_lower": [0.01], "uplift_at_k_upper": [0.03], "dr_loss_vs_best": [0.0],
        "dr_loss_vs_chosen": [0.0], "dr_loss_vs_chosen_lower": [0.0], "dr_loss_vs_chosen_upper": [0.0]})
    buf = io.StringIO()
    Console(width=80, file=buf).print(render.leaderboard_table(board, "t", "binary", k=0.2))
    assert "uplift@20%" in buf.getvalue() and "uplift@30%" not in buf.getvalue()
    assert "+2.00 [1.00, 3.00]" in buf.getvalue() and "pp" in buf.getvalue()  # in pp, like effects and report


def test_weak_overlap_headline_says_which_estimand_and_why():
    """Under weak overlap the terminal leads with the trimmed effect, in words; clipping is a visible note."""
    import numpy as np

    from tests.effects.test_overlap import arrays, table

    y, t, mu, e, _ = arrays(20_000, 1, steep=3.0)
    ate = table(y, t, mu, e).reset_index()
    lines = render.headline_lines(ate)
    head = [line for line in lines if line.startswith("[bold]headline")]
    assert len(head) == 1 and "customers with propensity in [" in head[0] and "Crump" in head[0]
    trimmed = ate.set_index("estimand").loc["trimmed"]
    assert f"{trimmed['estimate_display']:+.2f}" in head[0]
    assert any("propensity clipped to [0.01, 0.99]" in line for line in lines)
    good = table(*arrays(5000, 0, steep=0.8)[:4]).reset_index()
    assert not [line for line in render.headline_lines(good) if "headline" in line]
    assert np.isfinite(trimmed["se"])


def test_readout_at_80_columns_in_the_one_convention_and_of_an_older_list(shop, narrow, tmp_path):
    """`uplift readout` at 80 columns: the headline in pp, money with the currency and ROI as a percentage (no raw
    fractions or _se rows), one line per coupon; a list written by an older version (deciles 9 = highest, rank
    from 0) reads the same, decile 1 = highest."""
    data, model = shop
    sent = tmp_path / "sent.csv"
    res = runner.invoke(app, ["target", str(model), str(data), "--out", str(sent), "--cost", "coupon_a=0.2",
                              "--cost", "coupon_b=0.3", "--value", "30", "--holdout", "0.3", "--json"])
    assert res.exit_code == 0, res.output
    # The list file is rounded for people (no 0.30000000000000004): at most six decimals in any number.
    assert not re.search(r"\.\d{7,}", sent.read_text())
    lst = pd.read_csv(sent)
    assert len(lst) > 100 and lst["uplift"].map(lambda v: len(repr(v).split(".")[-1]) <= 6).all()
    rng = np.random.default_rng(0)
    bought = (rng.random(len(lst)) < 0.1 + 0.05 * lst["send"]).astype(int)
    results = tmp_path / "results.csv"
    pd.DataFrame({"customer_id": lst["customer_id"], "converted": bought}).to_csv(results, index=False)
    args = ["--outcome", "converted", "--id", "customer_id", "--value", "30", "--currency", "EUR"]
    res = runner.invoke(app, ["readout", str(sent), str(results), *args])
    assert res.exit_code == 0, res.output
    text = narrow.getvalue()
    _fits_80(text)
    assert "_se" not in text and "realised_uplift" not in text and "n_holdout" not in text
    assert re.search(r"uplift per customer sent +[+-]\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\] pp", text)
    assert re.search(r"ROI +[+-]\d+ \[-?\d+, -?\d+\] %", text) and re.search(r"profit +[+-][\d,]+ .* EUR", text)
    coupon_block = text.split("By coupon")[1].split("By predicted-uplift decile")[0]
    sent_arms = sorted(lst.loc[lst["send"] == 1, "coupon"].dropna().unique())
    assert sent_arms and set(sent_arms) <= {"coupon_a", "coupon_b"}
    for arm in sent_arms:  # each coupon the list sends has its line
        row = next(line for line in coupon_block.splitlines() if line.startswith(arm))
        assert row.count("[") == 2 and row.count("]") == 2  # both intervals whole on the coupon's one line
    today = text.split("By predicted-uplift decile")[1]
    # The same list as an older version wrote it.
    old = lst.copy()
    sel = old["uplift_decile"] > 0
    old.loc[sel, "uplift_decile"] = 10 - old.loc[sel, "uplift_decile"]
    old.loc[old["rank"] > 0, "rank"] -= 1
    old_path = tmp_path / "old.csv"
    old.to_csv(old_path, index=False)
    narrow.seek(0)
    narrow.truncate(0)
    res = runner.invoke(app, ["readout", str(old_path), str(results), *args])
    assert res.exit_code == 0, res.output
    older = narrow.getvalue()
    assert "older version" in older
    assert older.split("By predicted-uplift decile")[1].split("note:")[0] == today.split("note:")[0]


@pytest.fixture(scope="module")
def three_coupon_export(tmp_path_factory):
    """The realistic shop export (tests/shop.py: text dates, a -999 code, control 40% and three coupons at 20%)
    as a user's CSV, and the fit's captured 80-column output."""
    from tests.shop import shop_campaign
    folder = tmp_path_factory.mktemp("three")
    export, _ = shop_campaign(6000, seed=2)
    path = folder / "shop.csv"
    export.to_csv(path, index=False)
    buf = io.StringIO()
    console = Console(width=80, file=buf, color_system=None, force_terminal=False)
    with pytest.MonkeyPatch.context() as mp:
        for module in (render, commands):
            mp.setattr(module, "console", console)
        res = runner.invoke(app, ["fit", str(path), "--treatment", "coupon", "--outcome", "converted", "--id",
                                  "customer_id", "--exclude", "revenue", "--learners", "t", "--folds", "2",
                                  "--out", str(folder / "model")])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""  # not a terminal (a pipe): no progress bar, no stray blank line on stderr
    return path, folder / "model", buf.getvalue()


def test_fit_of_a_three_coupon_export_names_cli_flags_and_fits_80_columns(three_coupon_export):
    """An unequal design (control 40%) fits with the check on; the notes and the check name the CLI's flags,
    not Python's arguments."""
    _, _, text = three_coupon_export
    _fits_80(text)
    flat = " ".join(text.split())
    assert "needs the declared split (--expected-split ARM=SHARE)" in flat
    assert "--na-values -999" in flat and "--as-of" in flat
    for python in ("expected_split=", "na_values=", "as_of=", "allow_srm=", "exclude=["):
        assert python not in flat, python


def test_explain_arm_chooses_one_of_three_coupons(three_coupon_export, narrow):
    data, model, _ = three_coupon_export
    doc = json.loads(runner.invoke(app, ["explain", str(model), str(data), "--max-rows", "200", "--arm", "pct20",
                                         "--json"]).stdout)
    assert {r["arm"] for r in doc["importance"]} == {"pct20"} and set(doc["surrogate_r2"]) == {"pct20"}
    every = json.loads(runner.invoke(app, ["explain", str(model), str(data), "--max-rows", "200", "--json"]).stdout)
    assert {r["arm"] for r in every["importance"]} == {"free_shipping", "pct10", "pct20"}
    assert all("arm" in r for r in every["top_drivers_preview"])
    seg = json.loads(runner.invoke(app, ["segments", str(model), str(data), "--by", "channel", "--arm", "pct10",
                                         "--min-leaf", "300", "--json"]).stdout)
    assert {r["arm"] for r in seg["segments"]} == {"pct10"} and {r["arm"] for r in seg["discovered"]} == {"pct10"}
    res = runner.invoke(app, ["explain", str(model), str(data), "--arm", "pct99"])
    assert res.exit_code == 2 and "pct99" in res.output and "Traceback" not in res.output


def test_report_takes_a_cost_per_coupon_as_target_does(three_coupon_export, tmp_path):
    data, model, _ = three_coupon_export
    html = tmp_path / "report.html"
    res = runner.invoke(app, ["report", str(model), "--data", str(data), "--out", str(html), "--cost", "pct10=1",
                              "--cost", "pct20=2.5", "--cost", "free_shipping=1.5", "--value", "40", "--currency",
                              "EUR", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"report": str(html), "with_data": True}
    text = html.read_text(encoding="utf-8")
    assert "free_shipping 1.50 EUR; pct10 1.00 EUR; pct20 2.50 EUR" in text
    assert 'alt="Honest profit curve"' in text and "Discovered segments" in text


def test_fit_says_each_data_finding_once(three_coupon_export):
    """The -999 code and the date columns are data findings: the fit's output gives each one once (as a note,
    with the flag and the reference date), not again in the data summary above it."""
    _, _, text = three_coupon_export
    flat = " ".join(text.split())
    assert flat.count("rows equal -999") == 1
    for date in ("signup_date", "last_order_date"):
        assert flat.count(f"days_since_{date}") == 1, date
    assert "days before 2024-" in flat  # the reference date of the days_since features is still said
    assert flat.startswith("data: 6,000 rows")  # the data summary still heads the output


def test_fit_and_evaluate_label_a_revenue_outcome_in_the_currency_given(shop, narrow, tmp_path):
    """Money in one convention: with --currency the effects, uplift@k and calibration of a revenue outcome carry
    it (once, in the header), as target/report/readout do; --json keeps plain numbers."""
    data, _ = shop
    res = runner.invoke(app, ["fit", str(data), "--treatment", "treatment", "--outcome", "revenue", "--id",
                              "customer_id", "--exclude", "conversion", "--learners", "t", "--folds", "2",
                              "--out", str(tmp_path / "rev"), "--currency", "EUR"])
    assert res.exit_code == 0, res.output
    fitted = narrow.getvalue()
    narrow.truncate(0)
    narrow.seek(0)
    assert runner.invoke(app, ["evaluate", str(tmp_path / "rev"), "--currency", "EUR"]).exit_code == 0
    evaluated = narrow.getvalue()
    for text in (fitted, evaluated):
        _fits_80(text)
        for block in ("Leaderboard", "Average effect", "Calibration"):
            header = text.split(block, 1)[1].split("─", 1)[0]
            assert "EUR" in header, block
        assert "outcome units" not in text
    narrow.truncate(0)
    narrow.seek(0)
    runner.invoke(app, ["evaluate", str(tmp_path / "rev")])
    assert "EUR" not in narrow.getvalue()
    doc = json.loads(runner.invoke(app, ["evaluate", str(tmp_path / "rev"), "--currency", "EUR", "--json"]).stdout)
    assert isinstance(doc["ate"][0]["estimate"], float)

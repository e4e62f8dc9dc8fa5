"""The HTML report and the plots: content matches the study, the file is self-contained, and it renders.

One small randomised study (two outcomes, SHAP, segments, targeting) and one small observational study are
fitted once per module; the browser test opens the written file in headless Chromium (skipped when it is
not installed).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import SHOP_DRIVERS
from uplift import Study
from uplift._display import fmt_money
from uplift.datasets import simulate_campaign
from uplift.viz.report import ReportInputs, build_report, collect_report, write_report

SECTION_IDS = ("data", "diagnostics", "effects", "leaderboard", "curves", "calibration", "segments", "discovered",
               "drivers", "targeting", "reproducibility")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
ORANGE = np.array([0xD5, 0x5E, 0x00])  # plot.PALETTE[1]: used in figures only, never in the page's CSS


def _truth(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(("true_", "propensity"))]


@pytest.fixture(scope="module")
def rct_study() -> Study:
    df = simulate_campaign(2000, design="rct", seed=5)
    study = Study(df, treatment="treatment", outcome=["conversion", "revenue"], id="customer_id",
                  exclude=_truth(df))
    return study.fit(learners=["t", "dr"], n_folds=3, n_boot=30)


@pytest.fixture(scope="module")
def obs_study() -> Study:
    df = simulate_campaign(2000, design="observational", seed=6)
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=_truth(df) + ["revenue"], design="observational")
    return study.fit(learners=["t"], n_folds=3, n_boot=30)


@pytest.fixture(scope="module")
def loaded_study(rct_study, tmp_path_factory) -> Study:
    """The RCT study saved and loaded back: no training data, so the report draws only two figures."""
    return Study.load(rct_study.save(tmp_path_factory.mktemp("model") / "model"))


@pytest.fixture(scope="module")
def rct_report(rct_study, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed optional section warns: fail the test
        return write_report(rct_study.result, path, data=rct_study.data,
                            command_line="uplift fit campaign.csv --seed 0", cost=0.5, value=30.0, budget=200.0)


class _Page(HTMLParser):
    """Tags, images, section ids and tables (rows of cell texts) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict] = []
        self.ids: list[str] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.section = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.append(attrs["id"])
            if tag in ("section", "h2"):
                self.section = attrs["id"]
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables.setdefault(self.section, []).append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).replace("\u00a0", " ").strip())  # as a reader sees it
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self.section][-1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _numbers(cell: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"[-+]?\d[\d,]*\.?\d*", cell)]


def _png(attrs: dict) -> Image.Image:
    src = attrs["src"]
    assert src.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
    img.load()
    return img


# ---------------------------------------------------------------------------------------------- content
def test_report_has_every_section_and_matches_the_study(rct_study, rct_report):
    text = rct_report.read_text(encoding="utf-8")
    page = _parse(text)
    for section in SECTION_IDS:
        assert section in page.ids, f"section {section!r} missing"
    assert 'class="section-error"' not in text

    # The effect cells are the study's ATE, rounded: estimate and both CI bounds.
    ate = rct_study.ate()
    rows = page.tables["effects"][0]
    header, body = rows[0], rows[1:]
    assert len(body) == len(ate)
    col = header.index("effect [95% CI]")
    for cell_row, row in zip(body, ate.itertuples(index=False), strict=True):
        assert cell_row[:3] == [row.outcome, row.arm, row.estimand]
        est, lo, hi = _numbers(cell_row[col])
        decimals = len(cell_row[col].split()[0].split(".")[-1])
        tol = 0.51 * 10.0 ** -decimals
        assert abs(est - row.estimate_display) <= tol
        assert abs(lo - row.lower_display) <= tol and abs(hi - row.upper_display) <= tol
        assert row.unit in cell_row[col]

    # Leaderboard: one row per learner, the highlighted row is the chosen one.
    board = page.tables["leaderboard"][0]
    assert {r[1] for r in board[1:]} == set(rct_study.leaderboard()["learner"])
    best_rows = re.findall(r'<tr class="best"><td[^>]*>\d+</td><td>([^<]+)</td>', text)
    assert best_rows == [rct_study.best_learner_]

    # Every estimate carries a CI: cells of the effect, leaderboard and calibration tables have "[lo, hi]".
    for section, cols in (("effects", (4, 5)), ("leaderboard", (4, 5, 6, 7)), ("calibration", (4,))):
        for r in page.tables[section][0][1:]:
            for c in cols:
                assert re.search(r"\[[-+\d.,]+, [-+\d.,]+\]", r[c]), (section, r)

    # Footer: seed, command line, data hash as in a saved model's manifest.
    from uplift.data import data_hash

    d = rct_study.data
    assert data_hash(d.X, d.treatment, d.outcomes["conversion"]) in text
    assert "uplift fit campaign.csv --seed 0" in text
    assert "seed (random_state)" in text


def test_optional_sections_are_filled(rct_study, rct_report):
    text = rct_report.read_text(encoding="utf-8")
    page = _parse(text)
    seg = rct_study.segments(by=["channel"])
    seg_rows = page.tables["segments"][0][1:]
    assert [r[1] for r in seg_rows] == list(seg["segment"])
    assert "surrogate fidelity" in text.lower()
    assert any(r[0] == "the model's list" for r in page.tables["targeting"][-1])
    assert "Honest profit curve" in text
    alts = [img.get("alt", "") for img in page.images]
    for expected in ("Qini curve", "Uplift curve", "Calibration plot", "Forest plot", "Love plot",
                     "Segment uplift", "SHAP summary", "Honest profit curve"):
        assert any(a.startswith(expected) for a in alts), expected


def test_every_treated_arm_is_explained_in_its_own_block(tmp_path):
    """Two coupons: the SHAP section has one named block, figure and table per arm (not only the first arm's)."""
    df = simulate_campaign(2000, n_arms=2, seed=8)
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=_truth(df) + ["revenue"]).fit(learners=["t"], n_folds=2, n_boot=10)
    text = write_report(study.result, tmp_path / "two.html", data=study.data, segment_by=[]).read_text(encoding="utf-8")
    drivers = text.split('id="drivers"')[1].split("<section")[0]
    for arm in study.arms[1:]:
        assert f"<h3>Arm {arm}</h3>" in drivers and f"(arm {arm})" in drivers
    alts = [img.get("alt", "") for img in _parse(text).images]
    assert sorted(a for a in alts if a.startswith("SHAP summary")) == [
        f"SHAP summary of uplift drivers, arm {arm}" for arm in sorted(study.arms[1:])]


def test_three_coupons_each_have_their_own_discovered_segments_and_drivers(three_coupons, tmp_path):
    """Three coupons driven by different features: the discovered-segments and SHAP sections have one named block
    per arm, with the rules `uplift segments` / Study.discover_segments give and each arm's own driver first."""
    study, _ = three_coupons
    text = write_report(study.result, tmp_path / "three.html", data=study.data, segment_by=[]).read_text(
        encoding="utf-8")
    page = _parse(text)
    found = text.split('id="discovered"')[1].split("<section")[0]
    expected = study.discover_segments()
    arms = ["free_shipping", "pct10", "pct20"]
    assert re.findall(r"<h3>Arm ([^<]+)</h3>", found) == arms
    for table, arm in zip(page.tables["discovered"], arms, strict=True):
        assert [r[0] for r in table[1:]] == list(expected.loc[expected["arm"] == arm, "rule"])
    for table, arm in zip(page.tables["drivers"], arms, strict=True):
        assert table[1][0] == "1" and table[1][1] in SHOP_DRIVERS[arm], (arm, table[1])


def test_a_revenue_effect_is_shown_in_the_currency_given(rct_study):
    """--currency labels money everywhere: the effect on revenue too, not "outcome units"."""
    inputs = collect_report(rct_study.result, rct_study.data, segment_by=[], explain=False)
    page = _parse(build_report(inputs, currency="EUR"))
    rows = [r for r in page.tables["effects"][0][1:] if r[0] == "revenue"]
    assert rows and all(r[4].endswith("EUR") and "outcome units" not in " ".join(r) for r in rows)


def test_report_is_self_contained(rct_report):
    text = rct_report.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    page = _parse(text)
    assert "Content-Security-Policy" in text
    assert len(page.images) >= 9
    for attrs in page.images:
        img = _png(attrs)
        assert img.width > 100 and img.height > 50
        pixels = np.asarray(img.convert("L"), dtype=float)
        assert pixels.var() > 0, f"blank image: {attrs.get('alt')}"
    srcs = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert all(s.startswith(("data:image/png;base64,", "#")) for s in srcs)


def test_user_strings_are_escaped_and_the_write_is_atomic(loaded_study, tmp_path):
    result = dataclasses.replace(loaded_study.result,
                                 notes=(*loaded_study.notes, "<script>alert('note')</script>"))
    path = tmp_path / "r.html"
    path.write_text("old report")
    out = write_report(result, path, command_line="uplift fit '<img src=x onerror=alert(1)>'",
                       title="Q3 <b>coupon</b> & friends")
    text = path.read_text(encoding="utf-8")
    assert out == path and text.startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # replaced, no temporary file left
    assert "<script>" not in text and "<img src=x" not in text and "<b>coupon</b>" not in text
    assert "&lt;script&gt;alert(&#x27;note&#x27;)&lt;/script&gt;" in text
    assert "Q3 &lt;b&gt;coupon&lt;/b&gt; &amp; friends" in text


class _Exploding(dict):
    """Design checks whose reading fails, as a corrupt or unexpected result would."""

    def items(self):
        raise RuntimeError("balance engine exploded")


def test_failing_section_is_shown_not_fatal(loaded_study):
    result = dataclasses.replace(loaded_study.result, diagnostics=_Exploding(srm={"passed": True}))
    with pytest.warns(RuntimeWarning, match="balance engine exploded"):
        text = build_report(ReportInputs(result))
    assert 'class="section-error"' in text and "RuntimeError: balance engine exploded" in text
    assert "Average effect of the campaign" in text  # the rest of the report is still there
    assert "Design diagnostics failed" in text  # and the footer lists the failed section


def test_failing_analysis_is_reported_in_its_section(rct_study, monkeypatch):
    import uplift.viz.report as report_module

    def broken(result, data, by):
        raise RuntimeError("segment engine exploded")

    monkeypatch.setattr(report_module, "segment_uplift", broken)
    with pytest.warns(RuntimeWarning, match="segment engine exploded"):
        inputs = collect_report(rct_study.result, rct_study.data, explain=False)
    assert inputs.segments == [] and "segment engine exploded" in inputs.notes["segments"]
    text = build_report(inputs)
    assert "Segment uplift failed: RuntimeError: segment engine exploded" in text


def test_report_renders_without_computing(rct_study, monkeypatch):
    import uplift.viz.report as report_module

    inputs = collect_report(rct_study.result, rct_study.data, cost=0.5, value=30.0, budget=200.0, explain=False)
    for name in ("segment_uplift", "explain_arms", "targeting_list"):
        monkeypatch.setattr(report_module, name, lambda *a, **k: pytest.fail("the renderer computed"))
    text = build_report(inputs)
    assert "the model&#x27;s list" in text or "the model's list" in text


def test_a_list_that_may_lose_money_is_said_in_words_above_its_figures(rct_study):
    """When the honest interval of the list's profit reaches zero, the targeting section says so first, in the
    words the CLI prints (one profit_warning), with the list's own figures."""
    from uplift.targeting.lists import profit_warning

    inputs = collect_report(rct_study.result, rct_study.data, segment_by=[], cost=0.5, value=30.0, budget=200.0,
                            explain=False)
    est = inputs.targeting.summary["estimated"]
    risky = {**est, "profit_lower": -abs(est["profit"]) - 1.0}
    inputs.targeting.summary.update(estimated=risky, warning=profit_warning(risky, 999.0))
    section = build_report(inputs).split('id="targeting"')[1]
    box = re.search(r'<div class="warnbox"><b>Warning:</b> ([^<]+)\.</div>', section)
    assert box and section.index("warnbox") < section.index("<table")
    assert "may lose money" in box.group(1) and "999" in box.group(1)


def test_the_profit_curve_caption_reads_the_lists_own_honest_value_at_the_cut(three_coupons):
    """Three coupons of different costs under a budget: the list buys a mix, and the curve follows that mix, so
    the caption's value at the cut is the list's honest value in the table (no second number for one list)."""
    from tests.shop import BASKET, COSTS
    from uplift.viz.report import profit_curve_caption

    study, _ = three_coupons
    res = study.target(cost=COSTS, value=BASKET, budget=5000.0)
    est = res.summary["estimated"]
    text = profit_curve_caption(res.curve, "EUR")
    listed = fmt_money(est["profit"], est["profit_lower"], est["profit_upper"], currency="EUR", signed=True)
    assert f"honest profit {listed}, as in the table above" in text
    assert f"this list ({res.summary['customers_selected']:,} customers" in text


def test_observational_report_shows_naive_vs_adjusted(obs_study, tmp_path):
    text = write_report(obs_study.result, tmp_path / "obs.html", data=obs_study.data,
                        explain=False).read_text(encoding="utf-8")
    ate = obs_study.ate()
    assert set(ate["estimand"]) == {"naive", "ATE", "ATT"}
    assert "Observational design." in text and "naive difference" in text
    assert 'alt="Propensity overlap, arm 1"' in text
    page = _parse(text)
    estimands = [r[2] for r in page.tables["effects"][0][1:]]
    assert estimands == list(ate["estimand"])


def test_report_of_a_loaded_study(loaded_study, tmp_path):
    text = write_report(loaded_study.result, tmp_path / "loaded.html").read_text(encoding="utf-8")
    assert loaded_study.manifest_["training_data_sha256"] in text
    # The model directory keeps the treatment and outcome vectors: curves, calibration and leaderboard are there.
    assert loaded_study.result.crossfit.treatment is not None and loaded_study.result.crossfit.y is not None
    alts = [img.get("alt", "") for img in _parse(text).images]
    assert any(a.startswith("Qini curve") for a in alts) and any(a.startswith("Uplift curve") for a in alts)
    assert any(a.startswith("Calibration plot") for a in alts)
    # What still needs the data says which CLI flag to pass, not Python syntax alone.
    assert "--data FILE" in text and "write_report(result, path, cost=0.5" not in text
    assert "needs the training data" in text
    assert 'class="section-error"' not in text
    assert 'alt="Forest plot of average effects"' in text
    page = _parse(text)
    assert set(SECTION_IDS) <= set(page.ids)


# ---------------------------------------------------------------------------------------------- browser
def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _needs_chromium() -> None:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"headless browser test needs Chromium at {CHROMIUM} (apt-get install -y chromium)")


def _page_size_at_1280(report: Path, tmp_path: Path) -> tuple[int, int]:
    """``document.scrollingElement``'s scrollWidth and clientWidth of the report laid out 1280 px wide.

    The report forbids scripts (its CSP), so a scripted page next to it loads it in a 1280 px frame, reads the
    frame's scroll width and writes it into its own DOM, which --dump-dom prints.
    """
    probe = tmp_path / "measure.html"
    probe.write_text(
        '<!DOCTYPE html><html><body style="margin:0"><iframe id="f" src="' + report.resolve().as_uri()
        + '" style="width:1280px;height:900px;border:0"></iframe><pre id="out">pending</pre><script>'
        "document.getElementById('f').onload=function(){var s=this.contentDocument.scrollingElement;"
        "document.getElementById('out').textContent='scroll '+s.scrollWidth+' '+s.clientWidth;};"
        "</script></body></html>", encoding="utf-8")
    dom = _chromium(["--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom",
                     probe.resolve().as_uri()], tmp_path / "profile_measure")
    found = re.search(r"scroll (\d+) (\d+)", dom.stdout)
    assert found, dom.stdout[-500:] + dom.stderr[-2000:]
    return int(found.group(1)), int(found.group(2))


def test_report_renders_in_headless_chromium(rct_report, tmp_path):
    _needs_chromium()
    url = rct_report.resolve().as_uri()

    # 1. The parsed DOM: every embedded image survives parsing, and no script crept in.
    dom = _chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", url], tmp_path / "profile1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = _parse(dom.stdout)
    source = _parse(rct_report.read_text(encoding="utf-8"))
    assert len(page.images) == len(source.images) >= 9
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert "script" not in page.tags and set(SECTION_IDS) <= set(page.ids)
    # Console errors (a CSP violation, a failed load) are logged as CONSOLE lines or "Refused to ...".
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Refused to" in ln]
    assert console == []

    # 2. The rendered page: a non-blank screenshot in which the figures' colours appear.
    shot = tmp_path / "report.png"
    res = _chromium([f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", url],
                    tmp_path / "profile2")
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 0, res.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (4000, 1280)
    assert pixels.var() > 0
    orange = (np.abs(pixels - ORANGE).sum(axis=2) < 60).sum()
    assert orange > 200, "no figure pixels in the screenshot: images did not render"

    # 3. No horizontal scroll at 1280 px: in a wider window every pixel of content stays inside the page's
    # 1180 px column (a table running past it would draw beyond the column, and scroll at 1280).
    wide = tmp_path / "wide.png"
    res = _chromium([f"--screenshot={wide}", "--window-size=1600,12000", "--hide-scrollbars", url],
                    tmp_path / "profile3")
    assert res.returncode == 0 and wide.exists(), res.stderr[-2000:]
    ink = np.abs(np.asarray(Image.open(wide).convert("RGB"), dtype=float) - 255).sum(axis=2) > 30
    columns = np.flatnonzero(ink.any(axis=0))
    assert columns.max() <= (1600 + 1180) // 2 and columns.min() >= (1600 - 1180) // 2 - 1
    # ... and measured: the page is no wider than the 1280 px window.
    width, client = _page_size_at_1280(rct_report, tmp_path)
    assert width <= client <= 1280

    # 4. The honest profit curve is on the page, with its band and the budget cut named under it.
    figure = text_of_figure(dom.stdout, "Honest profit curve")
    assert "band" in figure and "the dotted line is this list" in figure


def text_of_figure(html_text: str, alt: str) -> str:
    """The caption of the figure whose image has this alt text."""
    start = html_text.index(f'alt="{alt}"')
    return html_text[start:html_text.index("</figure>", start)]


def test_a_three_coupon_report_has_no_horizontal_scroll_at_1280_px(three_coupons, tmp_path):
    """The widest report: three arms in every table (leaderboard, segments, discovered rules, SHAP, targeting)."""
    _needs_chromium()
    study, _ = three_coupons
    path = write_report(study.result, tmp_path / "three.html", data=study.data, explain=False,
                        cost={"pct10": 1.0, "pct20": 2.5, "free_shipping": 1.5}, value=60.0, budget=5000.0,
                        currency="EUR")
    width, client = _page_size_at_1280(path, tmp_path)
    assert width <= client <= 1280


def test_study_report_method_writes_the_same_report(obs_study, tmp_path):
    path = obs_study.report(tmp_path / "obs.html", explain=False)
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "obs.html" and "<img" in html and "naive" in html.lower()


def test_footer_lists_the_trees_early_stopping_kept_apart_from_the_fit_parameters(loaded_study):
    trees = loaded_study.result.fit_params["trees"]
    text = build_report(ReportInputs(loaded_study.result))
    assert "trees kept per fold (early stopping)" in text and "trees=" not in text
    name, counts = next(iter(trees.items()))
    shown = f"{name} {min(counts)}–{max(counts)}" if min(counts) != max(counts) else f"{name} {counts[0]}"
    assert shown in text

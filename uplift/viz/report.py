"""One self-contained HTML report of a fitted study, to e-mail or archive next to the targeting list.

Two steps, so that rendering computes nothing: :func:`collect_report` calls the same functions as the notebook
API and the CLI (:func:`uplift.effects.segment_uplift`, :func:`uplift.effects.discover_segments`,
:func:`uplift.effects.explain_arms`, :func:`uplift.targeting.targeting_list`) and gathers their results in a
:class:`ReportInputs`; :func:`build_report` renders those results and the fitted
:class:`~uplift.fit.result.FitResult` (effects, leaderboard, calibration, design checks) with
:mod:`uplift.viz.plots`. :func:`write_report` does both and writes the file atomically. The file has no scripts
and no network references: figures are embedded as base64 PNG, styles are inline, and a Content-Security-Policy
forbids anything else, so it opens the same offline, in a mail client or years later.

Sections: data and column roles, design diagnostics, average effects (naive vs adjusted for observational
designs), leaderboard, Qini/uplift curves, calibration, segments, discovered segments and drivers of uplift
(SHAP) for every treated arm (one named block per arm), targeting, and a reproducibility footer (package
versions, seed, training-data hash, command line). Every estimate is shown with its 95% CI and unit. An
analysis that could not be computed says why in its section; one that fails shows
the error in place (and warns) instead of losing the whole report.

Examples
--------
>>> import tempfile, pathlib
>>> from uplift import Study, simulate_campaign
>>> from uplift.viz.report import write_report
>>> df = simulate_campaign(2000, seed=3)
>>> truth = [c for c in df if c.startswith(("true_", "propensity"))]
>>> study = Study(df, "treatment", ["conversion", "revenue"], id="customer_id", exclude=truth)
>>> study = study.fit(["t"], n_folds=3, n_boot=20)
>>> path = write_report(study.result, pathlib.Path(tempfile.mkdtemp()) / "report.html", data=study.data,
...                     explain=False)
>>> "Average effect" in path.read_text()
True
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import platform
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

import uplift.viz.plots as plot
from uplift._display import OUTCOME_UNITS, effect_unit, fmt_ci, fmt_money, fmt_number, fmt_pct
from uplift._files import atomic_write_text
from uplift._stats import Z95
from uplift._versions import package_versions
from uplift.data.campaign import CampaignData
from uplift.data.inspect import DataQuality, inspect_data
from uplift.effects.average import headline_effects
from uplift.effects.explanation import Explanation, explain_arms
from uplift.effects.segments import default_segment_columns, discover_segments, segment_uplift
from uplift.errors import UpliftInputError
from uplift.fit.result import FitResult
from uplift.targeting.lists import TargetingResult, targeting_list

#: Nothing but inline styles and embedded images may load, whatever ends up in the page.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: Plain-words names of targeting summary entries.
FACT_LABELS = {"model_expected": "model's own expectation (optimistic, no CI)",
               "value_per_unit": "value of one unit of outcome", "by_coupon": "customers per coupon"}
POLICY_LABELS = {"estimated": "the model's list", "baselines: everyone": "target everyone",
                 "baselines: random": "random, same budget (expected)",
                 "baselines: random (one draw)": "random, same budget (one draw)"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1b1b1b;
 max-width:1180px;margin:0 auto;padding:24px 28px 60px;line-height:1.45;background:#fff}
h1{font-size:1.7em;margin:0 0 4px}h2{font-size:1.3em;margin:36px 0 10px;padding-bottom:4px;
 border-bottom:2px solid #0072B2}h3{font-size:1.05em;margin:20px 0 6px}
.sub{color:#555;margin:0 0 16px}.headline{background:#eef5fb;border-left:4px solid #0072B2;padding:10px 14px;
 margin:14px 0;font-size:1.05em}
nav ol{columns:2;font-size:.92em;margin:6px 0 0;padding-left:22px}nav a{color:#0b5a8a}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.88em;max-width:100%}
th,td{border:1px solid #d5d9de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}tr:nth-child(even) td{background:#fafbfc}td.num{text-align:right}
tr.best td{background:#e7f4ec;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:.8em;font-weight:700;color:#fff}
.pass{background:#2e7d32}.fail{background:#c62828}.info{background:#6c757d}
.note{color:#555;font-size:.9em}.warnbox{background:#fff4e5;border-left:4px solid #E69F00;padding:8px 12px}
.section-error{background:#fdecea;border-left:4px solid #c62828;padding:8px 12px;font-family:monospace}
figure{margin:10px 0 18px}figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:.85em;color:#555;margin-top:4px}
footer{margin-top:40px;border-top:1px solid #ccc;padding-top:10px;font-size:.85em;color:#444}
code{background:#f1f3f5;padding:0 3px;border-radius:3px;word-break:break-all}
@media print{nav{display:none}h2{page-break-after:avoid}figure{page-break-inside:avoid}}
"""


# ---------------------------------------------------------------------------------------------- html pieces
class _Html(str):
    """Markup that is already safe (built here from escaped parts); any other str is escaped."""


def _e(value: object) -> str:
    return value if isinstance(value, _Html) else html.escape(str(value), quote=True)


def _p(text: object, cls: str | None = None) -> _Html:
    attr = f' class="{cls}"' if cls else ""
    return _Html(f"<p{attr}>{_e(text)}</p>")


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[object]], *, numeric: Sequence[int] = (),
           row_classes: Sequence[str] | None = None) -> _Html:
    """A table of escaped cells; ``header=None`` gives a fact sheet (first column as row header)."""
    head = "" if header is None else \
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>"
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(
            f"<th>{_e(c)}</th>" if header is None and j == 0 else
            f'<td class=num>{_e(_keep_together(str(c)))}</td>' if j in numeric else f"<td>{_e(c)}</td>"
            for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    return _Html(f"<table>{head}<tbody>{''.join(body)}</tbody></table>")


def _badge(passed: object) -> _Html:
    if passed is None:
        return _Html('<span class="badge info">INFO</span>')
    if bool(passed):
        return _Html('<span class="badge pass">PASS</span>')
    return _Html('<span class="badge fail">CHECK</span>')


def _figure(fig, alt: str, caption: str = "") -> _Html:
    """The figure as an embedded PNG (no file next to the report to lose)."""
    buf = io.BytesIO()
    # No metadata: the same study gives the same bytes, so reports can be diffed.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return _Html(f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">{cap}</figure>')


# ---------------------------------------------------------------------------------------------- numbers
def _effect(row) -> str:
    """An average-effect row of :meth:`uplift.Study.ate` in its display units, with its 95% CI."""
    return fmt_ci(row["estimate_display"], row["lower_display"], row["upper_display"], unit=row["unit"],
               signed=True)


#: Keys of the targeting summary that hold money (shown with the currency), and the one that is a ratio.
MONEY_KEYS = frozenset({"spend", "budget", "value_per_unit", "profit", "incremental_revenue"})


def _fact(value: object, key: str = "", currency: str | None = None) -> str:
    """One fact of the targeting summary for people: counts with thousands separators, money with its currency
    (cents only below 100), ROI as a percentage, other numbers to two decimals.

    Examples
    --------
    >>> _fact(64000), _fact(1280.0, "spend", "$"), _fact(7.16, "value_per_unit", "$"), _fact(6.2468, "roi")
    ('64,000', '1,280 $', '7.16 $', '+624.7 %')
    >>> _fact({"Mens E-Mail": 11187, "Womens E-Mail": 1613}, "by_coupon")
    'Mens E-Mail 11,187; Womens E-Mail 1,613'
    """
    if isinstance(value, dict):
        by_arm = key in ("cost_per_coupon", "by_coupon")  # arm labels as the data spells them
        return "; ".join(f"{k if by_arm else 'ROI' if k == 'roi' else str(k).replace('_', ' ')} "
                         f"{_fact(v, 'spend' if key == 'cost_per_coupon' else k, currency)}" for k, v in value.items())
    if value is None or isinstance(value, bool | str):
        return "none" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if key == "roi":
            return fmt_ci(value, scale=100.0, unit="%", signed=True, digits=1)
        if key in MONEY_KEYS:
            return fmt_money(value, currency=currency, digits=2 if abs(value) < 100 else 0,
                             signed=key == "profit")
        return fmt_number(value, 2)
    return str(value)


def _keep_together(cell: str) -> str:
    """A numeric cell wraps only before its interval: "+7,525 [5,992, 9,059] $" may break before "[", never
    inside the interval or before its unit (a lone "pp" or "$" on a second line)."""
    return " [".join(part.replace(" ", "\u00a0") for part in cell.split(" ["))


def _effect_unit(kind: str, currency: str | None = None) -> tuple[float, str]:
    unit = effect_unit(kind, currency)
    return unit.scale, unit.short


# ---------------------------------------------------------------------------------------------- sections
@dataclass
class _Section:
    id: str
    title: str
    body: str


@dataclass
class ReportInputs:
    """Everything a report shows: the fitted result and the analyses computed for it.

    Attributes
    ----------
    result : FitResult
        The fitted study.
    data : CampaignData or None
        Its training data (sections that need the rows say so when it is missing).
    segments : list of (columns, table)
        :func:`uplift.effects.segment_uplift` tables, one per segmentation.
    discovered : DataFrame or None
        :func:`uplift.effects.discover_segments` of every treated arm (rows name their ``arm``), as
        ``uplift segments`` shows them (None: not computed).
    explanations : dict of str to Explanation
        :func:`uplift.effects.explain_arms` of the chosen model: one explanation per treated arm, by arm (empty:
        not requested or not computed).
    targeting : TargetingResult or None
        :func:`uplift.targeting.targeting_list` of the training customers (None: not requested).
    targeting_request : dict or None
        The cost, value and budget the targeting section was asked for.
    notes : dict
        Per section, why an analysis was not computed, or the error it failed with.
    errors : list of str
        Analyses or sections that failed (shown in the footer too).
    quality : DataQuality or None
        :func:`uplift.data.inspect_data` of the training table (None without the data).
    """

    result: FitResult
    data: CampaignData | None = None
    segments: list = field(default_factory=list)
    discovered: pd.DataFrame | None = None
    explanations: dict[str, Explanation] = field(default_factory=dict)
    targeting: TargetingResult | None = None
    explain_requested: bool = True
    targeting_request: dict | None = None
    notes: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)
    quality: DataQuality | None = None


def _attempt(inputs: ReportInputs, section: str, what: str, fn: Callable[[], object]):
    """Run one analysis for the report: its result, or None with the reason kept for the section."""
    try:
        return fn()
    except UpliftInputError as err:
        inputs.notes[section] = f"{what} was not computed: {err}"
    except Exception as err:  # one failing analysis must not lose the whole report
        message = f"{what} failed: {type(err).__name__}: {err}"
        inputs.notes[section] = message
        inputs.errors.append(message)
        warnings.warn(f"uplift report: {message}", RuntimeWarning, stacklevel=3)
    return None


def collect_report(result: FitResult, data: CampaignData | None = None, *,
                   segment_by: Sequence[str | Sequence[str]] | None = None, cost: float | dict | None = None,
                   value: float | None = None, budget: float | None = None, explain: bool = True) -> ReportInputs:
    """Compute the analyses a report shows, with the same functions the notebook API and the CLI call.

    Parameters are those of :func:`write_report`. Segments, SHAP and targeting need the training data; without
    it their sections say so.
    """
    inputs = ReportInputs(result, data, explain_requested=explain)
    if cost is not None:
        inputs.targeting_request = {"cost": cost, "value": value, "budget": budget}
    if data is None:
        return inputs
    roles = result.roles
    inputs.quality = _attempt(inputs, "quality", "The data-quality report", lambda: inspect_data(
        data.frame.drop(columns=[c for c in result.schema.dates if c in data.frame.columns]),
        treatment=roles.get("treatment"), outcome=roles.get("outcomes"), id=roles.get("id"),
        na_values=result.schema.na_values))
    groups = segment_by if segment_by is not None else default_segment_columns(result, data)
    for by in ([g] if isinstance(g, str) else list(g) for g in groups):
        table = _attempt(inputs, "segments", "Segment uplift", lambda by=by: segment_uplift(result, data, by))
        if table is None:
            break
        inputs.segments.append((by, table))
    inputs.discovered = _attempt(inputs, "discovered", "Discovered segments",
                                 lambda: discover_segments(result, data))
    if explain:
        inputs.explanations = _attempt(inputs, "drivers", "The SHAP summary",
                                       lambda: explain_arms(result, data)) or {}
    if cost is not None and (value is not None or result.kind != "binary"):
        inputs.targeting = _attempt(inputs, "targeting", "Targeting", lambda: targeting_list(
            result, data.frame, cost=cost, value=value, budget=budget))
    return inputs


class _Report:
    """Renders the sections of one report; each method returns the body of one section."""

    def __init__(self, inputs: ReportInputs, *, command_line: str | None, currency: str | None = None) -> None:
        self.inputs = inputs
        self.currency = currency
        self.result = inputs.result
        self.cf = self.result.crossfit
        self.data = inputs.data
        self.kind = self.result.kind
        self.outcome = self.result.outcome
        self.command_line = command_line
        self.errors: list[str] = list(inputs.errors)
        self.ate_table = self.result.ate
        if currency:  # a continuous outcome (revenue, spend) is money: in the currency given, as costs and profit
            self.ate_table = self.ate_table.assign(unit=self.ate_table["unit"].replace(OUTCOME_UNITS[1], currency))

    # -- robustness: a section that fails to render must not lose the whole report
    def _optional(self, what: str, fn: Callable[[], str]) -> str:
        try:
            return fn()
        except Exception as err:
            message = f"{what} failed: {type(err).__name__}: {err}"
            self.errors.append(message)
            warnings.warn(f"uplift report: {message}", RuntimeWarning, stacklevel=3)
            return _Html(f'<div class="section-error">{_e(message)}</div>')

    def _no_data_note(self, what: str) -> str:
        return _p(f"{what} needs the training data (its features), which a model directory does not keep; "
                  "pass the training file to include it: uplift report MODEL_DIR --data FILE (Python: "
                  "write_report(..., data=study.data)).", "note")

    def _section_note(self, section: str) -> str | None:
        note = self.inputs.notes.get(section)
        if note is None:
            return None
        if note in self.inputs.errors:  # a failure, shown like a section that failed to render
            return _Html(f'<div class="section-error">{_e(note)}</div>')
        return _p(note, "note")

    def _primary_ate(self, arm: str) -> pd.Series | None:
        t = self.ate_table
        rows = t[(t["outcome"] == self.outcome) & (t["arm"] == arm) & (t["estimand"] == "ATE")]
        return rows.iloc[0] if len(rows) else None

    # -- header
    def headline(self) -> str:
        parts = []
        heads = headline_effects(self.ate_table)
        for arm in self.cf.arms[1:]:
            rows = heads[(heads["outcome"] == self.outcome) & (heads["arm"] == arm)]
            if not len(rows):
                continue
            row = rows.iloc[0]
            arm_text = f" of arm {arm}" if len(self.cf.arms) > 2 else ""
            what = "Average effect" if row["estimand"] == "ATE" else "Effect on the customers with overlap"
            parts.append(f"{what}{arm_text} on {self.outcome}: {_effect(row)} (95% CI; relative lift "
                         f"{fmt_pct(row['relative_lift'], row['relative_lower'], row['relative_upper'])}; "
                         f"{row['method']}).")
            if row["estimand"] != "ATE" and row.get("note"):
                note = str(row["note"])
                parts.append(note[:1].upper() + note[1:] + ".")
        select = self.result.fit_params.get("select", "dr_loss")
        best = f"Chosen model: {self.result.best_learner} (selected by {select})."
        return _Html(f'<div class="headline">{"<br>".join(_e(p) for p in parts + [best])}</div>')

    # -- 1. data and roles
    def data_summary(self) -> str:
        result, cf = self.result, self.cf
        roles = result.roles
        out = []
        if self.data is not None:
            n = int(self.data.n)
            counts = np.bincount(self.data.treatment, minlength=len(cf.arms))
            kinds = self.data.outcome_kinds
        else:
            training = result.training
            n = training.n
            counts = np.array([training.arm_counts.get(a, np.nan) for a in cf.arms], dtype=float)
            kinds = training.outcome_kinds
        rows = [["customers (rows)", f"{n:,}"], ["design", self._design_text()]]
        for a, (arm, c) in enumerate(zip(cf.arms, counts, strict=True)):
            role = "control" if a == 0 else "treated"
            share = fmt_number(100 * c / n, 1)
            rows.append([f"arm {arm} ({role})", f"{fmt_number(c, 0)} customers ({share}% of rows)"])
        for name, kind in kinds.items():
            modelled = " — modelled" if name == self.outcome else ""
            kind_text = "conversion (0/1)" if kind == "binary" else "continuous"
            rows.append([f"outcome {name}", kind_text + modelled])
        out.append(_table(None, rows))

        features = list(roles.get("features") or result.schema.names)
        cats = result.schema.categories
        role_rows = [["treatment", roles.get("treatment", "")], ["control arm", roles.get("control", "")],
                     ["outcome(s)", ", ".join(roles.get("outcomes", [self.outcome]))],
                     ["customer id", roles.get("id") or "none"],
                     ["known propensity", roles.get("propensity") or "none"],
                     ["features", f"{len(features)} ({len([f for f in features if f in cats])} categorical)"],
                     ["excluded", ", ".join(roles.get("exclude") or []) or "none"]]
        out.append(_Html("<h3>Column roles</h3>"))
        out.append(_table(["role", "column(s)"], role_rows))

        missing = (self.data.frame[features].isna().mean() if self.data is not None
                   and set(features) <= set(self.data.frame.columns) else None)
        feat_rows = []
        for f in features:
            kind = f"categorical ({len(cats[f])} levels)" if f in cats else "numeric"
            miss = f"{100 * missing[f]:.1f}%" if missing is not None else "n/a"
            feat_rows.append([f, kind, miss])
        out.append(_Html("<h3>Features</h3>"))
        out.append(_table(["feature", "type", "missing"], feat_rows, numeric=(2,)))
        if result.notes:
            items = "".join(f"<li>{_e(note)}</li>" for note in result.notes)
            out.append(_Html(f'<h3>Notes from validation</h3><ul class="note">{items}</ul>'))
        return "".join(out)

    def data_quality(self) -> str:
        q = self.inputs.quality
        if q is None:
            return self._section_note("quality") or self._no_data_note("The data-quality report")
        cols = q.columns
        rows = [[r.column, r.role, r.type, f"{r.missing_share:.1%}", f"{r.levels:,}", r.sentinels or "",
                 "" if r.outlier_share is None or r.outlier_share != r.outlier_share else f"{r.outlier_share:.1%}",
                 r.note or ""] for r in cols.itertuples()]
        ids = "" if q.duplicate_ids is None else f"; {q.duplicate_ids:,} repeated and {q.blank_ids:,} blank ids"
        intro = _p(f"{q.rows:,} rows; {q.duplicate_rows:,} repeat an earlier row exactly{ids}"
                   ". Types as the fit read them: dates become days before the reference date, text with very "
                   "many levels is not modelled, sentinel codes are candidates for --na-values.")
        found = "".join(_p(n) for n in q.notes) or _p("Nothing unusual found.", "note")
        return _Html(intro + _table(["column", "role", "type", "missing", "levels", "sentinels", "outliers (|z|>5)",
                                     "note"], rows, numeric=(3, 4, 6)) + found)

    def _design_text(self) -> str:
        declared = self.result.roles.get("design_declared")
        text = ("randomised (RCT)" if self.result.design == "rct"
                else "observational (adjusted for the features)")
        return text + (f"; declared {declared!r}" if declared and declared != self.result.design else "")

    # -- 2. diagnostics
    def diagnostics(self) -> str:
        diag = self.result.diagnostics
        if not diag:
            return _p("No design diagnostics were recorded for this study.", "note")
        checks, extra = [], []
        for name, result in diag.items():
            label = name.replace("_", " ")
            if isinstance(result, dict) and "message" in result:
                checks.append([label, "all", _badge(result.get("passed")), result["message"]])
            elif isinstance(result, dict) and result and all(
                    isinstance(v, dict) and "message" in v for v in result.values()):
                for arm, sub in result.items():
                    checks.append([label, str(arm), _badge(sub.get("passed")), sub["message"]])
            elif isinstance(result, pd.DataFrame) and name == "leakage":
                if result.empty:
                    checks.append([label, "all", _badge(True), "no feature gives the treatment away"])
                else:
                    for r in result.itertuples(index=False):
                        d = r._asdict()
                        checks.append([label, str(d.get("arm", "all")), _badge(False),
                                       f"{d.get('feature', '')}: {d.get('reason', d.get('check', ''))}"])
        if checks:
            out = [_table(["check", "arm", "result", "detail"], checks)]
        else:
            out = [_p("No pass/fail checks were recorded.", "note")]
        balance = diag.get("balance")
        if isinstance(balance, pd.DataFrame) and not balance.empty and "smd" in balance:
            weighted = diag.get("balance_weighted")
            weighted = weighted if isinstance(weighted, pd.DataFrame) and "smd" in weighted else None
            flagged = int((balance["smd"].abs() > 0.1).sum())
            after = "" if weighted is None else \
                f"; after inverse-propensity weighting: {int((weighted['smd'].abs() > 0.1).sum())}"
            caption = (f"Absolute standardized mean differences (|SMD| > 0.1 marks imbalance). Flagged "
                       f"before weighting: {flagged} of {len(balance)}{after}.")
            fig = plot.plot_love(balance, weighted)
            extra.append(_figure(fig, "Love plot of covariate balance", caption))
        if self.result.design == "observational":
            extra.append(self._overlap_figures())
        return "".join(out + extra)

    def _overlap_figures(self) -> str:
        if self.data is None:
            return self._no_data_note("The propensity-overlap plot")
        out = []
        T = self.data.treatment
        for a in range(1, len(self.cf.arms)):
            pair = self.cf.in_arm(T, a)
            e = self.cf.e[pair, a]
            if not np.isfinite(e).any() or np.nanstd(e) == 0:
                continue
            fig = plot.plot_propensity_overlap(e, (T[pair] == a).astype(int),
                                          arm_labels=(f"control {self.cf.arms[0]}", f"arm {self.cf.arms[a]}"))
            out.append(_figure(fig, f"Propensity overlap, arm {self.cf.arms[a]}",
                               "Out-of-fold propensity of each customer by arm; rows in the shaded tails "
                               "rest on few comparable customers in the other arm."))
        return "".join(out)

    # -- 3. average effects
    def effects(self) -> str:
        t = self.ate_table
        rows = []
        for r in t.itertuples(index=False):
            base = (f"{100 * r.control_mean:.2f}% conversion" if r.unit == "pp"
                    else f"{fmt_number(r.control_mean, 3)} {r.unit} per customer")
            rows.append([r.outcome, r.arm, r.estimand, r.method,
                         _effect(r._asdict()),
                         fmt_pct(r.relative_lift, r.relative_lower, r.relative_upper), base,
                         f"{int(r.n_treated):,} / {int(r.n_control):,}"])
        out = [_table(["outcome", "arm", "estimand", "method", "effect [95% CI]", "relative lift [95% CI]",
                       "control mean", "treated / control"], rows, numeric=(4, 5, 6, 7))]
        att = ("ATE: average effect over all customers; ATT: over the customers who were treated. "
               if self.result.design == "observational" else
               "ATE: average effect over all customers (randomised, so the same as the effect on the treated). ")
        out.append(_p(att + ("pp = percentage points of conversion." if self.kind == "binary" else ""), "note"))
        if self.result.design == "observational":
            notes = [f"{r.outcome}, arm {r.arm}: {r.note}." for r in t.itertuples() if getattr(r, "note", "")]
            for (outcome, arm), g in t.groupby(["outcome", "arm"], sort=False):
                naive, adj = g[g["estimand"] == "naive"], g[g["estimand"] == "ATE"]
                if len(naive) and len(adj):
                    n0, a0 = naive.iloc[0], adj.iloc[0]
                    shift = a0["estimate_display"] - n0["estimate_display"]
                    notes.append(f"{outcome}, arm {arm}: naive difference {_effect(n0)} vs adjusted ATE "
                                 f"{_effect(a0)} (the adjustment moved it by {shift:+.3g} {a0['unit']}).")
            if notes:
                items = "".join(f"<li>{_e(n)}</li>" for n in notes)
                out.append(_Html(
                    '<div class="warnbox"><b>Observational design.</b> Treated and control customers '
                    "differ before the campaign, so the naive difference is confounded; the adjusted (AIPW) "
                    f"estimates are the ones to use.<ul>{items}</ul></div>"))
        out.append(_figure(plot.plot_ate(t), "Forest plot of average effects",
                           "Average effects with 95% confidence intervals."))
        return "".join(out)

    # -- 4. leaderboard
    def leaderboard(self) -> str:
        board = self.result.leaderboard
        scale, unit = _effect_unit(self.kind, self.currency)
        k = self.result.fit_params.get("k", 0.3)
        rows, classes = [], []
        for r in board.itertuples(index=False):
            loss_half = Z95 * r.dr_loss_se
            row = [int(r.rank), r.learner, r.arm, f"{int(r.n):,}",
                   fmt_ci(r.qini, r.qini_lower, r.qini_upper), fmt_ci(r.auuc, r.auuc_lower, r.auuc_upper),
                   fmt_ci(r.uplift_at_k, r.uplift_at_k_lower, r.uplift_at_k_upper, scale=scale, unit=unit,
                       signed=True),
                   fmt_ci(r.dr_loss, r.dr_loss - loss_half, r.dr_loss + loss_half, digits=5)]
            if "dr_loss_vs_chosen" in board:  # paired on the same rows: its own interval ranks the learners
                lo, hi = r.dr_loss_vs_chosen_lower, r.dr_loss_vs_chosen_upper
                row.append("chosen" if r.learner == self.result.best_learner else
                           fmt_ci(r.dr_loss_vs_chosen, lo, hi, scale=1e4, signed=True))
            elif "dr_loss_vs_best" in board:
                row.append(f"{r.dr_loss_vs_best:.2e}")
            rows.append(row)
            classes.append("best" if r.learner == self.result.best_learner else "")
        header = ["rank", "learner", "arm", "rows", "Qini coefficient [95% CI]", "AUUC [95% CI]",
                  f"uplift@{k:.0%} [95% CI]", "DR loss [95% CI]"]
        if "dr_loss_vs_chosen" in board:
            header.append("DR loss − chosen (×10⁻⁴) [95% CI]")
        elif "dr_loss_vs_best" in board:
            header.append("DR loss − best")
        fp = self.result.fit_params
        out = [_table(header, rows, numeric=(3, 4, 5, 6, 7, 8), row_classes=classes)]
        out.append(_p(
            f"All scores are out of fold ({fp.get('n_folds', '?')}-fold cross-fitting): no customer is "
            f"scored by a model that saw them. Ranked by {fp.get('select', 'dr_loss')}; the DR loss "
            "estimates each model's squared uplift error up to a shared constant (lower is better); its "
            "difference to the chosen model is paired on the same customers, so its interval says whether the "
            "ranking is real. CIs of "
            f"Qini, AUUC and uplift@k from {fp.get('n_boot', '?')} bootstrap resamples. Highlighted: the "
            "chosen model.",
            "note"))
        return "".join(out)

    # -- 5. curves
    def curves(self) -> str:
        if self.data is None and self.cf.treatment is None:
            return self._no_data_note("Qini and uplift curves")
        out = []
        for arm in self.cf.arms[1:]:
            out.append(_figure(plot.plot_qini(self.result, self.data, arm=arm), f"Qini curve, arm {arm}",
                               "Incremental outcome among treated customers as more of the list is targeted; "
                               "above the dashed random line means the model ranks better than chance."))
            out.append(_figure(plot.plot_uplift_curve(self.result, self.data, arm=arm), f"Uplift curve, arm {arm}",
                               "Incremental outcome if the top share of customers were treated."))
        return "".join(out)

    # -- 6. calibration
    def calibration(self) -> str:
        table = self.result.calibration
        scale, unit = _effect_unit(self.kind, self.currency)
        out = [_figure(plot.plot_calibration(table, kind=self.kind), "Calibration plot",
                       f"Bins of the {self.result.best_learner} model's out-of-fold predicted uplift "
                       "(bin 1 = highest); observed uplift with 95% CI.")]
        rows = [[r.arm, int(r.bin), f"{int(r.n):,}", fmt_number(r.predicted_uplift * scale, 2) + f" {unit}",
                 fmt_ci(r.observed_uplift, r.observed_lower, r.observed_upper, scale=scale, unit=unit,
                     signed=True, digits=2)]
                for r in table.itertuples(index=False)]
        out.append(_table(["arm", "bin", "customers", "predicted uplift", "observed uplift [95% CI]"], rows,
                          numeric=(1, 2, 3, 4)))
        return "".join(out)

    # -- 7. segments
    def segments(self) -> str:
        if self.data is None:
            return self._no_data_note("Segment uplift")
        note = self._section_note("segments")
        if not self.inputs.segments and note is None:
            return _p("No segment columns were given or found.", "note")
        out = []
        reference = {}
        for arm in self.cf.arms[1:]:
            ref = self._primary_ate(arm)
            if ref is not None:
                reference[arm] = float(ref["estimate"])
        lines = ("the dotted line is the overall average effect" if len(reference) == 1 else
                 "the dotted lines are the overall average effects, one per arm")
        for by, table in self.inputs.segments:
            out.append(_Html(f"<h3>By {_e(' × '.join(by))}</h3>"))
            out.append(_figure(plot.plot_segments(table, kind=self.kind, reference=reference or None,
                                               currency=self.currency),
                               f"Segment uplift by {', '.join(by)}",
                               "Mean doubly-robust score per segment with 95% CI"
                               + (f"; {lines}." if reference else ".")))
            scale, unit = _effect_unit(self.kind, self.currency)
            rows = []
            for r in table.to_dict("records"):
                rows.append([r.get("arm", ""), r["segment"], f"{int(r.get('n', 0)):,}",
                             fmt_ci(r["uplift"], r["lower"], r["upper"], scale=scale, unit=unit, signed=True),
                             fmt_pct(r.get("relative_lift", np.nan), r.get("relative_lower", np.nan),
                                     r.get("relative_upper", np.nan)),
                             fmt_number(r.get("predicted_uplift", np.nan) * scale, 2) + f" {unit}",
                             str(r.get("note", "") or "")])
            out.append(_table(["arm", "segment", "customers", "uplift [95% CI]", "relative lift [95% CI]",
                               "model's mean prediction", "note"], rows, numeric=(2, 3, 4, 5)))
        if note is not None:
            out.append(note)
        return "".join(out)

    # -- 7b. discovered segments
    def discovered(self) -> str:
        if self.data is None:
            return self._no_data_note("Discovered segments")
        table = self.inputs.discovered
        if table is None:
            return self._section_note("discovered") or _p("Discovered segments were not computed.", "note")
        scale, unit = _effect_unit(self.kind, self.currency)
        out = [_p("Groups whose uplift differs, found by a shallow tree on one random half of the customers and "
                  "measured on the other half, so the search does not inflate the estimates (uplift segments "
                  "MODEL_DIR FILE shows the same rules). One block per treated arm: a rule that singles out the "
                  "responders to one coupon may not exist for another.")]
        p_by_arm = table.attrs.get("heterogeneity_p_by_arm", {})
        for arm, block in table.groupby("arm", sort=False):
            p_value = p_by_arm.get(arm, np.nan)
            out.append(_Html(f"<h3>Arm {_e(arm)}</h3>"))
            if np.isfinite(p_value):
                out.append(_p(f"Test that every segment of this arm has the same uplift: p = {p_value:.2g}"
                              + (" (the segments differ)." if p_value < 0.05 else
                                 " (no evidence that they differ).")))
            rows = [[r["rule"], f"{int(r['n']):,}",
                     fmt_ci(r["uplift"], r["lower"], r["upper"], scale=scale, unit=unit, signed=True),
                     fmt_number(r["predicted_uplift"] * scale, 2) + f" {unit}",
                     str(r.get("note", "") or "").split(":")[0].replace("_", " ")]
                    for r in block.to_dict("records")]
            out.append(_table(["rule", "customers (estimation half)", "uplift [95% CI]", "model's mean prediction",
                               "note"], rows, numeric=(1, 2, 3)))
        return "".join(out)

    # -- 8. drivers (SHAP)
    def drivers(self) -> str:
        if not self.inputs.explain_requested:
            return _p("Not requested (write_report(..., explain=True) adds it).", "note")
        if self.data is None:
            return self._no_data_note("The SHAP summary")
        if not self.inputs.explanations:
            return self._section_note("drivers") or _p("The SHAP summary was not computed.", "note")
        scale, unit = _effect_unit(self.kind, self.currency)
        out = []
        if len(self.inputs.explanations) > 1:
            out.append(_p("One block per treated arm: the feature that drives one coupon's uplift may not move "
                          "another's."))
        for arm, expl in self.inputs.explanations.items():
            lo, hi = expl.surrogate_r2_ci
            if len(self.inputs.explanations) > 1:
                out.append(_Html(f"<h3>Arm {_e(arm)}</h3>"))
            out.append(_p(f"SHAP values of a LightGBM surrogate of the {expl.learner} model's uplift (arm "
                          f"{expl.arm}). Surrogate fidelity R² on held-out customers: "
                          f"{fmt_ci(expl.surrogate_r2, lo, hi, digits=2)} — the closer to 1, the more the "
                          "explanation describes the model itself."))
            out.append(_figure(plot.plot_shap_summary(expl, currency=self.currency),
                               f"SHAP summary of uplift drivers, arm {arm}",
                               "One dot per customer: how much each feature moves that customer's predicted "
                               "uplift."))
            rows = [[int(r.get("rank", i + 1)), r["feature"],
                     fmt_ci(r["mean_abs_shap"], r.get("lower", np.nan), r.get("upper", np.nan), scale=scale,
                            unit=unit),
                     f"{100 * r['share']:.1f}%" if "share" in r else ""]
                    for i, r in enumerate(expl.importance.to_dict("records"))]
            out.append(_table(["rank", "feature", "mean |SHAP| [95% CI]", "share of total"], rows,
                              numeric=(0, 2, 3)))
        return "".join(out)

    # -- 9. targeting
    def targeting(self) -> str:
        request = self.inputs.targeting_request
        if request is None or (request["value"] is None and self.kind == "binary"):
            return _p("Not requested: pass the cost of each coupon and the value of one conversion to add the "
                      "targeting summary and the honest profit curve: uplift report MODEL_DIR --data FILE --cost "
                      "ARM=COST (repeat per coupon, or one number) --value 30 --budget 1000 (Python: "
                      "write_report(..., cost={arm: cost}, value=30.0, budget=1000.0)).", "note")
        if self.data is None:
            return self._no_data_note("The targeting summary")
        listing = self.inputs.targeting
        if listing is None:
            return self._section_note("targeting") or _p("Targeting was not computed.", "note")
        out = [self._targeting_summary(listing.summary)]
        curve = listing.curve
        if isinstance(curve, pd.DataFrame) and not curve.empty:
            out.append(_figure(plot.plot_profit_curve(curve, currency=self.currency), "Honest profit curve",
                               profit_curve_caption(curve, self.currency)))
        return "".join(out)

    def _targeting_summary(self, summary: dict) -> str:
        # The list's facts (scalars and small maps) and its policies (estimate with CI), by their known keys.
        warning = summary.get("warning")
        lead = [_Html(f'<div class="warnbox"><b>Warning:</b> {_e(warning)}.</div>')] if warning else []
        policies = [("estimated", summary["estimated"])]
        policies += [(f"baselines: {k}", v) for k, v in summary.get("baselines", {}).items()]
        facts = []
        for key, val in summary.items():
            if key in ("estimated", "baselines", "warning"):
                continue
            facts.append([FACT_LABELS.get(key, key.replace("_", " ")), _fact(val, key, self.currency)])
        out = lead + ([_table(None, facts)] if facts else [])
        if policies:
            scale, unit = _effect_unit(self.kind, self.currency)
            outcome = "incremental conversions" if self.kind == "binary" else f"incremental {self.outcome}"
            # The units every row shares go to the header, so each cell is a number and its interval.
            money = f" ({self.currency})" if self.currency else ""
            rows = []
            for name, v in policies:
                rows.append([POLICY_LABELS.get(name, name.removeprefix("baselines: ").replace("_", " ")),
                             f"{int(v.get('n_selected', 0)):,}",
                             fmt_ci(v.get("incremental_outcome"), v.get("incremental_outcome_lower"),
                                    v.get("incremental_outcome_upper"), signed=True),
                             fmt_money(v.get("spend", np.nan)),
                             fmt_money(v.get("profit"), v.get("profit_lower"), v.get("profit_upper"), signed=True),
                             fmt_ci(v.get("roi", np.nan), v.get("roi_lower", np.nan), v.get("roi_upper", np.nan),
                                    scale=100.0, signed=True)])
            out.append(_Html("<h3>Estimated value (held-out, doubly robust)</h3>"))
            out.append(_table(["policy", "customers", f"{outcome} [95% CI]", f"spend{money}",
                               f"profit [95% CI]{money}", "ROI [95% CI] (%)"], rows, numeric=(1, 2, 3, 4, 5)))
            money = f"Money in {self.currency}" if self.currency else "Money in the units of cost and value"
            out.append(_p(f"{money}. The model's list: the same targeting rule "
                          "applied to customers the model did not see, valued with doubly-robust scores; "
                          "baselines are valued the same way.", "note"))
        return "".join(out)

    # -- 10. reproducibility
    def footer(self) -> str:
        versions = [["python", platform.python_version()], ["platform", platform.platform(terse=True)]]
        versions += [[pkg, version] for pkg, version in package_versions().items()]
        fp = dict(self.result.fit_params)
        trees = fp.pop("trees", None) or {}  # what early stopping chose, not a parameter: one range per model
        race = fp.pop("race", None) or []
        rows = [["seed (random_state)", str(fp.get("random_state", "n/a"))],
                ["fit parameters", ", ".join(f"{k}={v}" for k, v in fp.items())],
                *([["trees kept per fold (early stopping)", ", ".join(
                    f"{k} {min(v)}–{max(v)}" if min(v) != max(v) else f"{k} {v[0]}" for k, v in trees.items() if v)]]
                  if trees else []),
                *([["racing (rows: learners kept)", "; ".join(
                    f"{r['rows']:,}: {', '.join(r['kept'])}" for r in race)]] if race else []),
                ["training-data sha256", self._data_hash()],
                ["command line", self.command_line or "not given (written from Python)"],
                ["written", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]]
        if self.errors:
            rows.append(["sections that failed", "; ".join(self.errors)])
        return _Html("<footer><h2 id=\"reproducibility\">Reproducibility</h2>"
                     + _table(None, rows) + _table(["package", "version"], versions) + "</footer>")

    def _data_hash(self) -> str:
        # Same hash as a saved model's manifest, so a report can be matched to its model directory.
        return self.result.training.data_sha256 or "n/a"


def profit_curve_caption(curve: pd.DataFrame, currency: str | None = None) -> str:
    """What the honest profit curve shows, in words, with the list's cut and both peaks.

    The curve (:func:`uplift.targeting.honest_profit_curve`) follows the list's own allocation, so the value it
    reads at the cut is the list's honest value in the table above it.

    Examples
    --------
    >>> import numpy as np
    >>> from uplift.targeting.allocation import profit_curve
    >>> c = profit_curve(np.array([0.3, 0.1, 0.0]), 1.0, value=10.0, dr=np.array([0.2, 0.05, 0.1]))
    >>> c.attrs.update(cutoff=1, model_peak=2, honest_peak=1)
    >>> profit_curve_caption(c).split("; ")[1]
    'the dotted line is this list (1 customers, 33% of the base): honest profit +1 [n/a], as in the table above'
    """
    cut = int(curve.attrs.get("cutoff", 0))
    row = curve.iloc[min(cut, len(curve) - 1)]
    text = ("Cumulative profit as the list grows, customers taken in the order and with the coupon the list's "
            "allocation gives them (beyond the budget, the others at their most profitable coupon): the solid "
            "line and band are the honest estimate (doubly-robust scores of held-out rows, 95% CI), the dashed "
            "line is the model's own expectation")
    band = ""
    if "estimated_profit" in curve:
        lo, hi = row.get("estimated_profit_lower"), row.get("estimated_profit_upper")
        ci = fmt_money(row["estimated_profit"], lo, hi, currency=currency, signed=True)
        band = f": honest profit {ci if np.isfinite(lo) else ci + ' [n/a]'}, as in the table above"
    text += (f"; the dotted line is this list ({int(row['n_targeted']):,} customers, {row['share_targeted']:.0%} "
             f"of the base){band}")
    for key, what in (("model_peak", "the model's expectation peaks"), ("honest_peak", "the honest estimate peaks")):
        peak = curve.attrs.get(key)
        if peak is not None and 0 <= int(peak) < len(curve):
            text += f"; {what} at {curve['share_targeted'].iloc[int(peak)]:.0%}"
    return text + "."


def build_report(inputs: ReportInputs, *, command_line: str | None = None, title: str | None = None,
                 currency: str | None = None) -> str:
    """The report as one HTML string: renders ``inputs`` (see :func:`collect_report`), computes nothing.

    ``currency`` (e.g. ``"$"`` or ``"EUR"``) labels money; default none: the units of the cost and value given.
    """
    r = _Report(inputs, command_line=command_line, currency=currency)
    sections = [
        _Section("data", "Data and column roles", r.data_summary()),
        _Section("quality", "Data quality", r._optional("The data-quality report", r.data_quality)),
        _Section("diagnostics", "Design diagnostics", r._optional("Design diagnostics", r.diagnostics)),
        _Section("effects", "Average effect of the campaign", r.effects()),
        _Section("leaderboard", "Model leaderboard", r.leaderboard()),
        _Section("curves", "Qini and uplift curves", r._optional("Qini and uplift curves", r.curves)),
        _Section("calibration", "Calibration", r.calibration()),
        _Section("segments", "Uplift by segment", r._optional("Segment uplift", r.segments)),
        _Section("discovered", "Discovered segments", r._optional("Discovered segments", r.discovered)),
        _Section("drivers", "What drives uplift (SHAP)", r._optional("The SHAP summary", r.drivers)),
        _Section("targeting", "Targeting", r._optional("Targeting", r.targeting)),
    ]
    footer = r.footer()
    treatment = inputs.result.roles.get("treatment", "treatment")
    title = title or f"Uplift report: effect of {treatment} on {r.outcome}"
    nav = "".join(f'<li><a href="#{s.id}">{_e(s.title)}</a></li>' for s in sections)
    nav += '<li><a href="#reproducibility">Reproducibility</a></li>'
    body = "".join(f'<section id="{s.id}"><h2>{_e(s.title)}</h2>{s.body}</section>' for s in sections)
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    sub = (f"{r._design_text()} · {len(r.cf.folds):,} customers · arms {', '.join(r.cf.arms)} "
           f"(control {r.cf.arms[0]}) · written {generated}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{_e(title)}</h1><p class=\"sub\">{_e(sub)}</p>{r.headline()}"
        f"<nav><b>Contents</b><ol>{nav}</ol></nav></header>\n<main>{body}</main>\n{footer}\n</body></html>\n"
    )


def write_report(result: FitResult, path: str | Path, *, data: CampaignData | None = None,
                 command_line: str | None = None, segment_by: Sequence[str | Sequence[str]] | None = None,
                 cost: float | dict | None = None, value: float | None = None, budget: float | None = None,
                 explain: bool = True, title: str | None = None, currency: str | None = None) -> Path:
    """Write the HTML report of a fitted result to ``path`` (atomically) and return the path.

    Parameters
    ----------
    result : FitResult
        The fitted study (``Study.result``, or :func:`uplift.persist.load_result`).
    path : str or Path
        Where to write the ``.html`` file; replaced atomically, so a reader never sees half a report.
    data : CampaignData, optional
        The training data (``Study.data``). Without it the report has every section that does not need the
        rows: design checks, effects, leaderboard, calibration and the footer.
    command_line : str, optional
        The command that produced the study, recorded in the footer (the CLI passes its own).
    segment_by : list, optional
        Segmentations to report; each item a column or a list of columns crossed together. Default: up to
        two categorical features with at most 12 levels (or the first numeric feature, in quantile bands).
    cost, value, budget : optional
        Coupon cost, value of one conversion and total budget; with ``cost`` (and ``value`` for conversion
        outcomes) the report adds the targeting list's summary and profit curve: the list
        :func:`uplift.targeting.targeting_list` (and ``uplift target``) gives for the training customers.
    explain : bool
        Add the SHAP summary (fits a surrogate model; a few seconds).
    title : str, optional
        Page title.
    currency : str, optional
        Label of money amounts (e.g. ``"$"``): costs, profit, and the effects on a continuous outcome such as
        revenue; default none, the units of the cost and value given ("outcome units" for effects).

    Returns
    -------
    Path
    """
    path = Path(path)
    inputs = collect_report(result, data, segment_by=segment_by, cost=cost, value=value, budget=budget,
                            explain=explain)
    atomic_write_text(path, build_report(inputs, command_line=command_line, title=title, currency=currency))
    return path

"""One self-contained HTML report of a fitted study, to e-mail or archive next to the targeting list.

The report calls the same study methods as the notebook API and the CLI (``ate``, ``leaderboard``,
``calibration``, ``diagnostics``, ``segments``, ``explain``, ``target``) and draws with :mod:`uplift.viz.plots`;
nothing is computed here that an analyst could not reproduce from Python. The file has no scripts and no
network references: figures are embedded as base64 PNG, styles are inline, and a Content-Security-Policy
forbids anything else, so it opens the same offline, in a mail client or years later.

Sections: data and column roles, design diagnostics, average effects (naive vs adjusted for observational
designs), leaderboard, Qini/uplift curves, calibration, segments, drivers of uplift (SHAP), targeting, and a
reproducibility footer (package versions, seed, training-data hash, command line). Every estimate is shown
with its 95% CI and unit. Optional sections whose module is missing say so; one that fails shows the error
in place (and warns) instead of losing the whole report.

Examples
--------
>>> import tempfile, pathlib
>>> from uplift import Study, simulate_campaign
>>> from uplift.viz.report import write_report
>>> df = simulate_campaign(2000, seed=3)
>>> truth = [c for c in df if c.startswith(("true_", "propensity"))]
>>> study = Study(df, "treatment", "conversion", id="customer_id", exclude=truth)
>>> study = study.fit(["t"], n_folds=3, n_boot=20)
>>> path = write_report(study, pathlib.Path(tempfile.mkdtemp()) / "report.html", explain=False)
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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

import uplift
from uplift._files import atomic_write_text
from uplift.errors import UpliftInputError
from uplift.viz import plots as plot

#: Packages whose versions the footer records (what a rerun must match).
VERSION_PACKAGES = ("uplift", "numpy", "pandas", "scipy", "scikit-learn", "lightgbm", "matplotlib", "shap",
                    "econml", "causalml")
#: Categorical features with more levels than this are not chosen as default segments (too many tiny groups).
MAX_DEFAULT_SEGMENT_LEVELS = 12
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
table{border-collapse:collapse;margin:8px 0 14px;font-size:.88em}
th,td{border:1px solid #d5d9de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}tr:nth-child(even) td{background:#fafbfc}td.num{text-align:right;white-space:nowrap}
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
            f'<td{" class=num" if j in numeric else ""}>{_e(c)}</td>' for j, c in enumerate(row))
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
def _digits(lo: float, hi: float, scale: float = 1.0) -> int:
    """Decimals that show a CI of this width with about three significant digits."""
    width = abs(hi - lo) * scale
    if not np.isfinite(width) or width == 0:
        return 3
    return int(np.clip(2 - np.floor(np.log10(width)), 0, 6))


def _num(x: object, digits: int = 3) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(x):
        return "n/a"
    return f"{x:,.{digits}f}"


def _ci(est: float, lo: float, hi: float, *, scale: float = 1.0, unit: str = "", signed: bool = False,
        digits: int | None = None) -> str:
    """``+1.16 [0.00, 2.32] pp``: an estimate with its 95% CI, in the display scale and unit."""
    est, lo, hi = (float(v) if v is not None else np.nan for v in (est, lo, hi))
    if not np.isfinite(est):
        return "n/a"
    d = _digits(lo, hi, scale) if digits is None else digits
    sign = "+" if signed else ""
    text = f"{est * scale:{sign},.{d}f}"
    if np.isfinite(lo) and np.isfinite(hi):
        text += f" [{lo * scale:,.{d}f}, {hi * scale:,.{d}f}]"
    return f"{text} {unit}".rstrip()


def _pct_ci(est: float, lo: float, hi: float) -> str:
    return _ci(est, lo, hi, scale=100.0, unit="%", signed=True)


def _effect(row) -> str:
    """An average-effect row of :meth:`uplift.Study.ate` in its display units, with its 95% CI."""
    return _ci(row["estimate_display"], row["lower_display"], row["upper_display"], unit=row["unit"],
               signed=True)


def _fact(value: object) -> str:
    return _num(value, 2) if isinstance(value, float) else str(value)


def _effect_unit(kind: str) -> tuple[float, str]:
    return (100.0, "pp") if kind == "binary" else (1.0, "outcome units")


# ---------------------------------------------------------------------------------------------- sections
@dataclass
class _Section:
    id: str
    title: str
    body: str


class _Report:
    """Builds the sections of one study; each method returns the body of one section."""

    def __init__(self, study, *, command_line: str | None, segment_by, cost, value, budget,
                 explain: bool) -> None:
        if getattr(study, "crossfit_", None) is None:
            raise UpliftInputError("the study is not fitted yet: call .fit() before writing a report")
        self.study = study
        self.cf = study.crossfit_
        self.data = getattr(study, "data", None)
        self.kind = self.cf.kind
        self.outcome = self.cf.outcome
        self.command_line = command_line
        self.segment_by = segment_by
        self.cost, self.value, self.budget = cost, value, budget
        self.do_explain = explain
        self.errors: list[str] = []
        self.ate_table = study.ate()

    # -- robustness for the optional, separately developed parts
    def _optional(self, what: str, fn: Callable[[], str]) -> str:
        try:
            return fn()
        except (ImportError, NotImplementedError, AttributeError) as err:
            # A module or method that this version of uplift (or a study loaded from disk) does not have.
            return _p(f"{what} is not available in this installation ({err}).", "note")
        except UpliftInputError as err:
            return _p(f"{what} was not computed: {err}", "note")
        except Exception as err:  # noqa: BLE001 - one failing section must not lose the whole report
            message = f"{what} failed: {type(err).__name__}: {err}"
            self.errors.append(message)
            warnings.warn(f"uplift report: {message}", RuntimeWarning, stacklevel=3)
            return _Html(f'<div class="section-error">{_e(message)}</div>')

    def _no_data_note(self, what: str) -> str:
        return _p(f"{what} needs the training data, which a study loaded from disk does not keep; re-create "
                  "the study from the data to include it.", "note")

    def _primary_ate(self, arm: str) -> pd.Series | None:
        t = self.ate_table
        rows = t[(t["outcome"] == self.outcome) & (t["arm"] == arm) & (t["estimand"] == "ATE")]
        return rows.iloc[0] if len(rows) else None

    # -- header
    def headline(self) -> str:
        parts = []
        for arm in self.cf.arms[1:]:
            row = self._primary_ate(arm)
            if row is None:
                continue
            arm_text = f" of arm {arm}" if len(self.cf.arms) > 2 else ""
            parts.append(f"Average effect{arm_text} on {self.outcome}: {_effect(row)} (95% CI; relative lift "
                         f"{_pct_ci(row['relative_lift'], row['relative_lower'], row['relative_upper'])}; "
                         f"{row['method']}).")
        select = self.study.fit_params_.get("select", "dr_loss")
        best = f"Chosen model: {self.study.best_learner_} (selected by {select})."
        return _Html(f'<div class="headline">{"<br>".join(_e(p) for p in parts + [best])}</div>')

    # -- 1. data and roles
    def data_summary(self) -> str:
        study, cf = self.study, self.cf
        roles = study.roles
        out = []
        if self.data is not None:
            n = int(self.data.n)
            counts = np.bincount(self.data.treatment, minlength=len(cf.arms))
            kinds = self.data.outcome_kinds
        else:
            training = getattr(study, "training_", {}) or {}
            n = int(training.get("n", len(cf.folds)))
            arm_counts = training.get("arm_counts", {})
            counts = np.array([arm_counts.get(a, np.nan) for a in cf.arms], dtype=float)
            kinds = training.get("outcome_kinds", {self.outcome: self.kind})
        rows = [["customers (rows)", f"{n:,}"], ["design", self._design_text()]]
        for a, (arm, c) in enumerate(zip(cf.arms, counts, strict=True)):
            role = "control" if a == 0 else "treated"
            rows.append([f"arm {arm} ({role})", f"{_num(c, 0)} customers ({_num(100 * c / n, 1)}% of rows)"])
        for name, kind in kinds.items():
            modelled = " — modelled" if name == self.outcome else ""
            kind_text = "conversion (0/1)" if kind == "binary" else "continuous"
            rows.append([f"outcome {name}", kind_text + modelled])
        out.append(_table(None, rows))

        features = list(roles.get("features") or study.schema.names)
        cats = study.schema.categories
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
        if study.notes:
            items = "".join(f"<li>{_e(note)}</li>" for note in study.notes)
            out.append(_Html(f'<h3>Notes from validation</h3><ul class="note">{items}</ul>'))
        return "".join(out)

    def _design_text(self) -> str:
        declared = self.study.roles.get("design_declared")
        text = ("randomised (RCT)" if self.study.design == "rct"
                else "observational (adjusted for the features)")
        return text + (f"; declared {declared!r}" if declared and declared != self.study.design else "")

    # -- 2. diagnostics
    def diagnostics(self) -> str:
        fn = getattr(self.study, "diagnostics", None)
        if fn is None:
            return _p("Design diagnostics are not available in this version of uplift.", "note")
        diag = fn()
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
            fig = plot.love_plot(balance, weighted)
            extra.append(_figure(fig, "Love plot of covariate balance", caption))
        if self.study.design == "observational":
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
            fig = plot.propensity_overlap(e, (T[pair] == a).astype(int),
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
                    else f"{_num(r.control_mean, 3)} {r.unit} per customer")
            rows.append([r.outcome, r.arm, r.estimand, r.method,
                         _effect(r._asdict()),
                         _pct_ci(r.relative_lift, r.relative_lower, r.relative_upper), base,
                         f"{int(r.n_treated):,} / {int(r.n_control):,}"])
        out = [_table(["outcome", "arm", "estimand", "method", "effect [95% CI]", "relative lift [95% CI]",
                       "control mean", "treated / control"], rows, numeric=(4, 5, 6, 7))]
        out.append(_p("ATE: average effect over all customers; ATT: over the customers who were treated. "
                      "pp = percentage points of conversion.", "note"))
        if self.study.design == "observational":
            notes = []
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
        out.append(_figure(plot.ate_plot(t), "Forest plot of average effects",
                           "Average effects with 95% confidence intervals."))
        return "".join(out)

    # -- 4. leaderboard
    def leaderboard(self) -> str:
        board = self.study.leaderboard()
        scale, unit = _effect_unit(self.kind)
        k = self.study.fit_params_.get("k", 0.3)
        rows, classes = [], []
        for r in board.itertuples(index=False):
            loss_half = 1.959964 * r.dr_loss_se
            row = [int(r.rank), r.learner, r.arm, f"{int(r.n):,}",
                   _ci(r.qini, r.qini_lower, r.qini_upper), _ci(r.auuc, r.auuc_lower, r.auuc_upper),
                   _ci(r.uplift_at_k, r.uplift_at_k_lower, r.uplift_at_k_upper, scale=scale, unit=unit,
                       signed=True),
                   _ci(r.dr_loss, r.dr_loss - loss_half, r.dr_loss + loss_half, digits=5)]
            if "dr_loss_vs_best" in board:
                row.append(f"{r.dr_loss_vs_best:.2e}")
            rows.append(row)
            classes.append("best" if r.learner == self.study.best_learner_ else "")
        header = ["rank", "learner", "arm", "rows", "Qini coefficient [95% CI]", "AUUC [95% CI]",
                  f"uplift in top {k:.0%} [95% CI]", "DR loss [95% CI]"]
        if "dr_loss_vs_best" in board:
            header.append("DR loss − best")
        fp = self.study.fit_params_
        out = [_table(header, rows, numeric=(3, 4, 5, 6, 7, 8), row_classes=classes)]
        out.append(_p(
            f"All scores are out of fold ({fp.get('n_folds', '?')}-fold cross-fitting): no customer is "
            f"scored by a model that saw them. Ranked by {fp.get('select', 'dr_loss')}; the DR loss "
            "estimates each model's squared uplift error up to a shared constant (lower is better). CIs of "
            f"Qini, AUUC and uplift@k from {fp.get('n_boot', '?')} bootstrap resamples. Highlighted: the "
            "chosen model.",
            "note"))
        return "".join(out)

    # -- 5. curves
    def curves(self) -> str:
        if self.data is None:
            return self._no_data_note("Qini and uplift curves")
        out = []
        for arm in self.cf.arms[1:]:
            out.append(_figure(plot.qini_curve(self.study, arm=arm), f"Qini curve, arm {arm}",
                               "Incremental outcome among treated customers as more of the list is targeted; "
                               "above the dashed random line means the model ranks better than chance."))
            out.append(_figure(plot.uplift_curve(self.study, arm=arm), f"Uplift curve, arm {arm}",
                               "Incremental outcome if the top share of customers were treated."))
        return "".join(out)

    # -- 6. calibration
    def calibration(self) -> str:
        table = self.study.calibration()
        scale, unit = _effect_unit(self.kind)
        out = [_figure(plot.calibration_plot(table, kind=self.kind), "Calibration plot",
                       f"Bins of the {self.study.best_learner_} model's out-of-fold predicted uplift "
                       "(bin 1 = highest); observed uplift with 95% CI.")]
        rows = [[r.arm, int(r.bin), f"{int(r.n):,}", _num(r.predicted_uplift * scale, 2) + f" {unit}",
                 _ci(r.observed_uplift, r.observed_lower, r.observed_upper, scale=scale, unit=unit,
                     signed=True, digits=2)]
                for r in table.itertuples(index=False)]
        out.append(_table(["arm", "bin", "customers", "predicted uplift", "observed uplift [95% CI]"], rows,
                          numeric=(1, 2, 3, 4)))
        return "".join(out)

    # -- 7. segments
    def _default_segments(self) -> list[list[str]]:
        cats = self.study.schema.categories
        chosen = [[f] for f in self.study.schema.names
                  if f in cats and 2 <= len(cats[f]) <= MAX_DEFAULT_SEGMENT_LEVELS]
        if not chosen:
            numeric = [f for f in self.study.schema.names if f not in cats]
            chosen = [[numeric[0]]] if numeric else []
        return chosen[:2]

    def segments(self) -> str:
        if self.data is None:
            return self._no_data_note("Segment uplift")
        fn = getattr(self.study, "segments", None)
        if fn is None:
            from uplift.effects.segments import segment_uplift

            def fn(by):
                return segment_uplift(self.study, by)
        groups = self.segment_by if self.segment_by is not None else self._default_segments()
        groups = [[g] if isinstance(g, str) else list(g) for g in groups]
        if not groups:
            return _p("No segment columns were given or found.", "note")
        out = []
        for by in groups:
            table = fn(by=by)
            ref = self._primary_ate(self.cf.arms[1])
            reference = ref["estimate"] if ref is not None and len(self.cf.arms) == 2 else None
            out.append(_Html(f"<h3>By {_e(' × '.join(by))}</h3>"))
            out.append(_figure(plot.segment_plot(table, kind=self.kind, reference=reference),
                               f"Segment uplift by {', '.join(by)}",
                               "Mean doubly-robust score per segment with 95% CI; the dotted line is the "
                               "overall average effect."))
            scale, unit = _effect_unit(self.kind)
            rows = []
            for r in table.to_dict("records"):
                rows.append([r.get("arm", ""), r["segment"], f"{int(r.get('n', 0)):,}",
                             _ci(r["uplift"], r["lower"], r["upper"], scale=scale, unit=unit, signed=True),
                             _pct_ci(r.get("relative_lift", np.nan), r.get("relative_lower", np.nan),
                                     r.get("relative_upper", np.nan)),
                             _num(r.get("predicted_uplift", np.nan) * scale, 2) + f" {unit}",
                             str(r.get("note", "") or "")])
            out.append(_table(["arm", "segment", "customers", "uplift [95% CI]", "relative lift [95% CI]",
                               "model's mean prediction", "note"], rows, numeric=(2, 3, 4, 5)))
        return "".join(out)

    # -- 8. drivers (SHAP)
    def drivers(self) -> str:
        if not self.do_explain:
            return _p("Not requested (write_report(..., explain=True) adds it).", "note")
        if self.data is None:
            return self._no_data_note("The SHAP summary")
        from uplift.effects import explanation as explain_module

        fn = getattr(self.study, "explain", None)
        expl = fn() if fn is not None else explain_module.explain(self.study)
        scale, unit = _effect_unit(self.kind)
        lo, hi = expl.surrogate_r2_ci
        out = [_p(f"SHAP values of a LightGBM surrogate of the {expl.learner} model's uplift (arm "
                  f"{expl.arm}). Surrogate fidelity R² on held-out customers: "
                  f"{_ci(expl.surrogate_r2, lo, hi, digits=2)} — the closer to 1, the more the explanation "
                  "describes the model itself.")]
        out.append(_figure(explain_module.plot_summary(expl), "SHAP summary of uplift drivers",
                           "One dot per customer: how much each feature moves that customer's predicted "
                           "uplift."))
        imp = expl.importance
        rows = [[int(r.get("rank", i + 1)), r["feature"],
                 _ci(r["mean_abs_shap"], r.get("lower", np.nan), r.get("upper", np.nan), scale=scale,
                     unit=unit),
                 f"{100 * r['share']:.1f}%" if "share" in r else ""]
                for i, r in enumerate(imp.to_dict("records"))]
        out.append(_table(["rank", "feature", "mean |SHAP| [95% CI]", "share of total"], rows,
                          numeric=(0, 2, 3)))
        return "".join(out)

    # -- 9. targeting
    def targeting(self) -> str:
        if self.cost is None or (self.value is None and self.kind == "binary"):
            return _p("Not requested: pass the cost of one coupon and the value of one conversion, e.g. "
                      "write_report(study, path, cost=0.5, value=30.0, budget=1000.0), to add the targeting "
                      "summary and profit curve.", "note")
        if self.data is None:
            return self._no_data_note("The targeting summary")
        fn = getattr(self.study, "target", None)
        if fn is None:
            return _p("Targeting is not available in this version of uplift.", "note")
        result = fn(cost=self.cost, value=self.value, budget=self.budget)
        summary = getattr(result, "summary", {}) or {}
        out = [self._targeting_summary(summary)]
        curve = getattr(result, "curve", None)
        if isinstance(curve, pd.DataFrame) and not curve.empty:
            cutoff = curve.attrs.get("cutoff")
            caption = "Model-expected cumulative profit as the list grows, most profitable customers first"
            if cutoff is not None and 0 <= int(cutoff) < len(curve):
                caption += (f"; profit peaks at {int(cutoff):,} customers "
                            f"({curve['share_targeted'].iloc[int(cutoff)]:.0%} of the list)")
            out.append(_figure(plot.profit_curve_plot(curve), "Profit curve", caption + "."))
        return "".join(out)

    def _targeting_summary(self, summary: dict) -> str:
        facts, policies = [], []
        for key, val in summary.items():
            if isinstance(val, dict) and any(f"{m}_lower" in val for m in ("profit", "incremental_outcome")):
                policies.append((key, val))
            elif isinstance(val, dict) and val and all(isinstance(v, dict) for v in val.values()):
                policies.extend((f"{key}: {k}", v) for k, v in val.items()
                                if any(f"{m}_lower" in v for m in ("profit", "incremental_outcome")))
            elif isinstance(val, dict):
                text = ", ".join(f"{k.replace('_', ' ')}: {_fact(v)}" for k, v in val.items())
                facts.append([FACT_LABELS.get(key, key.replace("_", " ")), text])
            else:
                facts.append([FACT_LABELS.get(key, key.replace("_", " ")), _fact(val)])
        out = [_table(None, facts)] if facts else []
        if policies:
            scale, unit = _effect_unit(self.kind)
            outcome_unit = "conversions" if self.kind == "binary" else "outcome units"
            rows = []
            for name, v in policies:
                rows.append([POLICY_LABELS.get(name, name.replace("_", " ")),
                             f"{int(v.get('n_selected', 0)):,}",
                             _ci(v.get("incremental_outcome"), v.get("incremental_outcome_lower"),
                                 v.get("incremental_outcome_upper"), unit=outcome_unit, signed=True),
                             _num(v.get("spend", np.nan), 2),
                             _ci(v.get("profit"), v.get("profit_lower"), v.get("profit_upper"), signed=True),
                             _pct_ci(v.get("roi", np.nan), v.get("roi_lower", np.nan),
                                     v.get("roi_upper", np.nan))])
            out.append(_Html("<h3>Estimated value (held-out, doubly robust)</h3>"))
            out.append(_table(["policy", "customers", "incremental outcome [95% CI]", "spend",
                               "profit [95% CI]", "ROI [95% CI]"], rows, numeric=(1, 2, 3, 4, 5)))
            out.append(_p("Money in the units of cost and value. The model's list: the same targeting rule "
                          "applied to customers the model did not see, valued with doubly-robust scores; "
                          "baselines are valued the same way.", "note"))
        return "".join(out)

    # -- 10. reproducibility
    def footer(self) -> str:
        study = self.study
        versions = [["python", platform.python_version()], ["platform", platform.platform(terse=True)]]
        for pkg in VERSION_PACKAGES:
            try:
                versions.append([pkg, metadata.version(pkg)])
            except metadata.PackageNotFoundError:
                # A source checkout of uplift has no installed metadata; its own version still identifies it.
                versions.append([pkg, uplift.__version__ if pkg == "uplift" else "not installed"])
        fp = dict(getattr(study, "fit_params_", {}) or {})
        rows = [["seed (random_state)", str(fp.get("random_state", getattr(study, "random_state", "n/a")))],
                ["fit parameters", ", ".join(f"{k}={v}" for k, v in fp.items())],
                ["training-data sha256", self._data_hash()],
                ["command line", self.command_line or "not given (written from Python)"],
                ["written", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")]]
        if self.errors:
            rows.append(["sections that failed", "; ".join(self.errors)])
        return _Html("<footer><h2 id=\"reproducibility\">Reproducibility</h2>"
                     + _table(None, rows) + _table(["package", "version"], versions) + "</footer>")

    def _data_hash(self) -> str:
        if self.data is not None:
            from uplift.data.fingerprint import data_hash

            # Same hash as a saved model's manifest, so a report can be matched to its model directory.
            return data_hash(self.data.X, self.data.treatment, self.data.outcomes[self.outcome])
        manifest = getattr(self.study, "manifest_", {}) or {}
        return str(manifest.get("training_data_sha256", "n/a"))


def build_report(study, *, command_line: str | None = None,
                 segment_by: Sequence[str | Sequence[str]] | None = None, cost: float | dict | None = None,
                 value: float | None = None, budget: float | None = None, explain: bool = True,
                 title: str | None = None) -> str:
    """The report of a fitted study as one HTML string (see :func:`write_report` for the parameters)."""
    r = _Report(study, command_line=command_line, segment_by=segment_by, cost=cost, value=value,
                budget=budget, explain=explain)
    sections = [
        _Section("data", "Data and column roles", r.data_summary()),
        _Section("diagnostics", "Design diagnostics", r._optional("Design diagnostics", r.diagnostics)),
        _Section("effects", "Average effect of the campaign", r.effects()),
        _Section("leaderboard", "Model leaderboard", r.leaderboard()),
        _Section("curves", "Qini and uplift curves", r.curves()),
        _Section("calibration", "Calibration", r.calibration()),
        _Section("segments", "Uplift by segment", r._optional("Segment uplift", r.segments)),
        _Section("drivers", "What drives uplift (SHAP)", r._optional("The SHAP summary", r.drivers)),
        _Section("targeting", "Targeting", r._optional("Targeting", r.targeting)),
    ]
    footer = r.footer()
    treatment = study.roles.get("treatment", "treatment")
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


def write_report(study, path: str | Path, *, command_line: str | None = None,
                 segment_by: Sequence[str | Sequence[str]] | None = None, cost: float | dict | None = None,
                 value: float | None = None, budget: float | None = None, explain: bool = True,
                 title: str | None = None) -> Path:
    """Write the HTML report of a fitted study to ``path`` (atomically) and return the path.

    Parameters
    ----------
    study : uplift.Study
        A fitted study. One loaded from disk (without training data) gets every section that does not need
        the rows: effects, leaderboard, calibration and the footer.
    path : str or Path
        Where to write the ``.html`` file; replaced atomically, so a reader never sees half a report.
    command_line : str, optional
        The command that produced the study, recorded in the footer (the CLI passes its own).
    segment_by : list, optional
        Segmentations to report; each item a column or a list of columns crossed together. Default: up to
        two categorical features with at most 12 levels (or the first numeric feature, in quantile bands).
    cost, value, budget : optional
        Coupon cost, value of one conversion and total budget; with ``cost`` (and ``value`` for conversion
        outcomes) the report adds the targeting summary and profit curve.
    explain : bool
        Add the SHAP summary (fits a surrogate model; a few seconds).
    title : str, optional
        Page title.

    Returns
    -------
    Path

    Examples
    --------
    >>> # write_report(study, "report.html", cost=0.5, value=30.0, command_line="uplift fit data.csv ...")
    """
    path = Path(path)
    text = build_report(study, command_line=command_line, segment_by=segment_by, cost=cost, value=value,
                        budget=budget, explain=explain, title=title)
    atomic_write_text(path, text)
    return path

"""Terminal rendering for the command line: rich tables, progress bars and one-document JSON.

Everything here takes results (tables, dicts) and prints them; nothing computes an estimate.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich import box
from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from uplift._display import PP, decimals, effect_unit, fmt_ci, fmt_effect, fmt_level, fmt_money, fmt_number, fmt_pct
from uplift._files import json_text
from uplift.effects.average import headline_effects
from uplift.fit.progress import phase_records

console = Console(stderr=False)
err_console = Console(stderr=True)


class RichProgress:
    """Adapter from the study's progress hook to a rich progress bar on stderr."""

    def __init__(self, enabled: bool) -> None:
        # A bar only where it can redraw itself: in a pipe or a log it would leave blank lines behind.
        self.enabled = enabled and err_console.is_terminal
        self.progress: Progress | None = None
        self.task = None

    def start(self, total: int, description: str) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                                     "{task.total}"), TimeElapsedColumn(), console=err_console, transient=True)
            self.progress.start()
        self.task = self.progress.add_task(description, total=total)

    def advance(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, description=description)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def print_json(doc: dict) -> None:
    sys.stdout.write(json_text(doc))


#: Messages written for both interfaces name the Python argument and then the flag ("na_values=['-999'] (CLI
#: --na-values -999)", "as_of=... / CLI --as-of", "value=..., CLI --value"); a command-line user gets the flag only.
_BOTH_FORMS = (
    (re.compile(r"\b\w+=(?:\.\.\.|\[[^\]]*\]|\{[^}]*\}|[^\s(),]+) \(CLI (--[^)]*)\)"), r"\1"),
    (re.compile(r"\b\w+=(?:\.\.\.|\[[^\]]*\]) / CLI (--[\w-]+(?: [A-Z_]+=[A-Z_]+)?)"), r"\1"),
    (re.compile(r"\b\w+=\.\.\., CLI (--[\w-]+)"), r"\1"),
)


def cli_wording(message: str) -> str:
    """A message for the command line: each "python_argument (CLI --flag)" pair reduced to the flag.

    Examples
    --------
    >>> cli_wording("probably a missing-value code; pass na_values=['-999'] (CLI --na-values -999) to read it")
    'probably a missing-value code; pass --na-values -999 to read it'
    >>> cli_wording("the check needs the declared split (expected_split=... / CLI --expected-split ARM=SHARE)")
    'the check needs the declared split (--expected-split ARM=SHARE)'
    >>> cli_wording("set as_of=... / CLI --as-of for the campaign start; give the value (value=..., CLI --value)")
    'set --as-of for the campaign start; give the value (--value)'
    """
    for pattern, replacement in _BOTH_FORMS:
        message = pattern.sub(replacement, message)
    return message


def table(title: str, frame: pd.DataFrame, columns: dict[str, str], *, numeric: tuple[str, ...] = (),
          max_width: dict[str, int] | None = None) -> Table:
    """A table that reads at 80 columns: light rules, numbers right-aligned, every value rounded for people
    (:func:`cell`; ``--json`` keeps full precision). Cells wrap between words, never inside one."""
    # No outer edge (two more columns for the cells at 80); a blank line above the title separates tables instead.
    # Columns apart by two characters (the rule's gap and one space), not three.
    t = Table(title=f"\n{title}", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
              show_edge=False)
    cells = [[cell(v) for v in frame[key]] for key in columns]
    for i, (key, label) in enumerate(columns.items()):
        is_number = key in numeric or (key in frame and pd.api.types.is_numeric_dtype(frame[key])
                                       and not pd.api.types.is_bool_dtype(frame[key]))
        unit = shared_unit(cells[i])
        if unit:  # "+2.10 [1.40, 2.80] pp" on every row: the unit once, in the header, and each row one line
            cells[i] = [v.removesuffix(f" {unit}") for v in cells[i]]
            label = unit_label(label, unit)
        t.add_column(label, justify="right" if is_number else "left", overflow="fold",
                     max_width=(max_width or {}).get(key))
    for row in zip(*cells, strict=True):
        t.add_row(*row)
    return t


def shared_unit(values: list[str]) -> str | None:
    """The unit every non-empty value of a column ends with (``pp``, ``%``, a currency), if they share one.

    Examples
    --------
    >>> shared_unit(["+2.10 [1.40, 2.80] pp", "-0.50 pp", ""])
    'pp'
    >>> shared_unit(["+2.10 pp", "+1.0 EUR"]) is None, shared_unit(["channel = web"]) is None
    (True, True)
    """
    units = set()
    for v in values:
        if not v:
            continue
        number, _, unit = v.rpartition(" ")
        if not number or not unit or any(c.isdigit() for c in unit) or not (number[-1].isdigit() or number[-1] == "]"):
            return None
        units.add(unit)
    return units.pop() if len(units) == 1 else None


def unit_label(label: str, unit: str) -> str:
    """A column header with its unit on a line of its own, so the header is no wider than before.

    Examples
    --------
    >>> unit_label("effect [95% CI]", "pp").splitlines()
    ['effect [95% CI]', 'pp']
    """
    return f"{label}\n{unit}"


def cell(value: object) -> str:
    """A value as a table shows it: integers with separators, other numbers to 4 significant digits.

    Examples
    --------
    >>> cell(0.30000000000000004), cell(11187), cell(1234.5678), cell(float("nan")), cell("web")
    ('0.3', '11,187', '1,235', '', 'web')
    """
    if isinstance(value, bool | np.bool_) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return ""
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return str(value)


def leaderboard_table(board: pd.DataFrame, best: str, kind: str, *, k: float = 0.3,
                      currency: str | None = None) -> Table | Group:
    """The leaderboard at 80 columns: Qini and uplift@k with their bootstrap CIs, and each learner's DR loss
    paired with the chosen one's (the difference and its own 95% CI). AUUC and the absolute DR loss are in
    ``--json`` and the report. ``currency`` labels the uplift of a revenue outcome, as ``target`` does."""
    paired = "dr_loss_vs_chosen" in board  # absent in model directories saved before the paired difference
    key = "dr_loss_vs_chosen" if paired else "dr_loss_vs_best"
    # DR-loss differences are small numbers (the loss carries the outcome's noise variance): shown in a power of
    # ten named in the header, so every row reads as "+1.54 [-0.38, 3.45]" rather than "+0.000154 [...]".
    spread = board[[c for c in (f"{key}_lower", f"{key}_upper", key) if c in board]].abs().to_numpy().max()
    power = int(math.floor(math.log10(spread))) if spread > 0 and math.isfinite(spread) else 0
    power = power if power < -1 else 0
    scale = 10.0 ** -power

    def vs_chosen(r) -> str:
        if r.learner == best:
            return "← chosen"
        if not paired:
            return fmt_ci(r.dr_loss_vs_best, scale=scale, signed=True, digits=2)
        lo, hi = r.dr_loss_vs_chosen_lower, r.dr_loss_vs_chosen_upper
        return fmt_ci(r.dr_loss_vs_chosen, lo, hi, scale=scale, signed=True, digits=decimals(lo, hi, scale))

    def qini(r) -> str:  # two significant digits of the interval's width: the ranking, not the fourth decimal
        return fmt_ci(r.qini, r.qini_lower, r.qini_upper, digits=max(0, decimals(r.qini_lower, r.qini_upper) - 1))

    shown = board.assign(
        qini_ci=[qini(r) for r in board.itertuples()],
        at_k=[fmt_effect(r.uplift_at_k, r.uplift_at_k_lower, r.uplift_at_k_upper, kind, currency=currency)
              for r in board.itertuples()],
        vs=[vs_chosen(r) for r in board.itertuples()],
    )
    # Rows are in rank order (the rank itself is in --json); one block per treated arm, named, so that the
    # four columns fit 80 characters with their intervals on one line.
    columns = {"learner": "learner", "qini_ci": "Qini [95% CI]", "at_k": f"uplift@{k:.0%} [95% CI]",
               "vs": "DR loss − chosen" + (f" (×1e{power})" if power else "") + (" [95% CI]" if paired else "")}
    title = "Leaderboard (cross-fitted, out-of-fold; lower DR loss is better)"
    arms = list(dict.fromkeys(board["arm"])) if "arm" in board else [None]
    if len(arms) == 1:
        return table(title, shown, columns)
    return Group(Text(f"\n{title}", style="italic"),
                 *[table(f"arm {arm}", shown[shown["arm"] == arm], columns) for arm in arms])


def _money(unit: str, currency: str | None) -> str:
    """The label of an effect cell: pp for a conversion, the currency (when given) for a revenue outcome, else none
    (no "outcome units" after a spend or revenue effect: the label says nothing the outcome's name does not)."""
    return unit if unit == PP[0] else (currency or "")


def ate_table(ate: pd.DataFrame, *, currency: str | None = None) -> Table:
    """Average effects per arm and outcome, each in its display unit (``currency`` for money), with the relative
    lift."""
    def effect(r) -> str:
        # At most two decimals (the 95% CI's width keeps two or three significant digits; --json keeps all).
        digits = min(2, decimals(r.lower_display, r.upper_display))
        return fmt_ci(r.estimate_display, r.lower_display, r.upper_display, unit=_money(r.unit, currency),
                      signed=True, digits=digits)

    def base(r) -> str:
        if r.unit == PP[0]:
            return f"{r.control_mean:.2%}"
        money = _money(r.unit, currency)
        return fmt_level(r.control_mean) + (f" {money}" if money else "")

    shown = ate.assign(
        effect=[effect(r) for r in ate.itertuples()],
        relative=[fmt_pct(r.relative_lift, r.relative_lower, r.relative_upper) for r in ate.itertuples()],
        base=[base(r) for r in ate.itertuples()],
    )
    columns = {"arm": "arm", "outcome": "outcome", "estimand": "estimand", "effect": "effect [95% CI]",
               "relative": "relative lift", "base": "control"}
    if set(ate["estimand"]) == {"ATE"}:  # randomised: one estimand, named in the title
        del columns["estimand"]
        title = "Average effect (ATE) per arm vs control, 95% CI"
    else:
        title = "Average effect per arm vs control, 95% CI (naive: unadjusted difference in means)"
    return table(title, shown, columns)


def headline_lines(ate: pd.DataFrame, *, currency: str | None = None) -> list[str]:
    """The effect to lead with, per arm and outcome, when it is not the all-customer ATE (weak overlap), and
    every propensity-clipping note, in words."""
    lines = []
    for r in headline_effects(ate).itertuples():
        if r.estimand != "ATE":
            effect = fmt_ci(r.estimate_display, r.lower_display, r.upper_display,
                            unit=r.unit if r.unit == PP[0] else (currency or r.unit), signed=True)
            lines.append(f"[bold]headline (arm {r.arm}, {r.outcome}):[/] {effect}: {r.note}")
    if "note" in ate:
        lines += [f"[yellow]note:[/] {r.arm}, {r.outcome}: {r.note}" for r in ate.itertuples()
                  if r.note and not r.headline]
    return lines


def calibration_table(cal: pd.DataFrame, learner: str, kind: str, *, currency: str | None = None) -> Table:
    """Predicted vs observed uplift by decile, both in the outcome's unit (``currency`` for a revenue outcome)."""
    unit = effect_unit(kind, currency)

    def predicted(r) -> str:
        d = decimals(r.observed_lower, r.observed_upper, unit.scale)
        return fmt_ci(r.predicted_uplift, scale=unit.scale, unit=unit.short, signed=True, digits=d)

    shown = cal.assign(pred=[predicted(r) for r in cal.itertuples()],
                       obs=[fmt_effect(r.observed_uplift, r.observed_lower, r.observed_upper, kind,
                                       currency=currency) for r in cal.itertuples()])
    return table(f"Calibration of {learner!r}: predicted vs observed uplift by decile", shown,
                 {"arm": "arm", "bin": "decile (1 = highest)", "n": "n", "pred": "predicted",
                  "obs": "observed (95% CI)"}, numeric=("bin", "n"))


def show_segments(title: str, frame: pd.DataFrame) -> None:
    """Segment tables, one block per arm (named), each segment's uplift as "+2.10 [1.40, 2.80] pp"."""
    for arm, block in frame.groupby("arm", sort=False) if "arm" in frame else [(None, frame)]:
        cols = {c: c.replace("_", " ") for c in ("segment", "rule", "n", "label", "note") if c in block.columns}
        if "label" in cols:
            cols["label"] = "uplift [95% CI]"
        if "n" in cols:
            cols["n"] = "customers"
        block = block.assign(note=block["note"].fillna("").astype(str).str.split(":").str[0].str.replace("_", " ")) \
            if "note" in block else block
        console.print(table(f"Arm {arm} — {title}" if arm is not None else title, block, cols))


def show_importance(expl) -> None:
    """What drives one arm's uplift: mean |SHAP| with its CI, in the outcome's unit, and the surrogate's fidelity."""
    unit = effect_unit(expl.kind)
    imp = expl.importance
    def three_digits(v: float) -> int:  # three significant digits of the importance itself
        v = abs(float(v)) * unit.scale
        return int(min(6, max(0, 2 - math.floor(math.log10(v))))) if v > 0 and math.isfinite(v) else 3

    shown = imp.assign(shap=[fmt_ci(r.mean_abs_shap, r.lower, r.upper, scale=unit.scale, unit=unit.short,
                                    digits=three_digits(r.mean_abs_shap)) for r in imp.itertuples()],
                       pct=[f"{v:.0%}" for v in imp["share"]])
    r2 = fmt_ci(expl.surrogate_r2, *expl.surrogate_r2_ci, digits=2)
    console.print(table(f"Arm {expl.arm} — what drives uplift ({expl.learner}-learner; mean |SHAP| in {unit.label}; "
                        f"surrogate R² {r2} held out)", shown,
                        {"rank": "#", "feature": "feature", "shap": "mean |SHAP| [95% CI]", "pct": "share"},
                        numeric=("rank",)))


def readout_summary_table(summary: dict, *, currency: str | None = None) -> Table:
    """The readout's headline at 80 columns, in the one convention (uplift in pp for a 0/1 outcome, money with the
    currency, ROI as a percentage): realised with its 95% CI next to what the model predicted. The standard
    errors and every unrounded figure are in ``--json``."""
    kind = summary.get("kind", "binary")
    name = "incremental_conversions" if "incremental_conversions" in summary else "incremental_outcome"

    def ci(key: str) -> tuple[object, object, object]:
        return summary.get(key), summary.get(f"{key}_lower"), summary.get(f"{key}_upper")

    base = summary.get("holdout_mean")
    rows = [("outcome", str(summary.get("outcome", "")), ""),
            ("customers sent / held out", f"{summary['n_sent']:,} / {summary['n_holdout']:,}", ""),
            ("holdout conversion rate" if kind == "binary" else f"holdout mean {summary.get('outcome', '')}".strip(),
             (f"{base:.2%}" if kind == "binary" else fmt_level(base)) if base is not None else "", ""),
            ("uplift per customer sent", fmt_effect(*ci("realised_uplift"), kind),
             fmt_effect(summary.get("predicted_uplift"), None, None, kind, digits=decimals(
                 summary.get("realised_uplift_lower"), summary.get("realised_uplift_upper"),
                 effect_unit(kind).scale)))]
    lo, hi = ci(name)[1:]
    # The realised interval sets the decimals of both columns: "+11,203 [3,838, 18,568]" next to "+9,506".
    digits = 0 if kind == "binary" or lo is None or hi is None else decimals(lo, hi)
    rows.append((name.replace("_", " "), fmt_ci(*ci(name), signed=True, digits=digits),
                 fmt_ci(summary.get(f"predicted_{name}"), signed=True, digits=digits)))
    if "incremental_revenue" in summary:
        rows.append(("incremental revenue", fmt_money(*ci("incremental_revenue"), currency=currency, signed=True), ""))
    if "spend" in summary:
        rows.append(("spend", fmt_money(summary["spend"], currency=currency), ""))
    if "profit" in summary:
        rows.append(("profit", fmt_money(*ci("profit"), currency=currency, signed=True), ""))
    if "roi" in summary:
        rows.append(("ROI", fmt_pct(*ci("roi")), ""))
    if summary.get("n_unmeasured"):
        rows.append(("customers not measurable", f"{summary['n_unmeasured']:,}", ""))
    frame = pd.DataFrame(rows, columns=["measure", "realised", "predicted"])
    return table("Realised result of the targeted group (sent vs randomised holdout)", frame,
                 {"measure": "measure", "realised": "realised [95% CI]", "predicted": "predicted"})


def readout_table(title: str, frame: pd.DataFrame, key: str, kind: str, *, currency: str | None = None) -> Table:
    """A readout table (by coupon or by decile) at 80 columns: sent, held out, predicted and realised uplift, and
    the realised profit when costs are known (every column in ``--json``)."""
    unit = effect_unit(kind)
    shown = frame.assign(
        predicted=[fmt_ci(v, scale=unit.scale, unit=unit.short, signed=True, digits=2)
                   for v in frame["predicted_uplift"]],
        realised=[fmt_effect(r.realised_uplift, r.realised_uplift_lower, r.realised_uplift_upper, kind)
                  for r in frame.itertuples()])
    columns = {key: key.replace("uplift_", "").replace("_", " "), "n_sent": "sent", "n_holdout": "held out",
               "predicted": "predicted", "realised": "realised [95% CI]"}
    if "profit" in frame:
        shown["profit_ci"] = [fmt_money(r.profit, r.profit_lower, r.profit_upper, signed=True, currency=currency)
                              for r in frame.itertuples()]
        columns["profit_ci"] = "profit [95% CI]"
    return table(title, shown, columns, numeric=("n_sent", "n_holdout"))


def show_study(study, as_json: bool, extra: dict | None = None, *, currency: str | None = None) -> None:
    """The fitted study in the terminal: design, notes, design checks, leaderboard, effects, calibration;
    ``currency`` labels the money of a revenue outcome (``--json`` keeps plain numbers)."""
    diag = getattr(study, "diagnostics_", {})
    doc = {
        "design": study.design, "arms": list(study.arms), "outcome": study.crossfit_.outcome,
        "chosen_learner": study.best_learner_, "notes": study.notes, "diagnostics": diag,
        "leaderboard": study.leaderboard(), "ate": study.ate(), "calibration": study.calibration(),
        **(extra or {}),
    }
    if as_json:
        print_json(doc)
        return
    kind = study.crossfit_.kind
    k = (getattr(study, "fit_params_", None) or {}).get("k", 0.3)
    console.print(f"design: [bold]{study.design}[/]; arms: control={study.arms[0]!r}, treated="
                  f"{', '.join(map(repr, study.arms[1:]))}; modelled outcome: {study.crossfit_.outcome!r}")
    for note in study.notes:
        console.print(f"[yellow]note:[/] {cli_wording(note)}", highlight=False)
    show_diagnostics(diag)
    console.print(leaderboard_table(doc["leaderboard"], study.best_learner_, kind, k=k, currency=currency))
    console.print(ate_table(doc["ate"], currency=currency))
    for line in headline_lines(doc["ate"], currency=currency):
        console.print(line, highlight=False)
    console.print(calibration_table(doc["calibration"], study.best_learner_, kind, currency=currency))


def show_diagnostics(diag: Mapping) -> None:
    """Design checks as a small table: what was checked, the number, pass/fail."""
    if not diag:
        return
    t = Table(title="Design checks", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for col in ("check", "result", "status"):
        t.add_column(col, overflow="fold")

    def status(ok: bool | None) -> str:
        if ok is None:
            return "[yellow]not checked[/]"
        return "[green]pass[/]" if ok else "[bold red]FAIL[/]"

    srm = diag.get("srm")
    if srm:
        t.add_row("sample ratio (chi-square vs declared split)", cli_wording(srm.get("message", "")),
                  status(srm.get("passed", True)))
    for arm, chk in (diag.get("balance_auc") or {}).items():
        t.add_row(f"balance: can features predict {arm!r}? (cross-fitted AUC, 0.5 = no)",
                  f"AUC {fmt_ci(chk['auc'], chk['lower'], chk['upper'])}", status(chk.get("passed", True)))
    bal = diag.get("balance")
    if bal is not None and len(bal):
        frame = pd.DataFrame(bal)
        flagged = frame[frame["flagged"]] if "flagged" in frame else frame.iloc[:0]
        t.add_row("covariate balance (|SMD| > 0.1 flagged)",
                  f"{len(flagged)} of {len(frame)} feature levels flagged", status(len(flagged) == 0))
    for arm, ov in (diag.get("overlap") or {}).items():
        t.add_row(f"overlap for {arm!r} (propensity outside [0.05, 0.95])", cli_wording(ov.get("message", "")),
                  status(ov.get("passed", True)))
    leak = diag.get("leakage")
    if leak is not None:
        frame = pd.DataFrame(leak)
        t.add_row("leakage (post-treatment features)",
                  ", ".join(sorted(set(frame["feature"].astype(str)))) if len(frame) else "none found",
                  status(len(frame) == 0))
    console.print(t)


def show_drift(drift: dict) -> None:
    """Rich warning table when the scored customers differ from the training customers."""
    if not drift or not drift.get("warnings"):
        return
    t = Table(title="[yellow]Drift warning: these customers differ from the training customers[/]",
              title_justify="left")
    t.add_column("warning", overflow="fold")
    for w in drift["warnings"]:
        t.add_row(str(w))
    err_console.print(t)


def show_targeting(summary: dict, out: Path | None, *, currency: str | None = None, kind: str = "binary") -> None:
    """The honest value of a targeting list next to the baselines, at 80 columns: customers, spend, profit and
    ROI with 95% CIs (incremental outcome and revenue are in ``--json``). The first row is the written list."""
    rows = [("this list", summary["estimated"]), *summary["baselines"].items()]

    def ci(d: dict, key: str) -> tuple[object, object, object]:
        return d.get(key), d.get(f"{key}_lower"), d.get(f"{key}_upper")

    money = f" in {currency}" if currency else ""
    frame = pd.DataFrame([{"policy": name, "customers": fmt_number(d.get("n_selected"), 0),
                           "spend": fmt_money(d.get("spend")), "profit": fmt_money(*ci(d, "profit"), signed=True),
                           "roi": fmt_pct(*ci(d, "roi"))} for name, d in rows])
    console.print(table(f"Expected result{money} (doubly-robust, held-out rows, 95% CI)", frame,
                        {"policy": "policy", "customers": "customers", "spend": "spend", "profit": "profit [95% CI]",
                         "roi": "ROI [95% CI]"}, numeric=("customers", "spend", "profit", "roi"),
                        # the policy's name wraps (between words), so that each interval stays on one line
                        max_width={"policy": 15}))
    by_coupon = ", ".join(f"{arm} {n:,}" for arm, n in summary["by_coupon"].items())
    console.print(f"selected {summary['customers_selected']:,} of {summary['customers_scored']:,} customers; "
                  f"spend {fmt_money(summary['spend'], currency=currency)}; by coupon: {by_coupon}"
                  + (f"; wrote [bold]{out}[/]" if out else ""), highlight=False)
    if summary.get("warning"):
        console.print(f"[bold yellow]warning:[/] {summary['warning']}", highlight=False)


def show_data_quality(quality, short: bool = False, said: Sequence[str] = ()) -> None:
    """The data-quality report (:func:`uplift.data.inspect_data`): a few lines (``short``, the top of ``uplift fit``)
    or the per-column table with the arm shares and every finding. ``said``: notes the same output prints anyway
    (the fit's), whose findings the short summary leaves to them."""
    if short:
        for line in quality.summary(said=said):
            console.print(line, highlight=False)
        return
    cols = quality.columns.assign(missing_share=quality.columns["missing_share"].map(lambda v: f"{v:.1%}"),
                                  outlier_share=quality.columns["outlier_share"].map(
                                      lambda v: "" if v is None or v != v else f"{v:.1%}")).fillna("")
    console.print(table(f"Data quality: {quality.rows:,} rows, {quality.duplicate_rows:,} duplicate rows", cols,
                        {c: c for c in cols.columns}))
    if quality.arms is not None:
        arms = quality.arms.assign(share=quality.arms["share"].map(lambda v: f"{v:.1%}"))
        console.print(table("Arms", arms, {c: c for c in arms.columns}))
    for note in quality.notes:
        console.print(f"[yellow]note:[/] {cli_wording(note)}", highlight=False)


def show_timings(times) -> None:
    """Wall time per phase of the fit (a :class:`~uplift.fit.progress.PhaseTimes`), in the order the phases
    ran, with each one's share of the total: where the time went, in one narrow table."""
    records = phase_records(times)
    if not records:
        return
    t = Table(title="Time per phase", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("phase", overflow="fold", max_width=40)
    t.add_column("seconds", justify="right")
    t.add_column("share", justify="right")
    for r in records:
        t.add_row(r["phase"], f"{r['seconds']:.1f}", f"{r['share']:.0%}")
    t.add_section()
    t.add_row("total", f"{sum(r['seconds'] for r in records):.1f}", "")
    console.print(t)

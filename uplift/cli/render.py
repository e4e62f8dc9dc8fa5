"""Terminal rendering for the command line: rich tables, progress bars and one-document JSON.

Everything here takes results (tables, dicts) and prints them; nothing computes an estimate.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from uplift._display import decimals, effect_unit, fmt_ci, fmt_effect, fmt_level, fmt_money, fmt_number, fmt_pct
from uplift._stats import Estimate

console = Console(stderr=False)
err_console = Console(stderr=True)


class RichProgress:
    """Adapter from the study's progress hook to a rich progress bar on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
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


def jsonable(obj):
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, Mapping):  # dicts and read-only records such as the design report
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(jsonable(doc), indent=1, sort_keys=False) + "\n")


def table(title: str, frame: pd.DataFrame, columns: dict[str, str]) -> Table:
    t = Table(title=title, title_justify="left")
    for label in columns.values():
        t.add_column(label, overflow="fold")
    for _, row in frame.iterrows():
        t.add_row(*[str(row[c]) for c in columns])
    return t


def leaderboard_table(board: pd.DataFrame, best: str, kind: str, *, k: float = 0.3) -> Table:
    """The leaderboard: ranking scores with their bootstrap CIs, uplift@k in the outcome's unit, DR loss."""
    def loss(r) -> tuple[str, str]:
        est = Estimate.from_se(r.dr_loss, r.dr_loss_se)
        d = decimals(est.lower, est.upper)
        return fmt_ci(est.estimate, est.lower, est.upper, digits=d), fmt_ci(r.dr_loss_vs_best, signed=True, digits=d)

    losses = [loss(r) for r in board.itertuples()]
    shown = board.assign(
        qini_ci=[fmt_ci(r.qini, r.qini_lower, r.qini_upper) for r in board.itertuples()],
        auuc_ci=[fmt_ci(r.auuc, r.auuc_lower, r.auuc_upper) for r in board.itertuples()],
        at_k=[fmt_effect(r.uplift_at_k, r.uplift_at_k_lower, r.uplift_at_k_upper, kind) for r in board.itertuples()],
        loss=[ci for ci, _ in losses], vs_best=[diff for _, diff in losses],
        mark=["← chosen" if r.learner == best else "" for r in board.itertuples()],
    )
    return table("Leaderboard (cross-fitted, out-of-fold; 95% CIs)", shown, {
        "rank": "rank", "learner": "learner", "arm": "arm", "qini_ci": "Qini coefficient", "auuc_ci": "AUUC",
        "at_k": f"uplift in top {k:.0%}", "loss": "DR loss", "vs_best": "DR loss − best", "mark": ""})


def ate_table(ate: pd.DataFrame) -> Table:
    """Average effects per arm and outcome, each in its display unit, with the relative lift."""
    shown = ate.assign(
        effect=[fmt_ci(r.estimate_display, r.lower_display, r.upper_display, unit=r.unit, signed=True)
                for r in ate.itertuples()],
        relative=[fmt_pct(r.relative_lift, r.relative_lower, r.relative_upper) for r in ate.itertuples()],
        base=[fmt_level(r.control_mean) for r in ate.itertuples()],
    )
    return table("Average effect per arm vs control (95% CI)", shown, {
        "arm": "arm", "outcome": "outcome", "estimand": "estimand", "method": "method", "effect": "effect",
        "relative": "relative lift", "base": "control mean", "n_treated": "n treated", "n_control": "n control"})


def calibration_table(cal: pd.DataFrame, learner: str, kind: str) -> Table:
    """Predicted vs observed uplift by decile, both in the outcome's unit."""
    unit = effect_unit(kind)

    def predicted(r) -> str:
        d = decimals(r.observed_lower, r.observed_upper, unit.scale)
        return fmt_ci(r.predicted_uplift, scale=unit.scale, unit=unit.short, signed=True, digits=d)

    shown = cal.assign(pred=[predicted(r) for r in cal.itertuples()],
                       obs=[fmt_effect(r.observed_uplift, r.observed_lower, r.observed_upper, kind)
                            for r in cal.itertuples()])
    return table(f"Calibration of {learner!r}: predicted vs observed uplift by decile", shown,
                 {"arm": "arm", "bin": "decile (1 = highest)", "n": "n", "pred": "predicted",
                  "obs": "observed (95% CI)"})


def show_study(study, as_json: bool, extra: dict | None = None) -> None:
    """The fitted study in the terminal: design, notes, design checks, leaderboard, effects, calibration."""
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
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    show_diagnostics(diag)
    console.print(leaderboard_table(doc["leaderboard"], study.best_learner_, kind, k=k))
    console.print(ate_table(doc["ate"]))
    console.print(calibration_table(doc["calibration"], study.best_learner_, kind))


def show_diagnostics(diag: Mapping) -> None:
    """Design checks as a small table: what was checked, the number, pass/fail."""
    if not diag:
        return
    t = Table(title="Design checks", title_justify="left")
    for col in ("check", "result", "status"):
        t.add_column(col, overflow="fold")

    def status(ok: bool | None) -> str:
        if ok is None:
            return "[yellow]not checked[/]"
        return "[green]pass[/]" if ok else "[bold red]FAIL[/]"

    srm = diag.get("srm")
    if srm:
        t.add_row("sample ratio (chi-square vs declared split)", srm.get("message", ""),
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
        t.add_row(f"overlap for {arm!r} (propensity outside [0.05, 0.95])", ov.get("message", ""),
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


def show_targeting(summary: dict, out: Path | None, *, currency: str | None = None) -> None:
    """The honest value of a targeting list next to the baselines: every estimate with its 95% CI."""
    rows = [("this list", summary["estimated"]), *summary["baselines"].items()]

    def ci(d: dict, key: str) -> tuple[object, object, object]:
        return d.get(key), d.get(f"{key}_lower"), d.get(f"{key}_upper")

    t = Table(title="Expected result (doubly-robust estimate on held-out rows, 95% CI)", title_justify="left")
    for col in ("policy", "customers", "spend", "incremental outcome", "incremental revenue", "profit", "ROI"):
        t.add_column(col)
    for name, d in rows:
        t.add_row(name, fmt_number(d.get("n_selected"), 0), fmt_money(d.get("spend"), currency=currency),
                  fmt_ci(*ci(d, "incremental_outcome"), signed=True),
                  fmt_money(*ci(d, "incremental_revenue"), currency=currency, signed=True),
                  fmt_money(*ci(d, "profit"), currency=currency, signed=True), fmt_pct(*ci(d, "roi")))
    console.print(t)
    console.print(f"selected {summary['customers_selected']:,} of {summary['customers_scored']:,} customers; "
                  f"spend {fmt_money(summary['spend'], currency=currency)}; by coupon: {summary['by_coupon']}"
                  + (f"; wrote [bold]{out}[/]" if out else ""), highlight=False)

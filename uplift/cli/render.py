"""Terminal rendering for the command line: rich tables, progress bars and one-document JSON.

Everything here takes results (tables, dicts) and prints them; nothing computes an estimate.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
    if isinstance(obj, dict):
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


def fmt_ci(est: float, lo: float, hi: float, digits: int = 4, unit: str = "") -> str:
    return f"{est:.{digits}f}{unit} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(title: str, frame: pd.DataFrame, columns: dict[str, str]) -> Table:
    t = Table(title=title, title_justify="left")
    for label in columns.values():
        t.add_column(label, overflow="fold")
    for _, row in frame.iterrows():
        t.add_row(*[str(row[c]) for c in columns])
    return t


def leaderboard_table(board: pd.DataFrame, best: str) -> Table:
    shown = board.assign(
        qini_ci=[fmt_ci(r.qini, r.qini_lower, r.qini_upper) for r in board.itertuples()],
        auuc_ci=[fmt_ci(r.auuc, r.auuc_lower, r.auuc_upper) for r in board.itertuples()],
        at_k=[fmt_ci(r.uplift_at_k, r.uplift_at_k_lower, r.uplift_at_k_upper) for r in board.itertuples()],
        loss=[f"{r.dr_loss_vs_best:+.2e} ± {r.dr_loss_se:.1e}" for r in board.itertuples()],
        mark=["← chosen" if r.learner == best else "" for r in board.itertuples()],
    )
    return table("Leaderboard (cross-fitted, out-of-fold; 95% bootstrap CIs)", shown, {
        "rank": "rank", "learner": "learner", "arm": "arm", "qini_ci": "Qini coefficient",
        "auuc_ci": "AUUC", "at_k": "uplift@30% (outcome units)", "loss": "DR loss vs best", "mark": ""})


def ate_table(ate: pd.DataFrame) -> Table:
    shown = ate.assign(
        effect=[fmt_ci(r.estimate_display, r.lower_display, r.upper_display, 3, f" {r.unit}")
                for r in ate.itertuples()],
        relative=[fmt_ci(100 * r.relative_lift, 100 * r.relative_lower, 100 * r.relative_upper, 1, "%")
                  for r in ate.itertuples()],
        base=[f"{r.control_mean:.4g}" for r in ate.itertuples()],
    )
    return table("Average effect per arm vs control (95% CI)", shown, {
        "arm": "arm", "outcome": "outcome", "estimand": "estimand", "method": "method", "effect": "effect",
        "relative": "relative lift", "base": "control mean", "n_treated": "n treated", "n_control": "n control"})


def show_study(study, as_json: bool, extra: dict | None = None) -> None:
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
    console.print(f"design: [bold]{study.design}[/]; arms: control={study.arms[0]!r}, treated="
                  f"{', '.join(map(repr, study.arms[1:]))}; modelled outcome: {study.crossfit_.outcome!r}")
    for note in study.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    show_diagnostics(diag)
    console.print(leaderboard_table(study.leaderboard(), study.best_learner_))
    console.print(ate_table(study.ate()))
    cal = study.calibration()
    console.print(table(f"Calibration of {study.best_learner_!r}: predicted vs observed uplift by decile", cal.assign(
        pred=[f"{v:.4f}" for v in cal["predicted_uplift"]],
        obs=[fmt_ci(r.observed_uplift, r.observed_lower, r.observed_upper) for r in cal.itertuples()]),
        {"arm": "arm", "bin": "decile (1 = highest)", "n": "n", "pred": "predicted", "obs": "observed (95% CI)"}))


def show_diagnostics(diag: dict) -> None:
    """Design checks as a small table: what was checked, the number, pass/fail."""
    if not diag:
        return
    t = Table(title="Design checks", title_justify="left")
    for col in ("check", "result", "status"):
        t.add_column(col, overflow="fold")

    def status(ok: bool) -> str:
        return "[green]pass[/]" if ok else "[bold red]FAIL[/]"

    srm = diag.get("srm")
    if srm:
        t.add_row("sample-ratio mismatch (chi-square vs declared split)", srm.get("message", ""),
                  status(srm.get("passed", True)))
    for arm, chk in (diag.get("balance_auc") or {}).items():
        t.add_row(f"balance: can features predict {arm!r}? (cross-fitted AUC, 0.5 = no)",
                  f"AUC {chk['auc']:.3f} [{chk['lower']:.3f}, {chk['upper']:.3f}]", status(chk.get("passed", True)))
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


def show_targeting(summary: dict, out: Path | None) -> None:
    est = summary["estimated"]
    rows = [("this list", est)] + [(name, v) for name, v in summary["baselines"].items()]

    def ci(d: dict, key: str, money: bool) -> str:
        f = "{:,.0f}" if money else "{:,.1f}"
        lo, hi = d.get(key + "_lower"), d.get(key + "_upper")
        if lo is None:
            return f.format(d.get(key, float("nan")))
        return f"{f.format(d[key])} [{f.format(lo)}, {f.format(hi)}]"

    t = Table(title="Expected result (doubly-robust estimate on held-out rows, 95% CI)", title_justify="left")
    for col in ("policy", "customers", "spend", "incremental conversions", "incremental revenue", "profit", "ROI"):
        t.add_column(col)
    for name, d in rows:
        t.add_row(name, f"{d.get('n_selected', '')}", f"{d.get('spend', float('nan')):,.0f}",
                  ci(d, "incremental_outcome", False), ci(d, "incremental_revenue", True), ci(d, "profit", True),
                  ci(d, "roi", False))
    console.print(t)
    console.print(f"selected {summary['customers_selected']:,} of {summary['customers_scored']:,} customers; "
                  f"spend {summary['spend']:,.2f}; by coupon: {summary['by_coupon']}"
                  + (f"; wrote [bold]{out}[/]" if out else ""))

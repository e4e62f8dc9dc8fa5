"""`uplift features` at scale: DuckDB against the same features computed with pandas groupby, in one run.

The simulated shop (``uplift.datasets.simulate_events``, 1M customers, about 10.7M events) is written as an event
log (Parquet) and a campaign table (Parquet). Then, each in a fresh child process whose wall time and peak RSS
(``os.wait4``'s ``ru_maxrss``) are measured:

1. ``uplift features --events events.parquet --campaign sent.parquet --as-of-exposure --window 7,30,90,365
   --outcome purchase:14d --out duck.parquet`` (the CLI, DuckDB);
2. the same features and outcomes with pandas (``pandas_features`` below: a boolean mask and a ``groupby`` per
   feature, the way an analyst writes it), into ``pandas.parquet``.

Both outputs are compared column by column (the pandas version must reproduce every DuckDB feature), so the
timing compares the same work. Run: ``python benchmarks/features.py [--customers 1000000]``; writes
benchmarks/results/features.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CLI = "import sys; from uplift.cli.commands import main; sys.argv[0] = 'uplift'; main()"
WINDOWS = (7, 30, 90, 365)
FOLLOW_UP = 14


def measured(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` as a child; its wall seconds and its own peak RSS (``ru_maxrss`` of ``os.wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{out.read().decode()[-2000:]}\n"
                               f"{err.read().decode()[-3000:]}")
    return {"seconds": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024)}


def pandas_features(events_path: str, campaign_path: str, out: str) -> None:
    """The features of `uplift features` (same names, windows and rules) with pandas boolean masks and groupby."""
    ev = pd.read_parquet(events_path)
    sent = pd.read_parquet(campaign_path)
    ids = sent["customer_id"].astype(str)
    exposure = pd.Series(sent["exposure_time"].to_numpy(), index=ids)
    cid = ev["customer_id"].astype(str)
    ts = ev["timestamp"].to_numpy()
    exp = exposure.reindex(cid).to_numpy()
    age = (exp - ts) / np.timedelta64(1, "s") / 86400.0
    ev = pd.DataFrame({"cid": cid.to_numpy(), "type": ev["event_type"].astype(str).to_numpy(), "age": age,
                       "amount": ev["amount"].to_numpy(), "category": ev["category"].astype(str).to_numpy(),
                       "channel": ev["channel"].astype(str).to_numpy()})
    before = ev[ev["age"] > 0]
    result = {}
    types = before["type"].value_counts().index.tolist()
    with_amount = set(before.loc[before["amount"].notna(), "type"].unique())

    def per_customer(series: pd.Series, fill=0.0) -> np.ndarray:
        return series.reindex(ids, fill_value=fill).to_numpy()

    def count(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("cid").size()

    for t in types:
        sub = before[before["type"] == t]
        for w in WINDOWS:
            inside = sub[sub["age"] <= w]
            result[f"{t}_count_{w}d"] = per_customer(count(inside), 0)
            if t in with_amount:
                result[f"{t}_amount_{w}d"] = per_customer(inside.groupby("cid")["amount"].sum(), 0.0)
        result[f"{t}_recency_days"] = per_customer(sub.groupby("cid")["age"].min(), np.nan)
        recent = per_customer(count(sub[sub["age"] <= 30]), 0)
        earlier = per_customer(count(sub[(sub["age"] > 30) & (sub["age"] <= 120)]), 0)
        result[f"{t}_trend_30v90"] = recent / 30.0 - earlier / 90.0
    result["days_since_first_event"] = per_customer(before.groupby("cid")["age"].max(), np.nan)
    longest = before[before["age"] <= WINDOWS[-1]]
    for key in ("category", "channel"):
        known = per_customer(count(longest), 0)
        for level in longest[key].value_counts().index[:20]:
            n = per_customer(count(longest[longest[key] == level]), 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                result[f"{key}_share_{level}_{WINDOWS[-1]}d"] = np.where(known > 0, n / np.maximum(known, 1), np.nan)
    bought = longest[longest["type"] == "purchase"]
    n_bought = per_customer(count(bought), 0)
    spent = per_customer(bought.groupby("cid")["amount"].sum(), 0.0)
    result[f"aov_{WINDOWS[-1]}d"] = np.where(n_bought > 0, spent / np.maximum(n_bought, 1), np.nan)
    for event, label in (("coupon_redeem", "redeem"), ("return", "return")):
        n = per_customer(count(longest[longest["type"] == event]), 0)
        result[f"{label}_rate_{WINDOWS[-1]}d"] = np.where(n_bought > 0, n / np.maximum(n_bought, 1), np.nan)
    after = ev[(ev["type"] == "purchase") & (ev["age"] <= 0) & (-ev["age"] < FOLLOW_UP)]
    result[f"conversion_{FOLLOW_UP}d"] = (per_customer(count(after), 0) > 0).astype(np.int64)
    result[f"revenue_{FOLLOW_UP}d"] = per_customer(after.groupby("cid")["amount"].sum(), 0.0)
    pd.concat([sent.reset_index(drop=True), pd.DataFrame(result)], axis=1).to_parquet(out, index=False)


def compare(duck: pd.DataFrame, pand: pd.DataFrame) -> dict:
    """Column-by-column agreement of the two outputs (NaN equal to NaN)."""
    common = [c for c in duck.columns if c in pand.columns]
    missing = [c for c in duck.columns if c not in pand.columns]
    worst = 0.0
    for c in common:
        a, b = duck[c], pand[c]
        if pd.api.types.is_numeric_dtype(a):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            same_nan = np.isnan(x) == np.isnan(y)
            if not same_nan.all():
                worst = np.inf
                continue
            ok = ~np.isnan(x)
            worst = max(worst, float(np.max(np.abs(x[ok] - y[ok]), initial=0.0)))
        elif not a.astype(str).equals(b.astype(str)):
            worst = np.inf
    return {"columns_compared": len(common), "columns_missing_in_pandas": missing, "max_abs_difference": worst}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pandas-child", nargs=3, metavar=("EVENTS", "CAMPAIGN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pandas_child:
        pandas_features(*args.pandas_child)
        return 0
    sys.path.insert(0, str(HERE.parent))
    from uplift.datasets import simulate_events

    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    with tempfile.TemporaryDirectory(prefix="uplift-features-bench-") as tmp:
        d = Path(tmp)
        start = time.perf_counter()
        log = simulate_events(args.customers, seed=args.seed)
        log.events.to_parquet(d / "events.parquet", index=False)
        log.campaign.to_parquet(d / "sent.parquet", index=False)
        n_events = len(log.events)
        simulate_s = time.perf_counter() - start
        del log
        duck = measured([sys.executable, "-c", CLI, "features", "--events", str(d / "events.parquet"), "--campaign",
                         str(d / "sent.parquet"), "--as-of-exposure", "--window", ",".join(map(str, WINDOWS)),
                         "--outcome", f"purchase:{FOLLOW_UP}d", "--out", str(d / "duck.parquet"), "--json"], env)
        pand = measured([sys.executable, __file__, "--pandas-child", str(d / "events.parquet"), str(d / "sent.parquet"),
                         str(d / "pandas.parquet")], env)
        agreement = compare(pd.read_parquet(d / "duck.parquet"), pd.read_parquet(d / "pandas.parquet"))
    doc = {"customers": args.customers, "events": n_events, "windows_days": list(WINDOWS),
           "simulate_and_write_seconds": round(simulate_s, 1), "duckdb_uplift_features": duck,
           "pandas_groupby": pand, "pandas_over_duckdb_wall": round(pand["seconds"] / duck["seconds"], 2),
           "pandas_over_duckdb_peak_rss": round(pand["peak_rss_mb"] / duck["peak_rss_mb"], 2),
           "agreement": agreement, "cpus": os.cpu_count(),
           "note": "one run on a 2-core machine shared with other jobs (timings are indicative, not best-of)"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "features.json").write_text(json.dumps(doc, indent=1) + "\n")
    md = [
        "# `uplift features` at scale: DuckDB vs pandas groupby",
        "",
        f"{args.customers:,} customers, {n_events:,} events (simulate_events, seed {args.seed}); windows "
        f"{', '.join(map(str, WINDOWS))} days, outcome purchase:{FOLLOW_UP}d; {agreement['columns_compared']} "
        f"columns, largest difference between the two outputs {agreement['max_abs_difference']:.2g}.",
        "",
        "| implementation | wall (s) | peak RSS (MB) |",
        "|---|---:|---:|",
        f"| `uplift features` (DuckDB) | {duck['seconds']} | {duck['peak_rss_mb']:,} |",
        f"| pandas boolean masks + groupby | {pand['seconds']} | {pand['peak_rss_mb']:,} |",
        f"| ratio pandas / DuckDB | {doc['pandas_over_duckdb_wall']}x | {doc['pandas_over_duckdb_peak_rss']}x |",
        "",
        f"{doc['note']}; {os.cpu_count()} CPUs. Each implementation ran in its own child process (peak RSS from "
        "wait4).",
        "",
    ]
    (RESULTS / "features.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

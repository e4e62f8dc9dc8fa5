"""`--sql` and `--db/--table` give the same study and list as the Parquet file; write-back and the input guard;
`uplift features` from raw events."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import truth_columns
from uplift.cli import app
from uplift.data.sql import read_sql, write_sql_table

duckdb = pytest.importorskip("duckdb")
runner = CliRunner()
FIT = ["--treatment", "treatment", "--outcome", "conversion", "--outcome", "revenue", "--id", "customer_id",
       "--learners", "t,dr", "--folds", "3", "--json"]
TARGET = ["--cost", "0.5", "--value", "40", "--budget", "200", "--json"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, rct_df):
    d = tmp_path_factory.mktemp("sql")
    frame = rct_df.drop(columns=truth_columns(rct_df)).head(3000)
    frame.to_parquet(d / "campaign.parquet", index=False)
    write_sql_table(frame, d / "shop.duckdb", "campaign")
    return d


def _fit(args: list[str], out) -> dict:
    res = runner.invoke(app, ["fit", *args, *FIT, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def fits(shop):
    parquet = _fit([str(shop / "campaign.parquet")], shop / "m_parquet")
    sql = _fit(["--sql", f"SELECT * FROM read_parquet('{shop / 'campaign.parquet'}')"], shop / "m_sql")
    return parquet, sql


def test_fit_sql_gives_the_parquet_study(fits):
    parquet, sql = fits
    for key in ("leaderboard", "ate", "chosen_learner", "design"):
        assert sql[key] == parquet[key], key


def test_target_sql_and_db_table_give_the_parquet_list(shop, fits):
    lists = {}
    for name, source in (("parquet", [str(shop / "campaign.parquet")]),
                         ("sql", ["--sql", f"SELECT * FROM read_parquet('{shop / 'campaign.parquet'}')"]),
                         ("db", ["--db", str(shop / "shop.duckdb"), "--table", "campaign"])):
        out = shop / f"list_{name}.parquet"
        res = runner.invoke(app, ["target", str(shop / "m_sql"), *source, "--out", str(out), *TARGET])
        assert res.exit_code == 0, res.output
        lists[name] = pd.read_parquet(out)
    assert len(lists["parquet"]) > 0
    pd.testing.assert_frame_equal(lists["sql"], lists["parquet"])
    pd.testing.assert_frame_equal(lists["db"], lists["parquet"])


def test_list_written_back_into_the_database_it_reads(shop, fits):
    db = shop / "shop.duckdb"
    res = runner.invoke(app, ["target", str(shop / "m_sql"), "--db", str(db), "--table", "campaign", "--out", str(db),
                              "--out-table", "targets", *TARGET])
    assert res.exit_code == 0, res.output
    # Its own reference list: under pytest-xdist the test that writes list_parquet.parquet may run on another worker.
    reference = shop / "list_reference.parquet"
    res = runner.invoke(app, ["target", str(shop / "m_sql"), str(shop / "campaign.parquet"), "--out", str(reference),
                              *TARGET])
    assert res.exit_code == 0, res.output
    pd.testing.assert_frame_equal(read_sql(db=db, table="targets"), pd.read_parquet(reference))
    assert len(read_sql(db=db, table="campaign")) == 3000  # the input table is untouched


@pytest.mark.parametrize("case, extra, words", [
    ("same-table", ["--out-table", "campaign"], "this command reads it"),
    ("db-as-file", [], "refusing to overwrite the input file"),
    ("out-table-not-db", ["--out-table", "t"], "give --out a .duckdb file"),
])
def test_output_may_not_replace_the_database_input(shop, fits, case, extra, words):
    db = shop / "shop.duckdb"
    out = shop / "x.parquet" if case == "out-table-not-db" else db
    before = read_sql(db=db, table="campaign")
    res = runner.invoke(app, ["target", str(shop / "m_sql"), "--db", str(db), "--table", "campaign", "--out",
                              str(out), *extra, *TARGET])
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output
    pd.testing.assert_frame_equal(read_sql(db=db, table="campaign"), before)


@pytest.mark.parametrize("args, words", [
    (["--sql", "SELEC * FROM campaign"], "the SQL query failed: Parser Error"),
    (["--db", "{d}/shop.duckdb", "--table", "campaing"], "did you mean 'campaign'"),
    (["--db", "{d}/shop.duckdb"], "--table NAME"),
    (["{d}/campaign.parquet", "--sql", "SELECT 1"], "give the table once"),
])
def test_bad_sql_source_is_one_line_exit_2(shop, args, words, tmp_path):
    args = [a.format(d=shop) for a in args]
    res = runner.invoke(app, ["fit", *args, *FIT, "--out", str(tmp_path / "m")])
    assert res.exit_code == 2, res.output
    assert words in res.output and len(res.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()


def test_features_command_builds_the_table_fit_reads(tmp_path):
    from uplift.datasets import simulate_events

    log = simulate_events(1500, seed=3)
    log.events.to_parquet(tmp_path / "events.parquet", index=False)
    log.campaign.to_csv(tmp_path / "sent.csv", index=False)
    out = tmp_path / "campaign_table.parquet"
    args = ["features", "--events", str(tmp_path / "events.parquet"), "--campaign", str(tmp_path / "sent.csv"),
            "--treatment", "arm", "--window", "30,90,365", "--outcome", "purchase:14d", "--out", str(out)]
    res = runner.invoke(app, [*args, "--as-of-exposure", "--json"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out)
    schema = json.loads((tmp_path / "campaign_table.parquet.features.json").read_text())
    assert len(table) == 1500 and {"conversion_14d", "revenue_14d", "purchase_count_90d"} <= set(table.columns)
    assert [f["name"] for f in schema["features"]] == list(table.columns[3:-2])
    assert schema["leakage"] == {"customers_with_window_past_exposure": 0, "max_days_past_exposure": 0.0,
                                 "allowed": False}
    out.unlink()
    res = runner.invoke(app, [*args, "--as-of", "2024-06-30"])
    assert res.exit_code == 2 and "after the exposure of 1,500 customer(s)" in res.output and not out.exists()
    res = runner.invoke(app, [*args, "--as-of", "2024-06-30", "--allow-leakage"])
    assert res.exit_code == 0 and "LEAKAGE FORCED" in res.output
    assert json.loads((tmp_path / "campaign_table.parquet.features.json").read_text())["leakage"]["allowed"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "events.parquet")])
    assert res.exit_code == 2 and "refusing to overwrite the input file" in res.output

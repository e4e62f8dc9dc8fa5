"""SQL sources: a DuckDB query or database table reads as its Parquet export does; lists write back atomically."""

from __future__ import annotations

import pandas as pd
import pytest

from uplift.data import sql as sqlmod
from uplift.data.sql import SqlSource, read_source, read_sql, write_sql_table
from uplift.data.tables import read_table
from uplift.errors import UpliftInputError

duckdb = pytest.importorskip("duckdb")


@pytest.fixture()
def campaign(tmp_path):
    frame = pd.DataFrame({"customer": ["007", "042", "100"], "store": ["01", "02", "01"],
                          "spend": [10.5, -999.0, 3.0], "coupon": [1, 0, 1],
                          "signup": pd.to_datetime(["2023-01-02", "2023-02-03", "2024-01-01"])})
    path = tmp_path / "campaign.parquet"
    frame.to_parquet(path, index=False)
    return path


def test_query_reads_exactly_as_the_parquet_file(campaign):
    options = {"text": ["customer"], "strings": ["store"], "na_values": ["-999"]}
    from_file = read_table(campaign, **options)
    from_sql = read_sql(f"SELECT * FROM read_parquet('{campaign}')", **options)
    pd.testing.assert_frame_equal(from_sql, from_file)
    assert from_sql["customer"].tolist() == ["007", "042", "100"] and from_sql["spend"].isna().tolist() == [
        False, True, False]
    assert pd.api.types.is_datetime64_any_dtype(from_sql["signup"])


def test_decimals_become_plain_numbers():
    frame = read_sql("SELECT SUM(x) AS total, CAST(2.5 AS DECIMAL(10, 2)) AS price FROM range(4) t(x)")
    assert frame["total"].dtype.kind == "i" and frame["price"].dtype.kind == "f"
    assert frame.iloc[0].tolist() == [6, 2.5]


def test_bad_sql_is_one_line_error():
    with pytest.raises(UpliftInputError, match=r"the SQL query failed: .*(Catalog|not exist|no_such)") as err:
        read_sql("SELECT * FROM no_such_table")
    assert "\n" not in str(err.value)


def test_no_rows_and_duplicate_names_are_errors():
    with pytest.raises(UpliftInputError, match="returns no rows"):
        read_sql("SELECT 1 AS x WHERE false")
    with pytest.raises(UpliftInputError, match="two columns named 'x'"):
        read_sql("SELECT 1 AS x, 2 AS x")


def test_db_table_round_trip_and_missing_table_hint(tmp_path):
    db = tmp_path / "shop.duckdb"
    lst = pd.DataFrame({"customer_id": ["A", "B"], "uplift": [0.25, 0.125]})
    write_sql_table(lst, db, "targets")
    pd.testing.assert_frame_equal(read_sql(db=db, table="targets"), lst)
    with pytest.raises(UpliftInputError, match=r"has no table 'target' \(did you mean 'targets'\?\)"):
        read_sql(db=db, table="target")
    with pytest.raises(UpliftInputError, match="does not exist"):
        read_sql(db=tmp_path / "nope.duckdb", table="targets")
    assert not (tmp_path / "nope.duckdb").exists()  # never created by a read


def test_write_back_replaces_whole_table_or_nothing(tmp_path, monkeypatch):
    db = tmp_path / "shop.duckdb"
    old = pd.DataFrame({"customer_id": ["A", "B", "C"], "uplift": [0.3, 0.2, 0.1]})
    write_sql_table(old, db, "targets")

    def crash(con, staging, final, table):  # the rows are loaded, the swap is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(sqlmod, "swap_in", crash)
    with pytest.raises(KeyboardInterrupt):
        write_sql_table(pd.DataFrame({"customer_id": ["Z"], "uplift": [9.0]}), db, "targets")
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_sql(db=db, table="targets"), old)
    con = duckdb.connect(str(db), read_only=True)
    tables = sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
    con.close()
    assert tables == ["targets"]  # no staging table left behind
    new = pd.DataFrame({"customer_id": ["Z"], "uplift": [9.0]})
    write_sql_table(new, db, "targets")
    pd.testing.assert_frame_equal(read_sql(db=db, table="targets"), new)


def test_source_names_the_files_it_reads(tmp_path, campaign):
    (tmp_path / "part-1.parquet").write_bytes(campaign.read_bytes())
    src = SqlSource(query=f"SELECT * FROM read_parquet('{tmp_path}/part-*.parquet') UNION ALL "
                          f"SELECT * FROM read_parquet('{campaign}')")
    assert sorted(p.name for p in src.inputs()) == ["campaign.parquet", "part-1.parquet"]
    assert read_source(src, columns=["coupon"])["coupon"].tolist() == [1, 0, 1] * 2

"""The data boundary on files written the way real exports are (issue 15): pandas, Excel "CSV UTF-8" (byte-order
mark, CRLF line ends, quoted fields), gzip and Parquet. Each finding of the issue is a test here."""

from __future__ import annotations

import gzip
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.shop import COSTS, shop_campaign
from uplift import Study
from uplift.cli import app
from uplift.data import FeatureSchema, campaign_data, inspect_data, read_table
from uplift.errors import UpliftInputError
from uplift.targeting.economics import read_exclusions

runner = CliRunner()
N = 3000
FIT = ["--folds", "2", "--learners", "t", "--allow-srm"]


def excel_csv(frame: pd.DataFrame, path) -> None:
    """What Excel's "CSV UTF-8" writes: a byte-order mark, CRLF line ends, every text field quoted."""
    text = frame.to_csv(index=False, lineterminator="\r\n", quoting=1)
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))


def one_line(res) -> str:
    assert res.exit_code == 2, res.output
    msg = res.stderr.strip()
    assert "Traceback" not in msg and len(msg.splitlines()) == 1, msg
    return msg


def shop_with_code(n: int = N, seed: int = 0) -> pd.DataFrame:
    export, _ = shop_campaign(n, seed=seed)
    rng = np.random.default_rng(seed)
    # A store code held as text with leading zeros, plus a third level that only the training file has.
    export["store"] = rng.choice(["01", "02", "other"], n, p=[0.45, 0.45, 0.1])
    return export


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The shop export as an Excel CSV, fitted once from the CLI; the customers to score in four forms."""
    d = tmp_path_factory.mktemp("shop")
    train = shop_with_code()
    excel_csv(train, d / "shop.csv")
    res = runner.invoke(app, ["fit", str(d / "shop.csv"), "--treatment", "coupon", "--outcome", "revenue",
                              "--id", "customer_id", "--exclude", "converted", "--out", str(d / "model"), *FIT])
    assert res.exit_code == 0, res.output
    customers = train.drop(columns=["coupon", "converted", "revenue"]).head(400)
    only_codes = customers[customers["store"] != "other"]
    only_codes.to_csv(d / "codes.csv", index=False)
    only_codes[only_codes.columns[::-1]].to_parquet(d / "codes_reordered.parquet")
    return {"dir": d, "train": train, "model": d / "model", "fit_output": res.output, "codes": only_codes}


def predict(shop, data, name="p.csv", *extra) -> tuple[pd.DataFrame, str]:
    out = shop["dir"] / name
    res = runner.invoke(app, ["predict", str(shop["model"]), str(data), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return pd.read_csv(out, dtype={"customer_id": str}), res.output


# ------------------------------------------------------------------------------------------------------ dates
def test_dates_become_days_before_the_latest_date_said_in_one_line(shop):
    study = Study.load(shop["model"])
    schema = study.schema
    assert {"days_since_signup_date", "days_since_last_order_date"} <= set(schema.names)
    assert "signup_date" not in schema.categories and "last_order_date" not in schema.categories
    assert schema.dates["days_since_signup_date"] == {"column": "signup_date", "format": "%Y-%m-%d",
                                                      "as_of": "2024-06-30"}
    lines = [ln for ln in shop["fit_output"].splitlines() if "days_since_signup_date" in ln]
    assert lines and "signup_date" in shop["fit_output"] and "latest date in the data" in shop["fit_output"]
    # No category with one level per day: the schema is small.
    assert sum(len(v) for v in schema.categories.values()) < 20


def test_customers_who_signed_up_after_training_are_scored_as_numbers_not_unseen_levels(shop):
    later = shop["codes"].head(200).assign(signup_date="2024-06-29", last_order_date="2024-06-30")
    later.to_csv(shop["dir"] / "later.csv", index=False)
    study = Study.load(shop["model"])
    drift = study.drift(study.schema.read(shop["dir"] / "later.csv", text=["customer_id"]))
    assert not any("never seen" in w and "date" in w for w in drift["warnings"])
    X = study.schema.encode(study.schema.read(shop["dir"] / "later.csv"))
    j = study.schema.names.index("days_since_signup_date")
    np.testing.assert_array_equal(X[:, j], 1.0)  # 2024-06-29 is one day before the training reference date


def test_as_of_sets_the_reference_date_and_scoring_uses_the_saved_one():
    df = shop_with_code(600)
    d = campaign_data(df, "coupon", "revenue", id="customer_id", exclude=["converted"], as_of="2024-07-01",
                      allow_similar_arms=True)
    spec = d.schema.dates["days_since_last_order_date"]
    assert spec["as_of"] == "2024-07-01"
    expected = (pd.Timestamp("2024-07-01") - pd.to_datetime(df["last_order_date"])).dt.days.to_numpy()
    j = d.schema.names.index("days_since_last_order_date")
    np.testing.assert_array_equal(d.X[:, j], expected)
    # Scoring a later file reads the same reference date from the schema, not that file's latest date.
    again = FeatureSchema.from_dict(json.loads(json.dumps(d.schema.to_dict())))
    np.testing.assert_array_equal(again.encode(df.head(50))[:, j], expected[:50])


def test_day_first_dates_are_recognised_and_ambiguous_ones_ask_for_a_format():
    df = shop_with_code(600)
    day_first = df.assign(signup_date=pd.to_datetime(df["signup_date"]).dt.strftime("%d/%m/%Y"))
    d = campaign_data(day_first, "coupon", "revenue", exclude=["converted", "customer_id"])
    assert d.schema.dates["days_since_signup_date"]["format"] == "%d/%m/%Y"
    ambiguous = df.head(200).assign(signup_date=[f"{1 + i % 12:02d}/{1 + i % 12:02d}/2023" for i in range(200)])
    ambiguous.loc[::2, "signup_date"] = [f"{1 + i % 12:02d}/{1 + (i + 3) % 12:02d}/2023" for i in range(100)]
    with pytest.raises(UpliftInputError, match=r"'signup_date'.*both as %d/%m/%Y and %m/%d/%Y.*--date-format"):
        campaign_data(ambiguous, "coupon", "revenue", exclude=["converted", "customer_id"], min_rows_per_arm=10)
    d = campaign_data(ambiguous, "coupon", "revenue", exclude=["converted", "customer_id"], min_rows_per_arm=10,
                      date_format="%m/%d/%Y")
    assert d.schema.dates["days_since_signup_date"]["format"] == "%m/%d/%Y"


# ------------------------------------------------------------------------------------------------------ ids
def test_ids_keep_their_leading_zeros_in_predictions_and_lists(shop):
    pred, _ = predict(shop, shop["dir"] / "shop.csv")
    assert pred["customer_id"].tolist() == shop["train"]["customer_id"].tolist()
    assert pred["customer_id"].str.startswith("0").all()
    out = shop["dir"] / "list.csv"
    res = runner.invoke(app, ["target", str(shop["model"]), str(shop["dir"] / "codes.csv"), "--out", str(out),
                              *[a for k, v in COSTS.items() for a in ("--cost", f"{k}={v}")]])
    assert res.exit_code == 0, res.output
    listed = pd.read_csv(out, dtype=str)["customer_id"]
    assert listed.isin(set(shop["codes"]["customer_id"])).all() and listed.str.len().eq(6).all()


def test_a_blank_id_is_an_error_naming_its_line_not_a_float_id(shop):
    bad = shop["codes"].head(100).copy()
    bad.iloc[40, bad.columns.get_loc("customer_id")] = None
    bad.to_csv(shop["dir"] / "blank.csv", index=False)
    for cmd in (["predict", str(shop["model"]), str(shop["dir"] / "blank.csv"), "--out", str(shop["dir"] / "x.csv")],
                ["target", str(shop["model"]), str(shop["dir"] / "blank.csv"), "--out", str(shop["dir"] / "y.csv"),
                 "--cost", "1"]):
        msg = one_line(runner.invoke(app, cmd))
        assert "'customer_id'" in msg and "blank" in msg and "line 42 of blank.csv" in msg, msg


def test_a_duplicate_id_names_both_lines(shop):
    dup = shop["codes"].head(50).copy()
    dup.iloc[30, dup.columns.get_loc("customer_id")] = dup.iloc[5]["customer_id"]
    dup.to_csv(shop["dir"] / "dup.csv", index=False)
    msg = one_line(runner.invoke(app, ["predict", str(shop["model"]), str(shop["dir"] / "dup.csv"), "--out",
                                       str(shop["dir"] / "x.csv")]))
    assert f"'{dup.iloc[5]['customer_id']}'" in msg and "line 7 of dup.csv" in msg and "line 32" in msg, msg


@pytest.mark.parametrize("style", ["txt-bom-crlf", "csv-header", "csv-plain", "excel-csv"])
def test_exclusions_with_leading_zeros_exclude_those_customers(shop, style):
    ids = shop["codes"]["customer_id"].head(60).tolist()
    path = shop["dir"] / f"optout-{style}.{'txt' if style.startswith('txt') else 'csv'}"
    if style == "txt-bom-crlf":
        path.write_bytes(("\ufeff" + "\r\n".join(ids) + "\r\n").encode())
    elif style == "csv-header":
        pd.DataFrame({"customer_id": ids, "reason": "asked"}).to_csv(path, index=False)
    elif style == "csv-plain":
        path.write_text("\n".join(ids) + "\n")
    else:
        excel_csv(pd.DataFrame({"customer_id": ids}), path)
    assert read_exclusions(path, "customer_id") == ids
    out = shop["dir"] / f"list-{style}.csv"
    res = runner.invoke(app, ["target", str(shop["model"]), str(shop["dir"] / "codes.csv"), "--out", str(out),
                              "--exclude", str(path), "--cost", "0.01"])
    assert res.exit_code == 0, res.output
    listed = set(pd.read_csv(out, dtype=str)["customer_id"])
    assert listed and not listed & set(ids)


# ------------------------------------------------------------------------------------------------------ codes
def test_codes_stay_strings_at_scoring_csv_and_parquet_reordered_give_identical_scores(shop):
    from_training, _ = predict(shop, shop["dir"] / "shop.csv", "train.csv")
    from_csv, out_csv = predict(shop, shop["dir"] / "codes.csv", "codes_pred.csv")
    from_parquet, out_pq = predict(shop, shop["dir"] / "codes_reordered.parquet", "codes_pred_pq.csv")
    expected = from_training.set_index("customer_id").loc[from_csv["customer_id"]].reset_index()
    pd.testing.assert_frame_equal(from_csv, expected)
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    for output in (out_csv, out_pq):
        assert "never seen" not in output, output


def test_schema_read_keeps_codes_as_text_whatever_pandas_would_guess(shop):
    study = Study.load(shop["model"])
    frame = study.schema.read(shop["dir"] / "codes.csv", text=["customer_id"])
    assert set(frame["store"]) == {"01", "02"} and frame["customer_id"].str.len().eq(6).all()
    assert pd.read_csv(shop["dir"] / "codes.csv")["store"].dtype.kind == "i"  # what the old reader got


# ------------------------------------------------------------------------------------------ stray text, sentinels
def test_a_numeric_column_with_a_few_stray_strings_is_a_one_line_error_suggesting_na_values(tmp_path):
    df = shop_with_code(600)
    income = df["income"].astype(object)
    income.iloc[[3, 99, 400]] = ["N/A", "-", "1,234"]
    df["income"] = income
    df.to_csv(tmp_path / "stray.csv", index=False)
    msg = one_line(runner.invoke(app, ["fit", str(tmp_path / "stray.csv"), "--treatment", "coupon", "--outcome",
                                       "revenue", "--id", "customer_id", "--exclude", "converted",
                                       "--out", str(tmp_path / "m"), *FIT]))
    # "N/A" is one of the usual missing-value markers; "-" and "1,234" are not.
    assert "'income' in stray.csv is numeric but 2 of 599 values" in msg, msg
    assert "'-' at line 101" in msg and "'1,234' at line 402" in msg and "--na-values '-'" in msg, msg
    d = campaign_data(read_table(tmp_path / "stray.csv", na_values=["-", "1,234"]), "coupon", "revenue",
                      exclude=["converted", "customer_id"])
    assert "income" in d.schema.names and "income" not in d.schema.categories


def test_sentinels_are_reported_and_na_values_reads_them_as_missing_at_fit_and_scoring():
    df = shop_with_code(2000)
    with pytest.warns(UserWarning, match=r"'income': \d+ rows equal -999, probably a missing-value code"):
        plain = campaign_data(df, "coupon", "revenue", exclude=["converted", "customer_id"])
    j = plain.schema.names.index("income")
    assert (plain.X[:, j] == -999).any()
    coded = campaign_data(df, "coupon", "revenue", exclude=["converted", "customer_id"], na_values=["-999"])
    assert not (coded.X[:, j] == -999).any() and np.isnan(coded.X[df["income"].to_numpy() == -999, j]).all()
    assert not any("-999" in n for n in coded.notes)
    schema = FeatureSchema.from_dict(coded.schema.to_dict())
    assert schema.na_values == ("-999",)
    np.testing.assert_array_equal(schema.encode(df)[:, j], coded.X[:, j])  # the same at scoring
    # The study's frame (segments, drift profile, report) holds the masked values too.
    assert coded.frame["income"].isna().sum() == (df["income"] == -999).sum()


# ------------------------------------------------------------------------------------------------------ arm labels
def test_a_rare_label_typo_is_a_did_you_mean_error_overridable(tmp_path):
    df = shop_with_code(6000)
    df.loc[df.index[df["coupon"] == "free_shipping"][:40], "coupon"] = "free_shiping"
    excel_csv(df, tmp_path / "typo.csv")
    args = ["fit", str(tmp_path / "typo.csv"), "--treatment", "coupon", "--outcome", "revenue", "--id",
            "customer_id", "--exclude", "converted", "--out", str(tmp_path / "m"), *FIT]
    msg = one_line(runner.invoke(app, args))
    first = int(np.flatnonzero(df["coupon"] == "free_shiping")[0]) + 2
    assert "'free_shiping' (40 rows, first at line" in msg and f"line {first} of typo.csv" in msg
    assert "did you mean 'free_shipping'?" in msg and "--allow-similar-arms" in msg
    res = runner.invoke(app, [*args, "--allow-similar-arms"])
    assert res.exit_code == 0, res.output
    assert "free_shiping" in Study.load(tmp_path / "m").arms


def test_labels_differing_only_by_case_or_spaces_are_refused():
    df = shop_with_code(N)
    df.loc[df.index[df["coupon"] == "pct10"][::5], "coupon"] = "PCT10 "
    with pytest.raises(UpliftInputError, match=r"arm 'PCT10' .*did you mean 'pct10'\?"):
        campaign_data(df, "coupon", "revenue", exclude=["converted", "customer_id"])


def test_a_literal_none_label_is_an_arm_and_a_blank_one_names_the_file_line(tmp_path):
    df = shop_with_code(N).assign(coupon=lambda d: d["coupon"].replace({"pct20": "None"}))
    df.to_csv(tmp_path / "none.csv", index=False)
    frame = read_table(tmp_path / "none.csv", text=["coupon", "customer_id"])
    d = campaign_data(frame, "coupon", "revenue", control="control", exclude=["converted", "customer_id"])
    assert "None" in d.arms
    blank = df.copy()
    blank.iloc[65, blank.columns.get_loc("coupon")] = None
    blank.to_csv(tmp_path / "blank_arm.csv", index=False)
    msg = one_line(runner.invoke(app, ["fit", str(tmp_path / "blank_arm.csv"), "--treatment", "coupon", "--outcome",
                                       "revenue", "--control", "control", "--out", str(tmp_path / "m"), *FIT]))
    assert "treatment column 'coupon'" in msg and "line 67 of blank_arm.csv" in msg, msg


# ------------------------------------------------------------------------------------------------------ file shapes
def test_predict_refuses_duplicate_column_names(shop):
    codes = shop["codes"]
    text = codes.to_csv(index=False).splitlines()
    text[0] = text[0].replace("income", "age")
    (shop["dir"] / "twice.csv").write_text("\n".join(text) + "\n")
    msg = one_line(runner.invoke(app, ["predict", str(shop["model"]), str(shop["dir"] / "twice.csv"), "--out",
                                       str(shop["dir"] / "x.csv")]))
    assert "two columns named 'age'" in msg


def test_file_type_is_sniffed_from_the_bytes(shop, tmp_path):
    codes = shop["codes"]
    (tmp_path / "gz.csv").write_bytes(gzip.compress(codes.to_csv(index=False).encode()))
    codes.to_parquet(tmp_path / "pq.csv")
    expected, _ = predict(shop, shop["dir"] / "codes.csv", "sniff_ref.csv")
    for name in ("gz.csv", "pq.csv"):
        got, _ = predict(shop, tmp_path / name, f"sniff_{name}")
        pd.testing.assert_frame_equal(got, expected)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    (tmp_path / "book.csv").write_bytes(buf.getvalue())
    msg = one_line(runner.invoke(app, ["predict", str(shop["model"]), str(tmp_path / "book.csv"), "--out",
                                       str(tmp_path / "x.csv")]))
    assert "is an Excel workbook" in msg and "CSV UTF-8" in msg and "UTF-8 (Excel" not in msg


def test_high_cardinality_text_is_left_out_with_its_reason_unless_asked():
    df = shop_with_code(N).assign(city=lambda d: [f"town{i % 700}" for i in range(len(d))])
    with pytest.warns(UserWarning, match=r"'city' not modelled: 700 distinct text values.*high_cardinality"):
        d = campaign_data(df, "coupon", "revenue", exclude=["converted", "customer_id"])
    assert "city" not in d.schema.names
    d = campaign_data(df, "coupon", "revenue", exclude=["converted", "customer_id"], high_cardinality=["city"])
    assert len(d.schema.categories["city"]) == 700


def test_line_numbers_fall_back_to_row_positions_after_a_quoted_line_break(tmp_path):
    df = shop_with_code(200)
    df.loc[3, "device"] = "ios\nbeta"
    df.loc[100, "customer_id"] = None
    df.to_csv(tmp_path / "multi.csv", index=False)
    with pytest.raises(UpliftInputError, match=r"first at row 100 of multi\.csv"):
        campaign_data(read_table(tmp_path / "multi.csv", text=["customer_id"]), "coupon", "revenue",
                      id="customer_id", exclude=["converted"], min_rows_per_arm=10)


def test_an_older_schema_without_dates_or_na_values_still_loads():
    old = {"names": ["age", "channel"], "categories": {"channel": ["app", "web"]}}
    schema = FeatureSchema.from_dict(old)
    assert schema.dates == {} and schema.na_values == ()
    assert schema.encode(pd.DataFrame({"age": [1], "channel": ["web"]})).tolist() == [[1.0, 1.0]]


# ------------------------------------------------------------------------------------------------------ inspect
def test_inspect_cli_and_study_report_the_shop_file(shop):
    res = runner.invoke(app, ["inspect", str(shop["dir"] / "shop.csv"), "--treatment", "coupon", "--outcome",
                              "revenue", "--id", "customer_id", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    cols = {c["column"]: c for c in doc["columns"]}
    assert cols["signup_date"]["type"] == "date" and cols["signup_date"]["date_format"] == "%Y-%m-%d"
    assert cols["customer_id"]["type"] == "id" and doc["duplicate_ids"] == 0 and doc["blank_ids"] == 0
    assert cols["income"]["sentinels"].startswith("-999 x ")
    assert 0.10 < cols["age"]["missing_share"] < 0.14
    shares = {a["arm"]: a["share"] for a in doc["arms"]}
    assert shares["control"] > max(shares["pct10"], shares["pct20"], shares["free_shipping"])
    assert any("zeros" in n for n in doc["notes"])
    res = runner.invoke(app, ["inspect", str(shop["dir"] / "shop.csv"), "--treatment", "coupon"])
    assert res.exit_code == 0 and "Data quality" in res.output and "Arms" in res.output
    # The same summary heads the fit's output.
    first = next(line for line in shop["fit_output"].splitlines() if line.strip())
    assert first.startswith(f"data: {N:,} rows, 13 columns (4 number, 4 category, 2 date, 1 id, 1 arm label")
    study = Study(shop["train"], "coupon", "revenue", id="customer_id", exclude=["converted"],
                  allow_similar_arms=True)
    q = study.inspect()
    assert q.columns.set_index("column").loc["last_order_date", "type"] == "date"


def test_inspect_finds_duplicates_constants_and_label_typos():
    df = shop_with_code(1000).assign(country="DE")
    df = pd.concat([df, df.head(3)], ignore_index=True)
    df.loc[df.index[df["coupon"] == "pct10"][:5], "coupon"] = "pct1O"
    q = inspect_data(df, treatment="coupon", outcome="revenue", id="customer_id")
    assert q.duplicate_rows == 3 and q.duplicate_ids == 3
    assert q.columns.set_index("column").loc["country", "type"] == "constant"
    assert any("'pct1O' looks like a typo of 'pct10'" in n for n in q.notes)


def test_the_report_has_a_data_quality_section(shop):
    out = shop["dir"] / "r.html"
    res = runner.invoke(app, ["report", str(shop["model"]), "--out", str(out), "--data", str(shop["dir"] / "shop.csv")])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert '<section id="quality"><h2>Data quality</h2>' in html and "days_since_signup_date" in html


def test_near_constant_note_names_the_value_as_the_data_has_it():
    """The note reads "near-constant (99.0% 0)", not the NumPy repr "np.int64(0)" a report would print."""
    frame = pd.DataFrame({"spend": np.r_[np.zeros(990), np.ones(10)],
                          "orders": np.r_[np.zeros(990, int), np.ones(10, int)],
                          "tier": ["gold"] * 990 + ["silver"] * 10})
    notes = inspect_data(frame).columns.set_index("column")["note"]
    assert notes["spend"] == "near-constant (99.0% 0.0)" and notes["orders"] == "near-constant (99.0% 0)"
    assert notes["tier"] == "near-constant (99.0% 'gold')"


@pytest.mark.parametrize("seed", range(4))
def test_inspect_counts_from_one_sort_equal_the_hash_counts_on_every_numeric_type(seed):
    """Levels, the near-constant value (NaN and <NA> included), sentinel codes, outliers and repeated rows come
    from a sort of each numeric column and of the row hashes: the same as counting every value by hashing."""
    from uplift.data.columns import SENTINEL_CODES, outlier_share, sentinels, sorted_numbers
    rng = np.random.default_rng(seed)
    n = 3000
    codes = rng.choice([c for c in SENTINEL_CODES if c < 0]), rng.choice([c for c in SENTINEL_CODES if c > 0])
    common = np.where(rng.random(n) < 0.993, 4.0, rng.normal(size=n))
    frame = pd.DataFrame({
        "float": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n).round(1)),
        "float32": rng.normal(size=n).astype(np.float32),
        "coded": np.r_[np.full(20, codes[0]), np.full(10, codes[1]), rng.uniform(10, 20, n - 30)],
        "common": common, "mostly_missing": np.where(rng.random(n) < 0.995, np.nan, common),
        "nullable": pd.array(np.where(rng.random(n) < 0.995, None, rng.integers(0, 3, n)), dtype="Int64"),
        "wide_ints": (2**60 + rng.integers(0, 4, n)).astype(np.int64), "small": rng.integers(0, 3, n),
        "infinite": np.r_[[np.inf, -np.inf, np.inf], rng.normal(size=n - 3)],
        "signed_zero": np.r_[np.full(n - 4, -0.0), np.zeros(4)], "flag": rng.random(n) < 0.5,
        "text": rng.choice(["a", "b"], n),
    })
    frame = pd.concat([frame, frame.sample(7, random_state=seed)], ignore_index=True)
    q = inspect_data(frame).columns.set_index("column")
    for name in frame:
        col = frame[name]
        counts = col.value_counts(dropna=False)
        assert q.loc[name, "levels"] == int(((counts > 0) & counts.index.notna()).sum()), name
        top_share = counts.iloc[0] / len(col)
        assert ("near-constant" in q.loc[name, "note"]) == (top_share >= 0.99 and q.loc[name, "type"] != "constant")
        if top_share >= 0.99 and q.loc[name, "type"] != "constant":
            assert f"{counts.index[0]!r}".replace("np.float64(", "").rstrip(")") in q.loc[name, "note"], name
        if name not in ("flag", "text"):
            values = col.to_numpy(dtype=np.float64, na_value=np.nan)
            ordered = sorted_numbers(col).astype(np.float64)
            assert sentinels(ordered, presorted=True) == sentinels(values), name
            assert outlier_share(ordered) == pytest.approx(outlier_share(values), abs=1e-12)
    assert sorted(v for v, _ in sentinels(frame["coded"].to_numpy())) == sorted(map(float, codes))
    assert inspect_data(frame).duplicate_rows == int(frame.duplicated().sum()) >= 7


def test_the_data_summary_leaves_to_the_fits_notes_what_they_say_in_full():
    """A -999 code and a date column found by the fit (its notes, with the flag and the reference date) are not
    said again in the data summary above them; a finding the notes do not give, or a line that says more than
    the finding (a near-constant date column), stays."""
    n = 200
    frame = pd.DataFrame({"income": np.r_[np.full(10, -999.0), np.linspace(2e4, 9e4, n - 10)],
                          "signup": pd.date_range("2023-01-01", periods=n).strftime("%Y-%m-%d"),
                          "last_seen": ["2024-01-01"] * (n - 1) + ["2024-02-01"]})
    q = inspect_data(frame)
    fit_notes = campaign_data(frame.assign(t=[0, 1] * (n // 2), y=[0, 1] * (n // 2)), "t", "y").notes
    assert any("income" in note for note in fit_notes) and any("days_since_signup" in note for note in fit_notes)
    alone, beside_the_notes = " ".join(q.summary()), " ".join(q.summary(said=fit_notes))
    assert "-999" in alone and "days_since_signup" in alone
    assert "-999" not in beside_the_notes and "days_since_signup" not in beside_the_notes
    assert "near-constant" in beside_the_notes  # last_seen: a date that says more than the date finding
    assert " ".join(q.summary(said=["column 'age': 3 rows equal -999, probably a missing-value code"])) == alone

"""Streamed scoring: batch by batch equals scoring the whole frame; outputs are atomic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import truth_columns
from uplift import Study
from uplift.errors import UpliftInputError
from uplift.scoring import score_file


@pytest.fixture(scope="module")
def study_and_frame(rct_df):
    df = rct_df.head(3000)
    study = Study(df, treatment="treatment", outcome="conversion", id="customer_id",
                  exclude=[*truth_columns(df), "revenue"], design="rct").fit(learners=["t", "x"], n_folds=3, n_boot=20)
    return study, df


@pytest.mark.parametrize("src, dst", [("c.parquet", "s.parquet"), ("c.csv", "s.csv")])
def test_batches_equal_whole_frame(study_and_frame, tmp_path, src, dst):
    study, df = study_and_frame
    path = tmp_path / src
    (df.to_parquet if src.endswith("parquet") else df.to_csv)(path, index=False)
    n = score_file(study.result, path, tmp_path / dst, batch_rows=700)
    assert n == len(df)
    got = pd.read_parquet(tmp_path / dst) if dst.endswith("parquet") else pd.read_csv(tmp_path / dst)
    want = study.predict_uplift(df)
    np.testing.assert_array_equal(got["customer_id"].to_numpy(), want["customer_id"].to_numpy())
    np.testing.assert_allclose(got["uplift"].to_numpy(), want["uplift"].to_numpy(), rtol=1e-9, atol=1e-12)


def test_failure_mid_file_leaves_existing_output_untouched(study_and_frame, tmp_path):
    study, df = study_and_frame
    bad = df.copy().astype({"recency_days": object})
    bad.loc[2500, "recency_days"] = "not a number"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    out = tmp_path / "scores.csv"
    out.write_text("previous list\n")
    with pytest.raises(UpliftInputError, match="recency_days"):
        score_file(study.result, tmp_path / "bad.csv", out, batch_rows=1000)
    assert out.read_text() == "previous list\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_an_id_repeated_in_a_later_batch_is_refused_at_its_row(study_and_frame, tmp_path):
    study, df = study_and_frame
    bad = df.copy()
    bad.loc[2600, "customer_id"] = bad.loc[12, "customer_id"]  # batch 4 repeats an id of batch 1
    bad.loc[2900, "customer_id"] = bad.loc[700, "customer_id"]
    bad.to_parquet(tmp_path / "c.parquet")
    with pytest.raises(UpliftInputError, match=r"repeats .13. at row 2600 of c.parquet; ids must be unique"):
        score_file(study.result, tmp_path / "c.parquet", tmp_path / "s.parquet", batch_rows=700)
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize("src", ["c.parquet", "c.csv"])
def test_a_blank_or_repeated_id_within_a_batch_is_refused_at_its_line(study_and_frame, tmp_path, src):
    study, df = study_and_frame
    repeated = df.copy()
    repeated.loc[1650, "customer_id"] = repeated.loc[1500, "customer_id"]  # both in the third batch of 700
    blank = df.astype({"customer_id": object}).copy()
    blank.loc[1650, "customer_id"] = None
    # the rows counted from the file's first (a Parquet row) or its CSV lines, not from the batch's first
    at = {"repeat": r"row 1500 of c.parquet and row 1650|line 1502 of c.csv and line 1652",
          "blank": r"row 1650 of c.parquet|line 1652 of c.csv"}
    for frame, pattern in ((repeated, rf"duplicate customer '?1501'? at ({at['repeat']})"),
                           (blank, rf"1 blank value\(s\) \(first at ({at['blank']})")):
        path = tmp_path / src
        (frame.to_parquet if src.endswith("parquet") else frame.to_csv)(path, index=False)
        with pytest.raises(UpliftInputError, match=pattern):
            score_file(study.result, path, tmp_path / "s.parquet", batch_rows=700)
        assert not (tmp_path / "s.parquet").exists()


def test_ids_merge_finds_the_first_repeat_and_keeps_order():
    from uplift.scoring import _merge

    rng = np.random.default_rng(3)
    seen = np.sort(rng.integers(0, 2**63, 5000).astype(np.uint64))
    new = np.sort(rng.integers(0, 2**63, 3000).astype(np.uint64))
    merged, again = _merge(seen, new)
    assert again == -1 and np.array_equal(merged, np.sort(np.concatenate([seen, new])))
    new[[10, 2000]] = seen[[4000, 17]]
    new.sort()
    merged, again = _merge(seen, new)
    assert np.array_equal(merged, np.sort(np.concatenate([seen, new])))
    assert new[again] == min(seen[4000], seen[17])
    assert _merge(np.empty(0, np.uint64), new)[1] == -1


def test_prefetch_keeps_order_raises_in_place_and_stops_early():
    import threading

    from uplift.scoring import _prefetch

    assert list(_prefetch(iter(range(50)))) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise UpliftInputError("row 3 is bad")

    got = []
    with pytest.raises(UpliftInputError, match="row 3 is bad"):
        for item in _prefetch(failing()):
            got.append(item)
    assert got == [1, 2]  # the items before the error first

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    for item in _prefetch(endless()):
        if item == 3:
            break
    assert closed.wait(5)  # the caller stopped: the thread stopped and closed the source
    assert not [t for t in threading.enumerate() if t.name == "uplift-prefetch"]

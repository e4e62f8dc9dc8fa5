"""Loaders for the two public randomised marketing experiments shipped inside the package.

The files live in ``uplift/datasets/data/`` as gzip-compressed CSV and are found through
:mod:`importlib.resources`, so they load the same from a source checkout, an installed wheel or a zip.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from uplift.errors import UpliftInputError

_HISTORY_SEGMENTS = (
    "1) $0 - $100", "2) $100 - $200", "3) $200 - $350", "4) $350 - $500",
    "5) $500 - $750", "6) $750 - $1,000", "7) $1,000 +",
)

#: Column dtypes of the Hillstrom file; label columns as categories whose first level is the control/base.
HILLSTROM_DTYPES: dict[str, object] = {
    "recency": "int64",
    "history_segment": pd.CategoricalDtype(list(_HISTORY_SEGMENTS), ordered=True),
    "history": "float64",
    "mens": "int64",
    "womens": "int64",
    # "Surburban" is the spelling in the original file; kept so results match published analyses.
    "zip_code": pd.CategoricalDtype(["Urban", "Surburban", "Rural"]),
    "newbie": "int64",
    "channel": pd.CategoricalDtype(["Phone", "Web", "Multichannel"]),
    "segment": pd.CategoricalDtype(["No E-Mail", "Mens E-Mail", "Womens E-Mail"]),
    "visit": "int64",
    "conversion": "int64",
    "spend": "float64",
}

#: Column dtypes of the Starbucks file. V1..V7 are anonymised; their meaning was never published.
STARBUCKS_DTYPES: dict[str, object] = {
    "ID": "int64",
    "Promotion": pd.CategoricalDtype(["No", "Yes"]),
    "purchase": "int64",
    "V1": "int64",
    "V2": "float64",
    "V3": "float64",
    "V4": "int64",
    "V5": "int64",
    "V6": "int64",
    "V7": "int64",
}


def _read_packaged_csv(filename: str, dtypes: dict[str, object], n_rows: int) -> pd.DataFrame:
    """Read one packaged gzip CSV with fixed dtypes and check it is the file we shipped."""
    resource = resources.files("uplift.datasets").joinpath("data").joinpath(filename)
    if not resource.is_file():
        raise UpliftInputError(
            f"packaged data file 'uplift/datasets/data/{filename}' is missing; reinstall the uplift package"
        )
    with resource.open("rb") as fh:
        frame = pd.read_csv(fh, compression="gzip", dtype=dtypes)
    # A label outside the declared categories becomes NaN silently; catch that (a damaged file) here.
    damaged = [c for c, t in dtypes.items() if isinstance(t, pd.CategoricalDtype) and frame[c].isna().any()]
    if list(frame.columns) != list(dtypes) or len(frame) != n_rows or damaged:
        raise UpliftInputError(
            f"packaged data file {filename!r} is not the expected {n_rows:,}-row table "
            f"(unexpected labels in {damaged or 'none'}); reinstall the uplift package"
        )
    return frame


def load_hillstrom() -> pd.DataFrame:
    """The Hillstrom e-mail experiment: 64,000 customers, two e-mails and a no-e-mail control.

    Kevin Hillstrom's MineThatData E-Mail Analytics and Data Mining Challenge (2008). Customers who bought in
    the last twelve months were randomly split into three equal groups for a two-week campaign: one got an
    e-mail featuring men's merchandise, one an e-mail featuring women's merchandise, one no e-mail (the
    control). Outcomes were recorded in the two weeks after the e-mail.

    Returns
    -------
    DataFrame
        64,000 rows, the original column names and order:

        ``recency`` (int)
            Months since the last purchase (1-12).
        ``history_segment`` (ordered category)
            Last year's spend bucket, e.g. ``"2) $100 - $200"`` (a binned copy of ``history``).
        ``history`` (float)
            Dollars spent in the last year.
        ``mens``, ``womens`` (int 0/1)
            Bought men's / women's merchandise in the last year.
        ``zip_code`` (category)
            ``"Urban"``, ``"Surburban"`` (sic, the original spelling) or ``"Rural"``.
        ``newbie`` (int 0/1)
            New customer in the last twelve months.
        ``channel`` (category)
            Channels bought from last year: ``"Phone"``, ``"Web"`` or ``"Multichannel"``.
        ``segment`` (category) -- the treatment
            ``"No E-Mail"`` (control, first category), ``"Mens E-Mail"``, ``"Womens E-Mail"``; about 21,300
            customers each, randomised.
        ``visit``, ``conversion`` (int 0/1)
            Visited the website / bought in the two weeks after the e-mail.
        ``spend`` (float)
            Dollars spent in the two weeks after the e-mail (0 without a conversion).

    Notes
    -----
    Byte-identical to the CSV distributed with the challenge (SHA-256 of the uncompressed file
    ``0e5893329d8b93ce...``). Differences in means against the control: Mens E-Mail raises visits by
    7.66 pp, conversions by 0.68 pp and spend by $0.770 per customer; Womens E-Mail by 4.52 pp, 0.31 pp and
    $0.424.

    Source and licence: published by Kevin Hillstrom on the MineThatData blog (March 2008) as a free,
    public data set for the challenge; no formal licence was attached. Cite as: Hillstrom, K. (2008),
    *The MineThatData E-Mail Analytics and Data Mining Challenge*.

    Examples
    --------
    >>> from uplift.datasets import load_hillstrom
    >>> df = load_hillstrom()
    >>> df.shape
    (64000, 12)
    >>> list(df["segment"].cat.categories)
    ['No E-Mail', 'Mens E-Mail', 'Womens E-Mail']
    >>> rates = df.groupby("segment", observed=True)["visit"].mean()
    >>> round(float(rates["Mens E-Mail"] - rates["No E-Mail"]) * 100, 2)
    7.66
    """
    return _read_packaged_csv("hillstrom.csv.gz", HILLSTROM_DTYPES, 64_000)


def load_starbucks() -> pd.DataFrame:
    """The Starbucks promotion experiment (training part): 84,534 customers, promotion yes/no.

    A randomised test of a promotional offer, released by Starbucks with Udacity's Data Scientist programme
    ("Starbucks portfolio exercise", ``training.csv``). Features are anonymised.

    Returns
    -------
    DataFrame
        84,534 rows, the original column names and order:

        ``ID`` (int)
            Customer id (unique).
        ``Promotion`` (category) -- the treatment
            ``"No"`` (control, first category) or ``"Yes"``; randomised, about half each (42,170 / 42,364).
        ``purchase`` (int 0/1)
            Bought the product during the test.
        ``V1``, ``V4``, ``V5``, ``V6``, ``V7`` (int)
            Anonymised discrete features (V1 in 0-3, V4 and V7 in 1-2, V5 and V6 in 1-4); whether they
            are ordinal or nominal codes was not published.
        ``V2``, ``V3`` (float)
            Anonymised continuous features.

    Notes
    -----
    Purchase rate is about 1.70% with the promotion and 0.76% without. The accompanying business case: each
    promotion sent costs $0.15 and each purchase is worth $10, so a targeting policy is judged by its
    incremental response rate (IRR) and net incremental revenue
    ``NIR = 10 * purchases(targeted, treated) - 0.15 * n_treated - 10 * purchases(untargeted, control)``.
    The separate test set of the exercise is not included.

    Source and licence: distributed publicly by Udacity/Starbucks for educational use with the exercise; no
    formal licence was attached.

    Examples
    --------
    >>> from uplift.datasets import load_starbucks
    >>> df = load_starbucks()
    >>> df.shape
    (84534, 10)
    >>> rates = df.groupby("Promotion", observed=True)["purchase"].mean()
    >>> round(float(rates["Yes"]) * 100, 2), round(float(rates["No"]) * 100, 2)
    (1.7, 0.76)
    """
    return _read_packaged_csv("starbucks_promotion.csv.gz", STARBUCKS_DTYPES, 84_534)

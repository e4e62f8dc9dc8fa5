"""The data boundary: column roles and validation, reading and writing tables, the training-data fingerprint.

Everything a study learns from enters here once, checked: :func:`campaign_data` turns a DataFrame and its
column roles into a :class:`CampaignData` (a float32 feature matrix, arm codes, outcomes) or one
:class:`~uplift.errors.UpliftInputError` line naming the column, row or file and the fix.
:func:`inspect_data` reports a table's quality before any fit. :func:`read_sql` reads a DuckDB query or database table
through the same typed reader as a Parquet file.
"""

from uplift.data.campaign import CampaignData, FeatureSchema, campaign_data
from uplift.data.fingerprint import data_hash
from uplift.data.inspect import DataQuality, inspect_data
from uplift.data.sql import SqlSource, read_source, read_sql, write_sql_table
from uplift.data.tables import read_table, write_table

__all__ = ["CampaignData", "DataQuality", "FeatureSchema", "SqlSource", "campaign_data", "data_hash", "inspect_data",
           "read_source", "read_sql", "read_table", "write_sql_table", "write_table"]

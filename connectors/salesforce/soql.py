"""SOQL literals and Salesforce datetimes: quoting strings, formatting and parsing moments."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

__all__ = ["parse_datetime", "soql_datetime", "soql_literal"]


def soql_literal(value: str) -> str:
    """A SOQL string literal, quotes and backslashes escaped."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def soql_datetime(moment: datetime) -> str:
    """A SOQL / Salesforce JSON datetime literal in UTC, to the millisecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime (or a stored cursor) as an aware UTC datetime."""
    return pd.Timestamp(text).tz_convert("UTC").to_pydatetime()

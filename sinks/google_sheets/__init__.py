"""Google Sheets: one row per call appended to a spreadsheet (`values:append`, RAW),
authenticated as a service account (its JSON key: `account`; the JWT bearer grant
through `sinks.tokens`), DESIGN.md section 17."""

from __future__ import annotations

from sinks.google_sheets.sink import GoogleSheetsConfig, GoogleSheetsSink

__all__ = ["GoogleSheetsConfig", "GoogleSheetsSink"]

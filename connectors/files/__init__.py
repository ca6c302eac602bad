"""The file connector: CRM exports on disk read through a column mapping."""

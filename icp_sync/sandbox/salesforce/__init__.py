"""The Salesforce emulator: org state, SOQL, REST, Tooling and Bulk API 2.0 routes."""

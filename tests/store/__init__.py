"""The state store suite: one module per repository, each test on SQLite and PostgreSQL."""

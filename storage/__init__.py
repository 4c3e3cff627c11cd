"""Database engine setup, schema, migrations and queries: the only place with SQL."""

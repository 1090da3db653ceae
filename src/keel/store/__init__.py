"""Storage: typed SQLAlchemy tables, one engine factory for SQLite and PostgreSQL, Alembic migrations."""

"""Alembic migrations of the inventory database, run by ``Database.migrate()`` (no alembic.ini)."""

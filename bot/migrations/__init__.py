"""Alembic migrations of the store (``opsbot db upgrade``; run at start-up)."""

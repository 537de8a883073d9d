"""Alembic migrations of the serving database (prediction log and outcomes)."""

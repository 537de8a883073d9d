"""Alembic migrations of the operations database (:mod:`vfr.opsdb`): every operational table."""

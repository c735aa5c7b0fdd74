"""Alembic migrations, shipped inside the package so `dialbatch migrate` works anywhere."""

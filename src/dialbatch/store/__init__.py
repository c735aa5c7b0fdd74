"""The store: SQL tables that are both the queue and the record.

One module per aggregate; dialect differences live in `_dialect.py` and nowhere else.
"""

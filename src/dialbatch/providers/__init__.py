"""Telephony providers behind one small protocol (DESIGN.md §6)."""

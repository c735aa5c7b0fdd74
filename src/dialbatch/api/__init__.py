"""The HTTP API: the wire contract lives here and only here."""

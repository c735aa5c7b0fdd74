"""dialbatch."""

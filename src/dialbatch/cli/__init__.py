"""The `dialbatch` command line."""

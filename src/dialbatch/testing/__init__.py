"""Stand-ins used by tests, benches and demos, kept apart from the real providers: the
simulated carrier process (`carrier.py`, run by `dialbatch carrier`). Nothing in the
engine imports this package."""

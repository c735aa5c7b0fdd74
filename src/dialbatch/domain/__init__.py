"""Pure rules of the call lifecycle: no I/O, nothing of ours imported."""

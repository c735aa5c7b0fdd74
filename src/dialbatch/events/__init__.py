"""What providers report, applied to the store: one path for the dispatcher's in-process
sink and for HTTP callbacks arriving at any API process."""

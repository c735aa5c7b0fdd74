"""The dispatcher: claims due calls within limits, dials them, recovers the abandoned."""

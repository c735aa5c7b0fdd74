"""dialbatch: batch outbound calling for AI voice agents, self-hosted.

Serves Trillet's public batch-calls API on top of a durable SQL queue.
"""

__version__ = "0.1.0"

"""The Python SDK of dialbatch (and of any server of Trillet's batch-calls API).

`Client` blocks; `AsyncClient` has the same methods, awaited. Both return the API's JSON
bodies as dicts, typed with the `TypedDict`s of `dialbatch.client.types`, and raise
`DialbatchError` (or a subclass) when the server refuses a request.
"""

from dialbatch.client._async import AsyncClient
from dialbatch.client._shared import CsvSource, ScheduledAt
from dialbatch.client._sync import Client
from dialbatch.client.errors import (
    BadRequest,
    Conflict,
    DialbatchError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
)
from dialbatch.client.signing import sign_result

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "CsvSource",
    "DialbatchError",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ScheduledAt",
    "ServerError",
    "Unauthorized",
    "sign_result",
]

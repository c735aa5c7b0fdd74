from tests.client._server import server

__all__ = ["server"]

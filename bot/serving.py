"""Serving the WSGI routes with waitress, a production WSGI server (Bolt's App.start() is for development)."""
from __future__ import annotations

import threading
from typing import Any, Callable

from waitress.server import create_server


class Server:
    """A waitress server on a thread; port 0 picks a free port."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, threads: int = 8):
        self._server = create_server(app, host=host, port=port, threads=threads, ident="visitsafe")
        self.port: int = self._server.effective_port  # type: ignore[union-attr]
        self._thread: threading.Thread | None = None

    def start(self) -> "Server":
        """Serve in the background."""
        self._thread = threading.Thread(target=self._server.run, name="visitsafe-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted."""
        self._server.run()

    def stop(self) -> None:
        """Close the listening socket and stop the loop."""
        self._server.close()
        if self._thread:
            self._thread.join(timeout=5)

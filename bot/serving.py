"""Serving the WSGI routes with waitress, a production WSGI server (Bolt's App.start() is for development)."""
from __future__ import annotations

import threading
from typing import Any, Callable

from waitress import wasyncore
from waitress.server import create_server


class Server:
    """A waitress server; port 0 picks a free port. Stops cleanly from any thread."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, threads: int = 8):
        self._server = create_server(app, host=host, port=port, threads=threads, ident="visitsafe")
        self.port: int = self._server.effective_port  # type: ignore[union-attr]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        # waitress's own run() cannot be stopped from another thread without closing sockets under it.
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.5, map=server._map, use_poll=True, count=1)  # type: ignore[union-attr]
        server.task_dispatcher.shutdown()  # type: ignore[union-attr]
        wasyncore.close_all(server._map)  # type: ignore[union-attr]

    def start(self) -> "Server":
        """Serve in the background."""
        self._thread = threading.Thread(target=self._loop, name="visitsafe-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until stop() is called or the process is interrupted."""
        self._loop()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._stopping.set()
        self._server.pull_trigger()  # type: ignore[union-attr]
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

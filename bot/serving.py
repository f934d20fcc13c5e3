"""Serving the WSGI routes with waitress, a production WSGI server (Bolt's App.start() is for development)."""
from __future__ import annotations

import threading
from typing import Any, Callable

from waitress import wasyncore
from waitress.server import create_server

# Waitress answers 413 to a larger body (declared or chunked) before the app reads it.
MAX_REQUEST_BODY = 1024 * 1024


class Server:
    """A waitress server; port 0 picks a free port. Stops cleanly from any thread, any number of times."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, threads: int = 8):
        self._server = create_server(
            app, host=host, port=port, threads=threads, ident="visitsafe", max_request_body_size=MAX_REQUEST_BODY
        )
        self.port: int = self._server.effective_port  # type: ignore[union-attr]
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Guards the trigger and the sockets: stop() never pulls a trigger the loop has already closed.
        self._lock = threading.RLock()
        self._running = False
        self._closed = False

    def _close(self) -> None:
        """Close every socket once (the caller holds the lock)."""
        if self._closed:
            return
        self._closed = True
        self._server.task_dispatcher.shutdown()  # type: ignore[union-attr]
        wasyncore.close_all(self._server._map)  # type: ignore[union-attr]

    def _loop(self) -> None:
        # waitress's own run() cannot be stopped from another thread without closing sockets under it.
        server = self._server
        with self._lock:
            if self._closed:
                return
            self._running = True
        try:
            while not self._stopping.is_set():
                server.asyncore.loop(timeout=0.5, map=server._map, use_poll=True, count=1)  # type: ignore[union-attr]
        finally:
            with self._lock:
                self._close()

    def start(self) -> "Server":
        """Serve in the background."""
        self._thread = threading.Thread(target=self._loop, name="visitsafe-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on this thread until stop() is called or the process is interrupted."""
        self._loop()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call again, or before the loop has started."""
        with self._lock:
            self._stopping.set()
            if self._running and not self._closed:
                self._server.pull_trigger()  # wake the loop so it sees _stopping within a tick
            elif not self._running:
                self._close()
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

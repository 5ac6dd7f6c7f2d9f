"""A loopback TCP relay in front of a server, that a test can cut and restore like a network outage."""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class Relay:
    """Forwards a free loopback port to ``target_host:target_port``.

    ``cut()`` closes every open connection and, until ``restore()``, hangs up on each new one as
    soon as it is accepted (``refused`` counts those). The port stays the same throughout, so a
    client configured with ``url`` / ``port`` reconnects by itself once restored. Starts at once;
    ``close()`` (or leaving a ``with`` block) stops it for good.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.refused = 0
        self._cut = False
        self._closed = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so the accept loop notices close()
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name=f"relay-{self.port}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            for sock in self._open:
                _hang_up(sock)
            self._open.clear()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._connect(client):
                _hang_up(client)

    def _connect(self, client: socket.socket) -> bool:
        with self._lock:
            if self._cut:
                self.refused += 1
                return False
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            return False
        upstream.settimeout(None)
        with self._lock:
            if self._cut:  # cut while connecting
                _hang_up(upstream)
                self.refused += 1
                return False
            self._open.update((client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()
        return True

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                for sock in (source, sink):
                    self._open.discard(sock)
                    _hang_up(sock)


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

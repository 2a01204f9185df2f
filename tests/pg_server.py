"""PostgreSQL for the database tests, next to SQLite: the ``database_url`` fixture gives each test
an empty database of either kind (``test_x[sqlite]``, ``test_x[postgres]``).

Where the PostgreSQL databases live, in this order:

* ``$MOZART_TEST_POSTGRES_URL``, a server of yours: a role that may ``CREATE DATABASE``, e.g.
  ``postgresql://mozart:secret@db.example:5432/postgres``. Each test gets a database of its own
  there (``mozart_test_<pid>_<n>``), dropped afterwards. If it cannot be reached the
  PostgreSQL tests fail: you asked for it.
* otherwise a throwaway server, started once per test session on 127.0.0.1 (a free port, data in
  a temporary folder, no fsync, trust authentication) from PostgreSQL's own programs:
  ``initdb`` on ``PATH``, or Debian's ``/usr/lib/postgresql/<version>/bin`` (``apt-get install
  postgresql``), and stopped at the end, or when pytest dies. As root it runs as the ``postgres``
  user.
* otherwise the PostgreSQL variants are skipped, all with the same reason, and the end of the
  pytest run says which engines the database tests ran on and why not PostgreSQL.

``pytest -k 'not postgres'`` runs the SQLite variants alone.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

__all__ = ('ENV_URL', 'PostgresServer', 'postgres_server', 'database_url', 'is_postgres', 'pytest_terminal_summary')

ENV_URL = 'MOZART_TEST_POSTGRES_URL'
PROGRAMS = ('initdb', 'postgres')
START_TIMEOUT_S = 60


class Unavailable(Exception):
    """No PostgreSQL server can be had here; the message says why, for the skip."""


class Unusable(Exception):
    """$MOZART_TEST_POSTGRES_URL names a server that cannot be used: the PostgreSQL tests fail."""


@dataclass
class PostgresServer:
    admin_url: str  # postgresql://user@host:port/db, for asyncpg: CREATE / DROP DATABASE
    description: str  # where it is, for the summary
    version: str = ''
    _stop: Callable[[], None] | None = None
    _names: itertools.count = field(default_factory=lambda: itertools.count(1))

    def admin(self, *statements: str) -> list[Any]:
        """Run ``statements`` on the admin database (in a thread of its own: no event loop is touched)."""
        import asyncpg

        async def run() -> list[Any]:
            connection = await asyncpg.connect(self.admin_url, timeout=10)
            try:
                return [await connection.fetchval(statement) for statement in statements]
            finally:
                await connection.close()

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(run())).result()

    def url_of(self, database: str, driver: str = 'postgresql+asyncpg') -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.admin_url).set(drivername=driver, database=database)
        return url.render_as_string(hide_password=False)

    @contextlib.contextmanager
    def fresh_database(self):
        """A new, empty database for one test (its SQLAlchemy URL), dropped after it."""
        name = f'mozart_test_{os.getpid()}_{next(self._names)}'
        self.admin(f'CREATE DATABASE {name}')
        try:
            yield self.url_of(name)
        finally:
            self.admin(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


# --- finding and starting a server ------------------------------------------------------------


def find_bindir() -> Path | None:
    """A folder with initdb and postgres: PATH's, pg_config's, then Debian's newest version."""
    candidates: list[Path] = []
    if initdb := shutil.which('initdb'):
        candidates.append(Path(initdb).resolve().parent)
    if pg_config := shutil.which('pg_config'):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(Path(subprocess.run([pg_config, '--bindir'], capture_output=True, text=True,
                                                  timeout=10, check=True).stdout.strip()))

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r'\d+', Path(path).parent.name))

    candidates += [Path(p) for p in sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=version, reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / program, os.X_OK) for program in PROGRAMS):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _parent_death_signal() -> Callable[[], None] | None:
    """For Popen's preexec_fn: the server gets SIGQUIT (immediate shutdown) when pytest dies, even
    killed, so no server outlives its test run (Linux's PR_SET_PDEATHSIG; elsewhere nothing)."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here, not in the forked child
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGQUIT)  # 1: PR_SET_PDEATHSIG


def _remove_stale_folders(parent: str) -> None:
    """Folders of servers whose pytest was killed (the server went with it, not the folder)."""
    for folder in glob.glob(os.path.join(parent, 'mozart-pg-*')):
        with contextlib.suppress(OSError, ValueError):
            if time.time() - os.path.getmtime(folder) < 3600:
                continue  # perhaps a run starting now
            pid_file = Path(folder, 'data', 'postmaster.pid')
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid_file.read_text().split()[0]), 0)
                    continue  # still running
            shutil.rmtree(folder, ignore_errors=True)


def start_server(bindir: Path) -> PostgresServer:
    """initdb in a new temporary folder, then postgres in the foreground as our child; raises
    Unavailable with the programs' own words when that fails."""
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            account = pwd.getpwnam('postgres')
        except KeyError:
            raise Unavailable("running as root, and there is no 'postgres' user to run the server as "
                              "(Debian's postgresql package creates it)") from None
        as_user = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
    # as root, not under $TMPDIR: the postgres user must be able to reach the folder
    parent = '/tmp' if as_user and os.path.isdir('/tmp') else tempfile.gettempdir()
    _remove_stale_folders(parent)
    base = Path(tempfile.mkdtemp(prefix='mozart-pg-', dir=parent))
    if as_user:
        os.chown(base, as_user['user'], as_user['group'])
    data, log = base / 'data', base / 'server.log'
    process: subprocess.Popen | None = None

    def tail(text: str) -> str:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return ' / '.join(lines[-3:]) or 'no output'

    def stop() -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # immediate shutdown: the data is thrown away anyway
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(base, ignore_errors=True)

    try:
        done = subprocess.run([str(bindir / 'initdb'), '-D', str(data), '-U', 'postgres', '--auth=trust',
                               '--no-locale', '-E', 'UTF8', '--no-sync'],
                              capture_output=True, text=True, timeout=START_TIMEOUT_S, cwd=base, **as_user)
        if done.returncode:
            raise Unavailable(f'{bindir}/initdb failed: {tail(done.stderr + done.stdout)}')
        for _ in range(3):  # the free port may be taken before the server binds it: try another
            port = _free_port()
            with open(log, 'ab') as log_file:
                process = subprocess.Popen(
                    [str(bindir / 'postgres'), '-D', str(data), '-p', str(port), '-c', 'listen_addresses=127.0.0.1',
                     '-c', f'unix_socket_directories={base}', '-c', 'max_connections=200',
                     '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=base,
                    preexec_fn=_parent_death_signal(), **as_user)
            server = PostgresServer(f'postgresql://postgres@127.0.0.1:{port}/postgres',
                                    f'a throwaway server on 127.0.0.1:{port}, from {bindir}', _stop=stop)
            deadline = time.monotonic() + START_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    server.version = server.admin("SELECT current_setting('server_version')")[0]
                    return server
                except Exception:  # not listening yet, or still starting up
                    time.sleep(0.1)
            if process.poll() is None:
                raise Unavailable(f'{bindir}/postgres did not answer within {START_TIMEOUT_S} s: '
                                  f'{tail(log.read_text(errors="replace"))}')
        raise Unavailable(f'{bindir}/postgres did not start: {tail(log.read_text(errors="replace"))}')
    except (OSError, subprocess.SubprocessError) as exc:
        stop()
        raise Unavailable(f'could not run {bindir}: {exc}') from exc
    except BaseException:
        stop()
        raise


def obtain_server() -> PostgresServer:
    """The server the PostgreSQL variants use; Unavailable when there is none, Unusable for a bad $URL."""
    external = os.environ.get(ENV_URL, '').strip()
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        message = "asyncpg is not installed (pip install -e '.[test]')"
        if external:
            raise Unusable(f'${ENV_URL} is set but {message}') from None
        raise Unavailable(message) from None
    if external:
        from sqlalchemy.engine import make_url

        shown = make_url(external).render_as_string(hide_password=True)
        server = PostgresServer(make_url(external).set(drivername='postgresql').render_as_string(hide_password=False),
                                f'{shown} (${ENV_URL})')
        try:
            server.version = server.admin("SELECT current_setting('server_version')")[0]
        except Exception as exc:
            raise Unusable(f'${ENV_URL}={shown} cannot be used: {type(exc).__name__}: {exc}') from None
        return server
    bindir = find_bindir()
    if bindir is None:
        raise Unavailable(f"no PostgreSQL server programs (initdb, postgres) on PATH or in "
                          f"/usr/lib/postgresql/*/bin: apt-get install postgresql, or set ${ENV_URL}")
    return start_server(bindir)


# --- fixtures ---------------------------------------------------------------------------------

_status: dict[str, Any] = {}  # 'server': PostgresServer, or 'skipped' / 'failed': why, for the summary


@pytest.fixture(scope='session')
def postgres_server():
    """The PostgreSQL server of this session (see the module's docstring); skips when there is none."""
    try:
        server = obtain_server()
    except Unavailable as exc:
        _status['skipped'] = str(exc)
    except Unusable as exc:
        _status['failed'] = str(exc)
    if 'skipped' in _status:
        pytest.skip(f'no PostgreSQL: {_status["skipped"]}')
    if 'failed' in _status:
        pytest.fail(_status['failed'], pytrace=False)
    _status['server'] = server
    yield server
    server.stop()


@pytest.fixture(params=['sqlite', 'postgres'])
def database_url(request, tmp_path):
    """An empty database, SQLite (a file in tmp_path) or PostgreSQL (a database of its own): its URL."""
    if request.param == 'sqlite':
        yield f'sqlite+aiosqlite:///{tmp_path / "mozart.db"}'
        return
    server: PostgresServer = request.getfixturevalue('postgres_server')
    with server.fresh_database() as url:
        yield url


def is_postgres(url: str) -> bool:
    return url.startswith('postgresql')


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Plain lines: what the database tests did on SQLite and on PostgreSQL, and why not there."""
    counts: dict[str, dict[str, int]] = {'sqlite': {}, 'postgres': {}}
    for outcome in ('passed', 'failed', 'error', 'skipped'):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, 'nodeid', '')
            if report.when != 'call' and outcome == 'passed':
                continue  # a passed setup or teardown is not a test
            for engine in counts:
                if f'[{engine}' in nodeid or f'-{engine}]' in nodeid or f'-{engine}-' in nodeid:
                    counts[engine][outcome] = counts[engine].get(outcome, 0) + 1
    if not any(counts.values()):
        return

    def said(engine: str) -> str:
        return ', '.join(f'{n} {"errors" if outcome == "error" and n > 1 else outcome}'
                         for outcome, n in counts[engine].items()) or 'none run'

    terminalreporter.write_line(f'database tests on SQLite: {said("sqlite")}')
    if 'server' in _status:
        server = _status['server']
        terminalreporter.write_line(f'database tests on PostgreSQL {server.version.split()[0]} '
                                    f'({server.description}): {said("postgres")}')
    elif 'failed' in _status:
        terminalreporter.write_line(f'database tests on PostgreSQL: {said("postgres")}; {_status["failed"]}')
    elif 'skipped' in _status:
        terminalreporter.write_line(f'database tests on PostgreSQL: {said("postgres")}; '
                                    f'skipped because {_status["skipped"]}')
    else:
        terminalreporter.write_line(f'database tests on PostgreSQL: {said("postgres")}')

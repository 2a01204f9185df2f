"""Engine and session factory; the only place that knows which backend is in use.

SQLite (the default) gets WAL journaling (readers never block the writer),
a busy timeout (a writer waits for the lock instead of failing at once) and
enforced foreign keys, on every pooled connection. PostgreSQL needs none of
that: pass ``postgresql+asyncpg://...`` and the same queries run unchanged.
It gets the same bounded wait as its ``lock_timeout``: without one, a query
blocked by another transaction's lock would wait forever.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ('DEFAULT_URL', 'make_engine', 'make_session_factory')

DEFAULT_URL = 'sqlite+aiosqlite:///mozart.db'
# How long a SQLite writer waits for another writer's lock before SQLITE_BUSY.
DEFAULT_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str = DEFAULT_URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, **kwargs: Any) -> AsyncEngine:
    """Create the async engine for ``url``; extra ``kwargs`` go to ``create_async_engine``.

    ``busy_timeout_ms`` is SQLite's busy timeout and PostgreSQL's (asyncpg's)
    ``lock_timeout``. Queries retry a few times on top of it (see ``db.queries``),
    so the worst-case wait is a small multiple.
    """
    if busy_timeout_ms < 0:
        raise ValueError(f'busy_timeout_ms must be >= 0 (received {busy_timeout_ms})')
    sa_url = make_url(url)
    if sa_url.get_backend_name() == 'sqlite':
        # pysqlite's own busy handler; the PRAGMA below says the same thing
        kwargs.setdefault('connect_args', {}).setdefault('timeout', busy_timeout_ms / 1000)
    else:
        # drop connections the server closed while idle instead of failing a query
        kwargs.setdefault('pool_pre_ping', True)
        if sa_url.get_driver_name() == 'asyncpg':
            # then SQLSTATE 55P03, retried and raised as DatabaseBusyError; 0 would mean "wait forever"
            settings = kwargs.setdefault('connect_args', {}).setdefault('server_settings', {})
            settings.setdefault('lock_timeout', str(max(1, int(busy_timeout_ms))))
    # An error's message then leaves out the statement's values ([parameters: ...]): they hold user,
    # server and channel ids and file names, and errors are logged.
    kwargs.setdefault('hide_parameters', True)
    engine = create_async_engine(sa_url, **kwargs)
    if sa_url.get_backend_name() == 'sqlite':
        _install_sqlite_pragmas(engine, busy_timeout_ms)
    return engine


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, 'connect')
    def _set_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL itself may wait for a lock
            cursor.execute(f'PRAGMA busy_timeout = {int(busy_timeout_ms)}')
            cursor.execute('PRAGMA journal_mode = WAL')
            cursor.execute('PRAGMA foreign_keys = ON')
        finally:
            cursor.close()


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (no lazy reload on a closed session)."""
    return async_sessionmaker(engine, expire_on_commit=False)

"""Run Alembic migrations from code: the bot upgrades its database at start-up.

Typical use::

    engine = make_engine(url)
    await upgrade(engine)          # idempotent: a no-op when already at head

``upgrade_sql`` gives the dry-run SQL (``python -m db upgrade --sql``).
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import DEFAULT_URL, make_engine
from .errors import DatabaseBusyError
from .queries import classify_error

__all__ = ('ALEMBIC_INI', 'alembic_config', 'upgrade', 'upgrade_sql', 'current_revision', 'head_revision', 'revision')

ALEMBIC_INI = Path(__file__).with_name('alembic.ini')
# Bot processes (shards) and composing workers all migrate at start-up and take turns: on PostgreSQL
# on this transaction-scoped advisory lock, on SQLite on the database's write lock (BEGIN IMMEDIATE).
MIGRATION_LOCK_ID = 0x6D6F7A61  # "moza"
# How long a process starting up waits for another one's migration (or a busy database) before it
# gives up: longer than one busy timeout, as a migration on a loaded machine can outlast it.
MIGRATION_WAIT_S = 60.0


def alembic_config(url: str = DEFAULT_URL, *, configure_logger: bool = False) -> Config:
    """The package's Alembic config with ``sqlalchemy.url`` set to ``url``.

    ``configure_logger=False`` leaves the caller's logging alone.
    """
    config = Config(str(ALEMBIC_INI))
    # '%' is ConfigParser interpolation syntax; URL-encoded passwords contain it
    config.set_main_option('sqlalchemy.url', url.replace('%', '%%'))
    config.attributes['configure_logger'] = configure_logger
    return config


def _url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


async def upgrade(target: str | AsyncEngine = DEFAULT_URL, revision: str = 'head', *,
                  wait_s: float = MIGRATION_WAIT_S) -> None:
    """Migrate the database to ``revision`` (default: the newest); safe to call on every start.

    ``target`` is a URL or the bot's engine; with an engine, migrations run on
    one of its connections (so SQLite PRAGMAs apply) in one transaction. While
    the database stays busy (another process migrating) it tries again for up
    to ``wait_s`` seconds, then raises ``DatabaseBusyError``.
    """
    engine = make_engine(target) if isinstance(target, str) else target
    try:
        config = alembic_config(_url_of(engine))

        def run(connection: Connection) -> None:
            if connection.dialect.name == 'postgresql':
                connection.exec_driver_sql(f'SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})')
            elif connection.dialect.name == 'sqlite':  # the write lock now, not at the first DDL: one at a time
                connection.exec_driver_sql('BEGIN IMMEDIATE')
            config.attributes['connection'] = connection
            command.upgrade(config, revision)

        deadline = time.monotonic() + wait_s
        pause = 0.1
        while True:
            try:
                async with engine.begin() as connection:
                    await connection.run_sync(run)
                return
            except Exception as exc:  # locked / unreachable: a clear error, not a driver traceback
                error = classify_error(exc)
                if error is None:
                    raise
                if error is not DatabaseBusyError or time.monotonic() + pause > deadline:
                    raise error() from exc
            await asyncio.sleep(pause)
            pause = min(2 * pause, 2.0)
    finally:
        if isinstance(target, str):
            await engine.dispose()


def upgrade_sql(url: str = DEFAULT_URL, revision: str = 'head', *, from_revision: str | None = None) -> str:
    """The SQL ``upgrade`` would run, without touching any database (dry run).

    Offline mode cannot look at the database, so it starts at ``from_revision``
    (default: an empty database).
    """
    buffer = io.StringIO()
    config = alembic_config(url)
    config.output_buffer = buffer
    span = f'{from_revision}:{revision}' if from_revision else revision
    command.upgrade(config, span, sql=True)
    return buffer.getvalue()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def head_revision() -> str | None:
    """The newest revision shipped in ``db/migrations/versions``."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision(message: str, *, url: str = DEFAULT_URL, autogenerate: bool = True) -> None:
    """Create a new migration file; ``message`` says why (it becomes the docstring and file name).

    Autogenerate compares the models with the database at ``url``, so that
    database must be at head first. Runs synchronously (it uses ``asyncio.run``).
    """
    if not message.strip():
        raise ValueError('a migration needs a message saying why (received an empty one)')
    command.revision(alembic_config(url, configure_logger=True), message=message, autogenerate=autogenerate)

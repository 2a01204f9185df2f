"""Alembic environment for Mozart's database, usable three ways.

* ``db.migrate.upgrade(engine)`` hands over a live connection in
  ``config.attributes['connection']``: migrations run on it (the bot's own
  engine, with its SQLite PRAGMAs), inside the caller's event loop.
* ``alembic -c db/alembic.ini ...`` / ``python -m db upgrade``: no connection
  given, so an async engine is made from ``sqlalchemy.url`` and driven with
  ``asyncio.run`` (this runs in a thread with no event loop of its own).
* ``--sql``: offline mode, prints the SQL instead of running it.
"""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from db.models import Base, UTCDateTime

config = context.config
# the bot has its own logging set-up; only the alembic command line wants the ini's
if config.config_file_name is not None and config.attributes.get('configure_logger', True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def render_item(type_: str, obj, autogen_context):
    """Write our column types as plain SQLAlchemy ones: migrations must not import db.models."""
    if type_ == 'type' and isinstance(obj, UTCDateTime):
        return 'sa.DateTime(timezone=True)'
    return False


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        # SQLite cannot ALTER most things; batch mode copies the table instead
        render_as_batch=True,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option('sqlalchemy.url'), literal_binds=True, dialect_opts={'paramstyle': 'named'})
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix='sqlalchemy.', poolclass=pool.NullPool
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get('connection')) is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations())

"""``python -m db ...``: database maintenance commands.

The group is importable so the main CLI can mount it as ``mozart db``::

    from db.cli import db_group
    main.add_command(db_group, 'db')
"""

from __future__ import annotations

import asyncio
import os

import click

from . import migrate
from .engine import DEFAULT_URL, make_engine
from .errors import DatabaseError

__all__ = ('db_group',)

# $DATABASE_URL, as the bot reads it (bot.BotConfig): migrations go to the database the bot uses.
url_option = click.option(
    '--url', default=lambda: os.environ.get('DATABASE_URL') or DEFAULT_URL,
    show_default='$DATABASE_URL or ' + DEFAULT_URL,
    help='SQLAlchemy async URL, e.g. sqlite+aiosqlite:///mozart.db or postgresql+asyncpg://user@host/mozart.',
)


def _fail(exc: Exception, hint: str) -> None:
    click.secho(f'error: {exc}', fg='red', err=True)
    if exc.__cause__ is not None:  # the driver's own words, e.g. "unable to open database file"
        click.echo(f'cause: {getattr(exc.__cause__, "orig", exc.__cause__)}', err=True)
    click.echo(f'hint: {hint}', err=True)
    raise SystemExit(1)


@click.group('db')
def db_group() -> None:
    """Manage Mozart's database (migrations)."""


@db_group.command()
@url_option
@click.option('--sql', is_flag=True, help='Print the SQL instead of running it (dry run, from an empty database).')
@click.option('--revision', 'target', default='head', show_default=True, help='Revision to upgrade to.')
def upgrade(url: str, sql: bool, target: str) -> None:
    """Upgrade the database schema to the newest migration."""
    if sql:
        click.echo(migrate.upgrade_sql(url, target), nl=False)
        return

    async def run() -> str | None:
        engine = make_engine(url)
        try:
            await migrate.upgrade(engine, target)
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    try:
        now = asyncio.run(run())
    except (DatabaseError, OSError) as exc:
        _fail(exc, 'check --url and that the database is reachable and not locked.')
    except Exception as exc:  # sqlalchemy / alembic errors: show them, not a traceback
        _fail(exc, 'check --url; run with --sql to see the statements.')
    click.secho(f'Database at revision {now}.', fg='green')


@db_group.command()
@url_option
def current(url: str) -> None:
    """Show the database's revision and the newest one available."""

    async def run() -> str | None:
        engine = make_engine(url)
        try:
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    click.echo(f'database: {asyncio.run(run())}\nhead:     {migrate.head_revision()}')


@db_group.command()
@url_option
@click.option('-m', '--message', required=True, help='Why the schema changes; becomes the migration docstring.')
@click.option('--empty', is_flag=True, help='Do not autogenerate operations from the models.')
def revision(url: str, message: str, empty: bool) -> None:
    """Create a new migration from the difference between the models and the database at --url."""
    migrate.revision(message, url=url, autogenerate=not empty)

"""`mozart ratings export`: the bot's ratings as a ratings file (format in composer/feedback/records.py).

Each rated piece becomes one ``RatedRecord``: what replays it (kind, style, model version,
seed, params, MIDI) and its ratings under salted rater hashes. An author's rating of their own piece
is kept apart (``author_rating``: the author-is-rater flag), copies of one piece of music are one
record, and near-copies of uploaded files are left out unless asked for. No Discord id is written:
not the raters', not the author's, and no guild, channel or message id either.

The database is only read, never migrated or created: exporting from a wrong path must
not leave an empty ``mozart.db`` behind. It reads the bot's database, so it is serving's, not the
engine's: ``composer`` never imports ``db``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import click
from tqdm import tqdm

from composer.errors import MozartError
from composer.feedback.records import RatedRecord, RatingsSummary, rater_hash, write_records

if TYPE_CHECKING:
    import db

SALT_ENV = "MOZART_EXPORT_SALT"
DATABASE_URL_ENV = "DATABASE_URL"
REQUIRED_TABLES = ("pieces", "ratings")


class ExportError(MozartError):
    """The ratings cannot be exported: no such database, not Mozart's, or unreadable."""


# A remix that re-composed less than this share of an uploaded file (its strength) is a near-copy of
# music that may be someone else's: such pieces, and everything built on them, stay out of an export
# (and so out of fine-tuning) unless asked for.
NEAR_COPY_STRENGTH = 0.5


def near_copy(piece: db.PieceRow) -> bool:
    """Whether ``piece`` is, or is built on, a remix that kept most of an uploaded file."""
    from db import UPLOAD_STRENGTH

    params = piece.params or {}
    strength = params.get(UPLOAD_STRENGTH, params.get("strength") if piece.kind == "remix" else None)
    return strength is not None and float(strength) < NEAR_COPY_STRENGTH


def record_of(piece: db.PieceRow, ratings: list[tuple[int, int, bool]], salt: str) -> RatedRecord:
    """One piece and its (rater id, value, rater is the author) ratings as a record, every rater under
    ``rater_hash``; the author's own rating is kept apart (``author_rating``), never among ``ratings``."""
    from db import PERSONAL_PARAMS

    params = {k: v for k, v in (piece.params or {}).items() if k not in PERSONAL_PARAMS}
    return RatedRecord(
        piece_id=piece.id, kind=piece.kind, style=piece.style, model_version=piece.model_version,
        seed=int(piece.seed), params=params, midi=bytes(piece.midi),
        ratings={rater_hash(user_id, salt): int(value) for user_id, value, author in ratings if not author},
        created_at=piece.created_at.astimezone(dt.timezone.utc).isoformat(),
        author_rating=next((int(value) for _, value, author in ratings if author), None),
        near_copy=near_copy(piece),
    )


def merge_copies(rows: list[tuple[db.PieceRow, list[tuple[int, int, bool]]]]) -> list[tuple[db.PieceRow, list, int]]:
    """Copies of one piece of music (the same ``music_key``: /piece, a change of sound) as one piece: the
    first made, with each rater once (their rating of the latest copy they rated); and how many copies."""
    merged: dict[str, tuple[db.PieceRow, dict[int, tuple[int, int, bool]], list[int]]] = {}
    for piece, ratings in rows:  # by piece id: the first copy comes first
        key = piece.music_key or f"piece:{piece.id}"
        first, by_rater, count = merged.setdefault(key, (piece, {}, [0]))
        count[0] += 1
        for user_id, value, author in ratings:
            by_rater[user_id] = (user_id, value, author or by_rater.get(user_id, (0, 0, False))[2])
    return [(piece, list(by_rater.values()), count[0]) for piece, by_rater, count in merged.values()]


async def export_ratings(sessions: db.SessionFactory, out: str | Path, salt: str, *,
                         include_near_copies: bool = False) -> RatingsSummary:
    """Write every rated piece of the database to ``out`` (JSON lines); what the file holds.

    Copies of one piece of music are one record; near-copies of uploaded files are left out unless
    ``include_near_copies``."""
    import db

    if not salt:
        raise ExportError("An export needs a salt for the rater hashes (received an empty one).")
    try:
        rows = await db.ratings_for_export(sessions)
    except db.DatabaseError as e:
        raise ExportError(f"The ratings could not be read: {e}") from e
    records = []
    shown = tqdm(rows, desc="export", unit="piece", disable=None, dynamic_ncols=True, leave=False)  # None: a terminal only
    for piece, ratings, copies in merge_copies(shown):
        record = record_of(piece, ratings, salt)
        record.copies = copies
        if include_near_copies or not record.near_copy:
            records.append(record)
    write_records(out, records)
    return RatingsSummary.of(out, records)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _check_sqlite_file(url: str) -> None:
    """A SQLite URL must name an existing file: connecting would silently create an empty one."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        sa_url = make_url(url)
    except ArgumentError as e:
        raise ExportError(f"Not a database URL: {url!r} ({e}).") from None
    if sa_url.get_backend_name() != "sqlite":
        return
    database = sa_url.database or ""
    if database in ("", ":memory:"):
        raise ExportError(f"{url} is an in-memory database: there is nothing to export. Give the bot's database "
                          f"with --database-url or ${DATABASE_URL_ENV}.")
    path = Path(database.removeprefix("file:").split("?", 1)[0])
    if not path.is_file():
        raise ExportError(f"No database file at {path.resolve()}. Give the bot's database with --database-url "
                          f"(e.g. sqlite+aiosqlite:///path/to/mozart.db) or ${DATABASE_URL_ENV}.")


async def _check_tables(engine, url: str) -> None:
    from sqlalchemy import inspect

    from db.queries import classify_error

    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    except Exception as e:
        if classify_error(e) is None:
            raise
        raise ExportError(f"Cannot open the database {_shown(url)}: {getattr(e, 'orig', e)}") from e
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ExportError(f"{_shown(url)} has no {' or '.join(missing)} table: it is not a Mozart database, or "
                          f"it was never set up (the bot does that on start, or `python -m db upgrade`).")


async def export_from_url(url: str, out: str | Path, salt: str, *, include_near_copies: bool = False) -> RatingsSummary:
    """Open the database at ``url`` read-only in spirit (no migration, no new file) and export it."""
    import db

    _check_sqlite_file(url)
    engine = db.make_engine(url)
    try:
        await _check_tables(engine, url)
        return await export_ratings(db.make_session_factory(engine), out, salt,
                                    include_near_copies=include_near_copies)
    finally:
        await engine.dispose()


@click.command("export")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ratings file to write (JSON lines), e.g. ratings.jsonl.")
@click.option("--database-url", envvar=DATABASE_URL_ENV, show_envvar=True, default=None,
              help="The bot's database (SQLAlchemy URL). Default: $DATABASE_URL, else sqlite+aiosqlite:///mozart.db.")
@click.option("--salt", envvar=SALT_ENV, show_envvar=True, default=None,
              help="Secret that hashes the raters; the same salt gives the same hashes in every export. "
                   f"Prefer ${SALT_ENV} (an option shows up in the shell history). Default: a fresh random one.")
@click.option("--include-near-copies", is_flag=True, default=False,
              help=f"Also export remixes that re-composed less than {NEAR_COPY_STRENGTH:g} of an uploaded file (and "
                   "what was built on them): near-copies of music that may be someone else's. Off by default, so "
                   "fine-tuning never learns from them.")
def export_command(out: Path, database_url: str | None, salt: str | None, include_near_copies: bool) -> None:
    """Export every rated piece with its 👍/👎 (raters as salted hashes, no Discord ids)."""
    import db

    url = database_url or db.DEFAULT_URL
    fresh_salt = not salt
    if fresh_salt:
        salt = secrets.token_hex(16)
    try:
        summary = asyncio.run(export_from_url(url, out, salt, include_near_copies=include_near_copies))
    except MozartError as e:
        raise click.ClickException(str(e)) from None
    versions = ", ".join(summary.versions) or "none"
    click.echo(f"Exported {summary.pieces} rated pieces ({summary.liked} liked, {summary.disliked} disliked, "
               f"{summary.ratings} ratings; model versions: {versions}) to {out}")
    if fresh_salt:
        click.echo(f"Raters are hashed with a fresh random salt: they cannot be matched across exports "
                   f"(set ${SALT_ENV} or --salt to keep them stable).")

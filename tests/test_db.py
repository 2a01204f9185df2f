"""The database package against real databases migrated with Alembic: each test twice, on a SQLite
file in tmp_path (``[sqlite]``) and on an empty PostgreSQL database (``[postgres]``, see
tests/pg_server.py: skipped, saying why, where no PostgreSQL server can be had)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import math
import socket
import sqlite3
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

import db
from db.migrate import current_revision, head_revision
from tests.pg_server import is_postgres

MIDI = b'MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00'


def url_for(path) -> str:
    return f'sqlite+aiosqlite:///{path}'


@pytest.fixture
async def engine(database_url):
    engine = db.make_engine(database_url)
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine):
    return db.make_session_factory(engine)


async def new_piece(sessions, user_id=1, **overrides) -> db.PieceRow:
    fields = dict(
        user_id=user_id, guild_id=10, channel_id=20, kind='compose', style='zelda',
        params={'bars': 8, 'tempo': 120, 'key': 'C', 'time_signature': '4/4', 'temperature': 0.9},
        seed=2**40 + 7, model_version='v1', midi=MIDI,
    )
    fields.update(overrides)
    return await db.create_piece(sessions, **fields)


async def all_ratings(sessions) -> list[tuple[int, int, int]]:
    async with sessions() as s:
        rows = await s.execute(select(db.Rating.piece_id, db.Rating.user_id, db.Rating.value).order_by(db.Rating.id))
        return [tuple(r) for r in rows]


# --- migrations ------------------------------------------------------------------


async def test_migrations_create_schema_and_rerun_is_noop(database_url):
    engine = db.make_engine(database_url)
    try:
        assert await current_revision(engine) is None
        await db.upgrade(database_url)  # by URL, as `python -m db upgrade` does
        assert await current_revision(engine) == head_revision()

        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            # the migrated schema is exactly what the models describe
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), db.Base.metadata))
            if not is_postgres(database_url):
                journal = (await conn.exec_driver_sql('PRAGMA journal_mode')).scalar()
                foreign_keys = (await conn.exec_driver_sql('PRAGMA foreign_keys')).scalar()
                assert (journal, foreign_keys) == ('wal', 1)
        assert tables == {'alembic_version', 'pieces', 'ratings', 'remix_sources', 'model_versions', 'job_files'}
        assert diff == []

        sessions = db.make_session_factory(engine)
        piece = await new_piece(sessions)
        await db.upgrade(engine)  # second run: nothing to do, data untouched
        assert await current_revision(engine) == head_revision()
        assert (await db.get_piece(sessions, piece.id)).midi == MIDI
    finally:
        await engine.dispose()


def test_upgrade_sql_is_a_dry_run(tmp_path):
    path = tmp_path / 'never.db'
    sql = db.upgrade_sql(url_for(path))
    assert 'CREATE TABLE pieces' in sql and 'CREATE TABLE ratings' in sql
    assert not path.exists()
    # PostgreSQL's dialect, no server: ALTER where SQLite copies the table
    sql = db.upgrade_sql('postgresql+asyncpg://mozart@127.0.0.1:1/mozart')
    assert 'CREATE TABLE pieces' in sql and 'id SERIAL NOT NULL' in sql and 'midi BYTEA NOT NULL' in sql
    assert 'ALTER TABLE pieces ALTER COLUMN user_id DROP NOT NULL' in sql and '_keep_' not in sql


# --- pieces ----------------------------------------------------------------------


async def test_piece_round_trips_midi_and_params(sessions):
    created = await new_piece(sessions, kind='variation', originality_bars=1.5, duration_s=31.25)
    loaded = await db.get_piece(sessions, created.id)
    assert loaded is not created
    assert (loaded.midi, loaded.params, loaded.seed) == (MIDI, created.params, 2**40 + 7)
    assert (loaded.kind, loaded.originality_bars, loaded.duration_s) == ('variation', 1.5, 31.25)
    assert loaded.created_at == created.created_at and loaded.created_at.tzinfo is not None

    child = await new_piece(sessions, kind='extend', parent_id=created.id, params={'bars': 16})
    assert (await db.get_piece(sessions, child.id)).params != loaded.params
    assert await db.get_piece(sessions, 10_000) is None
    with pytest.raises(db.PieceNotFoundError):
        await new_piece(sessions, kind='variation', parent_id=10_000)


async def test_piece_ids_beyond_the_id_column_are_not_found(sessions):
    """/piece takes any positive integer a person types; PostgreSQL's integer ids stop at 2**31 - 1."""
    piece = await new_piece(sessions)
    for huge in (2**31, 2**53):
        assert await db.get_piece(sessions, huge) is None
        assert await db.rating_counts(sessions, huge) == (0, 0)
        assert await db.remix_source_of(sessions, huge) is None
        assert await db.delete_rating(sessions, huge, 1, 1) is False
        with pytest.raises(db.PieceNotFoundError):
            await db.delete_piece(sessions, huge, 1)
        with pytest.raises(db.PieceNotFoundError):
            await db.attach_message(sessions, huge, channel_id=1, message_id=2)
        with pytest.raises(db.PieceNotFoundError):
            await db.upsert_rating(sessions, huge, 1, 1)
        with pytest.raises(db.PieceNotFoundError):
            await new_piece(sessions, kind='variation', parent_id=huge)
        with pytest.raises(ValueError, match='no remix source'):
            await new_piece(sessions, kind='remix', remix_source_id=huge)
    assert (await db.get_piece(sessions, piece.id)).midi == MIDI


async def test_create_piece_rejects_unknown_kind(sessions):
    with pytest.raises(ValueError, match="received 'compse'"):
        await new_piece(sessions, kind='compse')


async def test_attach_message_and_find_piece_by_it(sessions):
    piece = await new_piece(sessions)
    message_id = 1_234_567_890_123_456_789  # snowflakes need 64 bits
    assert await db.piece_by_message(sessions, message_id) is None
    await db.attach_message(sessions, piece.id, channel_id=99, message_id=message_id)
    found = await db.piece_by_message(sessions, message_id)
    assert (found.id, found.channel_id) == (piece.id, 99)
    with pytest.raises(db.PieceNotFoundError, match='No piece with ID 777'):
        await db.attach_message(sessions, 777, channel_id=1, message_id=2)


async def test_delete_piece_checks_ownership(sessions):
    piece = await new_piece(sessions, user_id=1)
    with pytest.raises(db.PieceNotFoundError, match='is it yours'):
        await db.delete_piece(sessions, piece.id, user_id=2)
    await db.delete_piece(sessions, piece.id, user_id=1)
    assert await db.get_piece(sessions, piece.id) is None


async def test_remix_source_is_linked_in_the_same_transaction(sessions):
    source = await db.add_remix_source(sessions, user_id=5, filename='theme.mid', midi=MIDI)
    assert (source.sha256, source.size_bytes) == (hashlib.sha256(MIDI).hexdigest(), len(MIDI))
    remix = await new_piece(sessions, user_id=5, kind='remix', remix_source_id=source.id)
    async with sessions() as s:
        assert (await s.get(db.RemixSource, source.id)).piece_id == remix.id

    # someone else's upload: the whole transaction rolls back, no orphan piece
    async with sessions() as s:
        before = await s.scalar(select(func.count(db.PieceRow.id)))
    with pytest.raises(ValueError, match='no remix source'):
        await new_piece(sessions, user_id=6, kind='remix', remix_source_id=source.id)
    async with sessions() as s:
        assert await s.scalar(select(func.count(db.PieceRow.id))) == before


# --- ratings ---------------------------------------------------------------------


async def test_rating_upsert_and_delete_semantics(sessions):
    piece = await new_piece(sessions)
    await db.upsert_rating(sessions, piece.id, user_id=42, value=1)  # 👍
    await db.upsert_rating(sessions, piece.id, user_id=42, value=1)  # same again: no-op
    assert await all_ratings(sessions) == [(piece.id, 42, 1)]
    await db.upsert_rating(sessions, piece.id, user_id=42, value=-1)  # then 👎 replaces it
    assert await all_ratings(sessions) == [(piece.id, 42, -1)]
    assert await db.rating_counts(sessions, piece.id) == (0, 1)

    assert await db.delete_rating(sessions, piece.id, 42, value=1) is False  # removing the old 👍
    assert await all_ratings(sessions) == [(piece.id, 42, -1)]
    assert await db.delete_rating(sessions, piece.id, 42, value=-1) is True  # removing 👎
    assert await all_ratings(sessions) == []
    assert await db.rating_counts(sessions, piece.id) == (0, 0)


async def test_rating_validation(sessions):
    piece = await new_piece(sessions)
    with pytest.raises(ValueError, match=r'received 2'):
        await db.upsert_rating(sessions, piece.id, 1, 2)
    with pytest.raises(db.PieceNotFoundError):
        await db.upsert_rating(sessions, 9999, 1, 1)


async def test_200_concurrent_upserts_are_all_stored(sessions):
    piece = await new_piece(sessions)
    values = [1 if user % 3 else -1 for user in range(200)]
    await asyncio.gather(*(db.upsert_rating(sessions, piece.id, user, v) for user, v in enumerate(values)))
    likes, dislikes = await db.rating_counts(sessions, piece.id)
    assert (likes, dislikes) == (values.count(1), values.count(-1))
    assert len(await all_ratings(sessions)) == 200


async def test_stats_and_rated_pieces(sessions):
    good = await new_piece(sessions, user_id=9, model_version='v1')  # made by 9, rated by others
    bad = await new_piece(sessions, user_id=9, model_version='v1')
    await new_piece(sessions, user_id=9, model_version='v2')  # never rated
    for user in (1, 2, 3):
        await db.upsert_rating(sessions, good.id, user, 1)
    await db.upsert_rating(sessions, bad.id, 1, -1)
    await db.upsert_rating(sessions, bad.id, 2, 1)

    stats = await db.like_ratio_by_model_version(sessions)
    assert stats['v1'] == (2, 4, 1) and stats['v1'].ratio == 4 / 5
    assert stats['v2'] == (1, 0, 0) and math.isnan(stats['v2'].ratio)

    liked = await db.rated_pieces(sessions)
    assert [(r.piece.id, r.likes, r.dislikes) for r in liked] == [(good.id, 3, 0)]
    assert liked[0].piece.midi == MIDI
    everything = await db.rated_pieces(sessions, min_value=0)
    assert [r.piece.id for r in everything] == [good.id, bad.id]
    assert await db.rated_pieces(sessions, model_version='v2') == []


async def test_forget_user(sessions):
    mine = await new_piece(sessions, user_id=1)
    theirs = await new_piece(sessions, user_id=2)
    variation = await new_piece(sessions, user_id=2, kind='variation', parent_id=mine.id)
    await db.add_remix_source(sessions, user_id=1, filename='a.mid', midi=MIDI)
    await db.upsert_rating(sessions, theirs.id, 1, 1)
    await db.upsert_rating(sessions, theirs.id, 2, 1)
    await db.upsert_rating(sessions, mine.id, 2, -1)

    forgotten = await db.forget_user(sessions, 1)
    assert forgotten == db.ForgottenData(ratings=1, pieces=1, remix_sources=1)
    # 1's piece stays, anonymous, with 2's rating of it
    assert await all_ratings(sessions) == [(theirs.id, 2, 1), (mine.id, 2, -1)]
    assert (await db.get_piece(sessions, mine.id)).user_id is None
    assert (await db.get_piece(sessions, variation.id)).parent_id == mine.id
    assert await db.forget_user(sessions, 1) == (0, 0, 0)


async def test_forgetting_clears_where_the_pieces_were_posted(sessions):
    mine = await new_piece(sessions, user_id=1)
    await db.attach_message(sessions, mine.id, 20, 777)
    theirs = await new_piece(sessions, user_id=2)
    await db.attach_message(sessions, theirs.id, 20, 778)
    assert await db.posts_of_user(sessions, 1) == [(20, 777)]
    await db.forget_user(sessions, 1)
    row = await db.get_piece(sessions, mine.id)
    assert (row.user_id, row.guild_id, row.channel_id, row.message_id) == (None, None, None, None)
    assert await db.piece_by_message(sessions, 777) is None  # the post no longer leads to the piece
    assert (await db.get_piece(sessions, theirs.id)).message_id == 778
    assert await db.posts_of_user(sessions, 1) == []


async def test_a_piece_is_reached_from_its_server_or_by_its_author_only(sessions):
    here = await new_piece(sessions, user_id=1, guild_id=10)
    dm = await new_piece(sessions, user_id=1, guild_id=None)
    assert (await db.piece_in_reach(sessions, here.id, user_id=2, guild_id=10)).id == here.id  # same server
    assert await db.piece_in_reach(sessions, here.id, user_id=2, guild_id=11) is None  # another server
    assert await db.piece_in_reach(sessions, here.id, user_id=2, guild_id=None) is None  # 2's DMs
    assert await db.piece_in_reach(sessions, dm.id, user_id=2, guild_id=10) is None  # 1's DM stays private
    assert await db.piece_in_reach(sessions, dm.id, user_id=2, guild_id=None) is None
    assert (await db.piece_in_reach(sessions, dm.id, user_id=1, guild_id=11)).id == dm.id  # their own, anywhere
    assert (await db.piece_in_reach(sessions, here.id, user_id=1, guild_id=None)).id == here.id
    assert await db.piece_in_reach(sessions, 2**40, user_id=1, guild_id=10) is None


async def test_ratings_that_mean_something(sessions):
    """Authors' own ratings and copies of one piece of music do not count twice; a daily cap per person."""
    piece = await new_piece(sessions, user_id=1, music_key='m1')
    copy = await new_piece(sessions, user_id=1, kind='resound', parent_id=piece.id, music_key='m1')
    other = await new_piece(sessions, user_id=3, music_key='m2')
    for rated in (piece, copy):
        await db.upsert_rating(sessions, rated.id, 1, 1)  # the author, on their own pieces
        await db.upsert_rating(sessions, rated.id, 2, 1)  # someone else, on both copies
    await db.upsert_rating(sessions, other.id, 1, -1)
    assert await db.like_ratio_by_model_version(sessions) == {'v1': (3, 1, 1)}  # 2's 👍 once, 1's 👎 of 3's
    assert [(r.piece.id, r.likes) for r in await db.rated_pieces(sessions)] == [(piece.id, 1), (copy.id, 1)]
    stats = await db.public_stats(sessions, since=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), guild_id=10)
    assert (stats.ratings, stats.likes, stats.dislikes) == (3, 2, 1)
    exported = {p.id: r for p, r in await db.ratings_for_export(sessions)}
    assert exported[piece.id] == [(1, 1, True), (2, 1, False)] and exported[other.id] == [(1, -1, False)]
    # At most `daily_cap` new ratings a day; changing one already given is free.
    assert await db.upsert_rating(sessions, other.id, 2, 1, daily_cap=3) is True  # 2's third today
    extra = await new_piece(sessions, user_id=3)
    assert await db.upsert_rating(sessions, extra.id, 2, 1, daily_cap=3) is False
    assert await db.rating_counts(sessions, extra.id) == (0, 0)
    assert await db.upsert_rating(sessions, other.id, 2, -1, daily_cap=3) is True


async def test_stats_show_top_pieces_of_this_server_only(sessions):
    here = await new_piece(sessions, user_id=1, guild_id=10)
    elsewhere = await new_piece(sessions, user_id=1, guild_id=11)
    dm = await new_piece(sessions, user_id=1, guild_id=None)
    for piece in (here, elsewhere, dm):
        await db.upsert_rating(sessions, piece.id, 2, 1)
    since = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
    assert [r.piece.id for r in (await db.public_stats(sessions, since=since, guild_id=10)).top_pieces] == [here.id]
    assert (await db.public_stats(sessions, since=since, guild_id=None)).top_pieces == []


async def test_uploads_expire_with_their_file_names(sessions):
    from sqlalchemy import update

    fresh = await db.add_remix_source(sessions, user_id=1, filename='new.mid', midi=MIDI)
    remix = await new_piece(sessions, user_id=1, kind='remix', params={'bars': 8, 'source_file': 'old.mid'})
    old = await db.add_remix_source(sessions, user_id=1, filename='old.mid', midi=MIDI, piece_id=remix.id)
    async with sessions.begin() as s:
        await s.execute(update(db.RemixSource).where(db.RemixSource.id == old.id).values(
            created_at=db.models.utcnow() - dt.timedelta(days=31)))
    assert await db.expire_uploads(sessions, dt.timedelta(days=30)) == 1
    assert await db.remix_source_of(sessions, remix.id) is None
    assert (await db.get_piece(sessions, remix.id)).params == {'bars': 8}  # the remix stays, without the name
    async with sessions() as s:
        assert [r.id for r in (await s.execute(select(db.RemixSource))).scalars()] == [fresh.id]
    assert await db.expire_uploads(sessions, dt.timedelta(days=30)) == 0


# --- failures --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def lock_held_elsewhere(url: str):
    """Another process holds the lock a rating needs: SQLite's write lock, PostgreSQL's on ``ratings``."""
    if is_postgres(url):
        import asyncpg

        other = await asyncpg.connect(make_url(url).set(drivername='postgresql').render_as_string(hide_password=False))
        transaction = other.transaction()
        await transaction.start()
        await other.execute('LOCK TABLE ratings IN ACCESS EXCLUSIVE MODE')
        try:
            yield
        finally:
            await transaction.rollback()
            await other.close()
    else:
        other = sqlite3.connect(make_url(url).database, isolation_level=None)
        other.execute('BEGIN EXCLUSIVE')
        try:
            yield
        finally:
            other.execute('ROLLBACK')
            other.close()


async def test_locked_database_raises_busy_error_and_loses_nothing(database_url):
    engine = db.make_engine(database_url, busy_timeout_ms=50)
    try:
        await db.upgrade(engine)
        sessions = db.make_session_factory(engine)
        piece = await new_piece(sessions)

        # another process holds the lock for longer than the timeout (+ retries)
        async with lock_held_elsewhere(database_url):
            started = time.perf_counter()
            with pytest.raises(db.DatabaseBusyError) as excinfo:
                await db.upsert_rating(sessions, piece.id, 42, 1)
            assert time.perf_counter() - started < 2
            assert 'busy' in str(excinfo.value) and 'SELECT' not in str(excinfo.value)
            assert excinfo.value.__cause__ is not None  # the driver error, for the log

        assert await db.rating_counts(sessions, piece.id) == (0, 0)  # nothing half-written
        await db.upsert_rating(sessions, piece.id, 42, 1)  # and the database works again
        assert await db.rating_counts(sessions, piece.id) == (1, 0)
    finally:
        await engine.dispose()


async def test_a_start_waits_for_another_process_migrating(tmp_path):
    """A worker starting while another process holds the write lock (migrating on a loaded machine)
    waits for it, longer than one busy timeout, and gives up with a clear error only after wait_s."""
    url = url_for(tmp_path / 'mozart.db')
    engine = db.make_engine(url, busy_timeout_ms=50)
    try:
        async with lock_held_elsewhere(url):
            with pytest.raises(db.DatabaseBusyError, match='busy'):
                await db.upgrade(engine, wait_s=0.3)
        other = sqlite3.connect(tmp_path / 'mozart.db', isolation_level=None)
        other.execute('BEGIN EXCLUSIVE')
        asyncio.get_running_loop().call_later(1.0, lambda: (other.execute('ROLLBACK'), other.close()))
        await db.upgrade(engine)  # waits out the lock, then migrates
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()


def closed_port() -> int:
    with socket.socket() as s:  # free once closed: nobody listens there, connections are refused
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('kind', ['sqlite', 'postgres'])
async def test_unopenable_database_raises_unavailable_error(tmp_path, kind):
    if kind == 'sqlite':
        url = url_for(tmp_path / 'missing-dir' / 'x.db')
    else:  # no server needed: nobody listens there
        pytest.importorskip('asyncpg')
        url = f'postgresql+asyncpg://mozart@127.0.0.1:{closed_port()}/mozart'
    engine = db.make_engine(url)
    try:
        with pytest.raises(db.DatabaseUnavailableError, match='unavailable'):
            await db.get_piece(db.make_session_factory(engine), 1)
    finally:
        await engine.dispose()
        # aiosqlite stops the worker thread of a failed connect without awaiting it;
        # let it finish while the loop still runs, or it reports "Event loop is closed".
        for thread in threading.enumerate():
            if thread.name.endswith('(_connection_worker_thread)'):
                await asyncio.to_thread(thread.join, 2)

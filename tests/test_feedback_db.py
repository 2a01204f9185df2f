"""Forgetting a person, the ratings export, model versions and /stats, on migrated databases:
SQLite files and PostgreSQL databases (``[sqlite]``, ``[postgres]``: tests/pg_server.py)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update

import db
from composer.feedback.records import rater_hash, read_records
from db.migrate import alembic_config, current_revision, head_revision
from mozart_cli import ratings
from service.export import export_ratings
from tests.pg_server import is_postgres
from tests.test_db import MIDI, engine, sessions, url_for  # noqa: F401  (fixtures)

PREVIOUS_HEAD = '0b36aab347c6'
# Discord snowflakes: 18-19 digits, so a leak shows up as a substring
ALICE, BOB, CAROL = 312_345_678_901_234_567, 323_456_789_012_345_678, 334_567_890_123_456_789
GUILD, CHANNEL, MESSAGE = 445_678_901_234_567_890, 456_789_012_345_678_901, 467_890_123_456_789_012


async def new_piece(sessions, user_id, **overrides) -> db.PieceRow:
    fields = dict(
        user_id=user_id, guild_id=GUILD, channel_id=CHANNEL, kind='compose', style='zelda',
        params={'bars': 8, 'tempo': 120, 'key': 'C'}, seed=2**40 + 7, model_version='v1', midi=MIDI,
    )
    fields.update(overrides)
    return await db.create_piece(sessions, **fields)


async def table_rows(engine, table: str) -> list[tuple]:
    async with engine.connect() as conn:
        return [tuple(r) for r in (await conn.exec_driver_sql(f'SELECT * FROM {table} ORDER BY id')).all()]


async def set_created_at(sessions, piece_id: int, when: dt.datetime) -> None:
    async with sessions.begin() as s:
        await s.execute(update(db.PieceRow).where(db.PieceRow.id == piece_id).values(created_at=when))


# --- migration -------------------------------------------------------------------


async def downgrade(engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))

    def run(connection) -> None:
        config.attributes['connection'] = connection
        command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def test_database_at_previous_head_upgrades_with_its_rows_intact(database_url):
    engine = db.make_engine(database_url)  # on SQLite, foreign keys ON, like the bot's
    try:
        await db.upgrade(engine, PREVIOUS_HEAD)
        sessions = db.make_session_factory(engine)
        parent = await new_piece(sessions, ALICE)
        child = await new_piece(sessions, BOB, kind='variation', parent_id=parent.id)
        source = await db.add_remix_source(sessions, user_id=ALICE, filename='theme.mid', midi=MIDI)
        await new_piece(sessions, ALICE, kind='remix', remix_source_id=source.id)
        await db.add_remix_source(sessions, user_id=BOB, filename='unused.mid', midi=MIDI)
        await db.upsert_rating(sessions, parent.id, BOB, 1)
        await db.upsert_rating(sessions, child.id, ALICE, -1)
        before = {t: await table_rows(engine, t) for t in ('pieces', 'ratings', 'remix_sources')}
        assert all(before.values())

        await db.upgrade(engine)
        assert await current_revision(engine) == head_revision() != PREVIOUS_HEAD
        # nothing cascaded away by the table copy, parent links included (columns added since come last, empty)
        upgraded = {t: await table_rows(engine, t) for t in before}
        assert {t: [row[:len(before[t][0])] for row in rows] for t, rows in upgraded.items()} == before
        assert all(row[len(before['pieces'][0]):] == (None,) for row in upgraded['pieces'])  # music_key
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), db.Base.metadata))
            if not is_postgres(database_url):
                assert (await conn.exec_driver_sql('PRAGMA foreign_keys')).scalar() == 1
        assert diff == []
        assert await db.serving_versions(sessions) == []

        # and back: an anonymous piece needs a user id again (0), every row stays
        await db.forget_user(sessions, CAROL)  # nobody: nothing changes
        await new_piece(sessions, CAROL)
        await db.forget_user(sessions, CAROL)
        await downgrade(engine, PREVIOUS_HEAD)
        assert await current_revision(engine) == PREVIOUS_HEAD
        after = {t: await table_rows(engine, t) for t in before}
        assert after['ratings'] == before['ratings'] and after['remix_sources'] == before['remix_sources']
        assert after['pieces'][:-1] == before['pieces'] and after['pieces'][-1][2] == 0
    finally:
        await engine.dispose()


# --- forgetting a person ---------------------------------------------------------


async def people(sessions):
    """Alice (to be forgotten) and Bob, who rate each other's pieces and upload files."""
    source = await db.add_remix_source(sessions, user_id=ALICE, filename='alice-theme.mid', midi=MIDI)
    a_remix = await new_piece(sessions, ALICE, kind='remix', remix_source_id=source.id,
                              params={'bars': 8, 'source_file': 'alice-theme.mid'})
    a_plain = await new_piece(sessions, ALICE)
    await db.add_remix_source(sessions, user_id=ALICE, filename='never-used.mid', midi=MIDI)
    b_piece = await new_piece(sessions, BOB, style='doom')
    b_variation = await new_piece(sessions, BOB, kind='variation', parent_id=a_plain.id)
    await db.add_remix_source(sessions, user_id=BOB, filename='bob.mid', midi=MIDI, piece_id=b_piece.id)
    await db.upsert_rating(sessions, a_remix.id, ALICE, 1)  # her own piece
    await db.upsert_rating(sessions, b_piece.id, ALICE, -1)
    await db.upsert_rating(sessions, a_remix.id, BOB, 1)  # his ratings of her pieces stay
    await db.upsert_rating(sessions, a_plain.id, BOB, -1)
    await db.upsert_rating(sessions, b_piece.id, BOB, 1)
    return a_remix, a_plain, b_piece, b_variation


async def bobs_data(sessions):
    async with sessions() as s:
        pieces = [(p.id, p.kind, p.parent_id, p.params, p.midi, p.message_id) for p in
                  await s.scalars(select(db.PieceRow).where(db.PieceRow.user_id == BOB).order_by(db.PieceRow.id))]
        rated = [tuple(r) for r in await s.execute(
            select(db.Rating.piece_id, db.Rating.value).where(db.Rating.user_id == BOB).order_by(db.Rating.id))]
        uploads = [(u.id, u.piece_id, u.midi) for u in
                   await s.scalars(select(db.RemixSource).where(db.RemixSource.user_id == BOB))]
    return pieces, rated, uploads


async def test_forget_user_removes_ratings_and_uploads_and_anonymises_pieces(sessions):
    a_remix, a_plain, b_piece, b_variation = await people(sessions)
    bob_before = await bobs_data(sessions)

    counts = await db.user_data_counts(sessions, ALICE)
    assert counts == db.ForgottenData(ratings=2, pieces=2, remix_sources=2)
    assert await db.user_data_counts(sessions, ALICE) == counts  # counting removes nothing
    assert await db.forget_user(sessions, ALICE) == counts
    assert await db.user_data_counts(sessions, ALICE) == (0, 0, 0)
    assert await db.forget_user(sessions, ALICE) == (0, 0, 0)

    async with sessions() as s:
        assert await s.scalar(select(db.Rating).where(db.Rating.user_id == ALICE)) is None
        assert await s.scalar(select(db.RemixSource).where(db.RemixSource.user_id == ALICE)) is None
    for mine in (a_remix, a_plain):
        kept = await db.get_piece(sessions, mine.id)
        assert kept.user_id is None and kept.midi == MIDI and 'user_id=None' in repr(kept)
    # the file's name she gave is gone with the file; what replays the piece is kept
    assert (await db.get_piece(sessions, a_remix.id)).params == {'bars': 8}
    assert await db.remix_source_of(sessions, a_remix.id) is None
    assert await db.rating_counts(sessions, a_remix.id) == (1, 0)  # Bob's 👍
    assert await db.rating_counts(sessions, a_plain.id) == (0, 1)  # Bob's 👎
    assert await db.rating_counts(sessions, b_piece.id) == (1, 0)  # her 👎 is gone
    assert await bobs_data(sessions) == bob_before
    assert (await db.get_piece(sessions, b_variation.id)).parent_id == a_plain.id

    # an anonymous piece belongs to nobody
    with pytest.raises(db.PieceNotFoundError):
        await db.delete_piece(sessions, a_plain.id, None)
    with pytest.raises(TypeError):
        await db.forget_user(sessions, None)
    assert await db.get_piece(sessions, a_plain.id) is not None


# --- export ----------------------------------------------------------------------


async def test_export_has_no_discord_ids_and_round_trips(sessions, tmp_path):
    a_remix, a_plain, b_piece, _ = await people(sessions)
    await db.attach_message(sessions, b_piece.id, CHANNEL, MESSAGE)
    await db.upsert_rating(sessions, b_piece.id, CAROL, 1)
    await db.forget_user(sessions, ALICE)  # an anonymous piece exports like any other
    await db.upsert_rating(sessions, a_plain.id, CAROL, 1)

    out = tmp_path / 'out' / 'ratings.jsonl'
    summary = await export_ratings(sessions, out, 'pepper')
    text = out.read_text()
    for secret in (ALICE, BOB, CAROL, GUILD, CHANNEL, MESSAGE):
        assert str(secret) not in text
    assert 'alice-theme' not in text

    records = {r.piece_id: r for r in read_records(out)}
    assert sorted(records) == sorted([a_remix.id, a_plain.id, b_piece.id])
    assert all(r.midi == MIDI for r in records.values())
    assert (records[a_remix.id].likes, records[a_remix.id].dislikes) == (1, 0)
    assert (records[a_plain.id].likes, records[a_plain.id].dislikes) == (1, 1)
    assert (records[b_piece.id].likes, records[b_piece.id].dislikes) == (1, 0)  # Bob's own 👍 kept apart
    bob, carol = rater_hash(BOB, 'pepper'), rater_hash(CAROL, 'pepper')
    assert records[a_plain.id].ratings == {bob: -1, carol: 1}
    assert records[b_piece.id].ratings == {carol: 1}  # the same person, the same hash
    assert records[b_piece.id].author_rating == 1 and records[b_piece.id].author_is_rater
    assert not records[a_plain.id].author_is_rater and '"author_is_rater": true' in text
    assert records[b_piece.id].style == 'doom' and records[b_piece.id].seed == 2**40 + 7
    assert records[b_piece.id].created_at.endswith('+00:00')
    assert (summary.pieces, summary.liked, summary.disliked, summary.ratings) == (3, 2, 0, 4)
    assert summary.versions == ['v1']

    await export_ratings(sessions, tmp_path / 'other.jsonl', 'salt2')
    assert bob not in (tmp_path / 'other.jsonl').read_text()


# --- model versions --------------------------------------------------------------


async def test_model_versions_serve_retire_and_serve_again(sessions):
    assert await db.serving_versions(sessions) == []
    v1 = await db.serve_version(sessions, 'v1', 'models/v1')
    await db.serve_version(sessions, 'v2', 'models/v2', parent='v1')
    assert [(v.name, v.path, v.parent, v.state) for v in await db.serving_versions(sessions)] == [
        ('v1', 'models/v1', None, 'serving'), ('v2', 'models/v2', 'v1', 'serving')]

    assert await db.retire_version(sessions, 'v1') is True
    assert await db.retire_version(sessions, 'v1') is False  # already retired
    assert await db.retire_version(sessions, 'nope') is False
    assert [v.name for v in await db.serving_versions(sessions)] == ['v2']
    async with sessions() as s:
        retired = await s.get(db.ModelVersion, 'v1')
    assert retired.state == 'retired' and retired.retired_at is not None

    again = await db.serve_version(sessions, 'v1', '/srv/mozart/v1')
    assert (again.state, again.path, again.retired_at, again.added_at) == ('serving', '/srv/mozart/v1', None, v1.added_at)
    assert [v.name for v in await db.serving_versions(sessions)] == ['v1', 'v2']  # oldest first

    with pytest.raises(ValueError):
        await db.serve_version(sessions, '', 'x')
    with pytest.raises(sa_exc.IntegrityError):  # the CHECK constraint
        async with sessions.begin() as s:
            s.add(db.ModelVersion(name='v3', path='p', state='paused', added_at=db.models.utcnow()))


async def test_export_counts_copies_once_and_leaves_near_copies_of_uploads_out(sessions, tmp_path):
    first = await new_piece(sessions, ALICE, music_key='tune')
    copy = await new_piece(sessions, BOB, kind='resound', parent_id=first.id, music_key='tune')  # /piece
    near = await new_piece(sessions, ALICE, kind='remix', params={'bars': 8, 'strength': 0.05})
    built_on = await new_piece(sessions, ALICE, kind='extend', parent_id=near.id,
                               params={'bars': 16, db.UPLOAD_STRENGTH: 0.05})
    free = await new_piece(sessions, ALICE, kind='remix', params={'bars': 8, 'strength': 0.9})
    for piece in (first, copy, near, built_on, free):
        await db.upsert_rating(sessions, piece.id, CAROL, 1)
    await db.upsert_rating(sessions, copy.id, BOB, 1)  # Bob's 👍 of his own copy: the author's, kept apart

    out = tmp_path / 'ratings.jsonl'
    await export_ratings(sessions, out, 'pepper')
    records = {r.piece_id: r for r in read_records(out)}
    assert sorted(records) == [first.id, free.id]  # near-copies of an upload (and what is built on them) left out
    carol = rater_hash(CAROL, 'pepper')
    assert records[first.id].ratings == {carol: 1} and records[first.id].copies == 2  # Carol counts once
    assert records[first.id].author_is_rater  # one copy's author rated it
    await export_ratings(sessions, out, 'pepper', include_near_copies=True)
    assert sorted(r.piece_id for r in read_records(out)) == [first.id, near.id, built_on.id, free.id]
    assert all(r.near_copy == (r.piece_id in (near.id, built_on.id)) for r in read_records(out))


# --- /stats ----------------------------------------------------------------------


async def test_public_stats_orders_styles_and_picks_the_weeks_top_pieces(sessions):
    now = dt.datetime.now(dt.timezone.utc)
    since = now - dt.timedelta(days=7)
    raters = iter(range(1000, 2000))

    async def piece(style, likes, dislikes, days_ago=0):
        made = await new_piece(sessions, ALICE, style=style)
        for value in [1] * likes + [-1] * dislikes:
            await db.upsert_rating(sessions, made.id, next(raters), value)
        if days_ago:
            await set_created_at(sessions, made.id, now - dt.timedelta(days=days_ago))
        return made

    old_hit = await piece('doom', 9, 0, days_ago=30)  # best ever, but not this week
    z1 = await piece('zelda', 3, 0)  # zelda 3/3: share 4/5
    d1 = await piece('doom', 2, 1)  # doom 11/12 overall: share 12/14
    await piece('mario', 1, 1)  # net 0: never a top piece
    await piece('mario', 0, 2)
    await piece('tetris', 0, 0)  # never rated
    s1 = await piece('sonic', 1, 0)  # share 2/3

    stats = await db.public_stats(sessions, since=since, top=5, guild_id=GUILD)
    assert (stats.pieces, stats.ratings, stats.likes, stats.dislikes) == (7, 20, 16, 4)
    assert stats.styles == [('doom', 2, 11, 1), ('zelda', 1, 3, 0), ('sonic', 1, 1, 0), ('mario', 2, 1, 3)]
    assert [(r.piece.id, r.likes, r.dislikes) for r in stats.top_pieces] == [(z1.id, 3, 0), (d1.id, 2, 1), (s1.id, 1, 0)]
    assert old_hit.id not in [r.piece.id for r in stats.top_pieces]  # nor m1: net 0

    fewer = await db.public_stats(sessions, since=since, top=1, min_ratings=3, guild_id=GUILD)
    assert [s[0] for s in fewer.styles] == ['doom', 'zelda', 'mario']
    assert [r.piece.id for r in fewer.top_pieces] == [z1.id]
    everything = await db.public_stats(sessions, since=now - dt.timedelta(days=60), min_ratings=0, guild_id=GUILD)
    assert everything.top_pieces[0].piece.id == old_hit.id
    assert ('tetris', 1, 0, 0) in everything.styles  # share 1/2, ahead of mario's 2/6
    assert everything.styles[-2:] == [('tetris', 1, 0, 0), ('mario', 2, 1, 3)]
    with pytest.raises(ValueError, match='naive'):
        await db.public_stats(sessions, since=dt.datetime.now())


# --- the command -----------------------------------------------------------------


def test_export_command_refuses_a_missing_database_without_creating_it(tmp_path, monkeypatch):
    monkeypatch.delenv('DATABASE_URL', raising=False)
    missing = tmp_path / 'nowhere.db'
    out = tmp_path / 'ratings.jsonl'
    result = CliRunner().invoke(ratings, ['export', '--out', str(out), '--database-url', url_for(missing)])
    assert result.exit_code == 1, result.output
    assert 'No database file at' in result.output and 'Traceback' not in result.output
    assert not missing.exists() and not out.exists()

    empty = tmp_path / 'empty.db'
    empty.write_bytes(b'')
    result = CliRunner().invoke(ratings, ['export', '--out', str(out)], env={'DATABASE_URL': url_for(empty)})
    assert result.exit_code == 1 and 'not a Mozart database' in result.output, result.output


def test_export_command_writes_the_file_and_a_summary(tmp_path, monkeypatch, database_url):
    monkeypatch.delenv('MOZART_EXPORT_SALT', raising=False)

    async def fill():
        engine = db.make_engine(database_url)
        try:
            await db.upgrade(engine)
            sessions = db.make_session_factory(engine)
            made = await new_piece(sessions, ALICE, model_version='v7')
            await db.upsert_rating(sessions, made.id, BOB, 1)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    out = tmp_path / 'ratings.jsonl'
    result = CliRunner().invoke(ratings, ['export', '--out', str(out), '--database-url', database_url])
    assert result.exit_code == 0, result.output
    assert 'Exported 1 rated pieces (1 liked, 0 disliked, 1 ratings; model versions: v7)' in result.output
    assert 'cannot be matched across exports' in result.output
    assert len(read_records(out)) == 1

    again = tmp_path / 'again.jsonl'
    result = CliRunner().invoke(ratings, ['export', '--out', str(again)],
                                env={'DATABASE_URL': database_url, 'MOZART_EXPORT_SALT': 'pepper'})
    assert result.exit_code == 0 and 'cannot be matched' not in result.output, result.output
    assert read_records(again)[0].ratings == {rater_hash(BOB, 'pepper'): 1}


def test_the_engines_export_command_points_to_the_bots():
    from composer.cli.ratings import ratings as engine_ratings

    moved = CliRunner().invoke(engine_ratings, ["export", "--out", "ratings.jsonl"])
    assert moved.exit_code == 2 and "mozart ratings export" in moved.output  # it moved: say where
    assert "export" not in CliRunner().invoke(engine_ratings, ["--help"]).output.split("Commands:")[1]
    assert "salted" in CliRunner().invoke(ratings, ["export", "--help"]).output  # the bot's own export

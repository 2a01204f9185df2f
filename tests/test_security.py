"""A public bot that keeps its promises under abuse, end to end against the fake Discord: limits nobody
steps around, pieces that stay where they were made, ratings that mean something, data that goes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time

import pytest

import db
from bot import build
from cogs.utils.limits import ComposeLimits
from composer.music.grid import Piece
from composer.music.midi_io import to_midi
from composer.generate.request import GenerationRequest
from service.jobs import Result
from fakediscord import Upload
from tests.conftest import OTHER_USER, bot_config, posted_piece, wait_rating


async def compose_in(fake, user_id=None, channel_id=None, **options):
    interaction = await fake.slash("compose", {"style": "doom", "bars": 4, **options}, user_id=user_id,
                                   channel_id=channel_id)
    return await posted_piece(fake, interaction)


def _jobs(caplog) -> list[dict]:
    return [r.job for r in caplog.records if r.name == "mozart.jobs"]


async def test_stems_take_the_persons_turn_and_leave_a_job_log_line(fake, tmp_path, tiny_checkpoint, caplog):
    limits = ComposeLimits(in_flight=1, burst=2, refill_s=600, max_waiting=0)
    bot = await build(bot_config(tmp_path, tiny_checkpoint, limits=limits))
    async with fake.running(bot):
        message = await compose_in(fake)
        first = await fake.click(message.id, "mozart:stems")
        await fake.wait_for(lambda: next((m for m in first.followups if m.files), None), 60, "the stems")
        again = await fake.click(message.id, "mozart:stems")  # the burst is spent: refused, not queued
        response = await again.wait_response(3)
        assert response.ephemeral and "try again" in response.data["content"]
    kinds = [(j["kind"], j["outcome"]) for j in _jobs(caplog)]
    assert kinds == [("compose", "ok"), ("stems", "ok"), ("stems", "TooManyWaitingError")]


async def test_a_remix_takes_its_turn_before_downloading_anything(fake, tmp_path, tiny_checkpoint):
    limits = ComposeLimits(in_flight=1, burst=1, refill_s=600, max_waiting=0)
    bot = await build(bot_config(tmp_path, tiny_checkpoint, limits=limits))
    piece = Piece.empty(2)
    async with fake.running(bot):
        await compose_in(fake)
        refused = await fake.slash("remix", {"midi": Upload("tune.mid", to_midi(piece)), "style": "bach"})
        response = await refused.wait_response(3)
        assert response.ephemeral and "try again" in response.data["content"]
        assert not [c for c in fake.calls if c.method == "GET" and "/attachments/" in c.path]


async def test_too_long_music_gets_a_clear_answer_at_once(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        slow = await fake.slash("compose", {"style": "doom", "bars": 128, "tempo": 30, "time_signature": "4/4"})
        response = await slow.wait_response(3)
        assert response.ephemeral
        assert "would last 17.1 minutes; the most I make is 10 minutes" in response.data["content"]


def test_files_over_the_upload_limit_leave_the_midi_with_a_note():
    from cogs.utils.posting import build_files

    result = Result(piece=Piece.empty(1), files={"mp3": b"m" * 400, "mid": b"MThd", "png": b"p" * 50},
                    originality_bars=None, originality_source=None)
    files, notes = build_files(result, "piece", max_bytes=100)
    assert [f.filename for f in files] == ["piece.mid", "piece.png"]
    assert len(notes) == 1 and notes[0].startswith("The MP3") and "upload limit" in notes[0]
    files, notes = build_files(result, "piece", max_bytes=420)  # together: the MP3 and MIDI fit, not the picture
    assert [f.filename for f in files] == ["piece.mp3", "piece.mid"] and "piano roll" in notes[0]


async def test_pieces_stay_where_they_were_made(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    alice, bob = fake.user_id, OTHER_USER
    async with fake.running(bot):
        in_dm = await compose_in(fake, channel_id=fake.dm_channel_id(alice), seed=1)
        in_server = await compose_in(fake, seed=2)
        dm_row = await db.piece_by_message(bot.db, in_dm.id)
        server_row = await db.piece_by_message(bot.db, in_server.id)
        # Bob reaches the server's piece from the server, never Alice's DM piece, nor anything from his DMs.
        for piece_id, channel in ((dm_row.id, None), (server_row.id, fake.dm_channel_id(bob))):
            asked = await fake.slash("piece", {"id": piece_id}, user_id=bob, channel_id=channel)
            response = await asked.wait_response(3)
            assert response.ephemeral and f"no piece #{piece_id} here" in response.data["content"]
        copy = await posted_piece(fake, await fake.slash("piece", {"id": server_row.id}, user_id=bob))
        assert (await db.piece_by_message(bot.db, copy.id)).user_id == bob
        # Alice reaches her own DM piece from anywhere.
        await posted_piece(fake, await fake.slash("piece", {"id": dm_row.id}, user_id=alice))
        # /stats in the server links the server's pieces only
        await fake.react(in_dm.id, "👍", user_id=bob)
        await fake.react(in_server.id, "👍", user_id=bob)
        await wait_rating(bot, server_row.id, bob, 1)
        stats = (await (await fake.slash("stats", user_id=bob)).wait_response(5)).data["embeds"][0]
        top = stats["fields"][1]["value"]
        assert f"#{server_row.id}" in top and f"#{dm_row.id} " not in top
        in_dm_stats = (await (await fake.slash("stats", channel_id=fake.dm_channel_id(alice))).wait_response(5))
        assert "#" not in in_dm_stats.data["embeds"][0]["fields"][1]["value"]


async def test_a_copy_never_carries_someone_elses_upload_or_its_name(fake, tmp_path, tiny_checkpoint):
    from composer.generate.generator import Generator

    source = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        remix = await posted_piece(fake, await fake.slash("remix", {"midi": Upload("alice-secret.mid", to_midi(source)),
                                                               "style": "bach"}))
        remix_row = await db.piece_by_message(bot.db, remix.id)
        assert remix_row.params["source_file"] == "alice-secret.mid"
        copy = await posted_piece(fake, await fake.slash("piece", {"id": remix_row.id}, user_id=OTHER_USER))
        copy_row = await db.piece_by_message(bot.db, copy.id)
        assert "source_file" not in copy_row.params and "alice-secret" not in str(copy_row.params)
        reroll = await fake.click(copy.id, "mozart:reroll", user_id=OTHER_USER)  # would compose from her file
        answer = await fake.wait_for(lambda: next((m for m in reroll.followups if m.ephemeral), None), 30)
        assert "someone else's file" in answer.content
        # Alice herself may: her own upload
        mine = await fake.click(remix.id, "mozart:reroll")
        assert (await db.piece_by_message(bot.db, (await posted_piece(fake, mine)).id)).kind == "reroll"


async def test_own_ratings_and_a_flood_of_ratings_do_not_count(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint, ratings_per_day=2))
    async with fake.running(bot):
        messages = [await compose_in(fake, seed=s) for s in (1, 2, 3)]
        rows = [await db.piece_by_message(bot.db, m.id) for m in messages]
        await fake.react(messages[0].id, "👍")  # the author, on their own piece
        await wait_rating(bot, rows[0].id, fake.user_id, 1)
        assert (await db.like_ratio_by_model_version(bot.db))[rows[0].model_version][1:] == (0, 0)
        for message in messages:
            await fake.react(message.id, "👍", user_id=OTHER_USER)

        async def stored():
            from sqlalchemy import select

            async with bot.db() as session:
                rated = set((await session.execute(select(db.Rating.piece_id).where(
                    db.Rating.user_id == OTHER_USER))).scalars())
            return [row for row in rows if row.id in rated]

        deadline = time.monotonic() + 10
        while len(await stored()) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        kept = await stored()
        assert len(kept) == 2  # the third of the day is not stored (whichever came third)
        await fake.react(kept[0].message_id, "👎", user_id=OTHER_USER)  # changing one is free
        await wait_rating(bot, kept[0].id, OTHER_USER, -1)


async def test_forget_me_takes_down_the_posts_and_where_they_were(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        mine = await compose_in(fake)
        theirs = await compose_in(fake, user_id=OTHER_USER)
        row = await db.piece_by_message(bot.db, mine.id)
        ask = await fake.slash("forget-me")
        prompt = await fake.wait_for(lambda: ask.original, 5, "the confirmation")
        assert "takes down my posts" in prompt.content
        done = await fake.click(prompt.id, prompt.custom_ids[0])
        assert "taking down my 1 post" in (await done.wait_response(5)).data["content"]
        await fake.wait_for(lambda: fake.messages[mine.id].deleted, 5, "the post taken down")
        assert not fake.messages[theirs.id].deleted
        kept = await db.get_piece(bot.db, row.id)
        assert (kept.user_id, kept.guild_id, kept.channel_id, kept.message_id) == (None, None, None, None)
        privacy = (await (await fake.slash("privacy")).wait_response(5)).data["content"]
        assert "**30 days**" in privacy and "pseudonym" in privacy and "2 new ratings" not in privacy


async def test_uploads_past_their_time_are_deleted_while_the_bot_runs(fake, tmp_path, tiny_checkpoint):
    from sqlalchemy import select, update

    config = bot_config(tmp_path, tiny_checkpoint, upload_days=30)
    engine = db.make_engine(config.database_url)
    await db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    old = await db.add_remix_source(sessions, user_id=OTHER_USER, filename="old.mid", midi=b"MThd")
    async with sessions.begin() as s:
        await s.execute(update(db.RemixSource).where(db.RemixSource.id == old.id).values(
            created_at=db.models.utcnow() - dt.timedelta(days=31)))
    await engine.dispose()
    bot = await build(config)
    async with fake.running(bot):
        async def gone():
            async with bot.db() as s:
                return not (await s.execute(select(db.RemixSource.id))).all()

        deadline = time.monotonic() + 10
        while not await gone():
            assert time.monotonic() < deadline, "the old upload is still stored"
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_one_persons_flood_of_buttons_leaves_others_answered(fake, tmp_path, tiny_checkpoint, caplog):
    """One person presses 📦, ⏩ and 🔁 as fast as the fake allows; another's /compose is still answered at once
    and composed after at most one of the flooder's jobs (benchmarks/abuse.py measures it for 10 s)."""
    caplog.set_level(logging.INFO, logger="mozart.jobs")
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        target = await compose_in(fake, user_id=OTHER_USER, seed=1)
        stop = time.monotonic() + 4
        presses = 0

        async def flood():
            nonlocal presses
            while time.monotonic() < stop:
                for button in ("mozart:stems", "mozart:extend", "mozart:reroll"):
                    await fake.click(target.id, button, user_id=OTHER_USER)
                    presses += 1
                await asyncio.sleep(0.01)

        flooding = asyncio.create_task(flood())
        await asyncio.sleep(2.0)
        started = time.monotonic()
        other = await fake.slash("compose", {"style": "bach", "bars": 4})
        response = await other.wait_response(3)
        assert response.deferred and not response.ephemeral
        await posted_piece(fake, other, timeout=60)
        waited = time.monotonic() - started
        await flooding
    jobs = _jobs(caplog)
    flooder = [j for j in jobs if j["kind"] != "compose"]
    refused = sum(j["outcome"] == "TooManyWaitingError" for j in flooder)
    assert presses > 20 and refused >= 1  # told once to try again later; the presses after that go unanswered
    assert sum(j["outcome"] == "ok" for j in flooder) <= 8  # their limits held: a few at a time
    victim = next(j for j in jobs if j["style"] == "bach")
    longest = max(j["generate_s"] + j["render_s"] for j in flooder if j["outcome"] == "ok")
    assert victim["queued_s"] <= longest + 2.0, (victim, longest)  # behind one job of theirs at most
    assert waited < 60


async def test_model_folders_are_offered_to_the_owner_only(fake, tmp_path, tiny_checkpoint):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_checkpoint, models / "secret-experiment")
    bot = await build(bot_config(tmp_path, tiny_checkpoint, models_dir=str(models)))
    async with fake.running(bot):
        assert await fake.autocomplete("model load", "name", "", user_id=OTHER_USER) == []
        assert await fake.autocomplete("model retire", "version", "", user_id=OTHER_USER) == []
        offered = await fake.autocomplete("model load", "name", "", user_id=fake.owner_id)
        assert [c["value"] for c in offered] == ["secret-experiment"]


def test_the_log_handler_redacts_any_discord_id_left_in_a_line():
    import io

    from bot import RedactIds

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactIds())
    logger = logging.getLogger("mozart.test-redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("user %s in guild %d, 12 bars at 0.123456789012345678 s", 312345678901234567, 445678901234567890)
        try:
            raise ValueError("Key (message_id)=(456789012345678901) already exists")
        except ValueError:
            logger.exception("could not store")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "user <id> in guild <id>, 12 bars" in text and "0.123456789012345678" in text
    assert "456789012345678901" not in text and "(message_id)=(<id>)" in text

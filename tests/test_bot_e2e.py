"""The real bot, end to end, against a fake Discord (gateway + REST on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import db
from bot import BotConfig, build
from composer.request import GenerationRequest
from composer.midi_io import to_midi
from tests.fakediscord import FakeDiscord, Upload

ROOT = Path(__file__).resolve().parents[1]
OTHER_USER = 555_000_111


def _config(tmp_path, tiny_checkpoint, **overrides) -> BotConfig:
    settings = dict(token="fake-token", database_url=f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}",
                    checkpoint=str(tiny_checkpoint), device="cpu", compose_cooldown_s=0)
    settings.update(overrides)
    return BotConfig(**settings)


@pytest.fixture
async def fake():
    async with FakeDiscord() as server:
        yield server


async def _wait_rating(bot, piece_id, user_id, expected, timeout=5.0):
    """Poll the database until the user's rating of the piece is ``expected`` (None = none)."""
    from sqlalchemy import select

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with bot.db() as session:
            value = (await session.execute(select(db.Rating.value).where(
                db.Rating.piece_id == piece_id, db.Rating.user_id == user_id))).scalar_one_or_none()
        if value == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"rating is {value}, expected {expected}")
        await asyncio.sleep(0.05)


async def _posted(fake, interaction, timeout=60.0):
    """The piece message, once finished: files posted (after progress edits) and rating prompts added."""
    def finished():
        message = interaction.original
        if message is not None and message.attachments and {"👍", "👎"} <= set(message.reactions):
            return message
        return None

    return await fake.wait_for(finished, timeout, "the posted piece")


async def _compose(fake, **options):
    interaction = await fake.slash("compose", {"style": "zelda-bach", "bars": 4, **options})
    response = await interaction.wait_response(3)
    return interaction, response, await _posted(fake, interaction)


def _files_by_suffix(message):
    return {name.rsplit(".", 1)[1]: data for name, data in message.files.items()}


async def test_compose_posts_mp3_midi_and_piano_roll(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction, response, message = await _compose(fake, seed=7, sound="chip")
        assert response.deferred and response.elapsed < 3
        files = _files_by_suffix(message)
        assert set(files) == {"mp3", "mid", "png"}
        assert files["mid"].startswith(b"MThd") and files["png"].startswith(b"\x89PNG")
        assert files["mp3"][:3] == b"ID3" or files["mp3"][:2] == b"\xff\xfb"
        embed = message.embeds[0]
        assert "zelda-bach" in embed["title"] and "4 bars" in embed["title"]
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Seed"] == "7" and fields["Sound"] == "chip"
        assert "Originality" in fields
        assert {"mozart:reroll", "mozart:variation", "mozart:extend", "mozart:sound"} <= set(message.custom_ids)
        row = await db.piece_by_message(bot.db, message.id)
        assert row.seed == 7 and row.style == "zelda-bach" and row.params["bars"] == 4
        assert row.midi == files["mid"]


async def test_reactions_become_ratings(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await _compose(fake)
        row = await db.piece_by_message(bot.db, message.id)
        await fake.react(message.id, "👍", user_id=OTHER_USER)
        await _wait_rating(bot, row.id, OTHER_USER, 1)
        await fake.react(message.id, "👎", user_id=OTHER_USER)  # replaces the 👍
        await _wait_rating(bot, row.id, OTHER_USER, -1)
        await fake.unreact(message.id, "👍", user_id=OTHER_USER)  # removing the old 👍 keeps the 👎
        await asyncio.sleep(0.2)
        await _wait_rating(bot, row.id, OTHER_USER, -1)
        await fake.unreact(message.id, "👎", user_id=OTHER_USER)
        await _wait_rating(bot, row.id, OTHER_USER, None)
        # Other emoji, other messages and the bot's own prompts are not ratings.
        await fake.react(message.id, "🎉", user_id=OTHER_USER)
        chat = await fake.say("nice")
        await fake.react(chat.id, "👍", user_id=OTHER_USER)
        await asyncio.sleep(0.2)
        assert await db.rating_counts(bot.db, row.id) == (0, 0)


async def test_many_reactions_at_once_are_all_stored(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await _compose(fake)
        row = await db.piece_by_message(bot.db, message.id)
        users = range(900_000, 900_100)
        await asyncio.gather(*(fake.react(message.id, "👍" if u % 3 else "👎", user_id=u) for u in users))
        expected = (sum(1 for u in users if u % 3), sum(1 for u in users if not u % 3))
        for _ in range(100):
            if await db.rating_counts(bot.db, row.id) == expected:
                break
            await asyncio.sleep(0.05)
        assert await db.rating_counts(bot.db, row.id) == expected


async def test_unknown_style_and_bad_values_get_a_private_answer(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction = await fake.slash("compose", {"style": "zelda-bahc"})
        response = await interaction.wait_response(3)
        assert response.ephemeral
        text = response.data["content"]
        assert "Unknown style 'zelda-bahc'" in text and "zelda-bach" in text and "Known games" in text
        interaction = await fake.slash("compose", {"style": "bach", "key": "H major"})
        response = await interaction.wait_response(3)
        assert response.ephemeral and "H major" in response.data["content"]
        choices = await fake.autocomplete("compose", "style", "")
        assert 0 < len(choices) <= 25
        assert [c["value"] for c in await fake.autocomplete("compose", "style", "zelda-b")] == ["zelda-bach"]


async def test_remix_of_a_real_midi_and_of_a_corrupt_one(fake, tmp_path, tiny_checkpoint):
    from composer.generator import Generator

    source = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction = await fake.slash("remix", {"midi": Upload("tune.mid", to_midi(source)), "style": "bach",
                                                 "keep": "melody"})
        assert (await interaction.wait_response(3)).deferred
        message = await _posted(fake, interaction)
        assert set(_files_by_suffix(message)) == {"mp3", "mid", "png"}
        row = await db.piece_by_message(bot.db, message.id)
        assert row.kind == "remix" and row.params["keep"] == ["melody"]

        bad = await fake.slash("remix", {"midi": Upload("broken.mid", b"MThd\x00\x00garbage"), "style": "bach"})
        # The public "thinking…" message is removed and the error sent privately.
        followup = await fake.wait_for(lambda: next((m for m in bad.followups if m.ephemeral), None), 10)
        assert "could not be read" in followup.content
        assert bad.original.deleted
        wrong = await fake.slash("remix", {"midi": Upload("song.mp3", b"ID3...."), "style": "bach"})
        response = await wrong.wait_response(3)
        assert response.ephemeral and "not a MIDI file" in response.data["content"]


async def test_buttons_reroll_variation_extend_and_sound(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await _compose(fake, seed=3)
        first = await db.piece_by_message(bot.db, message.id)
        for custom_id, kind in (("mozart:reroll", "reroll"), ("mozart:variation", "variation"),
                                ("mozart:extend", "extend")):
            click = await fake.click(message.id, custom_id)
            assert (await click.wait_response(3)).deferred
            posted = await _posted(fake, click)
            row = await db.piece_by_message(bot.db, posted.id)
            assert row.kind == kind and row.parent_id == first.id
            assert set(_files_by_suffix(posted)) == {"mp3", "mid", "png"}
            if kind == "extend":
                assert "12 bars" in posted.embeds[0]["title"]
            if kind == "reroll":
                assert row.seed != first.seed
        sound = await fake.click(message.id, "mozart:sound")
        assert (await sound.wait_response(3)).ephemeral
        picker = await fake.wait_for(lambda: sound.original, 3, "the sound menu")
        select_id = next(c for c in picker.custom_ids if c.startswith("mozart:sound-pick"))
        pick = await fake.select(picker.id, select_id, ["piano"])
        posted = await _posted(fake, pick)
        row = await db.piece_by_message(bot.db, posted.id)
        assert row.kind == "resound" and row.params["sound"] == "piano"
        # Someone else's buttons are refused, privately.
        other = await fake.click(message.id, "mozart:reroll", user_id=OTHER_USER)
        response = await other.wait_response(3)
        assert response.ephemeral and "Only the person" in response.data["content"]


async def test_restart_keeps_ratings_and_old_buttons_work(fake, tmp_path, tiny_checkpoint):
    config = _config(tmp_path, tiny_checkpoint)
    bot = await build(config)
    async with fake.running(bot):
        _, _, message = await _compose(fake)
        row = await db.piece_by_message(bot.db, message.id)
        await fake.react(message.id, "👍", user_id=OTHER_USER)
        await _wait_rating(bot, row.id, OTHER_USER, 1)
    again = await build(config)
    async with fake.running(again):
        assert await db.rating_counts(again.db, row.id) == (1, 0)
        click = await fake.click(message.id, "mozart:variation")
        assert (await click.wait_response(3)).deferred
        posted = await _posted(fake, click)
        assert (await db.piece_by_message(again.db, posted.id)).parent_id == row.id
        await fake.react(message.id, "👎", user_id=OTHER_USER)  # an uncached message after the restart
        await _wait_rating(again, row.id, OTHER_USER, -1)


async def test_styles_help_piece_and_cooldown(fake, tmp_path, tiny_checkpoint):
    bot = await build(_config(tmp_path, tiny_checkpoint, compose_cooldown_s=30))
    async with fake.running(bot):
        styles = await fake.slash("styles")
        response = await styles.wait_response(3)
        text = str(response.data["embeds"])
        assert "dink" in text and "bach" in text and "zelda" in text
        help_ = await fake.slash("help")
        assert "/compose" in (await help_.wait_response(3)).data["content"]
        _, _, message = await _compose(fake)
        row = await db.piece_by_message(bot.db, message.id)
        again = await fake.slash("compose", {"style": "bach"})
        response = await again.wait_response(3)
        assert response.ephemeral and "again in" in response.data["content"]
        show = await fake.slash("piece", {"id": row.id, "sound": "orchestra"})
        posted = await _posted(fake, show)
        assert set(_files_by_suffix(posted)) == {"mp3", "mid", "png"}
        missing = await fake.slash("piece", {"id": 9999})
        followup = await missing.wait_response(3)
        assert followup.ephemeral and "no piece #9999" in followup.data["content"]


def test_missing_token_exits_with_code_2_and_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "bot.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr


def test_config_never_shows_the_token():
    config = BotConfig.from_env({"DISCORD_TOKEN": "secret-token-value", "MOZART_WORKERS": "2"})
    assert "secret-token-value" not in repr(config)
    assert config.workers == 2 and config.database_url.startswith("sqlite+aiosqlite")

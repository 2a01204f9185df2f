"""The real bot, end to end, against a fake Discord (gateway + REST on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import db
from bot import BotConfig, build
from cogs.utils.limits import ComposeLimits, user_tag
from composer.generate.request import GenerationRequest
from composer.music.midi_io import to_midi
from fakediscord import Upload
from tests.conftest import OTHER_USER, bot_config, compose_in, posted_piece, wait_rating

ROOT = Path(__file__).resolve().parents[1]
def _files_by_suffix(message):
    return {name.rsplit(".", 1)[1]: data for name, data in message.files.items()}


async def test_compose_posts_mp3_midi_and_piano_roll(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction, response, message = await compose_in(fake, seed=7, sound="chip")
        assert response.deferred and response.elapsed < 3
        files = _files_by_suffix(message)
        assert set(files) == {"mp3", "mid", "json", "png"}
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


@pytest.mark.slow
async def test_compose_with_video_posts_an_mp4_and_so_does_its_reroll(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake, seed=7, sound="chip", video=True)
        files = _files_by_suffix(message)
        assert set(files) == {"mp3", "mid", "json", "png", "mp4"}
        assert files["mp4"][4:8] == b"ftyp"  # an MP4 (ISO base media) file
        row = await db.piece_by_message(bot.db, message.id)
        assert row.params["video"] is True
        click = await fake.click(message.id, "mozart:reroll")
        assert (await click.wait_response(3)).deferred
        rerolled = await posted_piece(fake, click)
        assert _files_by_suffix(rerolled)["mp4"][4:8] == b"ftyp"
        _, _, plain = await compose_in(fake, seed=7, sound="chip")  # the default: no video
        assert set(_files_by_suffix(plain)) == {"mp3", "mid", "json", "png"}
        assert "video" not in (await db.piece_by_message(bot.db, plain.id)).params


def test_a_video_over_the_upload_limit_is_left_out_with_a_note():
    from cogs.utils.posting import build_files
    from composer.music.grid import Piece
    from service.jobs import Result

    result = Result(piece=Piece.empty(1), files={"mp3": b"m" * 10, "mid": b"MThd", "png": b"p", "mp4": b"v" * 100},
                    originality_bars=None, originality_source=None)
    files, notes = build_files(result, "piece", max_bytes=50)
    assert [f.filename for f in files] == ["piece.mp3", "piece.mid", "piece.png"]
    assert len(notes) == 1 and "upload limit" in notes[0]
    files, notes = build_files(result, "piece", max_bytes=1000)
    assert [f.filename for f in files][-1] == "piece.mp4" and not notes


async def test_reactions_become_ratings(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake)
        row = await db.piece_by_message(bot.db, message.id)
        await fake.react(message.id, "👍", user_id=OTHER_USER)
        await wait_rating(bot, row.id, OTHER_USER, 1)
        await fake.react(message.id, "👎", user_id=OTHER_USER)  # replaces the 👍
        await wait_rating(bot, row.id, OTHER_USER, -1)
        await fake.unreact(message.id, "👍", user_id=OTHER_USER)  # removing the old 👍 keeps the 👎
        await asyncio.sleep(0.2)
        await wait_rating(bot, row.id, OTHER_USER, -1)
        await fake.unreact(message.id, "👎", user_id=OTHER_USER)
        await wait_rating(bot, row.id, OTHER_USER, None)
        # Other emoji, other messages and the bot's own prompts are not ratings.
        await fake.react(message.id, "🎉", user_id=OTHER_USER)
        chat = await fake.say("nice")
        await fake.react(chat.id, "👍", user_id=OTHER_USER)
        await asyncio.sleep(0.2)
        assert await db.rating_counts(bot.db, row.id) == (0, 0)


async def test_many_reactions_at_once_are_all_stored(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake)
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
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction = await fake.slash("compose", {"style": "zelda-bahc"})
        response = await interaction.wait_response(3)
        assert response.ephemeral
        text = response.data["content"]
        assert "Unknown style 'zelda-bahc'" in text and "zelda-bach" in text and "Known games" in text
        interaction = await fake.slash("compose", {"style": "bach", "key": "H major"})
        response = await interaction.wait_response(3)
        assert response.ephemeral and "H major" in response.data["content"]


async def test_remix_of_a_real_midi_and_of_a_corrupt_one(fake, tmp_path, tiny_checkpoint):
    from composer.generate.generator import Generator

    source = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        interaction = await fake.slash("remix", {"midi": Upload("tune.mid", to_midi(source)), "style": "bach",
                                                 "keep": "melody"})
        assert (await interaction.wait_response(3)).deferred
        message = await posted_piece(fake, interaction)
        assert set(_files_by_suffix(message)) == {"mp3", "mid", "json", "png"}
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


async def test_a_refused_remix_keeps_nothing_of_the_file(fake, tmp_path, tiny_checkpoint):
    from sqlalchemy import func, select

    from composer.generate.generator import Generator

    source = Generator.load(tiny_checkpoint).generate(GenerationRequest(style="doom", bars=4, seed=1, steps=4))
    limits = ComposeLimits(in_flight=1, burst=1, refill_s=600, max_waiting=0)  # one piece, then nobody waits
    bot = await build(bot_config(tmp_path, tiny_checkpoint, limits=limits))
    async with fake.running(bot):
        made = await fake.slash("remix", {"midi": Upload("tune1.mid", to_midi(source)), "style": "bach"})
        message = await posted_piece(fake, made)
        row = await db.piece_by_message(bot.db, message.id)
        refused = await fake.slash("remix", {"midi": Upload("tune2.mid", to_midi(source)), "style": "bach"})
        answer = await refused.wait_response(3)  # refused at once, before anything is downloaded
        assert answer.ephemeral and "try again" in answer.data["content"]
        async with bot.db() as session:
            kept = (await session.execute(select(db.RemixSource.piece_id, func.count()).group_by(
                db.RemixSource.piece_id))).all()
        assert kept == [(row.id, 1)]  # the refused file was never stored
        assert (await db.remix_source_of(bot.db, row.id)).midi == to_midi(source)


async def test_buttons_reroll_variation_extend_and_sound(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake, seed=3)
        first = await db.piece_by_message(bot.db, message.id)
        for custom_id, kind in (("mozart:reroll", "reroll"), ("mozart:variation", "variation"),
                                ("mozart:extend", "extend")):
            click = await fake.click(message.id, custom_id)
            assert (await click.wait_response(3)).deferred
            posted = await posted_piece(fake, click)
            row = await db.piece_by_message(bot.db, posted.id)
            assert row.kind == kind and row.parent_id == first.id
            assert set(_files_by_suffix(posted)) == {"mp3", "mid", "json", "png"}
            if kind == "extend":
                assert "12 bars" in posted.embeds[0]["title"]
            if kind == "reroll":
                assert row.seed != first.seed
        sound = await fake.click(message.id, "mozart:sound")
        assert (await sound.wait_response(3)).ephemeral
        picker = await fake.wait_for(lambda: sound.original, 3, "the sound menu")
        select_id = next(c for c in picker.custom_ids if c.startswith("mozart:sound-pick"))
        pick = await fake.select(picker.id, select_id, ["piano"])
        posted = await posted_piece(fake, pick)
        row = await db.piece_by_message(bot.db, posted.id)
        assert row.kind == "resound" and row.params["sound"] == "piano"
        # Someone else's buttons are refused, privately.
        other = await fake.click(message.id, "mozart:reroll", user_id=OTHER_USER)
        response = await other.wait_response(3)
        assert response.ephemeral and "Only the person" in response.data["content"]


async def test_restart_keeps_ratings_and_old_buttons_work(fake, tmp_path, tiny_checkpoint):
    config = bot_config(tmp_path, tiny_checkpoint)
    bot = await build(config)
    async with fake.running(bot):
        _, _, message = await compose_in(fake)
        row = await db.piece_by_message(bot.db, message.id)
        await fake.react(message.id, "👍", user_id=OTHER_USER)
        await wait_rating(bot, row.id, OTHER_USER, 1)
    again = await build(config)
    async with fake.running(again):
        assert await db.rating_counts(again.db, row.id) == (1, 0)
        click = await fake.click(message.id, "mozart:variation")
        assert (await click.wait_response(3)).deferred
        posted = await posted_piece(fake, click)
        assert (await db.piece_by_message(again.db, posted.id)).parent_id == row.id
        await fake.react(message.id, "👎", user_id=OTHER_USER)  # an uncached message after the restart
        await wait_rating(again, row.id, OTHER_USER, -1)


async def test_typing_a_style_offers_the_styles_that_match(fake, tmp_path, tiny_checkpoint):
    """The tiny model knows games dink, doom (zelda answered by dink) and composers bach, mozart."""
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        async def offered(typed: str, command: str = "compose") -> list[str]:
            choices = await fake.autocomplete(command, "style", typed)
            assert all(c["name"] == c["value"] for c in choices)
            return [c["value"] for c in choices]

        assert await offered("zel") == ["zelda", "zelda-bach", "zelda-mozart"]
        assert await offered("ZEL ") == ["zelda", "zelda-bach", "zelda-mozart"]  # as typed on a phone
        assert await offered("bach") == ["bach", "dink-bach", "doom-bach", "zelda-bach"]  # bach itself first
        assert await offered("zelda-b") == ["zelda-bach"]
        assert await offered("beethoven") == []  # not in this model
        assert await offered("", "remix") == ["dink", "doom", "zelda", "bach", "mozart", "dink-bach", "dink-mozart",
                                              "doom-bach", "doom-mozart", "zelda-bach", "zelda-mozart"]


async def test_styles_help_piece_and_asking_again_at_once(fake, tmp_path, tiny_checkpoint, caplog):
    caplog.set_level(logging.INFO, logger="mozart.jobs")
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        assert bot.watchdog is not None and bot.watchdog._thread.is_alive()  # started with the bot
        styles = await fake.slash("styles")
        response = await styles.wait_response(3)
        text = str(response.data["embeds"])
        assert "dink" in text and "bach" in text and "zelda" in text
        help_ = await fake.slash("help")
        assert "/compose" in (await help_.wait_response(3)).data["content"]
        _, _, message = await compose_in(fake)
        row = await db.piece_by_message(bot.db, message.id)
        # Listened, and asks for another at once: it is composed and posted too.
        again = await fake.slash("compose", {"style": "bach", "bars": 4})
        response = await again.wait_response(3)
        assert response.deferred and not response.ephemeral
        posted = await posted_piece(fake, again)
        assert "bach — 4 bars" in posted.embeds[0]["title"]
        show = await fake.slash("piece", {"id": row.id, "sound": "orchestra"})
        posted = await posted_piece(fake, show)
        assert set(_files_by_suffix(posted)) == {"mp3", "mid", "json", "png"}
        missing = await fake.slash("piece", {"id": 9999})
        followup = await missing.wait_response(3)
        assert followup.ephemeral and "no piece #9999" in followup.data["content"]
        watchdog_thread = bot.watchdog._thread
    assert not watchdog_thread.is_alive()  # stopped with the bot
    # One line per job in the log, the user under a pseudonym.
    jobs = [r for r in caplog.records if r.name == "mozart.jobs"]
    assert [(r.job["kind"], r.job["style"], r.job["bars"], r.job["outcome"]) for r in jobs] == [
        ("compose", "zelda-bach", 4, "ok"), ("compose", "bach", 4, "ok"), ("resound", "zelda-bach", 4, "ok")]
    tag = user_tag(fake.user_id, bot.config.log_salt)
    for record in jobs:
        assert record.job["user"] == tag and str(fake.user_id) not in record.getMessage()
        assert record.job["render_s"] > 0 and record.job["upload_s"] > 0
        assert (record.job["generate_s"] > 0) == (record.job["kind"] != "resound")  # a new sound composes nothing


async def test_more_requests_than_the_limits_wait_their_turn_and_only_a_flood_is_refused(
        fake, tmp_path, tiny_checkpoint, caplog):
    caplog.set_level(logging.INFO, logger="mozart.jobs")
    limits = ComposeLimits(in_flight=1, burst=5, refill_s=12, max_waiting=1)
    bot = await build(bot_config(tmp_path, tiny_checkpoint, limits=limits))
    async with fake.running(bot):
        # Three at once from one person: one composes, one waits its turn, the third is too many.
        sent = await asyncio.gather(*(fake.slash("compose", {"style": "zelda-bach", "bars": 4, "seed": s})
                                      for s in (1, 2, 3)))
        responses = [await i.wait_response(3) for i in sent]
        refused = [i for i, r in zip(sent, responses) if r.ephemeral]
        accepted = [i for i, r in zip(sent, responses) if r.deferred]
        assert len(refused) == 1 and len(accepted) == 2
        text = refused[0].response.data["content"]
        assert re.fullmatch(r"You already have 1 piece on the way and 1 waiting\. Enjoy those first, "
                            r"then try again in about \d+ s\.", text), text
        posted = [await posted_piece(fake, i) for i in accepted]
        assert sorted(_seed(m) for m in posted) == sorted(_seed_of(i) for i in accepted)
        edits = [_edits(fake, i) for i in accepted]
        assert sum(any(e.startswith("⏳ Queued: you have 1 piece on the way") for e in e_) for e_ in edits) == 1
        # Someone else is not held up meanwhile.
        other = await fake.slash("compose", {"style": "bach", "bars": 4}, user_id=OTHER_USER)
        await posted_piece(fake, other)
    outcomes = sorted(r.job["outcome"] for r in caplog.records if r.name == "mozart.jobs")
    assert outcomes == ["TooManyWaitingError", "ok", "ok", "ok"]
    waited = [r.job["limited_s"] for r in caplog.records if r.name == "mozart.jobs" and r.job["outcome"] == "ok"]
    assert sum(w > 0 for w in waited) == 1


def _seed(message) -> int:
    return int({f["name"]: f["value"] for f in message.embeds[0]["fields"]}["Seed"])


def _seed_of(interaction) -> int:
    return next(o["value"] for o in interaction.payload["data"]["options"] if o["name"] == "seed")


def _edits(fake, interaction) -> list[str]:
    """The text of every edit the bot made to the interaction's message, in order."""
    return [call.json.get("content") or "" for call in fake.calls
            if call.method == "PATCH" and interaction.token in call.path and isinstance(call.json, dict)]


def test_python_m_db_upgrade_migrates_the_database_the_bot_uses(tmp_path):
    """`python -m db upgrade` in the Docker image must migrate the bot's database, not another file."""
    from db.migrate import current_revision, head_revision

    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    (tmp_path / "data").mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "MOZART_DB_URL"}, "DATABASE_URL": url,
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "db", "upgrade"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "mozart.db").exists()  # not the default file in the working directory
    config = BotConfig.from_env({"DISCORD_TOKEN": "t", "DATABASE_URL": url})
    assert config.database_url == url

    async def revision():
        engine = db.make_engine(config.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == head_revision()


def test_the_docker_image_points_the_bot_and_the_migrations_at_one_database():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"\bDATABASE_URL=sqlite\+aiosqlite:////data/\S+", dockerfile)  # on the /data volume
    assert "MOZART_DB_URL" not in dockerfile
    import tomllib

    copied = {path for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.M) for path in line.split()}
    modules = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["py-modules"]
    assert {f"{m}.py" for m in modules} <= copied  # else `pip install .` fails in the image


def test_every_variable_the_bot_reads_is_in_the_readme_table():
    read: list[str] = []

    class Recording(dict):
        def get(self, key, default=None):
            read.append(key)
            return super().get(key, default)

        def __getitem__(self, key):
            read.append(key)
            return super().__getitem__(key)

    BotConfig.from_env(Recording(DISCORD_TOKEN="t", MOZART_LOG_SALT="s"))
    table = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", (ROOT / "README.md").read_text(), re.M)
    documented = dict(table)
    assert set(read) - set(documented) == set()
    defaults = BotConfig(token="t")
    assert documented["DATABASE_URL"].strip() == f"`{db.DEFAULT_URL}`" == f"`{defaults.database_url}`"
    for name, value in (("MOZART_WORKERS", defaults.workers), ("MOZART_QUEUE", defaults.max_queue),
                        ("MOZART_USER_IN_FLIGHT", defaults.limits.in_flight),
                        ("MOZART_USER_BURST", defaults.limits.burst),
                        ("MOZART_USER_REFILL_S", defaults.limits.refill_s),
                        ("MOZART_USER_WAITING", defaults.limits.max_waiting),
                        ("MOZART_STALL_WARNING_S", defaults.stall_warning_s),
                        ("MOZART_VERSION_FLOOR", defaults.version_floor),
                        ("MOZART_JOB_TIMEOUT_S", defaults.job_timeout_s),
                        ("MOZART_UPLOAD_DAYS", defaults.upload_days),
                        ("MOZART_RATINGS_PER_DAY", defaults.ratings_per_day)):
        assert documented[name].strip() == f"`{value:g}`", name
    assert documented["MOZART_MODELS_DIR"].strip() == f"`{defaults.models_dir}`"


def test_missing_token_exits_with_code_2_and_a_clear_message():
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "bot.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DISCORD_TOKEN is not set" in done.stderr


def test_config_never_shows_the_token():
    config = BotConfig.from_env({"DISCORD_TOKEN": "secret-token-value", "MOZART_WORKERS": "3"})
    assert "secret-token-value" not in repr(config) and config.token == "secret-token-value"
    assert config.workers == 3 and config.database_url == db.DEFAULT_URL


async def test_loop_option_and_stems_button(fake, tmp_path, tiny_checkpoint):
    import io
    import zipfile

    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        _, _, message = await compose_in(fake, seed=5, loop=True)
        row = await db.piece_by_message(bot.db, message.id)
        assert row.params["loop"] is True
        click = await fake.click(message.id, "mozart:stems")
        assert (await click.wait_response(3)).ephemeral
        followup = await fake.wait_for(lambda: next((m for m in click.followups if m.files), None), 30, "stems")
        assert followup.ephemeral and f"mozart-{row.id}-stems.zip" in followup.files
        names = zipfile.ZipFile(io.BytesIO(followup.files[f"mozart-{row.id}-stems.zip"])).namelist()
        sounding = [voice for voice, column in zip(("lead", "counter", "harmony", "bass", "drums"),
                                                   _grid_columns(row.midi)) if column]
        assert sorted(names) == sorted(f"{voice}.ogg" for voice in sounding)


def _grid_columns(midi: bytes) -> list[bool]:
    from composer.music.midi_io import import_midi

    grid = import_midi(midi).grid
    return [bool(grid[:, v].any()) for v in range(grid.shape[1])]


def test_every_posted_format_has_a_place_when_files_must_fit_the_upload_limit():
    from cogs.utils.posting import POSTED_FORMATS, UPLOAD_PRIORITY

    assert sorted(UPLOAD_PRIORITY) == sorted(POSTED_FORMATS)  # else a new format would never be attached

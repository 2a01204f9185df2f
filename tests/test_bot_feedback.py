"""The ratings loop in the bot, through the fake Discord: /model, /stats, /privacy, /forget-me."""

from __future__ import annotations

import json
import shutil

import pytest
from sqlalchemy import func, select

import db
from bot import build
from composer.feedback.records import rater_hash, read_records
from service.export import export_ratings
from tests.conftest import OTHER_USER, bot_config, posted_piece, wait_rating


def _copy_version(tiny_checkpoint, models, name, version):
    folder = models / name
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["version"] = version
    config["training"]["parent"] = "tiny"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


async def compose_in(fake, user_id, seed):
    interaction = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": seed}, user_id=user_id)
    return await posted_piece(fake, interaction)


@pytest.mark.slow
async def test_owner_serves_two_versions_and_requests_are_shared(fake, tmp_path, tiny_checkpoint):
    models = tmp_path / "models"
    _copy_version(tiny_checkpoint, models, "next", "tiny-next")
    config = bot_config(tmp_path, tiny_checkpoint, models_dir=str(models), version_floor=0.5)
    bot = await build(config)
    base = bot.studio.generator.version
    async with fake.running(bot):
        # Not the owner: refused, privately, and nothing changes.
        refused = await fake.slash("model load", {"name": "next"}, user_id=OTHER_USER)
        response = await refused.wait_response(5)
        assert response.ephemeral and "owner" in response.data["content"]
        assert bot.studio.versions == [base]

        offered = await fake.autocomplete("model load", "name", "", user_id=fake.owner_id)
        assert [c["value"] for c in offered] == ["next"]
        bad = await fake.slash("model load", {"name": "../etc"}, user_id=fake.owner_id)
        assert "no model folder" in (await bad.wait_followup(10)).content
        load = await fake.slash("model load", {"name": "next"}, user_id=fake.owner_id)
        assert "tiny-next" in (await load.wait_followup(30)).content
        assert bot.studio.versions == [base, "tiny-next"]

        # With a floor of 0.5 each, assignment is uniform: both versions compose some of 12 pieces.
        for seed in range(12):
            message = await compose_in(fake, 700_000 + seed % 3, seed)
            await fake.react(message.id, "👍", user_id=OTHER_USER)
        async with bot.db() as session:
            made = dict((await session.execute(
                select(db.PieceRow.model_version, func.count()).group_by(db.PieceRow.model_version))).all())
        assert set(made) == {base, "tiny-next"} and sum(made.values()) == 12

        listing = await fake.slash("model list", None, user_id=fake.owner_id)
        fields = (await listing.wait_response(5)).data["embeds"][0]["fields"]
        text = {f["name"].split(" (")[0]: f["value"] for f in fields}
        assert f"{made['tiny-next']} pieces" in text["tiny-next"] and "credible" in text["tiny-next"]

        retire = await fake.slash("model retire", {"version": base}, user_id=fake.owner_id)
        assert "Retired" in (await retire.wait_response(5)).data["content"]
        assert bot.studio.versions == ["tiny-next"]
        last = await fake.slash("model retire", {"version": "tiny-next"}, user_id=fake.owner_id)
        assert "only one" in (await last.wait_response(5)).data["content"]

    # A restart serves the loaded version again.
    again = await build(config)
    assert "tiny-next" in again.studio.versions
    await again.studio.close()
    await again.engine.dispose()


async def test_stats_and_privacy_answer(fake, tmp_path, tiny_checkpoint):
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        empty = await (await fake.slash("stats")).wait_response(5)
        assert "**0** pieces" in empty.data["embeds"][0]["description"]
        message = await compose_in(fake, 700_001, 1)
        row = await db.piece_by_message(bot.db, message.id)
        await fake.react(message.id, "👍", user_id=OTHER_USER)
        await wait_rating(bot, row.id, OTHER_USER, 1)
        cached = (await (await fake.slash("stats")).wait_response(5)).data["embeds"][0]
        assert "**0** pieces" in cached["description"]  # counted at most once a minute per server
        bot.get_cog("Info")._stats_cache.clear()  # as a minute later
        embed = (await (await fake.slash("stats")).wait_response(5)).data["embeds"][0]
        assert "**1** pieces" in embed["description"]
        values = " ".join(f["value"] for f in embed["fields"])
        assert "`doom`" in values and f"#{row.id}" in values
        privacy = await (await fake.slash("privacy")).wait_response(5)
        assert privacy.ephemeral and "/forget-me" in privacy.data["content"]


async def test_forget_me_removes_everything_of_that_person_and_nothing_of_anyone_else(fake, tmp_path,
                                                                                      tiny_checkpoint):
    alice, bob = 701_001, 701_002
    bot = await build(bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        mine = await compose_in(fake, alice, 1)
        theirs = await compose_in(fake, bob, 2)
        mine_row = await db.piece_by_message(bot.db, mine.id)
        theirs_row = await db.piece_by_message(bot.db, theirs.id)
        for message, row in ((mine, mine_row), (theirs, theirs_row)):
            for user, emoji, value in ((alice, "👍", 1), (bob, "👎", -1)):
                await fake.react(message.id, emoji, user_id=user)
                await wait_rating(bot, row.id, user, value)
        await db.add_remix_source(bot.db, user_id=alice, filename="a.mid", midi=b"MThd-a", piece_id=mine_row.id)
        await db.add_remix_source(bot.db, user_id=bob, filename="b.mid", midi=b"MThd-b", piece_id=theirs_row.id)

        # Cancel first: nothing happens.
        ask = await fake.slash("forget-me", user_id=alice)
        prompt = await fake.wait_for(lambda: ask.original, 5, "the confirmation")
        assert "2 ratings" in prompt.content and "1 remix upload" in prompt.content
        confirm_id, cancel_id = prompt.custom_ids
        cancel = await fake.click(prompt.id, cancel_id, user_id=alice)
        assert "Nothing was removed" in (await cancel.wait_response(5)).data["content"]
        assert (await db.user_data_counts(bot.db, alice)).ratings == 2

        ask = await fake.slash("forget-me", user_id=alice)
        prompt = await fake.wait_for(lambda: ask.original, 5, "the confirmation")
        confirm_id, _ = prompt.custom_ids
        done = await fake.click(prompt.id, confirm_id, user_id=alice)
        assert "removed 2 ratings" in (await done.wait_response(5)).data["content"]

        async with bot.db() as session:
            ratings = (await session.execute(select(db.Rating.piece_id, db.Rating.user_id, db.Rating.value))).all()
            pieces = dict((await session.execute(select(db.PieceRow.id, db.PieceRow.user_id))).all())
            sources = (await session.execute(select(db.RemixSource.user_id))).scalars().all()
        assert sorted(ratings) == sorted([(mine_row.id, bob, -1), (theirs_row.id, bob, -1)])
        assert pieces == {mine_row.id: None, theirs_row.id: bob}  # alice's piece stays, anonymous
        assert sources == [bob]
        nothing = await fake.slash("forget-me", user_id=alice)
        assert "nothing stored" in (await nothing.wait_response(5)).data["content"]

        # The export made afterwards holds bob's ratings and nothing of alice's.
        await export_ratings(bot.db, tmp_path / "ratings.jsonl", salt="s")
        raters = {h for record in read_records(tmp_path / "ratings.jsonl") for h in record.ratings}
        assert raters == {rater_hash(bob, "s")}

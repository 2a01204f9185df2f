"""Ratings made while the database is unreachable are kept and stored once it is back: none lost."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

import db
from bot import build
from fakediscord import FakeDiscord
from tests.conftest import bot_config

OUTAGE_S = 10.0


@pytest.mark.slow
async def test_ratings_given_during_a_10_s_database_outage_are_all_stored(tmp_path, tiny_checkpoint, monkeypatch,
                                                                          caplog):
    config = bot_config(tmp_path, tiny_checkpoint)
    async with FakeDiscord() as fake:
        bot = await build(config)
        async with fake.running(bot):
            interaction = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 2})
            message = await fake.wait_for(lambda: interaction.original if interaction.original is not None and {
                "👍", "👎"} <= set(interaction.original.reactions) else None, 60, "the posted piece")
            piece = await db.piece_by_message(bot.db, message.id)

            # From now on, for OUTAGE_S seconds, every query fails as with a database that cannot be reached.
            loop = asyncio.get_running_loop()
            back_at = loop.time() + OUTAGE_S
            for name in ("upsert_rating", "delete_rating", "piece_by_message"):
                real = getattr(db, name)

                async def unreachable(*args, _real=real, **kwargs):
                    if loop.time() < back_at:
                        raise db.DatabaseUnavailableError()
                    return await _real(*args, **kwargs)

                monkeypatch.setattr(db, name, unreachable)

            with caplog.at_level(logging.WARNING, logger="mozart.ratings"):
                for user in (1, 2, 3):
                    await fake.react(message.id, "👍", user_id=user)
                await fake.react(message.id, "👎", user_id=4)
                await fake.react(message.id, "👍", user_id=5)
                await fake.unreact(message.id, "👍", user_id=5)  # changed their mind: no rating
                await fake.react(message.id, "👎", user_id=6)
                await fake.react(message.id, "👍", user_id=6)  # switched: 👍
                await asyncio.sleep(1.0)
                assert loop.time() < back_at  # still down: nothing could be stored yet
                expected = {1: 1, 2: 1, 3: 1, 4: -1, 6: 1}

                async def stored():
                    async with bot.db() as session:
                        rows = (await session.execute(select(db.Rating).where(db.Rating.piece_id == piece.id))
                                ).scalars().all()
                    return {r.user_id: r.value for r in rows}

                while await stored() != expected:
                    assert loop.time() < back_at + 15, f"stored {await stored()}, expected {expected}"
                    await asyncio.sleep(0.2)
            assert "keeping it to retry" in caplog.text
            assert "not stored" not in caplog.text and "dropped" not in caplog.text

"""Buttons under posted pieces: every custom_id the bot has ever posted still reaches a handler.

Old posts in people's servers keep their buttons for ever; a button dispatches through
``PIECE_BUTTONS`` (cogs/utils/views.py), and this file holds the history that table must honour.
"""

from __future__ import annotations

import inspect

import discord
import pytest
from discord.ext import commands

from bot import EXTENSIONS
from cogs.utils.views import PIECE_BUTTONS, PieceView

# Every custom_id a persistent button under a piece has carried (git log -S custom_id -- cogs):
# 🔁 🎲 ⏩ 🎹 from the first buttons, 📦 stems, 🎚️ layers, then 🎼 score and ▶️ play. Never remove one.
# (The sound menu's "mozart:sound-pick:<id>" is a short-lived view of its own, gone after 120 s.)
EVER_POSTED = ("mozart:reroll", "mozart:variation", "mozart:extend", "mozart:sound", "mozart:stems",
               "mozart:layers", "mozart:score", "mozart:play")


@pytest.fixture
async def bot_with_cogs():
    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.none())
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    yield bot
    await bot.close()


def test_every_button_ever_posted_is_in_the_table():
    assert set(EVER_POSTED) <= set(PIECE_BUTTONS)
    assert set(PIECE_BUTTONS) <= set(EVER_POSTED), "a new button: add its custom_id to EVER_POSTED"


async def test_every_button_ever_posted_resolves_to_a_handler(bot_with_cogs):
    assert PieceView.missing_handlers(bot_with_cogs) == []
    for custom_id in EVER_POSTED:
        handler = PieceView.handler(bot_with_cogs, custom_id)
        assert handler is not None, custom_id
        assert list(inspect.signature(handler).parameters)[:2] == ["interaction", "row"], custom_id


async def test_a_renamed_handler_is_caught(bot_with_cogs, monkeypatch):
    compose = type(bot_with_cogs.get_cog("Compose"))
    monkeypatch.delattr(compose, "reroll")
    assert PieceView.missing_handlers(bot_with_cogs) == ["mozart:reroll"]


async def test_the_view_posts_the_table(bot_with_cogs):
    view = PieceView()
    assert [item.custom_id for item in view.children] == list(PIECE_BUTTONS)
    assert [str(item.emoji) for item in view.children] == [b.emoji for b in PIECE_BUTTONS.values()]

"""👍/👎 reactions on the bot's pieces become ratings (raw events: they work after restarts
and for messages the bot no longer has cached)."""

from __future__ import annotations

import asyncio
import logging

import discord
from discord.ext import commands

import db
from cogs.utils.posting import RATING_VALUES

log = logging.getLogger("mozart.ratings")

LINK_RETRIES = 5  # a new post is linked to its piece a moment after it appears
LINK_RETRY_DELAY_S = 0.4


class Ratings(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self._pieces: dict[int, int | None] = {}  # message id -> piece id (None: not a piece)

    async def _piece_id(self, payload: discord.RawReactionActionEvent) -> int | None:
        """The piece posted in the reacted message. A reaction can beat the bot's own
        bookkeeping of a brand-new post, so the bot's messages get a few retries."""
        message_id = payload.message_id
        if message_id in self._pieces:
            return self._pieces[message_id]
        ours = self.bot.user is not None and payload.message_author_id == self.bot.user.id
        for attempt in range(LINK_RETRIES if ours else 1):
            row = await db.piece_by_message(self.bot.db, message_id)
            if row is not None:
                self._pieces[message_id] = row.id
                return row.id
            if attempt + 1 < LINK_RETRIES and ours:
                await asyncio.sleep(LINK_RETRY_DELAY_S)
        return None

    def _rating(self, payload: discord.RawReactionActionEvent) -> int | None:
        if self.bot.user is not None and payload.user_id == self.bot.user.id:
            return None  # the bot's own prompts
        return RATING_VALUES.get(str(payload.emoji))

    async def _apply(self, payload: discord.RawReactionActionEvent, added: bool) -> None:
        value = self._rating(payload)
        if value is None:
            return
        piece_id = await self._piece_id(payload)
        if piece_id is None:
            return
        try:
            if added:
                await db.upsert_rating(self.bot.db, piece_id, payload.user_id, value)
            else:
                await db.delete_rating(self.bot.db, piece_id, payload.user_id, value)
        except db.DatabaseError:
            log.exception("rating %+d of piece %s by %s (%s) was not stored", value, piece_id, payload.user_id,
                          "added" if added else "removed")

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._apply(payload, added=True)

    @commands.Cog.listener()
    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._apply(payload, added=False)

    async def red_delete_data_for_user(self, *, requester: str, user_id: int) -> None:
        """Forget a user: their ratings and uploads go, their pieces stay anonymous."""
        await db.forget_user(self.bot.db, user_id)


async def setup(bot) -> None:
    await bot.add_cog(Ratings(bot))

"""👍/👎 reactions on the bot's pieces become ratings (raw events: they work after restarts
and for messages the bot no longer has cached)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import discord
from discord.ext import commands

import db
from cogs.utils.limits import user_tag
from cogs.utils.posting import RATING_VALUES

log = logging.getLogger("mozart.ratings")

LINK_RETRIES = 5  # a new post is linked to its piece a moment after it appears
LINK_RETRY_DELAY_S = 0.4


PENDING_RETRY_S = (0.5, 1, 2, 4, 8)  # waits between tries of ratings the database refused (then every 8 s)
PENDING_GIVE_UP_S = 600  # a rating still not stored after this is logged as lost
PASSING = (db.DatabaseBusyError, db.DatabaseUnavailableError)  # refusals worth holding a rating through
PENDING_MAX = 10_000  # ratings held while the database is down; the oldest beyond this are dropped (logged)


@dataclass
class _Pending:
    """A reaction the database could not take yet; the latest action on (message, user, value) wins."""

    message_id: int
    author_id: int | None
    user_id: int
    value: int
    added: bool
    since: float


class Ratings(commands.Cog):
    def __init__(self, bot):
        self.bot = bot
        self._pieces: dict[int, int | None] = {}  # message id -> piece id (None: not a piece)
        # Ratings the database refused (busy, unreachable), kept in order and retried until stored:
        # (message id, user id, value) -> latest action
        self._pending: OrderedDict[tuple[int, int, int], _Pending] = OrderedDict()
        self._retrier: asyncio.Task | None = None
        self._locks = [asyncio.Lock() for _ in range(64)]  # a person's ratings go through locks[id % 64]

    def _tag(self, user_id: int) -> str:
        """A person in the log: the pseudonym of the job log, never the id."""
        return user_tag(user_id, self.bot.config.log_salt)

    async def cog_unload(self) -> None:
        if self._retrier is not None:
            self._retrier.cancel()
        if self._pending:
            log.error("%d ratings were not stored before shutdown", len(self._pending))

    async def _piece_id(self, message_id: int, author_id: int | None) -> int | None:
        """The piece posted in the reacted message. A reaction can beat the bot's own
        bookkeeping of a brand-new post, so the bot's messages get a few retries."""
        if message_id in self._pieces:
            return self._pieces[message_id]
        ours = self.bot.user is not None and author_id == self.bot.user.id
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
        item = _Pending(payload.message_id, payload.message_author_id, payload.user_id, value, added,
                        time.monotonic())
        key = (item.message_id, item.user_id, item.value)
        if key in self._pending:  # an earlier action still waits: this one replaces it, in its turn
            self._pending[key] = item
            return
        try:
            await self._store(item)
        except PASSING as e:
            log.warning("database refused a rating (%s); keeping it to retry", type(e).__name__)
            self._hold(key, item)
        except db.DatabaseError:
            log.exception("rating %+d by %s (%s) was not stored", value, self._tag(payload.user_id),
                          "added" if added else "removed")

    async def _store(self, item: _Pending) -> None:
        piece_id = await self._piece_id(item.message_id, item.author_id)
        if piece_id is None:
            return
        if item.added:
            cap = self.bot.config.ratings_per_day or None  # ratings one person may add a day (0: no cap)
            # one person's ratings are counted and added one at a time, so a burst of them cannot pass the cap
            async with self._locks[item.user_id % len(self._locks)]:
                stored = await db.upsert_rating(self.bot.db, piece_id, item.user_id, item.value, daily_cap=cap)
            if not stored:
                log.info("rating by %s not stored: %d ratings today already", self._tag(item.user_id), cap)
        else:
            await db.delete_rating(self.bot.db, piece_id, item.user_id, item.value)

    def _hold(self, key: tuple[int, int, int], item: _Pending) -> None:
        self._pending[key] = item
        while len(self._pending) > PENDING_MAX:
            _, dropped = self._pending.popitem(last=False)
            log.error("too many ratings waiting for the database: dropped one by %s", self._tag(dropped.user_id))
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.create_task(self._retry(), name="ratings-retry")

    async def _retry(self) -> None:
        """Store the held ratings in order, waiting longer after each refusal, until none is left."""
        failures = 0
        while self._pending:
            await asyncio.sleep(PENDING_RETRY_S[min(failures, len(PENDING_RETRY_S) - 1)])
            while self._pending:
                key, item = next(iter(self._pending.items()))
                try:
                    await self._store(item)
                except PASSING:
                    failures += 1
                    if time.monotonic() - item.since > PENDING_GIVE_UP_S:
                        log.error("rating by %s dropped after %d s without a database", self._tag(item.user_id),
                                  PENDING_GIVE_UP_S)
                        self._pending.pop(key, None)
                    break
                except db.DatabaseError:
                    log.exception("held rating by %s was not stored", self._tag(item.user_id))
                if self._pending.get(key) is item:  # not replaced by a newer action meanwhile
                    self._pending.pop(key)
                failures = 0
        log.info("every held rating is stored")

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

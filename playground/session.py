"""The playground's world: a fake Discord, the real bot logged in to it, and one person.

``Playground`` does what the person does in the page (type a command, click a button, react)
through the fake's user-side API, and describes the channel as the page draws it. The bot is
built by ``bot.build`` from a ``BotConfig``, as ``python bot.py`` builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot import BotConfig, build
from fakediscord import FakeDiscord, Upload
from playground import commands as C

HISTORY = 100  # messages the page shows, newest last
PERSON = "you"  # the name the page's person has in the channel
DEFAULT_DATABASE = "sqlite+aiosqlite:///playground.db"  # not the bot's own mozart.db
SLASH, COMPONENT = 2, 3  # interaction types that Discord requires an answer to within 3 s (autocomplete aside)
ANSWERED_TYPES = (SLASH, COMPONENT)
GONE = "That message is gone."
VOICE_CHANNEL = "Lounge"


@dataclass
class Answer:
    """What the page is told after an action: an error for the person, or nothing."""

    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.error is None, "error": self.error}


class Playground:
    """A running fake Discord with the bot in it; ``async with Playground.running(config):``."""

    def __init__(self, fake: FakeDiscord, bot) -> None:
        self.fake = fake
        self.bot = bot

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, config: BotConfig, *, heartbeat_interval_ms: int = 41_250) -> AsyncIterator[Playground]:
        """Start the fake, build and log in the bot (the person owns it: /model works), stop both on exit.
        ``heartbeat_interval_ms`` is the gateway's (Discord's own by default; tests shorten it)."""
        async with FakeDiscord(guild_name="Mozart playground", channel_name="game-music", user_name=PERSON,
                               voice_channel_names=(VOICE_CHANNEL,),
                               heartbeat_interval_ms=heartbeat_interval_ms) as fake:
            bot = await build(_owned_by(config, fake.user_id))
            async with fake.running(bot):
                await fake.join_voice()  # the person sits in the voice channel, so ▶️ plays to them
                yield cls(fake, bot)

    # -- what the page shows ------------------------------------------------------------------
    @property
    def specs(self) -> list[dict[str, Any]]:
        """The slash commands as the bot synced them (globally or to the guild)."""
        return [*self.fake.commands.get(self.fake.guild_id, []), *self.fake.commands.get(None, [])]

    def state(self) -> dict[str, Any]:
        """The channel as the page draws it; ``version`` changes whenever anything visible does."""
        fake = self.fake
        messages = [self._describe(m) for m in fake.messages_in()[-HISTORY:]]
        body = {
            "guild": fake.guild_name, "channel": fake.channels[fake.channel_id]["name"],
            "me": {"id": str(fake.user_id), "name": PERSON},
            "bot": {"id": str(fake.bot_id), "name": fake.bot_name},
            "commands": [{"name": s["name"], "description": s.get("description", "")} for s in self.specs],
            "messages": messages,
            "unanswered": [{"id": str(i.id), "command": _invoked(i)} for i in self._unanswered()],
            "voice": self._voice(),
        }
        body["version"] = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        return body

    async def changed(self, version: str, timeout: float) -> dict[str, Any]:
        """The state once its version differs from ``version``, or after ``timeout`` seconds as it is."""
        pending = [i.dispatched_at + self.fake.response_deadline for i in self.fake.interactions.values()
                   if i.type in ANSWERED_TYPES and not i.callbacks]
        if pending:  # wake when one of them is overdue: the page says so, as Discord does
            timeout = max(0.05, min(timeout, min(pending) - asyncio.get_running_loop().time() + 0.05))
        try:
            return await self.fake.wait_for(lambda: (s := self.state())["version"] != version and s, timeout,
                                            "change")
        except TimeoutError:
            return self.state()

    # -- what the person does -----------------------------------------------------------------
    async def command(self, text: str, upload: Upload | None = None) -> Answer:
        """Run a typed slash command; an attached file goes to the command's attachment option."""
        try:
            parsed = C.parse(self.specs, text, has_file=upload is not None)
        except C.CommandError as e:
            return Answer(str(e))
        options = dict(parsed.options)
        if parsed.attachment is not None:
            options[parsed.attachment] = upload
        elif upload is not None:
            return Answer(f"/{parsed.name} takes no file; remove the attachment or use /remix.")
        await self.fake.slash(parsed.name, options)
        return Answer()

    async def suggestions(self, text: str) -> list[dict[str, str]]:
        """The popup above the message box; an autocomplete option asks the bot, as Discord does."""
        focus = C.focused(self.specs, text)
        if focus is not None and focus.option.get("autocomplete"):
            name = focus.option["name"]
            choices = await self.fake.autocomplete(focus.command, name, focus.value, options=focus.others)
            return [{"label": c["name"], "detail": name, "text": f"{focus.before}{c['value']} "} for c in choices]
        return [vars(s) for s in C.suggest(self.specs, text)]

    async def click(self, message_id: int, custom_id: str, values: list[str] | None = None) -> Answer:
        """Press a button, or (with ``values``) choose in a menu."""
        if self._message(message_id) is None:
            return Answer(GONE)
        if values is None:
            await self.fake.click(message_id, custom_id)
        else:
            await self.fake.select(message_id, custom_id, values)
        return Answer()

    async def toggle_reaction(self, message_id: int, emoji: str) -> Answer:
        """Add the person's reaction, or take it back if it is there (a click on a reaction in Discord)."""
        message = self._message(message_id)
        if message is None:
            return Answer(GONE)
        if self.fake.user_id in message.reactions.get(emoji, []):
            await self.fake.unreact(message_id, emoji)
        else:
            await self.fake.react(message_id, emoji)
        return Answer()

    def _voice(self) -> dict[str, Any]:
        """The voice channel: who is in it, and every transmission it carried (the page plays each one as the
        fake received it: decrypted, decoded Opus)."""
        fake = self.fake
        channel_id = fake.voice_channel_ids[0]
        names = {fake.bot_id: fake.bot_name, fake.user_id: PERSON}
        return {
            "channel": fake.channels[channel_id]["name"],
            "members": [names.get(uid, f"user{uid}") for uid in fake.voice.members_of(channel_id)],
            "captures": [{"id": n, "seconds": round(c.seconds, 2), "url": f"/voice/{n}.wav", "e2ee": c.e2ee_frames > 0}
                         for n, c in enumerate(fake.voice.captures) if c.ended and c.channel_id == channel_id],
        }

    async def capture_wav(self, n: int) -> bytes | None:
        """A transmission the voice channel carried, as WAV (decoded off the event loop), or None."""
        captures = self.fake.voice.captures
        if not 0 <= n < len(captures) or not captures[n].ended:
            return None
        return await asyncio.to_thread(captures[n].wav)

    def _unanswered(self) -> list:
        """Commands and clicks the bot did not answer within Discord's 3 s ("The application did not respond")."""
        now = asyncio.get_running_loop().time()
        return [i for i in self.fake.interactions.values() if i.type in ANSWERED_TYPES
                and not any(c.accepted for c in i.callbacks) and now - i.dispatched_at > self.fake.response_deadline]

    def _describe(self, message) -> dict[str, Any]:
        """A stored message as the page needs it: the API payload, whether it is still "thinking", the
        person's reactions, and the command it answers ("you used /compose")."""
        payload = message.to_payload()
        payload.update(loading=message.loading, ephemeral=message.ephemeral, edited=message.edits > 0)
        payload["reactions"] = [{"emoji": key, "count": len(users), "me": self.fake.user_id in users}
                                for key, users in message.reactions.items() if users]
        interaction = self.fake.interactions.get(message.interaction_id or 0)
        if interaction is not None and interaction.type == SLASH:
            payload["command"] = _invoked(interaction)
        return payload

    def _message(self, message_id: int):
        message = self.fake.messages.get(message_id)
        return None if message is None or message.deleted else message


def _invoked(interaction) -> str | None:
    """"/model list" for a slash command, None for a click."""
    if interaction.type != SLASH:
        return None
    data, words = interaction.payload["data"], []
    options = data.get("options", [])
    while options and options[0]["type"] in (C.SUB_COMMAND, C.SUB_COMMAND_GROUP):
        words.append(options[0]["name"])
        options = options[0].get("options", [])
    return "/" + " ".join([data["name"], *words])


def _owned_by(config: BotConfig, user_id: int) -> BotConfig:
    from dataclasses import replace

    return replace(config, owner_ids=frozenset({*config.owner_ids, user_id}))


__all__ = ["Playground", "Answer", "DEFAULT_DATABASE"]

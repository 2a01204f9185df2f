"""What the fake remembers: REST calls, stored messages and attachments, interactions.

These are plain dataclasses so tests can assert on them directly, e.g.
``msg.files['piece.mp3'] == mp3_bytes`` or ``interaction.response.elapsed < 3``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    from .server import FakeDiscord

__all__ = (
    'DISCORD_EPOCH_MS',
    'SnowflakeFactory',
    'Upload',
    'StoredAttachment',
    'StoredMessage',
    'RestCall',
    'CallbackRecord',
    'FakeInteraction',
    'Changes',
)

T = TypeVar('T')

DISCORD_EPOCH_MS = 1420070400000

# Interaction callback types (Discord API "Interaction Callback Type").
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7


class SnowflakeFactory:
    """Real-looking, strictly increasing snowflakes (timestamp << 22 | counter)."""

    def __init__(self) -> None:
        self._last = 0
        self._counter = itertools.count()
        self.issued: list[int] = []  # every id handed out (users, guild, channels, messages...), oldest first

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (next(self._counter) & 0xFFF)
        self._last = value = max(value, self._last + 1)
        self.issued.append(value)
        return value


class Changes:
    """Wake every waiter whenever the fake's state changes.

    A waiter re-checks its predicate after each change, so there is no lost
    wake-up between checking and waiting.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float, what: str) -> T:
        """Return the first truthy ``predicate()``; TimeoutError naming ``what`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self._event
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f'fakediscord: no {what} within {timeout:g}s')
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                pass


@dataclass(frozen=True)
class Upload:
    """A file a fake user attaches to a slash command option of type ATTACHMENT."""

    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class StoredAttachment:
    id: int
    filename: str
    data: bytes
    url: str  # served by the fake itself
    content_type: str | None = None
    description: str | None = None

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            'id': str(self.id), 'filename': self.filename, 'size': len(self.data),
            'url': self.url, 'proxy_url': self.url,
        }
        if self.content_type:
            payload['content_type'] = self.content_type
        if self.description:
            payload['description'] = self.description
        return payload


@dataclass
class StoredMessage:
    """A message as the fake Discord stores it (bot posts, interaction responses, user messages)."""

    id: int
    channel_id: int
    guild_id: int | None
    author: dict[str, Any]
    content: str = ''
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0  # 0 default, 19 reply, 20 slash command response
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None  # the interaction this message answers
    message_reference: dict[str, Any] | None = None
    # emoji key ('👍', or 'name:id' for custom emoji) -> ids of users who reacted
    reactions: dict[str, list[int]] = field(default_factory=dict)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    edited_at: dt.datetime | None = None
    deleted: bool = False
    edits: int = 0

    @property
    def author_id(self) -> int:
        return int(self.author['id'])

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred response's "Bot is thinking..." placeholder not yet filled."""
        return bool(self.flags & LOADING)

    @property
    def files(self) -> dict[str, bytes]:
        """Attachment bytes by filename."""
        return {a.filename: a.data for a in self.attachments}

    @property
    def custom_ids(self) -> list[str]:
        """custom_id of every component (buttons, selects), depth first."""
        found: list[str] = []

        def walk(components: list[dict[str, Any]]) -> None:
            for component in components:
                if 'custom_id' in component:
                    found.append(component['custom_id'])
                walk(component.get('components', []))
                if isinstance(component.get('accessory'), dict):
                    walk([component['accessory']])

        walk(self.components)
        return found

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            'id': str(self.id), 'channel_id': str(self.channel_id), 'type': self.type,
            'author': self.author, 'content': self.content, 'embeds': self.embeds,
            'components': self.components, 'attachments': [a.to_payload() for a in self.attachments],
            'flags': self.flags, 'timestamp': self.created_at.isoformat(),
            'edited_timestamp': self.edited_at.isoformat() if self.edited_at else None,
            'tts': False, 'mention_everyone': False, 'mentions': [], 'mention_roles': [], 'pinned': False,
            'reactions': [
                {'emoji': _emoji_payload(key), 'count': len(users), 'me': False,
                 'count_details': {'burst': 0, 'normal': len(users)}, 'burst_colors': [], 'me_burst': False}
                for key, users in self.reactions.items() if users
            ],
        }
        if self.guild_id is not None:
            payload['guild_id'] = str(self.guild_id)
        if self.webhook_id is not None:
            payload['webhook_id'] = str(self.webhook_id)
        if self.application_id is not None:
            payload['application_id'] = str(self.application_id)
        if self.message_reference:
            payload['message_reference'] = self.message_reference
        return payload


def _emoji_payload(key: str) -> dict[str, Any]:
    name, _, emoji_id = key.partition(':')
    return {'id': emoji_id or None, 'name': name}


@dataclass
class RestCall:
    """One HTTP request the bot made to the fake API."""

    method: str
    path: str  # without the /api/v10 prefix, e.g. '/channels/1/messages'
    query: dict[str, str]
    json: Any  # JSON body, or multipart payload_json
    files: list[tuple[str, bytes]]  # (filename, bytes) of multipart uploads
    status: int = 0
    at: float = 0.0  # loop.time() when it arrived

    def __repr__(self) -> str:
        return f'<RestCall {self.method} {self.path} -> {self.status}>'


@dataclass
class CallbackRecord:
    """The bot's answer to POST /interactions/{id}/{token}/callback."""

    type: int  # 4 message, 5 deferred (thinking), 6 deferred update, 7 update, 8 autocomplete, 9 modal
    data: dict[str, Any]
    files: list[tuple[str, bytes]]
    elapsed: float  # seconds after the fake dispatched the interaction
    accepted: bool  # False when it came after the 3 s deadline (Discord answers 404 Unknown interaction)

    @property
    def deferred(self) -> bool:
        return self.type in (DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE)

    @property
    def ephemeral(self) -> bool:
        return bool(self.data.get('flags', 0) & EPHEMERAL)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """Autocomplete choices ({'name': ..., 'value': ...})."""
        return list(self.data.get('choices', []))


class FakeInteraction:
    """Handle on one interaction the fake sent; collects the bot's responses to it."""

    def __init__(self, fake: FakeDiscord, payload: dict[str, Any], dispatched_at: float) -> None:
        self._fake = fake
        self.payload = payload
        self.id: int = int(payload['id'])
        self.token: str = payload['token']
        self.type: int = payload['type']
        self.dispatched_at = dispatched_at  # loop.time()
        self.callbacks: list[CallbackRecord] = []
        self.original: StoredMessage | None = None  # the response message (also after a defer)
        self.followups: list[StoredMessage] = []
        self.followup_elapsed: list[float] = []  # seconds after dispatch each followup arrived
        self._followups_seen = 0

    def __repr__(self) -> str:
        return f'<FakeInteraction id={self.id} type={self.type} callbacks={len(self.callbacks)}>'

    @property
    def response(self) -> CallbackRecord | None:
        """The first callback (the one Discord requires within 3 s), if any yet."""
        return self.callbacks[0] if self.callbacks else None

    async def wait_response(self, timeout: float = 3.0) -> CallbackRecord:
        """Wait for the bot's initial response (defer, message, autocomplete, modal...)."""
        return await self._fake.changes.wait_for(lambda: self.response, timeout, f'response to interaction {self.id}')

    async def wait_followup(self, timeout: float = 10.0) -> StoredMessage:
        """Wait for the next followup message not returned by an earlier call.

        After a deferred response, Discord turns the first followup into the
        original "thinking" message, so it is both ``original`` and a followup.
        """
        index = self._followups_seen
        message = await self._fake.changes.wait_for(
            lambda: self.followups[index] if len(self.followups) > index else None,
            timeout, f'followup #{index + 1} to interaction {self.id}',
        )
        self._followups_seen = index + 1
        return message

    async def wait_original(self, timeout: float = 10.0) -> StoredMessage:
        """Wait until the original response message exists and is no longer "thinking"."""
        return await self._fake.changes.wait_for(
            lambda: self.original if self.original is not None and not self.original.loading else None,
            timeout, f'original response to interaction {self.id}',
        )

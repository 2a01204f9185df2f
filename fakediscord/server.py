"""A fake Discord (REST API v10 + gateway) that the real, unmodified discord.py connects to.

One aiohttp server on 127.0.0.1 (random port) plays both halves of Discord:

* REST under ``/api/v10``: login, application info, command sync, interaction
  callbacks, webhook followups/edits, channel messages, reactions. Every
  request is recorded in ``fake.calls``; unknown routes answer a Discord-style
  404 and land in ``fake.unknown_calls`` so a missing endpoint is visible.
* the gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats,
  RESUME with replay of missed events, member chunk requests, and
  ``zlib-stream`` transport compression (what discord.py asks for).

Tests drive it as a Discord user would (``slash``, ``autocomplete``, ``click``,
``react``, ``say``) and inspect what the bot did (``messages``, interaction
responses with timing, ``bot_reactions``). The 3-second deadline for the first
interaction response is enforced, as on Discord.

discord.py is pointed at the fake by patching two class attributes,
``discord.http.Route.BASE`` (every REST and webhook URL, interaction followups
included, is built from it) and ``DiscordWebSocket.DEFAULT_GATEWAY`` (discord.py
>= 2.4 no longer asks ``/gateway/bot`` where to connect); ``install()`` does
that and undoes it on exit. The bot code needs no change.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
import secrets
import socket
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yarl
from aiohttp import WSMsgType, web

from . import payloads as P
from .records import (
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE_MESSAGE,
    EPHEMERAL,
    LOADING,
    MODAL,
    UPDATE_MESSAGE,
    CallbackRecord,
    Changes,
    FakeInteraction,
    RestCall,
    SnowflakeFactory,
    StoredAttachment,
    StoredMessage,
    Upload,
)
from .voice import VoiceServer

__all__ = ('FakeDiscord', 'API_PREFIX')

log = logging.getLogger('fakediscord')

API_PREFIX = '/api/v10'
GATEWAY_PATH = '/gateway-ws/'
# Message flags a bot may set when sending (SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2).
_SENDABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)

# Gateway opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 3, 4, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11


_BODY = web.RequestKey('fakediscord_body', object)  # parsed JSON / payload_json
_UPLOADS = web.RequestKey('fakediscord_uploads', list)  # multipart files[N]
_CALL = web.RequestKey('fakediscord_call', RestCall)


def _json(data: Any, status: int = 200) -> web.Response:
    # exactly 'application/json': discord.py compares the header verbatim, a charset breaks it
    return web.Response(body=json.dumps(data).encode(), status=status, content_type='application/json')


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json({'message': message, 'code': code}, status=status)


def _no_content() -> web.Response:
    return web.Response(status=204)


@dataclass
class _Upload:
    index: int  # N of the multipart field files[N]
    filename: str
    data: bytes
    content_type: str | None


class _Connection:
    """One gateway websocket; sends JSON as text, or zlib-stream binary when asked."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.later: set[asyncio.Task] = set()  # frames waiting to be sent (send_after)
        self.session: GatewaySession | None = None
        self.closed_by_server = False  # a drop we caused: the session stays resumable
        # one zlib context for the whole connection, flushed per message (Z_SYNC_FLUSH)
        self._zlib = zlib.compressobj() if compress == 'zlib-stream' else None

    async def send(self, frame: dict[str, Any]) -> None:
        text = json.dumps(frame)
        # under the lock: zlib-stream frames must be sent in the order they were compressed
        async with self.lock:
            if self.ws.closed:
                return
            try:
                if self._zlib is not None:
                    await self.ws.send_bytes(self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH))
                else:
                    await self.ws.send_str(text)
            except ConnectionError:  # the client went away mid-send; RESUME will replay it
                log.debug('gateway send failed: connection lost')

    def send_after(self, delay: float, frame: dict[str, Any]) -> None:
        """Send ``frame`` in ``delay`` seconds without holding up the frames read meanwhile."""
        async def later() -> None:
            await asyncio.sleep(delay)
            await self.send(frame)

        task = asyncio.get_running_loop().create_task(later(), name='fakediscord-send-after')
        self.later.add(task)
        task.add_done_callback(self.later.discard)

    def cancel_later(self) -> None:
        for task in list(self.later):
            task.cancel()


@dataclass
class GatewaySession:
    """A gateway session (from IDENTIFY); outlives its connection so RESUME can replay."""

    id: str
    intents: int
    shard: list[int] | None
    connection: _Connection | None
    seq: int = 0
    backlog: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def connected(self) -> bool:
        return self.connection is not None and not self.connection.ws.closed


class FakeDiscord:
    """A fake Discord server for end-to-end tests of a discord.py bot.

    ``async with FakeDiscord() as fake:`` starts it and points discord.py at it;
    ``async with fake.running(bot):`` logs a bot in and waits until it is ready.
    """

    def __init__(
        self,
        *,
        bot_name: str = 'Mozart',
        guild_name: str = 'Test Guild',
        channel_name: str = 'general',
        voice_channel_names: tuple[str, ...] = ('Lounge', 'Practice room'),
        user_name: str = 'tester',
        recommended_shards: int = 1,
        response_deadline: float = 3.0,
        heartbeat_interval_ms: int = 41_250,
        heartbeat_ack_delay: float = 0.2,
    ) -> None:
        self.snowflake = SnowflakeFactory()
        self.response_deadline = response_deadline  # Discord drops interactions not answered in 3 s
        self.recommended_shards = recommended_shards  # what GET /gateway/bot tells an AutoShardedClient
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # A heartbeat's ACK comes this long after it, as a network round trip does. discord.py
        # notes when it sent a heartbeat only once its keep-alive thread sees the send finish;
        # an ACK read before then is timed from the heartbeat before, one interval earlier,
        # and past 10 s discord.py warns "Can't keep up ... websocket is N s behind".
        self.heartbeat_ack_delay = heartbeat_ack_delay
        self.started_at = dt.datetime.now(dt.timezone.utc)

        self.application_id = self.bot_id = self.snowflake()  # bot user id == application id
        self.bot_name = bot_name
        self.owner_id = self.snowflake()  # owns the guild and the application
        self.user_id = self.snowflake()  # the default user who runs commands and reacts
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.everyone_role_id = self.guild_id
        self.bot_role_id = self.snowflake()
        self.guild_name = guild_name

        self.users: dict[int, dict[str, Any]] = {}
        self.user(self.owner_id, 'owner')
        self.user(self.user_id, user_name)
        self.channels: dict[int, dict[str, Any]] = {
            self.channel_id: P.text_channel(self.channel_id, self.guild_id, channel_name),
        }
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.voice_channel_ids: list[int] = []  # the guild's voice channels (voice.py: who is in them, what they carry)
        for position, name in enumerate(voice_channel_names, 1):
            channel_id = self.snowflake()
            self.voice_channel_ids.append(channel_id)
            self.channels[channel_id] = P.voice_channel(channel_id, self.guild_id, name, position=position)
        self.bot_permissions = P.ADMINISTRATOR  # the bot's role; set_bot_permissions changes it
        self.voice = VoiceServer(self)

        # --- records tests look at ---
        self.calls: list[RestCall] = []  # every API request, in order
        self.unknown_calls: list[RestCall] = []  # requests no route matched (answered 404)
        self.messages: dict[int, StoredMessage] = {}  # every message ever stored, by id
        self.interactions: dict[int, FakeInteraction] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # synced commands; key None = global
        self.command_syncs: list[tuple[int | None, list[dict[str, Any]]]] = []  # each bulk overwrite
        self.bot_reactions: list[tuple[int, str]] = []  # (message id, emoji) the bot added, in order
        self.presence: dict[str, Any] | None = None  # last presence update from the bot
        self.gateway_connections: list[dict[str, str]] = []  # query of each websocket (v, encoding, compress)
        self.identify_count = 0
        self.resume_count = 0
        self.changes = Changes()

        self._files: dict[int, StoredAttachment] = {}  # attachment id -> file served at its url
        self._by_token: dict[str, FakeInteraction] = {}
        self._sessions: dict[str, GatewaySession] = {}
        self._connections: set[_Connection] = set()
        self._runner: web.AppRunner | None = None
        self._install_stack: contextlib.ExitStack | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f'ws://127.0.0.1:{self.port}{GATEWAY_PATH}'

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record_middleware], client_max_size=64 * 1024 * 1024)
        self._add_routes(app.router)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(('127.0.0.1', 0))  # a free port, chosen by the OS
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        await self.voice.start()
        log.debug('fake Discord listening on %s', self.base_url)

    async def stop(self) -> None:
        """Close every gateway connection and the server. Stop the bots first."""
        if any(s.connected for s in self._sessions.values()):
            log.warning('fake Discord stopping while a bot is still connected; close the bot first')
        for conn in list(self._connections):
            conn.closed_by_server = True
            await conn.ws.close(code=1001, message=b'fake Discord shutting down')
        await self.voice.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @contextlib.contextmanager
    def install(self) -> Iterator[None]:
        """Point discord.py (REST, webhooks, gateway) at this fake; restored on exit.

        discord.py connects to a voice server at ``wss://`` + the endpoint of VOICE_SERVER_UPDATE; this
        fake's voice gateway speaks plain ``ws://`` on 127.0.0.1, so that one URL is rewritten (the voice
        protocol inside, its encryption included, is unchanged)."""
        from discord.gateway import DiscordWebSocket
        from discord.http import HTTPClient, Route

        saved = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, HTTPClient.ws_connect
        voice_url = 'wss://' + self.voice.endpoint + '/'
        original_ws_connect = HTTPClient.ws_connect

        async def ws_connect(client, url, **kwargs):
            if str(url).startswith(voice_url):
                url = 'ws://' + str(url)[len('wss://'):]
            return await original_ws_connect(client, url, **kwargs)

        Route.BASE = self.api_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        HTTPClient.ws_connect = ws_connect
        try:
            yield
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY, HTTPClient.ws_connect = saved

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        self._install_stack = contextlib.ExitStack()
        self._install_stack.enter_context(self.install())
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._install_stack is not None:
            self._install_stack.close()
            self._install_stack = None
        await self.stop()

    @contextlib.asynccontextmanager
    async def running(self, client: Any, *, token: str = 'fake-token', timeout: float = 10.0,
                      fast_ready: bool = True) -> AsyncIterator[Any]:
        """Log ``client`` in, connect it, wait for on_ready; close it (and wait) on exit.

        ``fast_ready`` shortens discord.py's wait for further GUILD_CREATEs after
        READY from 2 s to 0.05 s (the ``guild_ready_timeout`` client option).
        """
        if fast_ready:
            client._connection.guild_ready_timeout = min(client._connection.guild_ready_timeout, 0.05)
        connect = ready = None
        try:
            await client.login(token)  # runs setup_hook (command sync etc.) against the fake
            connect = asyncio.create_task(client.connect(), name='fakediscord-client-connect')
            ready = asyncio.create_task(client.wait_until_ready(), name='fakediscord-wait-ready')
            done, _ = await asyncio.wait({connect, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if connect in done:
                connect.result()  # raises what stopped it
                raise RuntimeError('the client stopped before it became ready')
            if not done:
                raise TimeoutError(f'fakediscord: the client was not ready within {timeout:g}s')
            yield client
        finally:
            if ready is not None:
                ready.cancel()
                await asyncio.gather(ready, return_exceptions=True)
            await client.close()
            if connect is not None:
                await asyncio.wait_for(connect, timeout)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = 'condition') -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every REST call or event); returns it."""
        return await self.changes.wait_for(predicate, timeout, what)

    async def wait_ready(self, timeout: float = 10.0) -> GatewaySession:
        """Wait until a bot has identified and received its guild (on the fake's side)."""
        return await self.changes.wait_for(
            lambda: next((s for s in self._sessions.values() if s.connected), None), timeout, 'identified bot'
        )

    # --- the test world ---------------------------------------------------------

    def user(self, user_id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """The user payload for ``user_id`` (default: the tester), creating the user if new."""
        user_id = self.user_id if user_id is None else user_id
        if user_id == self.bot_id:
            return self._bot_user()
        if user_id not in self.users:
            self.users[user_id] = P.user(user_id, name or f'user{user_id}')
        return self.users[user_id]

    def issued_ids(self) -> set[int]:
        """Every Discord id this fake knows: the snowflakes it issued and the user ids tests chose."""
        return {*self.snowflake.issued, *self.users, *self.dm_channels, *self.channels, *self.messages}

    def dm_channel_id(self, user_id: int | None = None) -> int:
        """The DM channel between the bot and a user (created on first use), e.g. for slash(channel_id=...)."""
        user_id = self.user_id if user_id is None else user_id
        if user_id not in self.dm_channels:
            channel_id = self.snowflake()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = P.dm_channel(channel_id, self.user(user_id))
        return self.dm_channels[user_id]

    def _bot_user(self) -> dict[str, Any]:
        return P.bot_user(self.bot_id, self.bot_name)

    def _member(self, user_id: int) -> dict[str, Any]:
        roles = [self.bot_role_id] if user_id == self.bot_id else []
        return P.member(self.user(user_id), self.started_at, roles=roles)

    def _permissions(self, user_id: int) -> int:
        if user_id in (self.owner_id, self.bot_id):
            return P.ALL_PERMISSIONS
        return P.EVERYONE_PERMISSIONS

    def _guild(self) -> dict[str, Any]:
        return {
            'id': str(self.guild_id), 'name': self.guild_name, 'icon': None, 'splash': None,
            'discovery_splash': None, 'banner': None, 'description': None, 'owner_id': str(self.owner_id),
            'afk_channel_id': None, 'afk_timeout': 300, 'verification_level': 0,
            'default_message_notifications': 0, 'explicit_content_filter': 0, 'mfa_level': 0, 'nsfw_level': 0,
            'features': [], 'emojis': [], 'stickers': [], 'system_channel_id': None, 'system_channel_flags': 0,
            'rules_channel_id': None, 'public_updates_channel_id': None, 'vanity_url_code': None,
            'premium_tier': 0, 'premium_subscription_count': 0, 'preferred_locale': 'en-US',
            'premium_progress_bar_enabled': False,
            'roles': [
                P.role(self.everyone_role_id, '@everyone', P.EVERYONE_PERMISSIONS),
                P.role(self.bot_role_id, self.bot_name, self.bot_permissions, position=1, managed=True),
            ],
        }

    def _guild_create(self) -> dict[str, Any]:
        members = [self._member(uid) for uid in (self.bot_id, *self.users)]
        return {
            **self._guild(), 'joined_at': P.iso(self.started_at), 'large': False, 'unavailable': False,
            'member_count': len(members), 'members': members, 'voice_states': self.voice.guild_voice_states(),
            'presences': [],
            'channels': [c for c in self.channels.values() if c.get('guild_id') == str(self.guild_id)],
            'threads': [], 'stage_instances': [], 'guild_scheduled_events': [], 'soundboard_sounds': [],
        }

    # --- voice ------------------------------------------------------------------

    async def join_voice(self, channel_id: int | None = None, user_id: int | None = None) -> None:
        """A user (default: the tester) joins a voice channel (default: the first) as a listening DAVE member."""
        await self.voice.join(self.voice_channel_ids[0] if channel_id is None else channel_id,
                              self.user_id if user_id is None else user_id)

    async def leave_voice(self, user_id: int | None = None) -> None:
        await self.voice.leave(self.user_id if user_id is None else user_id)

    async def set_bot_permissions(self, permissions: int) -> None:
        """Give the bot's role these permissions (GUILD_ROLE_UPDATE), e.g. without CONNECT or SPEAK."""
        self.bot_permissions = permissions
        role = P.role(self.bot_role_id, self.bot_name, permissions, position=1, managed=True)
        await self.dispatch('GUILD_ROLE_UPDATE', {'guild_id': str(self.guild_id), 'role': role})

    def _channel_guild(self, channel_id: int) -> int | None:
        guild = self.channels[channel_id].get('guild_id')
        return int(guild) if guild else None

    def messages_in(self, channel_id: int | None = None, *, include_deleted: bool = False) -> list[StoredMessage]:
        """Messages of a channel (default: the test channel), oldest first."""
        channel_id = self.channel_id if channel_id is None else channel_id
        return [m for m in self.messages.values()
                if m.channel_id == channel_id and (include_deleted or not m.deleted)]

    async def wait_message(self, predicate: Callable[[StoredMessage], bool] = lambda m: True, *,
                           after: int = 0, timeout: float = 5.0) -> StoredMessage:
        """Wait for a stored message (id > ``after``) matching ``predicate``."""
        return await self.changes.wait_for(
            lambda: next((m for m in self.messages.values() if m.id > after and predicate(m)), None),
            timeout, 'matching message',
        )

    # --- gateway ----------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _Connection(ws, request.query.get('compress'))
        self._connections.add(conn)
        self.gateway_connections.append(dict(request.query))
        try:
            await conn.send({'op': HELLO, 'd': {'heartbeat_interval': self.heartbeat_interval_ms}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_gateway_frame(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            conn.cancel_later()
            self._connections.discard(conn)
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                # the bot closing cleanly (1000/1001) ends the session; anything else may RESUME
                if ws.close_code in (1000, 1001) and not conn.closed_by_server:
                    self._sessions.pop(session.id, None)
            self.changes.notify()
        return ws

    async def _on_gateway_frame(self, conn: _Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get('op'), frame.get('d')
        if op == HEARTBEAT:
            conn.send_after(self.heartbeat_ack_delay, {'op': HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS:
            members = [self._member(uid) for uid in (self.bot_id, *self.users)]
            if data.get('user_ids'):
                wanted = {int(u) for u in data['user_ids']}
                members = [m for m in members if int(m['user']['id']) in wanted]
            await self._send_event(conn.session, 'GUILD_MEMBERS_CHUNK', {
                'guild_id': str(self.guild_id), 'members': members, 'chunk_index': 0, 'chunk_count': 1,
                'not_found': [], 'presences': [], 'nonce': data.get('nonce'),
            })
        elif op == PRESENCE:
            self.presence = data
            self.changes.notify()
        elif op == VOICE_STATE:
            await self.voice.bot_voice_state(data)
        else:
            log.warning('gateway: unhandled opcode %s: %s', op, frame)

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if not data.get('token'):
            await conn.ws.close(code=4004, message=b'Authentication failed.')
            return
        session = GatewaySession(id=secrets.token_hex(16), intents=data.get('intents', 0),
                                 shard=data.get('shard'), connection=conn)
        conn.session = session
        self._sessions[session.id] = session
        self.identify_count += 1
        ready: dict[str, Any] = {
            'v': 10, 'user': self._bot_user(), 'session_id': session.id, 'session_type': 'normal',
            'resume_gateway_url': self.gateway_url,
            'guilds': [{'id': str(self.guild_id), 'unavailable': True}] if self._owns(session, self.guild_id) else [],
            'application': {'id': str(self.application_id), 'flags': 0},
            'private_channels': [], 'relationships': [], 'presences': [], 'guild_join_requests': [],
            'geo_ordered_rtc_regions': [], 'user_settings': {}, '_trace': ['fakediscord'],
        }
        if session.shard is not None:
            ready['shard'] = session.shard
        await self._send_event(session, 'READY', ready)
        if self._owns(session, self.guild_id):
            await self._send_event(session, 'GUILD_CREATE', self._guild_create())
        self.changes.notify()

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get('session_id', ''))
        if session is None:
            await conn.send({'op': INVALID_SESSION, 'd': False})
            return
        self.resume_count += 1
        old, session.connection, conn.session = session.connection, conn, session
        if old is not None and old is not conn:
            old.closed_by_server = True
            await old.ws.close(code=4000)
        since = data.get('seq') or 0
        async with session.lock:
            for frame in list(session.backlog):
                if frame['s'] > since:
                    await conn.send(frame)
        await self._send_event(session, 'RESUMED', {'_trace': ['fakediscord']})
        self.changes.notify()

    async def _send_event(self, session: GatewaySession | None, event: str, data: dict[str, Any]) -> None:
        if session is None:
            return
        async with session.lock:  # sequence numbers go out in order
            session.seq += 1
            frame = {'op': DISPATCH, 't': event, 's': session.seq, 'd': data}
            session.backlog.append(frame)
            if session.connected:
                await session.connection.send(frame)

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> int:
        """Send a gateway event to every bot session (queued for RESUME while one is disconnected).

        With ``intent``, sessions that did not ask for it don't get the event,
        as on Discord. Returns how many sessions got it.
        """
        if not self._sessions:
            raise RuntimeError('fakediscord: no bot session; start the bot (fake.running(bot)) first')
        sent = 0
        guild_id = int(data['guild_id']) if isinstance(data, dict) and data.get('guild_id') else None
        for session in list(self._sessions.values()):
            if not self._owns(session, guild_id):
                continue  # another shard's guild (DMs: shard 0), as Discord routes them
            if intent is not None and not session.intents & intent:
                log.warning('not sending %s: the bot did not request intent %#x (Discord would not either)',
                            event, intent)
                continue
            await self._send_event(session, event, data)
            sent += 1
        return sent

    @staticmethod
    def _owns(session: GatewaySession, guild_id: int | None) -> bool:
        """Whether a session's shard receives a guild's events (Discord: (guild_id >> 22) % shards; DMs: 0)."""
        if session.shard is None:
            return True
        shard_id, count = session.shard
        return (0 if guild_id is None else (guild_id >> 22) % count) == shard_id

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the bots' websockets abnormally; discord.py reconnects and RESUMEs."""
        for conn in list(self._connections):
            conn.closed_by_server = True
            await conn.ws.close(code=code)

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT, as Discord does before moving a session."""
        for conn in list(self._connections):
            await conn.send({'op': RECONNECT, 'd': None})

    async def invalidate_sessions(self) -> None:
        """Forget every session and send op 9 (not resumable): the bot must IDENTIFY again."""
        for session in list(self._sessions.values()):
            self._sessions.pop(session.id, None)
            if session.connected:
                await session.connection.send({'op': INVALID_SESSION, 'd': False})

    async def wait_resumed(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` RESUMEs in total happened and the session is connected again."""
        await self.changes.wait_for(
            lambda: self.resume_count >= count and any(s.connected for s in self._sessions.values()),
            timeout, f'resume #{count}',
        )

    # --- driving the bot as a user ----------------------------------------------

    def _interaction_base(self, type_: int, data: dict[str, Any], user_id: int | None,
                          channel_id: int | None) -> dict[str, Any]:
        user_id = self.user_id if user_id is None else user_id
        channel_id = self.channel_id if channel_id is None else channel_id
        guild_id = self._channel_guild(channel_id)
        payload: dict[str, Any] = {
            'id': str(self.snowflake()), 'application_id': str(self.application_id), 'type': type_,
            'token': 'itok-' + secrets.token_urlsafe(24), 'version': 1, 'data': data,
            'channel_id': str(channel_id), 'channel': self.channels[channel_id],
            'locale': 'en-US', 'app_permissions': str(P.ALL_PERMISSIONS), 'entitlements': [],
            'attachment_size_limit': 10 * 1024 * 1024,
        }
        if guild_id is not None:
            member = {**self._member(user_id), 'permissions': str(self._permissions(user_id))}
            payload.update(guild_id=str(guild_id), guild_locale='en-US', member=member, context=0,
                           guild={'id': str(guild_id), 'locale': 'en-US', 'features': []},
                           authorizing_integration_owners={'0': str(guild_id)})
        else:
            payload.update(user=self.user(user_id), context=1, authorizing_integration_owners={'0': '0'})
        return payload

    async def _send_interaction(self, payload: dict[str, Any]) -> FakeInteraction:
        interaction = FakeInteraction(self, payload, asyncio.get_running_loop().time())
        self.interactions[interaction.id] = interaction
        self._by_token[interaction.token] = interaction
        await self.dispatch('INTERACTION_CREATE', payload)
        return interaction

    def _find_command(self, name: str) -> tuple[dict[str, Any] | None, int | None]:
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command['name'] == name and command.get('type', 1) == 1:
                    return command, scope
        return None, None

    def _store_file(self, channel_id: int, upload: Upload) -> StoredAttachment:
        attachment_id = self.snowflake()
        url = f'{self.base_url}/attachments/{channel_id}/{attachment_id}/{upload.filename}'
        attachment = StoredAttachment(attachment_id, upload.filename, upload.data, url, upload.content_type)
        self._files[attachment_id] = attachment
        return attachment

    def _command_data(self, name: str, options: dict[str, Any] | None, channel_id: int,
                      focused: str | None = None) -> dict[str, Any]:
        """``data`` of a slash/autocomplete interaction; 'group sub' names address subcommands.

        Option types come from the synced command; for commands never synced
        they are guessed from the Python values.
        """
        root, *path = name.split()
        command, scope = self._find_command(root)
        schema: list[dict[str, Any]] = command.get('options', []) if command else []
        resolved: dict[str, dict[str, Any]] = {}
        options_out: list[dict[str, Any]] = []
        top = options_out
        for sub in path:  # descend into subcommand groups / subcommands
            spec = next((o for o in schema if o['name'] == sub), None)
            entry = {'name': sub, 'type': spec['type'] if spec else P.SUB_COMMAND, 'options': []}
            top.append(entry)
            top = entry['options']
            schema = spec.get('options', []) if spec else []
        for key, value in (options or {}).items():
            spec = next((o for o in schema if o['name'] == key), None)
            kind = spec['type'] if spec else self._guess_type(value)
            entry: dict[str, Any] = {'name': key, 'type': kind}
            if key == focused:
                entry.update(value=str(value), focused=True)  # what the user has typed so far
            elif kind == P.ATTACHMENT:
                upload = value if isinstance(value, Upload) else Upload(*value)
                attachment = self._store_file(channel_id, upload)
                resolved.setdefault('attachments', {})[str(attachment.id)] = attachment.to_payload()
                entry['value'] = str(attachment.id)
            elif kind in (P.USER, P.MENTIONABLE):
                resolved.setdefault('users', {})[str(value)] = self.user(int(value))
                resolved.setdefault('members', {})[str(value)] = {
                    k: v for k, v in self._member(int(value)).items() if k != 'user'}
                entry['value'] = str(value)
            elif kind == P.CHANNEL:
                resolved.setdefault('channels', {})[str(value)] = {
                    **self.channels[int(value)], 'permissions': str(P.ALL_PERMISSIONS)}
                entry['value'] = str(value)
            else:
                entry['value'] = value
            top.append(entry)
        data: dict[str, Any] = {
            'id': command['id'] if command else str(self.snowflake()), 'name': root, 'type': 1,
            'options': options_out,
        }
        if resolved:
            data['resolved'] = resolved
        if scope is not None:
            data['guild_id'] = str(scope)
        return data

    @staticmethod
    def _guess_type(value: Any) -> int:
        if isinstance(value, (Upload, tuple)):
            return P.ATTACHMENT
        if isinstance(value, bool):
            return P.BOOLEAN
        if isinstance(value, int):
            return P.INTEGER
        if isinstance(value, float):
            return P.NUMBER
        return P.STRING

    async def slash(self, name: str, options: dict[str, Any] | None = None, *, user_id: int | None = None,
                    channel_id: int | None = None) -> FakeInteraction:
        """Run a slash command as a user. Attachment options take ``Upload(filename, bytes)``."""
        channel_id = self.channel_id if channel_id is None else channel_id
        data = self._command_data(name, options, channel_id)
        return await self._send_interaction(self._interaction_base(2, data, user_id, channel_id))

    async def autocomplete(self, name: str, focused_option: str, value: str, *,
                           options: dict[str, Any] | None = None, user_id: int | None = None,
                           channel_id: int | None = None, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Type ``value`` into ``focused_option`` of a command; returns the choices the bot offered."""
        channel_id = self.channel_id if channel_id is None else channel_id
        data = self._command_data(name, {**(options or {}), focused_option: value}, channel_id, focused_option)
        interaction = await self._send_interaction(self._interaction_base(4, data, user_id, channel_id))
        response = await interaction.wait_response(timeout)
        if response.type != AUTOCOMPLETE_RESULT:
            raise AssertionError(f'expected an autocomplete result (type 8), got type {response.type}')
        return response.choices

    async def click(self, message_id: int, custom_id: str, *, user_id: int | None = None,
                    component_type: int = 2, values: list[str] | None = None) -> FakeInteraction:
        """Press a button (or choose ``values`` in a select) on a stored message."""
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            raise KeyError(f'fakediscord: no message {message_id}')
        if custom_id not in message.custom_ids:
            log.warning('message %s has no component %r (has %s)', message_id, custom_id, message.custom_ids)
        data: dict[str, Any] = {'custom_id': custom_id, 'component_type': component_type}
        if values is not None:
            data['values'] = values
        payload = self._interaction_base(3, data, user_id, message.channel_id)
        payload['message'] = message.to_payload()
        return await self._send_interaction(payload)

    async def select(self, message_id: int, custom_id: str, values: list[str], *,
                     user_id: int | None = None) -> FakeInteraction:
        """Choose options in a string select menu."""
        return await self.click(message_id, custom_id, user_id=user_id, component_type=3, values=values)

    async def submit_modal(self, opened_by: FakeInteraction, fields: dict[str, str | list[str]], *,
                           user_id: int | None = None) -> FakeInteraction:
        """Fill in and submit the modal the bot answered ``opened_by`` with (text values by custom_id).

        The submission mirrors the modal's layout (action rows or labels), as Discord's does.
        """
        response = opened_by.response
        if response is None or response.type != MODAL:
            raise AssertionError(f'interaction {opened_by.id} was not answered with a modal')
        seen: list[str] = []

        def fill(component: dict[str, Any]) -> dict[str, Any]:
            kind, custom_id = component['type'], component.get('custom_id')
            if kind == 1:  # action row
                return {'type': 1, 'components': [fill(c) for c in component['components']]}
            if kind == 18:  # label
                return {'type': 18, 'id': component.get('id'), 'component': fill(component['component'])}
            if custom_id is None:
                return {'type': kind, 'id': component.get('id')}
            seen.append(custom_id)
            if kind == 4:  # text input
                return {'type': 4, 'custom_id': custom_id, 'value': fields.get(custom_id, component.get('value', ''))}
            return {'type': kind, 'custom_id': custom_id, 'values': list(fields.get(custom_id, []))}

        data = {'custom_id': response.data['custom_id'],
                'components': [fill(c) for c in response.data.get('components', [])]}
        if unknown := set(fields) - set(seen):
            raise KeyError(f'fakediscord: the modal has no field {sorted(unknown)} (has {seen})')
        channel_id = int(opened_by.payload['channel_id'])
        payload = self._interaction_base(5, data, user_id, channel_id)
        if 'message' in opened_by.payload:
            payload['message'] = opened_by.payload['message']
        return await self._send_interaction(payload)

    def _reaction_event(self, message_id: int, key: str, user_id: int, *, add: bool) -> tuple[dict[str, Any], int]:
        message = self.messages.get(message_id)
        channel_id = message.channel_id if message else self.channel_id
        guild_id = self._channel_guild(channel_id)
        data: dict[str, Any] = {
            'user_id': str(user_id), 'channel_id': str(channel_id), 'message_id': str(message_id),
            'emoji': P.emoji(key), 'burst': False, 'type': 0,
        }
        if guild_id is not None:
            data['guild_id'] = str(guild_id)
            if add:
                data['member'] = self._member(user_id)
        if add:
            data['burst_colors'] = []
            if message is not None:
                data['message_author_id'] = str(message.author_id)
        intent = P.GUILD_MESSAGE_REACTIONS if guild_id is not None else P.DIRECT_MESSAGE_REACTIONS
        return data, intent

    async def _set_reaction(self, message_id: int, emoji: str, user_id: int, *, add: bool) -> int:
        key = P.emoji_key(emoji)
        message = self.messages.get(message_id)
        if message is not None:
            users = message.reactions.setdefault(key, [])
            if add and user_id not in users:
                users.append(user_id)
            elif not add and user_id in users:
                users.remove(user_id)
        self.changes.notify()
        data, intent = self._reaction_event(message_id, key, user_id, add=add)
        event = 'MESSAGE_REACTION_ADD' if add else 'MESSAGE_REACTION_REMOVE'
        return await self.dispatch(event, data, intent=intent)

    async def react(self, message_id: int, emoji: str, *, user_id: int | None = None) -> int:
        """A user adds a reaction (raw MESSAGE_REACTION_ADD; the message need not be cached by the bot)."""
        return await self._set_reaction(message_id, emoji, self.user_id if user_id is None else user_id, add=True)

    async def unreact(self, message_id: int, emoji: str, *, user_id: int | None = None) -> int:
        """A user removes their reaction (MESSAGE_REACTION_REMOVE)."""
        return await self._set_reaction(message_id, emoji, self.user_id if user_id is None else user_id, add=False)

    async def say(self, content: str, *, user_id: int | None = None, channel_id: int | None = None) -> StoredMessage:
        """A user posts a message (MESSAGE_CREATE; content blanked without the message_content intent)."""
        user_id = self.user_id if user_id is None else user_id
        channel_id = self.channel_id if channel_id is None else channel_id
        message = StoredMessage(id=self.snowflake(), channel_id=channel_id, guild_id=self._channel_guild(channel_id),
                                author=self.user(user_id), content=content)
        self.messages[message.id] = message
        self.changes.notify()
        await self._dispatch_message('MESSAGE_CREATE', message)
        return message

    async def _dispatch_message(self, event: str, message: StoredMessage) -> None:
        """MESSAGE_CREATE/UPDATE as Discord sends them: not for ephemeral messages, only with the intent."""
        if message.ephemeral or not self._sessions:
            return
        data = message.to_payload()
        if message.guild_id is not None and message.webhook_id is None:
            data['member'] = {k: v for k, v in self._member(message.author_id).items() if k != 'user'}
        intent = P.GUILD_MESSAGES if message.guild_id is not None else P.DIRECT_MESSAGES
        for session in list(self._sessions.values()):
            if not session.intents & intent:
                continue
            mentioned = f'<@{self.bot_id}>' in message.content
            if not session.intents & P.MESSAGE_CONTENT and message.author_id != self.bot_id and not mentioned \
                    and message.guild_id is not None:
                data = {**data, 'content': '', 'embeds': [], 'attachments': [], 'components': []}
            await self._send_event(session, event, data)

    async def _dispatch_delete(self, message: StoredMessage) -> None:
        if message.ephemeral or not self._sessions:
            return
        data = {'id': str(message.id), 'channel_id': str(message.channel_id)}
        if message.guild_id is not None:
            data['guild_id'] = str(message.guild_id)
        intent = P.GUILD_MESSAGES if message.guild_id is not None else P.DIRECT_MESSAGES
        await self.dispatch('MESSAGE_DELETE', data, intent=intent)

    # --- REST: plumbing ---------------------------------------------------------

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await handler(request)
        body, uploads = await self._parse_body(request)
        call = RestCall(request.method, request.path[len(API_PREFIX):], dict(request.query), body,
                        [(u.filename, u.data) for u in uploads], at=asyncio.get_running_loop().time())
        request[_BODY], request[_UPLOADS], request[_CALL] = body, uploads, call
        self.calls.append(call)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # e.g. 405 from the router
            response = _error(exc.status, f'{exc.status}: {exc.reason}')
        except Exception:
            log.exception('fake Discord failed on %s %s', request.method, request.path)
            response = _error(500, '500: Internal Server Error (fakediscord bug)')
        call.status = response.status
        self.changes.notify()
        return response

    @staticmethod
    async def _parse_body(request: web.Request) -> tuple[Any, list[_Upload]]:
        """JSON body, or multipart ``payload_json`` + ``files[N]`` parts (how discord.py uploads files)."""
        if not request.body_exists:
            return None, []
        if request.content_type.startswith('multipart/'):
            body, uploads = None, []
            reader = await request.multipart()
            async for part in reader:
                if part.name == 'payload_json':
                    body = json.loads(await part.text())
                elif part.name and (match := re.fullmatch(r'files\[(\d+)\]', part.name)):
                    data = bytes(await part.read())
                    uploads.append(_Upload(int(match.group(1)), part.filename or f'file{match.group(1)}',
                                           data, part.headers.get('Content-Type')))
                else:
                    await part.read()
            return body, uploads
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    def _add_routes(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        routes = [
            ('GET', '/gateway', self._get_gateway),
            ('GET', '/gateway/bot', self._get_gateway_bot),
            ('GET', '/users/@me', self._get_me),
            ('GET', '/users/{user_id:\\d+}', self._get_user),
            ('POST', '/users/@me/channels', self._create_dm),
            ('GET', '/oauth2/applications/@me', self._get_application),
            ('GET', '/applications/@me', self._get_application),
            ('GET', '/applications/{app_id}/commands', self._get_commands),
            ('PUT', '/applications/{app_id}/commands', self._put_commands),
            ('POST', '/applications/{app_id}/commands', self._post_command),
            ('GET', '/applications/{app_id}/guilds/{guild_id}/commands', self._get_commands),
            ('PUT', '/applications/{app_id}/guilds/{guild_id}/commands', self._put_commands),
            ('POST', '/applications/{app_id}/guilds/{guild_id}/commands', self._post_command),
            ('POST', '/interactions/{interaction_id}/{token}/callback', self._interaction_callback),
            ('POST', '/webhooks/{app_id}/{token}', self._webhook_post),
            ('GET', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_get),
            ('PATCH', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_patch),
            ('DELETE', '/webhooks/{app_id}/{token}/messages/{message_id}', self._webhook_delete),
            ('GET', '/channels/{channel_id}', self._get_channel),
            ('POST', '/channels/{channel_id}/typing', self._typing),
            ('GET', '/channels/{channel_id}/messages', self._get_messages),
            ('POST', '/channels/{channel_id}/messages', self._post_message),
            ('GET', '/channels/{channel_id}/messages/{message_id}', self._get_message),
            ('PATCH', '/channels/{channel_id}/messages/{message_id}', self._patch_message),
            ('DELETE', '/channels/{channel_id}/messages/{message_id}', self._delete_message),
            ('GET', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}', self._get_reactions),
            ('PUT', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me', self._put_reaction),
            ('DELETE', '/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}', self._delete_reaction),
            ('GET', '/guilds/{guild_id}', self._get_guild),
            ('GET', '/guilds/{guild_id}/channels', self._get_guild_channels),
            ('GET', '/guilds/{guild_id}/members/{user_id}', self._get_member),
        ]
        for method, path, handler in routes:
            router.add_route(method, api + path, handler)
        router.add_get(GATEWAY_PATH, self._gateway)
        router.add_get('/attachments/{channel_id}/{attachment_id}/{filename}', self._get_attachment)
        router.add_route('*', '/{tail:.*}', self._unknown)

    async def _unknown(self, request: web.Request) -> web.Response:
        call = request.get(_CALL)
        log.warning('fake Discord has no route for %s %s', request.method, request.path)
        if call is not None:
            self.unknown_calls.append(call)
        return _error(404, '404: Not Found')

    def _bot_auth(self, request: web.Request) -> web.Response | None:
        if not request.headers.get('Authorization', '').startswith('Bot '):
            return _error(401, '401: Unauthorized')
        return None

    # --- REST: identity, gateway, commands --------------------------------------

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({'url': self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json({
            'url': self.gateway_url, 'shards': self.recommended_shards,
            'session_start_limit': {'total': 1000, 'remaining': 1000, 'reset_after': 0, 'max_concurrency': 1},
        })

    async def _get_me(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json(self._bot_user())

    async def _get_user(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info['user_id'])
        if user_id != self.bot_id and user_id not in self.users:
            return _error(404, 'Unknown User', 10013)
        return _json(self.user(user_id))

    async def _create_dm(self, request: web.Request) -> web.Response:
        return _json(self.channels[self.dm_channel_id(int(request[_BODY]['recipient_id']))])

    async def _get_application(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json({
            'id': str(self.application_id), 'name': self.bot_name, 'description': 'fake application',
            'icon': None, 'bot_public': True, 'bot_require_code_grant': False, 'owner': self.user(self.owner_id),
            'team': None, 'verify_key': '0' * 64, 'flags': 0, 'summary': '', 'rpc_origins': [],
            'interactions_endpoint_url': None, 'bot': self._bot_user(),
        })

    def _scope(self, request: web.Request) -> int | None:
        guild_id = request.match_info.get('guild_id')
        return int(guild_id) if guild_id else None

    def _store_command(self, scope: int | None, spec: dict[str, Any], existing: list[dict[str, Any]]) -> dict[str, Any]:
        """Give a command its id (stable per name and type, as Discord keeps them)."""
        same = next((c for c in existing if c['name'] == spec['name'] and c.get('type', 1) == spec.get('type', 1)),
                    None)
        command = {
            'type': 1, 'options': [], 'default_member_permissions': None, 'nsfw': False, 'description': '',
            **spec,
            'id': same['id'] if same else str(self.snowflake()), 'application_id': str(self.application_id),
            'version': str(self.snowflake()),
        }
        if scope is not None:
            command['guild_id'] = str(scope)
        return command

    async def _get_commands(self, request: web.Request) -> web.Response:
        return self._bot_auth(request) or _json(self.commands.get(self._scope(request), []))

    async def _put_commands(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        scope = self._scope(request)
        existing = self.commands.get(scope, [])
        self.commands[scope] = [self._store_command(scope, spec, existing) for spec in request[_BODY] or []]
        self.command_syncs.append((scope, self.commands[scope]))
        return _json(self.commands[scope])

    async def _post_command(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        scope = self._scope(request)
        existing = self.commands.setdefault(scope, [])
        command = self._store_command(scope, request[_BODY], existing)
        self.commands[scope] = [c for c in existing if c['id'] != command['id']] + [command]
        return _json(command)

    # --- REST: messages ---------------------------------------------------------

    def _attachments(self, channel_id: int, body: dict[str, Any], uploads: list[_Upload],
                     existing: list[StoredAttachment]) -> list[StoredAttachment]:
        """Attachments after a create/edit: kept ones (by id) plus new uploads (files[N] <-> id N)."""
        by_index = {u.index: u for u in uploads}
        specs = body.get('attachments')
        if specs is None:  # not mentioned: keep what is there, add any uploads
            specs = [{'id': a.id} for a in existing] + [{'id': u.index} for u in uploads]
        kept = {a.id: a for a in existing}
        result = []
        for spec in specs:
            spec_id = int(spec['id'])
            if spec_id in kept:
                result.append(kept[spec_id])
            elif spec_id in by_index:
                upload = by_index[spec_id]
                stored = self._store_file(channel_id, Upload(spec.get('filename') or upload.filename,
                                                             upload.data, upload.content_type))
                stored.description = spec.get('description')
                result.append(stored)
        return result

    def _new_message(self, channel_id: int, body: dict[str, Any], uploads: list[_Upload], *,
                     flags: int = 0, interaction: FakeInteraction | None = None, type_: int = 0) -> StoredMessage:
        message = StoredMessage(
            id=self.snowflake(), channel_id=channel_id, guild_id=self._channel_guild(channel_id),
            author=self._bot_user(), type=type_,
            flags=flags | (body.get('flags', 0) & _SENDABLE_FLAGS),
        )
        if interaction is not None:
            message.webhook_id = message.application_id = self.application_id
            message.interaction_id = interaction.id
        if body.get('message_reference'):
            message.message_reference = body['message_reference']
            message.type = 19
        self._apply(message, body, uploads, edit=False)
        self.messages[message.id] = message
        return message

    def _apply(self, message: StoredMessage, body: dict[str, Any], uploads: list[_Upload], *, edit: bool) -> None:
        if 'content' in body:
            message.content = body['content'] or ''
        if 'embeds' in body:
            message.embeds = body['embeds'] or []
        elif 'embed' in body:
            message.embeds = [body['embed']] if body['embed'] else []
        if 'components' in body:
            message.components = body['components'] or []
        message.attachments = self._attachments(message.channel_id, body, uploads, message.attachments)
        if edit:
            if 'flags' in body and body['flags'] is not None:
                message.flags = (message.flags & ~_SENDABLE_FLAGS) | (body['flags'] & _SENDABLE_FLAGS) \
                    | (message.flags & EPHEMERAL)  # ephemerality can't change
            message.edited_at = dt.datetime.now(dt.timezone.utc)
            message.edits += 1

    @staticmethod
    def _is_empty(body: dict[str, Any], uploads: list[_Upload]) -> bool:
        return not (body.get('content') or body.get('embeds') or body.get('components') or uploads
                    or body.get('sticker_ids') or body.get('poll'))

    def _message_or_404(self, request: web.Request) -> StoredMessage | web.Response:
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        message = self.messages.get(int(request.match_info['message_id']))
        if message is None or message.deleted or message.channel_id != channel_id or message.ephemeral:
            return _error(404, 'Unknown Message', 10008)
        return message

    async def _get_channel(self, request: web.Request) -> web.Response:
        channel = self.channels.get(int(request.match_info['channel_id']))
        return _json(channel) if channel else _error(404, 'Unknown Channel', 10003)

    async def _typing(self, request: web.Request) -> web.Response:
        return _no_content()

    async def _get_messages(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        messages = [m for m in self.messages_in(channel_id) if not m.ephemeral]
        if 'before' in request.query:
            messages = [m for m in messages if m.id < int(request.query['before'])]
        if 'after' in request.query:
            messages = [m for m in messages if m.id > int(request.query['after'])]
            limit = int(request.query.get('limit', 50))
            return _json([m.to_payload() for m in messages[:limit]][::-1])
        limit = int(request.query.get('limit', 50))
        return _json([m.to_payload() for m in reversed(messages)][:limit])

    async def _post_message(self, request: web.Request) -> web.Response:
        if denied := self._bot_auth(request):
            return denied
        channel_id = int(request.match_info['channel_id'])
        if channel_id not in self.channels:
            return _error(404, 'Unknown Channel', 10003)
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        if self._is_empty(body, uploads):
            return _error(400, 'Cannot send an empty message', 50006)
        message = self._new_message(channel_id, body, uploads)
        await self._dispatch_message('MESSAGE_CREATE', message)
        return _json(message.to_payload())

    async def _get_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        return found if isinstance(found, web.Response) else _json(found.to_payload())

    async def _patch_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        if found.author_id != self.bot_id:
            return _error(403, 'Cannot edit a message authored by another user', 50005)
        self._apply(found, request[_BODY] or {}, request[_UPLOADS], edit=True)
        await self._dispatch_message('MESSAGE_UPDATE', found)
        return _json(found.to_payload())

    async def _delete_message(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        found.deleted = True
        await self._dispatch_delete(found)
        return _no_content()

    async def _get_reactions(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        users = found.reactions.get(P.emoji_key(request.match_info['emoji']), [])
        return _json([self.user(uid) for uid in users])

    async def _put_reaction(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        key = P.emoji_key(request.match_info['emoji'])
        self.bot_reactions.append((found.id, key))
        await self._set_reaction(found.id, key, self.bot_id, add=True)  # Discord echoes the bot's own reaction
        return _no_content()

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        found = self._message_or_404(request)
        if isinstance(found, web.Response):
            return found
        who = request.match_info['user']
        user_id = self.bot_id if who == '@me' else int(who)
        await self._set_reaction(found.id, request.match_info['emoji'], user_id, add=False)
        return _no_content()

    async def _get_attachment(self, request: web.Request) -> web.Response:
        attachment = self._files.get(int(request.match_info['attachment_id']))
        if attachment is None or attachment.filename != request.match_info['filename']:
            return web.Response(status=404, text='Not Found')
        return web.Response(body=attachment.data, content_type=attachment.content_type or 'application/octet-stream')

    # --- REST: guilds -----------------------------------------------------------

    async def _get_guild(self, request: web.Request) -> web.Response:
        if int(request.match_info['guild_id']) != self.guild_id:
            return _error(404, 'Unknown Guild', 10004)
        return _json(self._guild())

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        if int(request.match_info['guild_id']) != self.guild_id:
            return _error(404, 'Unknown Guild', 10004)
        return _json([c for c in self.channels.values() if c.get('guild_id') == str(self.guild_id)])

    async def _get_member(self, request: web.Request) -> web.Response:
        user_id = int(request.match_info['user_id'])
        if user_id != self.bot_id and user_id not in self.users:
            return _error(404, 'Unknown Member', 10007)
        return _json(self._member(user_id))

    # --- REST: interactions and their webhooks ----------------------------------

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self._by_token.get(request.match_info['token'])
        if interaction is None or str(interaction.id) != request.match_info['interaction_id']:
            return _error(404, 'Unknown interaction', 10062)
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        kind, data = body.get('type'), body.get('data') or {}
        elapsed = asyncio.get_running_loop().time() - interaction.dispatched_at
        if any(c.accepted for c in interaction.callbacks):
            return _error(400, 'Interaction has already been acknowledged.', 40060)
        record = CallbackRecord(kind, data, [(u.filename, u.data) for u in uploads], elapsed,
                                accepted=elapsed <= self.response_deadline)
        interaction.callbacks.append(record)
        if not record.accepted:
            log.warning('interaction %s answered after %.2fs (deadline %gs): Discord says Unknown interaction',
                        interaction.id, elapsed, self.response_deadline)
            return _error(404, 'Unknown interaction', 10062)

        channel_id = int(interaction.payload['channel_id'])
        resource: dict[str, Any] = {'type': kind}
        if kind == CHANNEL_MESSAGE:
            if self._is_empty(data, uploads):
                interaction.callbacks.remove(record)
                return _error(400, 'Cannot send an empty message', 50006)
            interaction.original = self._new_message(channel_id, data, uploads, interaction=interaction, type_=20)
            await self._dispatch_message('MESSAGE_CREATE', interaction.original)
        elif kind == DEFERRED_CHANNEL_MESSAGE:  # "Bot is thinking..." until the first followup or edit
            interaction.original = self._new_message(channel_id, {}, [], interaction=interaction, type_=20,
                                                     flags=LOADING | (data.get('flags', 0) & EPHEMERAL))
            await self._dispatch_message('MESSAGE_CREATE', interaction.original)
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE) and 'message' in interaction.payload:
            interaction.original = self.messages.get(int(interaction.payload['message']['id']))
            if kind == UPDATE_MESSAGE and interaction.original is not None:
                self._apply(interaction.original, data, uploads, edit=True)
                await self._dispatch_message('MESSAGE_UPDATE', interaction.original)
        if interaction.original is not None and kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, UPDATE_MESSAGE):
            resource['message'] = interaction.original.to_payload()
        original = interaction.original
        return _json({
            'interaction': {
                'id': str(interaction.id), 'type': interaction.type,
                'response_message_id': str(original.id) if original else None,
                'response_message_loading': kind == DEFERRED_CHANNEL_MESSAGE,
                'response_message_ephemeral': bool(original and original.ephemeral),
            },
            'resource': resource,
        })

    def _webhook_interaction(self, request: web.Request) -> FakeInteraction | web.Response:
        interaction = self._by_token.get(request.match_info['token'])
        if interaction is None or request.match_info['app_id'] != str(self.application_id):
            return _error(404, 'Unknown Webhook', 10015)
        if not any(c.accepted for c in interaction.callbacks):  # no initial response yet
            return _error(404, 'Unknown Webhook', 10015)
        return interaction

    def _webhook_message(self, interaction: FakeInteraction, message_id: str) -> StoredMessage | web.Response:
        if message_id == '@original':
            message = interaction.original
        else:
            message = self.messages.get(int(message_id))
            if message is not None and message.interaction_id != interaction.id:
                message = None
        if message is None or message.deleted:
            return _error(404, 'Unknown Message', 10008)
        return message

    async def _webhook_post(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        body, uploads = request[_BODY] or {}, request[_UPLOADS]
        if self._is_empty(body, uploads):
            return _error(400, 'Cannot send an empty message', 50006)
        original = interaction.original
        if original is not None and not original.deleted and original.loading and not interaction.followups:
            # Discord turns the first followup after a defer into the deferred message;
            # its ephemerality was fixed by defer(ephemeral=...)
            self._apply(original, {k: v for k, v in body.items() if k != 'flags'}, uploads, edit=False)
            original.flags &= ~LOADING
            message = original
            await self._dispatch_message('MESSAGE_UPDATE', message)
        else:
            message = self._new_message(int(interaction.payload['channel_id']), body, uploads,
                                        interaction=interaction)
            await self._dispatch_message('MESSAGE_CREATE', message)
        interaction.followups.append(message)
        interaction.followup_elapsed.append(asyncio.get_running_loop().time() - interaction.dispatched_at)
        return _json(message.to_payload())

    async def _webhook_get(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, request.match_info['message_id'])
        return message if isinstance(message, web.Response) else _json(message.to_payload())

    async def _webhook_patch(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, request.match_info['message_id'])
        if isinstance(message, web.Response):
            return message
        self._apply(message, request[_BODY] or {}, request[_UPLOADS], edit=True)
        message.flags &= ~LOADING
        await self._dispatch_message('MESSAGE_UPDATE', message)
        return _json(message.to_payload())

    async def _webhook_delete(self, request: web.Request) -> web.Response:
        interaction = self._webhook_interaction(request)
        if isinstance(interaction, web.Response):
            return interaction
        message = self._webhook_message(interaction, request.match_info['message_id'])
        if isinstance(message, web.Response):
            return message
        message.deleted = True
        await self._dispatch_delete(message)
        return _no_content()

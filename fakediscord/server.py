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

The server is one class, ``FakeDiscord`` (here: its state, start, stop, ``running``), made of one
part per job: ``gateway.py`` (the websocket and event dispatch), ``rest.py`` (the routes),
``users.py`` (what a test does as a Discord user) and ``world.py`` (users, guild, channels, voice
members, stored messages); voice lives in ``voice.py``, ``mls.py`` and ``oggopus.py``.

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
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import yarl
from aiohttp import web

from . import payloads as P
from .gateway import Gateway, GatewaySession, _Connection
from .records import (
    Changes,
    FakeInteraction,
    RestCall,
    SnowflakeFactory,
    StoredAttachment,
    StoredMessage,
)
from .rest import API_PREFIX, GATEWAY_PATH, Rest
from .users import UserSide
from .voice import VoiceServer
from .world import World

__all__ = ('FakeDiscord', 'API_PREFIX')

log = logging.getLogger('fakediscord')


class FakeDiscord(World, Gateway, UserSide, Rest):
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

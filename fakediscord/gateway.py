"""The fake Discord's gateway: the websocket discord.py keeps open (HELLO, IDENTIFY -> READY +
GUILD_CREATE, heartbeats, RESUME with replay of missed events, member chunks, ``zlib-stream``), and
``dispatch`` of events to the sessions that asked for them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger('fakediscord')

# Gateway opcodes.
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE_STATE, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 3, 4, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11


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

class Gateway:
    """``FakeDiscord``'s gateway half (its state lives in ``FakeDiscord.__init__``)."""

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

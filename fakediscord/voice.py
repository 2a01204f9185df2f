"""The fake Discord's voice: voice states, a voice gateway (websocket) and a UDP media endpoint, with DAVE.

What Discord's documentation describes (voice connections, gateway v8) and the DAVE protocol
(daveprotocol.com) require, on 127.0.0.1:

* The main gateway's op 4 (a bot joins or leaves a voice channel) answers VOICE_STATE_UPDATE and
  VOICE_SERVER_UPDATE, whose endpoint is this server. Tests put people in voice channels and take them
  out (``FakeDiscord.join_voice`` / ``leave_voice``); GUILD_CREATE carries the voice states.
* The voice gateway: HELLO, IDENTIFY (a client that offers no DAVE protocol version is closed with
  4017, as Discord has done since March 2026), READY (SSRC, UDP address, the encryption modes Discord
  offers), heartbeats, SELECT_PROTOCOL, SESSION_DESCRIPTION (the transport key, the DAVE version),
  SPEAKING, CLIENTS_CONNECT.
* UDP: IP discovery (the 74-byte request and answer), then RTP packets, transport-encrypted with the
  chosen AEAD mode (``aead_aes256_gcm_rtpsize`` or ``aead_xchacha20_poly1305_rtpsize``), which the fake
  decrypts with the session key.
* DAVE: the fake plays the voice gateway's part as MLS *external sender* (``mls.py``: its signed
  external-sender package, op 25, and Add proposals, op 27), takes the bot's key package (op 26) and
  its commit and welcome (op 28), announces the commit as a transition (op 29), and executes the
  transition (op 22) once the bot is ready (op 23). The people in the channel are listening members:
  each is a ``davey.DaveSession`` that the fake drives as their client would (the external sender, the
  welcome or the commit), so they join the bot's MLS group for real, and every audio frame is
  end-to-end decrypted with their group keys (passthrough off: a frame that is not DAVE-encrypted is
  counted as a failure, not heard).

What is simplified, and so not proved: the listening members have no websocket or UDP socket of their
own (the fake hands them what the gateway would send them); when several members could commit, the
fake takes the bot's commit (the first a real gateway receives, here always the bot's: the members'
own commits are never sent); a member who leaves while others stay is not removed from the group (no
Remove proposal: davey 0.1.7 does not read the one ``mls.py`` writes), so the bot keeps encrypting to
them; and the gateway keeps no RESUME state.

The decrypted Opus is kept per transmission (``Capture``: from the first packet to the five silence
frames that end it) and decoded by ``oggopus`` so a test can compare it with what the bot rendered.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web

from . import mls, oggopus
from . import payloads as P

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger('fakediscord.voice')

VOICE_PATH = '/voice-ws/'
# The encryption modes Discord offers (the xsalsa20 ones were retired on 18 November 2024).
MODES = ('aead_aes256_gcm_rtpsize', 'aead_xchacha20_poly1305_rtpsize')
DAVE_VERSION = 1
OPUS_SILENCE = b'\xf8\xff\xfe'  # the frame a client sends five times when it stops transmitting
OPUS_PAYLOAD_TYPE = 120

# Voice gateway opcodes (v8).
(IDENTIFY, SELECT_PROTOCOL, READY, HEARTBEAT, SESSION_DESCRIPTION, SPEAKING, HEARTBEAT_ACK, RESUME, HELLO,
 RESUMED) = range(10)
CLIENTS_CONNECT, CLIENT_CONNECT, CLIENT_DISCONNECT = 11, 12, 13
DAVE_PREPARE_TRANSITION, DAVE_EXECUTE_TRANSITION, DAVE_TRANSITION_READY, DAVE_PREPARE_EPOCH = 21, 22, 23, 24
MLS_EXTERNAL_SENDER, MLS_KEY_PACKAGE, MLS_PROPOSALS, MLS_COMMIT_WELCOME = 25, 26, 27, 28
MLS_ANNOUNCE_COMMIT_TRANSITION, MLS_WELCOME, MLS_INVALID_COMMIT_WELCOME = 29, 30, 31

# Close codes.
AUTHENTICATION_FAILED, SESSION_NO_LONGER_VALID, UNKNOWN_ENCRYPTION_MODE, E2EE_REQUIRED = 4004, 4006, 4016, 4017


@dataclass
class VoiceState:
    user_id: int
    channel_id: int
    session_id: str
    self_mute: bool = False
    self_deaf: bool = False

    def payload(self, fake: FakeDiscord, *, guild: bool = True) -> dict[str, Any]:
        data = {
            'user_id': str(self.user_id), 'channel_id': str(self.channel_id), 'session_id': self.session_id,
            'deaf': False, 'mute': False, 'self_deaf': self.self_deaf, 'self_mute': self.self_mute,
            'self_stream': False, 'self_video': False, 'suppress': False, 'request_to_speak_timestamp': None,
        }
        if guild:  # VOICE_STATE_UPDATE; GUILD_CREATE's voice_states leave these out
            data.update(guild_id=str(fake.guild_id), member=fake._member(self.user_id))
        return data


@dataclass
class Capture:
    """One transmission the fake heard from a bot: the Opus packets as its listeners decrypted them."""

    user_id: int  # who sent it (the bot)
    channel_id: int
    packets: list[bytes] = field(default_factory=list)  # Opus, after transport and DAVE decryption
    e2ee_frames: int = 0  # frames that were DAVE-encrypted and decrypted by every listening member
    failed_frames: int = 0  # frames a member could not decrypt (not DAVE-encrypted, or a wrong key)
    listeners: int = 0  # members that decrypted the frames
    ended: bool = False  # the silence frames (or the sender leaving) ended it
    _pcm: np.ndarray | None = None

    @property
    def seconds(self) -> float:
        return len(self.packets) * oggopus.FRAME_SAMPLES / oggopus.RATE

    def pcm(self) -> np.ndarray:
        """The decoded audio: float32 (n, 2) at 48 kHz (decoded once; call it off the event loop)."""
        if self._pcm is None:
            self._pcm = oggopus.decode(list(self.packets))
        return self._pcm

    def wav(self) -> bytes:
        return oggopus.wav(self.pcm())


class _Listener:
    """A person in a voice channel, as a DAVE member: their client's MLS session."""

    def __init__(self, user_id: int, channel_id: int, external_sender: bytes) -> None:
        import davey

        self.user_id = user_id
        self.session = davey.DaveSession(DAVE_VERSION, user_id, channel_id)
        self.key_package = self.session.get_serialized_key_package()
        self.session.set_external_sender(external_sender)
        self.member = False  # in the group (welcomed)

    def propose(self, proposals: bytes) -> None:
        import davey

        self.session.process_proposals(davey.ProposalsOperationType.append, proposals)

    def decrypt(self, sender_id: int, frame: bytes) -> bytes:
        import davey

        return self.session.decrypt(sender_id, davey.MediaType.audio, frame)


class _VoiceConnection:
    """One client's voice gateway websocket and its UDP stream."""

    def __init__(self, server: VoiceServer, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.seq = 0
        self.user_id: int | None = None
        self.channel_id: int | None = None
        self.ssrc = secrets.randbelow(1 << 31) + 1
        self.mode: str | None = None
        self.secret_key = secrets.token_bytes(32)
        self.dave_version = 0
        self.key_package: bytes | None = None
        self.epoch = 0  # the MLS group's epoch (0: no group yet)
        self.pending: tuple[int, list[_Listener], bytes] | None = None  # (transition, joining, proposals sent)
        self.transition_id = 0
        self.executed_transitions: list[int] = []
        self.speaking: list[int] = []  # SPEAKING flags, in order
        self.closed_with: int | None = None
        self.capture: Capture | None = None

    async def send(self, op: int, data: Any) -> None:
        self.seq += 1
        if not self.ws.closed:
            await self.ws.send_str(json.dumps({'op': op, 'd': data, 'seq': self.seq}))

    async def send_binary(self, op: int, body: bytes) -> None:
        self.seq += 1
        if not self.ws.closed:
            await self.ws.send_bytes(struct.pack('>HB', self.seq & 0xFFFF, op) + body)

    async def close(self, code: int, message: str) -> None:
        self.closed_with = code
        await self.ws.close(code=code, message=message.encode())


class VoiceServer:
    """The fake's voice: the voice states of its guild, a voice gateway and a UDP endpoint."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.states: dict[int, VoiceState] = {}  # user id -> where they are
        self.captures: list[Capture] = []  # every transmission heard, in order
        self.connections: list[_VoiceConnection] = []  # every voice gateway connection, in order
        self.closes: list[int] = []  # close codes the voice gateway sent
        self.external_sender = mls.ExternalSender()
        self._tokens: dict[int, str] = {}  # user id -> the token of their VOICE_SERVER_UPDATE
        self._listeners: dict[int, _Listener] = {}  # user id -> their DAVE session
        self._by_ssrc: dict[int, _VoiceConnection] = {}
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self.port = 0
        self.udp_port = 0

    # --- lifecycle ---------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """What VOICE_SERVER_UPDATE names (discord.py adds ``wss://``; ``FakeDiscord.install`` maps it to ws)."""
        return f'127.0.0.1:{self.port}'

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(VOICE_PATH, self._gateway)
        app.router.add_get('/', self._gateway)  # discord.py connects to wss://ENDPOINT/?v=8
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(('127.0.0.1', 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=('127.0.0.1', 0))
        self.udp_port = self._udp.get_extra_info('sockname')[1]

    async def stop(self) -> None:
        for conn in self.connections:
            if not conn.ws.closed:
                await conn.ws.close(code=1001)
        if self._udp is not None:
            self._udp.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- voice states ------------------------------------------------------------

    def members_of(self, channel_id: int) -> list[int]:
        return [s.user_id for s in self.states.values() if s.channel_id == channel_id]

    def guild_voice_states(self) -> list[dict[str, Any]]:
        return [s.payload(self.fake, guild=False) for s in self.states.values()]

    async def _dispatch_state(self, user_id: int, channel_id: int | None, session_id: str, **flags: Any) -> None:
        if channel_id is None:
            data = VoiceState(user_id, 0, session_id, **flags).payload(self.fake)
            data['channel_id'] = None
        else:
            data = self.states[user_id].payload(self.fake)
        await self.fake.dispatch('VOICE_STATE_UPDATE', data, intent=P.GUILD_VOICE_STATES)

    async def join(self, channel_id: int, user_id: int) -> None:
        """A person joins a voice channel (leaving the one they were in); their client speaks DAVE."""
        if self.fake.channels.get(channel_id, {}).get('type') != P.VOICE_CHANNEL:
            raise ValueError(f'fakediscord: {channel_id} is not a voice channel')
        if user_id in self.states:
            await self.leave(user_id)
        self.fake.user(user_id)
        self.states[user_id] = VoiceState(user_id, channel_id, secrets.token_hex(16))
        self._listeners[user_id] = _Listener(user_id, channel_id, self.external_sender.package())
        await self._dispatch_state(user_id, channel_id, self.states[user_id].session_id)
        for conn in self._live(channel_id):
            await conn.send(CLIENTS_CONNECT, {'user_ids': [str(user_id)]})
            await self._propose(conn, [self._listeners[user_id]])
        self.fake.changes.notify()

    async def leave(self, user_id: int) -> None:
        state = self.states.pop(user_id, None)
        listener = self._listeners.pop(user_id, None)
        if state is None:
            return
        await self._dispatch_state(user_id, None, state.session_id)
        for conn in self._live(state.channel_id):
            await conn.send(CLIENT_DISCONNECT, {'user_id': str(user_id)})
            if conn.pending is not None and listener in conn.pending[1]:
                conn.pending[1].remove(listener)
        self.fake.changes.notify()

    async def bot_voice_state(self, data: dict[str, Any]) -> None:
        """The bot's op 4: join, move or leave (``channel_id`` None)."""
        user_id = self.fake.bot_id
        channel_id = int(data['channel_id']) if data.get('channel_id') else None
        old = self.states.get(user_id)
        if channel_id is None:
            if old is not None:
                del self.states[user_id]
                await self._dispatch_state(user_id, None, old.session_id)
            for conn in self.connections:
                if conn.user_id == user_id and not conn.ws.closed:
                    self._end_capture(conn)
            self.fake.changes.notify()
            return
        session_id = old.session_id if old is not None else secrets.token_hex(16)
        self.states[user_id] = VoiceState(user_id, channel_id, session_id, bool(data.get('self_mute')),
                                          bool(data.get('self_deaf')))
        await self._dispatch_state(user_id, channel_id, session_id)
        token = self._tokens[user_id] = secrets.token_hex(12)
        await self.fake.dispatch('VOICE_SERVER_UPDATE', {'token': token, 'guild_id': str(self.fake.guild_id),
                                                         'endpoint': self.endpoint})
        self.fake.changes.notify()

    # --- the voice gateway -------------------------------------------------------

    def _live(self, channel_id: int) -> list[_VoiceConnection]:
        return [c for c in self.connections if c.channel_id == channel_id and not c.ws.closed and c.dave_version]

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        conn = _VoiceConnection(self, ws)
        self.connections.append(conn)
        try:
            await conn.send(HELLO, {'heartbeat_interval': 13_750})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_json(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.BINARY:
                    await self._on_binary(conn, msg.data)
                elif msg.type is WSMsgType.ERROR:
                    break
        except Exception:
            log.exception('voice gateway: error handling a frame')
            raise
        finally:
            self._end_capture(conn)
            self._by_ssrc.pop(conn.ssrc, None)
            if conn.closed_with is not None:
                self.closes.append(conn.closed_with)
            self.fake.changes.notify()
        return ws

    async def _on_json(self, conn: _VoiceConnection, frame: dict[str, Any]) -> None:
        op, data = frame.get('op'), frame.get('d') or {}
        if op == HEARTBEAT:
            await conn.send(HEARTBEAT_ACK, {'t': data.get('t') if isinstance(data, dict) else data})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == SELECT_PROTOCOL:
            await self._select_protocol(conn, data)
        elif op == SPEAKING:
            conn.speaking.append(int(data.get('speaking', 0)))
            self.fake.changes.notify()
        elif op == DAVE_TRANSITION_READY:
            await self._transition_ready(conn, int(data['transition_id']))
        elif op == MLS_INVALID_COMMIT_WELCOME:
            log.warning('voice: the client could not use the commit or welcome of transition %s',
                        data.get('transition_id'))
            conn.epoch = 0  # it starts over with a new key package
        elif op == RESUME:
            await conn.close(SESSION_NO_LONGER_VALID, 'Session no longer valid.')
        elif op == CLIENT_CONNECT:
            pass
        else:
            log.warning('voice gateway: unhandled opcode %s', op)

    async def _identify(self, conn: _VoiceConnection, data: dict[str, Any]) -> None:
        user_id = int(data.get('user_id', 0))
        state = self.states.get(user_id)
        if data.get('token') != self._tokens.get(user_id) or str(data.get('server_id')) != str(self.fake.guild_id):
            await conn.close(AUTHENTICATION_FAILED, 'Authentication failed.')
            return
        if state is None or data.get('session_id') != state.session_id:
            await conn.close(SESSION_NO_LONGER_VALID, 'Session no longer valid.')
            return
        if int(data.get('max_dave_protocol_version') or 0) < DAVE_VERSION:
            # Since March 2026 Discord's voice gateway takes end-to-end encrypted clients only.
            await conn.close(E2EE_REQUIRED, 'E2EE/DAVE protocol required.')
            return
        conn.user_id, conn.channel_id = user_id, state.channel_id
        self._by_ssrc[conn.ssrc] = conn
        await conn.send(READY, {'ssrc': conn.ssrc, 'ip': '127.0.0.1', 'port': self.udp_port, 'modes': list(MODES),
                                'heartbeat_interval': 1})
        self.fake.changes.notify()

    async def _select_protocol(self, conn: _VoiceConnection, data: dict[str, Any]) -> None:
        mode = (data.get('data') or {}).get('mode')
        if data.get('protocol') != 'udp' or mode not in MODES:
            await conn.close(UNKNOWN_ENCRYPTION_MODE, 'Unknown encryption mode.')
            return
        conn.mode = mode
        conn.dave_version = DAVE_VERSION
        await conn.send(SESSION_DESCRIPTION, {'mode': mode, 'secret_key': list(conn.secret_key), 'audio_codec': 'opus',
                                              'media_session_id': secrets.token_hex(16),
                                              'dave_protocol_version': conn.dave_version})
        others = [uid for uid in self.members_of(conn.channel_id) if uid != conn.user_id]
        if others:
            await conn.send(CLIENTS_CONNECT, {'user_ids': [str(uid) for uid in others]})
        await conn.send_binary(MLS_EXTERNAL_SENDER, self.external_sender.package())
        self.fake.changes.notify()

    async def _on_binary(self, conn: _VoiceConnection, data: bytes) -> None:
        op, body = data[0], data[1:]
        if op == MLS_KEY_PACKAGE:
            conn.key_package = body
            conn.epoch = 0
            # A new group: everyone joins it afresh, and one who was in the bot's last group (the bot left and
            # came back) with a new MLS session, as a client does when its group is gone.
            for uid in self.members_of(conn.channel_id):
                if uid in self._listeners and self._listeners[uid].member:
                    self._listeners[uid] = _Listener(uid, conn.channel_id, self.external_sender.package())
            listeners = [self._listeners[uid] for uid in self.members_of(conn.channel_id) if uid in self._listeners]
            if listeners:
                await self._propose(conn, listeners)
        elif op == MLS_COMMIT_WELCOME:
            await self._commit_welcome(conn, body)
        else:
            log.warning('voice gateway: unhandled binary opcode %s', op)

    async def _propose(self, conn: _VoiceConnection, joining: list[_Listener]) -> None:
        """Op 27: Add proposals for the members joining, to the bot (and to the members already in the
        group: they must know the proposals the commit refers to)."""
        if conn.key_package is None:
            return  # proposals follow the bot's key package
        messages = [self.external_sender.add(conn.channel_id, conn.epoch, listener.key_package) for listener in joining]
        payload = mls.proposals_payload(messages)
        conn.transition_id += 1
        conn.pending = (conn.transition_id, list(joining), payload[1:])
        for listener in self._members(conn):  # their own commits are never sent: the bot's is taken
            listener.propose(payload[1:])
        await conn.send_binary(MLS_PROPOSALS, payload)

    def _members(self, conn: _VoiceConnection) -> list[_Listener]:
        return [self._listeners[uid] for uid in self.members_of(conn.channel_id)
                if uid in self._listeners and self._listeners[uid].member]

    async def _commit_welcome(self, conn: _VoiceConnection, body: bytes) -> None:
        """Op 28: the bot's commit (and the welcome of those it adds): the members apply it, the newcomers
        join from the welcome, and the bot is told to apply it as a transition (op 29)."""
        if conn.pending is None:
            log.warning('voice gateway: a commit with no proposals pending')
            return
        transition_id, joining, _ = conn.pending
        conn.pending = None
        commit, welcome = mls.split_commit_welcome(body)
        for listener in self._members(conn):
            listener.session.process_commit(commit)
        for listener in joining:
            if welcome is None:
                raise ValueError('the commit adds members but came without a welcome')
            listener.session.process_welcome(welcome)
            listener.session.set_passthrough_mode(False)  # a frame that is not end-to-end encrypted fails
            listener.member = True
        conn.epoch += 1
        await conn.send_binary(MLS_ANNOUNCE_COMMIT_TRANSITION, struct.pack('>H', transition_id) + commit)
        self.fake.changes.notify()

    async def _transition_ready(self, conn: _VoiceConnection, transition_id: int) -> None:
        # every other member is an in-process session, ready as soon as it applied the commit
        await conn.send(DAVE_EXECUTE_TRANSITION, {'transition_id': transition_id})
        conn.executed_transitions.append(transition_id)
        self.fake.changes.notify()

    # --- media -------------------------------------------------------------------

    def _end_capture(self, conn: _VoiceConnection) -> None:
        if conn.capture is not None:
            conn.capture.ended = True
            conn.capture = None
            self.fake.changes.notify()

    def on_rtp(self, data: bytes) -> None:
        if len(data) < 16 or data[0] >> 6 != 2 or data[1] & 0x7F != OPUS_PAYLOAD_TYPE:
            return
        ssrc = struct.unpack_from('>I', data, 8)[0]
        conn = self._by_ssrc.get(ssrc)
        if conn is None or conn.mode is None:
            return
        frame = transport_decrypt(conn.mode, conn.secret_key, data)
        if frame is None:
            log.warning('voice: a packet failed transport decryption')
            return
        if frame == OPUS_SILENCE:  # the end of a transmission (DAVE leaves silence unencrypted)
            self._end_capture(conn)
            return
        if conn.capture is None:
            conn.capture = Capture(conn.user_id, conn.channel_id)
            self.captures.append(conn.capture)
            self.fake.changes.notify()
        capture = conn.capture
        heard = []
        for listener in self._members(conn):
            try:
                heard.append(listener.decrypt(conn.user_id, frame))
            except ValueError:
                capture.failed_frames += 1
        capture.listeners = max(capture.listeners, len(heard))
        if heard and all(h == heard[0] for h in heard):
            capture.e2ee_frames += 1
            capture.packets.append(heard[0])


def transport_decrypt(mode: str, key: bytes, packet: bytes) -> bytes | None:
    """The payload of an RTP packet in an ``*_rtpsize`` AEAD mode: the header (and an extension's
    4-byte header) is authenticated, not encrypted; the 32-bit nonce counter ends the packet."""
    header_len = 12 + 4 * (packet[0] & 0x0F)
    has_extension = bool(packet[0] & 0x10)
    if has_extension:
        header_len += 4
    aad, ciphertext, counter = packet[:header_len], packet[header_len:-4], packet[-4:]
    try:
        if mode == 'aead_xchacha20_poly1305_rtpsize':
            from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

            plain = crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, counter + bytes(20), key)
        else:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            plain = AESGCM(key).decrypt(counter + bytes(8), ciphertext, aad)
    except Exception:
        return None
    if has_extension:  # the extension's body is the start of the plaintext
        words = struct.unpack_from('>H', packet, header_len - 2)[0]
        plain = plain[4 * words:]
    return plain


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: VoiceServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) == 74 and data[:4] == struct.pack('>HH', 1, 70):  # IP discovery request
            ssrc = struct.unpack_from('>I', data, 4)[0]
            answer = struct.pack('>HHI', 2, 70, ssrc) + addr[0].encode().ljust(64, b'\0') + struct.pack('>H', addr[1])
            self.transport.sendto(answer, addr)
            return
        try:
            self.server.on_rtp(data)
        except Exception:
            log.exception('voice: could not read a packet')

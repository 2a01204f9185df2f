"""One server's voice player: its queue of rendered pieces, the voice connection, leaving when idle.

Playback never blocks the event loop: discord.py's player thread sends the packets, an ffmpeg child
process turns the audio into Opus (``FFmpegOpusAudio``: no system libopus needed), and this module
only awaits an event that the player's ``after`` callback sets. Composing never waits on it: the
queue holds audio that is already rendered. Whatever goes wrong while playing is logged and the
next piece plays; nothing here raises into the bot.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import deque
from dataclasses import dataclass

import discord

log = logging.getLogger("mozart.voice")

CONNECT_TIMEOUT_S = 20.0  # joining a voice channel (discord.py's handshake)
E2EE_WAIT_S = 10.0  # for the channel's end-to-end encryption (DAVE) to be in place before the first packet


@dataclass
class Track:
    piece_id: int
    title: str  # "piece #12 (zelda-bach)"
    audio: bytes  # the rendered piece (OGG), decoded by ffmpeg as it plays
    channel_id: int  # the voice channel it was asked for in


class GuildPlayer:
    """Plays a server's queue in one voice channel at a time, in order; leaves when idle or alone."""

    def __init__(self, guild: discord.Guild, *, idle_s: float, ffmpeg: str) -> None:
        self.guild = guild
        self.idle_s = idle_s
        self.ffmpeg = ffmpeg
        self.queue: deque[Track] = deque()
        self.current: Track | None = None
        self.played: list[int] = []  # piece ids played to their end or skipped, in order
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._leaving = False

    @property
    def voice(self) -> discord.VoiceClient | None:
        return self.guild.voice_client  # type: ignore[return-value]

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self.queue)

    @property
    def channel_id(self) -> int | None:
        """The voice channel it plays in (or is about to)."""
        if self.current is not None:
            return self.current.channel_id
        if self.queue:
            return self.queue[0].channel_id
        return self.voice.channel.id if self.voice is not None and self.voice.channel is not None else None

    def add(self, track: Track) -> int:
        """Queue ``track``; returns how many pieces play before it (0: it starts now)."""
        ahead = len(self.queue) + (self.current is not None)
        self.queue.append(track)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"voice-player-{self.guild.id}")
        return ahead

    def skip(self) -> Track | None:
        """Stop the piece playing now; the next one starts. Returns the skipped piece."""
        skipped = self.current
        if self.voice is not None:
            self.voice.stop()  # the player's `after` ends the wait in _play
        return skipped

    async def stop(self) -> None:
        """Empty the queue, stop playing and leave the channel."""
        self.queue.clear()
        if self.voice is not None:
            self.voice.stop()
        await self.leave()

    async def leave(self) -> None:
        """Leave the voice channel (the queue is dropped with it)."""
        self.queue.clear()
        voice = self.voice
        if voice is not None and not self._leaving:
            self._leaving = True
            voice.stop()
            try:
                await voice.disconnect(force=True)
            except Exception:  # already gone: nothing to do
                log.debug("leaving the voice channel failed", exc_info=True)
            finally:
                self._leaving = False

    async def close(self) -> None:
        await self.leave()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)
                except TimeoutError:
                    if not self.queue:
                        log.info("voice: idle for %g s, leaving", self.idle_s)
                        await self.leave()
                        return
                continue
            self.current = self.queue.popleft()
            try:
                await self._play(self.current)
            except Exception:
                log.exception("voice: could not play piece %s", self.current.piece_id)
            finally:
                self.played.append(self.current.piece_id)
                self.current = None

    async def _connect(self, channel_id: int) -> discord.VoiceClient | None:
        channel = self.guild.get_channel(channel_id)
        if not isinstance(channel, discord.VoiceChannel):
            return None
        voice = self.voice
        if voice is not None and voice.is_connected() and voice.channel.id == channel_id:
            return voice
        if voice is not None:  # somewhere else, idle: leave first, then join where it was asked for
            await voice.disconnect(force=True)
        voice = await channel.connect(timeout=CONNECT_TIMEOUT_S, self_deaf=True)
        # Discord relays only end-to-end encrypted audio: wait for this channel's MLS group to be ready.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + E2EE_WAIT_S
        while voice.voice_privacy_code is None and loop.time() < deadline and voice.is_connected():
            await asyncio.sleep(0.05)
        if voice.voice_privacy_code is None:
            log.warning("voice: end-to-end encryption was not ready after %g s", E2EE_WAIT_S)
        return voice

    async def _play(self, track: Track) -> None:
        voice = await self._connect(track.channel_id)
        if voice is None:
            return
        source = await asyncio.to_thread(discord.FFmpegOpusAudio, io.BytesIO(track.audio), pipe=True,
                                         executable=self.ffmpeg)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        def after(error: Exception | None) -> None:
            if error is not None:
                log.error("voice: playback of piece %s failed: %s", track.piece_id, error)
            loop.call_soon_threadsafe(done.set)

        voice.play(source, after=after)
        await done.wait()

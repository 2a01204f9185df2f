"""Abuse benchmark: the real bot (shipped model) against the fake Discord, as one person tries to hurt others.

    python benchmarks/abuse.py [--checkpoint DIR] [--flood-seconds 10]

Prints:
1. flood: one person presses 📦 stems, ⏩ extend and 🔁 reroll on their piece as fast as the fake allows
   for --flood-seconds; meanwhile another person's /compose bars:32: how soon it is answered (Discord's
   limit is 3 s) and composed, against the same /compose on an idle bot; how many presses were refused.
2. memory: /compose bars:128 tempo:30 (17 minutes of music) and a remix of a slow 8/4 file extended to its
   maximum, then its stems: the answers, and the peak resident memory of the bot's process and of every
   process it started (composing children, ffmpeg), sampled every 50 ms from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import db  # noqa: E402
from composer.music import tokens as T  # noqa: E402
from bot import BotConfig, build  # noqa: E402
from composer.music.grid import Piece  # noqa: E402
from composer.music.midi_io import to_midi  # noqa: E402
from fakediscord import FakeDiscord, Upload  # noqa: E402

FLOODER, OTHER = 111_222_333_444_555_666, 777_888_999_000_111_222


class PeakMemory:
    """Peak RSS of this process and every descendant, sampled from /proc in a thread."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (name, peak bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _children(self) -> dict[int, int]:
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    pass
        return parents

    def _run(self):
        me = os.getpid()
        while not self._stop.wait(self.interval):
            parents = self._children()
            family, changed = {me}, True
            while changed:
                changed = False
                for pid, parent in parents.items():
                    if parent in family and pid not in family:
                        family.add(pid)
                        changed = True
            for pid in family:
                try:
                    with open(f"/proc/{pid}/status") as f:
                        fields = dict(line.split(":", 1) for line in f if ":" in line)
                    rss = int(fields["VmRSS"].split()[0]) * 1024
                    name = fields["Name"].strip()
                except (OSError, KeyError, ValueError):
                    continue
                if rss > self.peaks.get(pid, ("", 0))[1]:
                    self.peaks[pid] = (name, rss)

    def report(self) -> str:
        top = sorted(self.peaks.items(), key=lambda item: -item[1][1])[:6]
        return ", ".join(f"{name} (pid {pid}) {rss / 2**20:.0f} MiB" for pid, (name, rss) in top)

    @property
    def largest(self) -> int:
        return max((rss for _, rss in self.peaks.values()), default=0)


async def _posted(fake, interaction, timeout=300.0, suffix=".mp3"):
    def finished():
        message = interaction.original
        if message is not None and any(a.filename.endswith(suffix) for a in message.attachments):
            return message
        return None

    return await fake.wait_for(finished, timeout, "the posted piece")


async def _answer(interaction, timeout=300.0) -> str:
    """The text a person ends up with: an ephemeral answer or followup."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = interaction.response
        if response is not None and response.ephemeral:
            return response.data.get("content") or ""
        for message in interaction.followups:
            if message.ephemeral:
                return message.content
        await asyncio.sleep(0.05)
    return "(no answer)"


async def timed_compose(fake, user_id) -> tuple[float, float]:
    started = time.monotonic()
    interaction = await fake.slash("compose", {"style": "zelda-bach", "bars": 32}, user_id=user_id)
    response = await interaction.wait_response(10)
    answered = response.elapsed
    await _posted(fake, interaction)
    return answered, time.monotonic() - started


async def flood(fake, bot, seconds: float) -> None:
    target_interaction = await fake.slash("compose", {"style": "doom", "bars": 32, "seed": 1}, user_id=FLOODER)
    target = await _posted(fake, target_interaction)
    idle = await timed_compose(fake, OTHER)
    stop = time.monotonic() + seconds
    clicks = []

    async def press():
        while time.monotonic() < stop:
            for button in ("mozart:stems", "mozart:extend", "mozart:reroll"):
                clicks.append(await fake.click(target.id, button, user_id=FLOODER))
            await asyncio.sleep(0)

    pressing = asyncio.create_task(press())
    await asyncio.sleep(seconds / 2)  # well into the flood
    flooded = await timed_compose(fake, OTHER)
    await pressing
    refused = sum(1 for c in clicks if c.response is not None and c.response.ephemeral)
    admitted = sum(1 for c in clicks if c.response is not None and c.response.deferred)
    print(f"flood: {len(clicks)} presses in {seconds:g} s by one person: {admitted} took their turn, {refused} "
          f"told \"try again in …\", {len(clicks) - admitted - refused} ignored until then")
    print(f"  another person's /compose bars:32: answered in {flooded[0]:.2f} s (idle bot: {idle[0]:.2f} s), "
          f"posted after {flooded[1]:.1f} s (idle bot: {idle[1]:.1f} s)")
    await asyncio.sleep(max(0.0, bot.config.job_timeout_s))  # let the flooder's admitted jobs end


async def memory(fake, bot) -> None:
    slow = await fake.slash("compose", {"style": "doom", "bars": 128, "tempo": 30, "time_signature": "4/4"},
                            user_id=OTHER)
    print(f"memory: /compose bars:128 tempo:30 → {await _answer(slow, 10)!r}")
    source = Piece.empty(64, (8, 4), tempo=20.0)
    for bar in range(64):
        source.grid[bar * source.frames_per_bar, 0] = T.onset(60 + bar % 12)  # a note a bar
    remix = await fake.slash("remix", {"midi": Upload("slow-8-4.mid", to_midi(source)), "style": "doom"},
                             user_id=OTHER)
    message = await _posted(fake, remix)
    row = None
    while row is None:  # linked to its message a moment after it is posted
        await asyncio.sleep(0.1)
        row = await db.piece_by_message(bot.db, message.id)
    print(f"  remix of 64 bars of 8/4 at 20 bpm: posted {row.params['bars']} bars at {row.params['tempo']:g} bpm "
          f"({row.duration_s / 60:.1f} minutes, the most that fits)")
    extend = await fake.click(message.id, "mozart:extend", user_id=OTHER)
    print(f"  ⏩ extend on it → {await _answer(extend, 60)!r}")
    stems = await fake.click(message.id, "mozart:stems", user_id=OTHER)
    found = await fake.wait_for(lambda: next((m for m in stems.followups if m.files or m.ephemeral), None), 600)
    size = sum(len(data) for data in found.files.values())
    print(f"  📦 stems of it: {size / 2**20:.1f} MB zip" if found.files else f"  📦 stems of it: {found.content!r}")


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = BotConfig(token="bench", database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                           checkpoint=args.checkpoint)
        with PeakMemory() as peaks:
            async with FakeDiscord() as fake:
                bot = await build(config)
                async with fake.running(bot):
                    print(f"model {bot.studio.generator.version} on {bot.studio.generator.device}, "
                          f"{bot.studio.workers} composing processes, job deadline {config.job_timeout_s:g} s")
                    await flood(fake, bot, args.flood_seconds)
                    await memory(fake, bot)
        print(f"  peak resident memory (largest first): {peaks.report()}")
        print(f"  largest process: {peaks.largest / 2**30:.2f} GiB (limit 1.5 GiB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    asyncio.run(main(parser.parse_args()))

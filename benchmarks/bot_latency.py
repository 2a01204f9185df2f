"""Bot benchmark: the real bot against the fake Discord, with the shipped model.

    python benchmarks/bot_latency.py [--checkpoint DIR] [--runs 7] [--workers N]

Prints: /compose bars:32 from command to MP3 posted (p50/p95); event-loop lag (p99)
while 8 compositions run; how many of 200 reactions sent within one second were stored;
how often the watchdog saw the event loop blocked.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import db  # noqa: E402
from bot import BotConfig, build  # noqa: E402
from cogs.utils.limits import ComposeLimits  # noqa: E402
from fakediscord import FakeDiscord  # noqa: E402


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def _posted(fake, interaction, timeout=120.0):
    def finished():
        message = interaction.original
        if message is not None and any(a.filename.endswith(".mp3") for a in message.attachments):
            return message
        return None

    return await fake.wait_for(finished, timeout, "the posted piece")


async def _lag_probe(samples: list[float], stop: asyncio.Event, interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await asyncio.sleep(interval)
        samples.append(loop.time() - started - interval)


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        # One person asks for every piece here: no per-person limits, so the studio is what is measured.
        config = BotConfig(token="bench", database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                           checkpoint=args.checkpoint, limits=ComposeLimits(in_flight=16, refill_s=0), max_queue=16,
                           **({"workers": args.workers} if args.workers else {}))
        async with FakeDiscord() as fake:
            bot = await build(config)
            async with fake.running(bot):
                print(f"model {bot.studio.generator.version} on {bot.studio.generator.device}")
                # 1) command -> MP3 posted, one at a time
                first_response, posted = [], []
                for seed in range(args.runs + 1):
                    interaction = await fake.slash("compose", {"style": "zelda-bach", "bars": 32, "seed": seed})
                    await _posted(fake, interaction)
                    if seed == 0:
                        continue  # warm-up
                    first_response.append(interaction.response.elapsed)
                    posted.append(_elapsed_to_files(fake, interaction))
                print(f"/compose bars:32 -> MP3 posted: p50 {statistics.median(posted):.2f} s, "
                      f"p95 {_pct(posted, 0.95):.2f} s (first response p95 {_pct(first_response, 0.95) * 1000:.0f} ms)")

                # 2) event-loop lag while 8 compositions run
                samples: list[float] = []
                stop = asyncio.Event()
                probe = asyncio.create_task(_lag_probe(samples, stop))
                started = time.perf_counter()
                interactions = [await fake.slash("compose", {"style": "zelda-bach", "bars": 32, "seed": 100 + i},
                                                 user_id=700_000 + i) for i in range(8)]
                await asyncio.gather(*(_posted(fake, i, timeout=300) for i in interactions))
                stop.set()
                await probe
                print(f"8 concurrent compositions done in {time.perf_counter() - started:.1f} s; event-loop lag "
                      f"p50 {statistics.median(samples) * 1000:.1f} ms, p99 {_pct(samples, 0.99) * 1000:.1f} ms, "
                      f"max {max(samples) * 1000:.1f} ms")

                # 3) 200 reactions within one second
                row = await db.piece_by_message(bot.db, interactions[0].original.id)
                message_id = interactions[0].original.id
                started = time.perf_counter()
                for u in range(200):
                    await fake.react(message_id, "👍" if u % 2 else "👎", user_id=800_000 + u)
                sent = time.perf_counter() - started
                for _ in range(200):
                    likes, dislikes = await db.rating_counts(bot.db, row.id)
                    if likes + dislikes >= 200:
                        break
                    await asyncio.sleep(0.05)
                stored = time.perf_counter() - started
                print(f"200 reactions sent in {sent:.2f} s: {likes + dislikes} stored ({likes} 👍, {dislikes} 👎) "
                      f"within {stored:.2f} s")
                print(f"event loop blocked > {config.stall_warning_s:g} s: {bot.watchdog.stalls} times "
                      f"(the warnings name the code)")


def _elapsed_to_files(fake, interaction) -> float:
    """Seconds from dispatching the command to the REST call that posted the files."""
    for call in fake.calls:
        if call.files and interaction.token in call.path and any(n.endswith(".mp3") for n, _ in call.files):
            return call.at - interaction.dispatched_at
    raise RuntimeError("no upload found")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workers", type=int, help="composing workers (default: the bot's, as MOZART_WORKERS)")
    asyncio.run(main(parser.parse_args()))

"""Throughput and latency of composing through the job queue with 1, 2 and 4 local workers.

    python benchmarks/queue_load.py                    # 16 requests of 32 bars per worker count
    python benchmarks/queue_load.py --workers 1 2 --requests 8 --bars 16 --batch 1

Everything runs on this machine and stops by itself: a throwaway Redis on 127.0.0.1
(``workers.local``), worker processes (``python -m workers``, one CPU thread each), a
temporary SQLite database for the files, and the bot's own ``QueueStudio`` submitting a fixed
number of requests at once (no Discord: this measures the queue and the workers). The in-process
studio the bot uses without a queue is measured the same way, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import db  # noqa: E402
from composer.generate.generator import Generator  # noqa: E402
from composer.generate.request import GenerationRequest  # noqa: E402
from service.jobs import Job  # noqa: E402
from service.studio import Studio  # noqa: E402
from workers.local import LocalRedis, local_workers  # noqa: E402
from workers.queue import QueueStudio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _requests(n: int, bars: int) -> list[Job]:
    styles = ("zelda-bach", "doom-mozart", "doom-haydn", "openttd-beethoven")
    return [Job(request=GenerationRequest(style=styles[i % len(styles)], bars=bars, seed=1000 + i)) for i in range(n)]


async def _run(studio, jobs: list[Job]) -> tuple[float, list[float], dict[str, float]]:
    """Submit every job at once; (wall seconds, latency of each, median generate/render seconds)."""

    async def one(job):
        started = time.perf_counter()
        result = await studio.submit(job)
        return time.perf_counter() - started, result.seconds

    started = time.perf_counter()
    outcomes = await asyncio.gather(*(one(job) for job in jobs))
    wall = time.perf_counter() - started
    stages = {k: statistics.median(s.get(k, 0.0) for _, s in outcomes) for k in ("generate", "render")}
    return wall, [latency for latency, _ in outcomes], stages


def _report(label: str, n: int, wall: float, latencies: list[float], stages: dict[str, float]) -> None:
    print(f"{label:<26} {n / wall * 60:7.1f} pieces/min   p50 {statistics.median(latencies):6.2f} s   "
          f"p95 {_pct(latencies, 0.95):6.2f} s   (generate {stages['generate']:.2f} s, render {stages['render']:.2f} s "
          f"per piece)", flush=True)


async def main(args) -> None:
    generator = Generator.load(args.checkpoint, "cpu")
    print(f"model {generator.version}; {args.requests} requests of {args.bars} bars at once; "
          f"{os.cpu_count()} CPU cores here", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/load.db"
        engine = db.make_engine(url)
        await db.upgrade(engine)
        sessions = db.make_session_factory(engine)

        if not args.skip_in_process:
            studio = Studio(generator, workers=2, max_queue=args.requests)
            await studio.start()
            await _run(studio, _requests(2, args.bars))  # warm-up
            _report("in-process, 2 threads", args.requests, *await _run(studio, _requests(args.requests, args.bars)))
            await studio.close()

        with LocalRedis() as redis:
            env = {**os.environ, "MOZART_QUEUE_URL": redis.url, "DATABASE_URL": url, "MOZART_DEVICE": "cpu",
                   "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
                   **({"MOZART_CHECKPOINT": args.checkpoint} if args.checkpoint else {})}
            runs = [(count, 1) for count in args.workers] + ([(1, args.batch)] if args.batch > 1 else [])
            for count, batch in runs:
                with local_workers(count, {**env, "MOZART_BATCH": str(batch)}, Path(tmp), name=f"worker-{count}"):
                    studio = QueueStudio(generator, redis.url, sessions, max_queue=args.requests * 2)
                    await studio.start()
                    await _run(studio, _requests(count, args.bars))  # warm-up: each worker once
                    label = f"queue, {count} worker{'s' if count > 1 else ''}" + (f", batch {batch}" if batch > 1 else "")
                    _report(label, args.requests, *await _run(studio, _requests(args.requests, args.bars)))
                    await studio.close()
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to measure")
    parser.add_argument("--requests", type=int, default=16, help="requests submitted at once per measurement")
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4,
                        help="also measure one worker composing this many requests together (MOZART_BATCH); 1: skip")
    parser.add_argument("--checkpoint", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--skip-in-process", action="store_true", help="measure only the queue")
    asyncio.run(main(parser.parse_args()))

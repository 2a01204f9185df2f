"""A composing worker: ``python -m workers`` takes jobs from the queue, composes, stores the files.

Configuration comes from the environment, as the bot's does: ``MOZART_QUEUE_URL`` (Redis),
``DATABASE_URL`` (where the files go: the bot's database), ``MOZART_CHECKPOINT``, ``MOZART_DEVICE``,
``MOZART_WORKER_JOBS`` (jobs at a time in this process; one per CPU core, or more on a GPU),
``MOZART_BATCH`` (jobs composed together in one forward pass: 8 or more on a GPU),
``MOZART_JOB_TIMEOUT_S`` (one job's limit; give the bot the same value). A job
names its model version; a version that is not this worker's default is loaded from the path the
bot recorded in ``model_versions`` when ``/model load`` served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from dataclasses import dataclass

import db
from composer.errors import MozartError
from composer.generate.generator import Generator
from service.studio import Studio
from service.wire import job_from_wire, result_to_wire
from workers.local import READY
from workers.queue import (MAX_TRIES, PROGRESS_PREFIX, PROGRESS_TTL_S, QUEUE_NAME, SERIALIZERS, job_timeout_s,
                           redis_settings)

log = logging.getLogger("mozart.worker")


RECONNECT_S = 2.0  # after the queue went away, how long to wait before connecting again
KILL_MARGIN_S = 5.0  # the studio's deadline comes this long (at most a tenth of it) before arq's job_timeout


@dataclass(frozen=True)
class WorkerConfig:
    """A worker's settings, from the environment (see docs/SCALING.md for the table)."""

    queue_url: str
    database_url: str
    checkpoint: str | None
    device: str
    jobs: int  # compositions at a time in this process
    batch: int  # waiting jobs composed together in one forward pass

    @classmethod
    def from_env(cls, env=None) -> WorkerConfig:
        env = os.environ if env is None else env
        if not env.get("MOZART_QUEUE_URL"):
            raise SystemExit("error: MOZART_QUEUE_URL is not set (e.g. redis://127.0.0.1:6379/0): "
                             "the worker takes its jobs from there.")
        return cls(queue_url=env["MOZART_QUEUE_URL"], database_url=env.get("DATABASE_URL") or db.DEFAULT_URL,
                   checkpoint=env.get("MOZART_CHECKPOINT") or None, device=env.get("MOZART_DEVICE") or "auto",
                   jobs=max(1, int(env.get("MOZART_WORKER_JOBS") or 1)), batch=max(1, int(env.get("MOZART_BATCH") or 1)))


async def open_resources(config: WorkerConfig) -> dict:
    """What every job uses, made once per process (the model survives the queue coming and going)."""
    engine = db.make_engine(config.database_url)
    await db.upgrade(engine)  # a no-op when the bot already migrated; processes take turns
    generator = await asyncio.to_thread(Generator.load, config.checkpoint, config.device)
    # The studio kills a job's processes a little before arq would cancel its coroutine (which cannot stop
    # a thread): the job fails with a message for the person, and this worker takes no job meanwhile.
    studio = Studio(generator, workers=config.jobs, max_queue=1_000, batch=config.batch, isolate=True,
                    job_timeout_s=job_timeout_s() - min(KILL_MARGIN_S, 0.1 * job_timeout_s()))
    await studio.start()
    log.info(f"{READY}: model %s on %s, %d job(s) at a time, batches of up to %d", generator.version,
             generator.device, studio.workers, studio.batch)
    return {"engine": engine, "db": db.make_session_factory(engine), "studio": studio}


async def close_resources(resources: dict) -> None:
    await resources["studio"].close()
    await resources["engine"].dispose()


async def compose(ctx: dict, wire: dict) -> dict:
    """One job: compose (or re-render) and render; files to the database, the rest returned."""
    job_id, redis = ctx["job_id"], ctx["redis"]

    retried = ctx.get("job_try", 1) > 1
    log.info("job %s (try %d): composing", job_id, ctx.get("job_try", 1))

    async def update(text: str) -> None:  # the bot reads it and edits the person's message
        if retried:
            text += " (composing again: the first composer stopped)"
        await redis.set(PROGRESS_PREFIX + job_id, text, ex=PROGRESS_TTL_S)

    try:
        job = job_from_wire(wire)
        studio: Studio = ctx["studio"]
        if job.version is not None and job.version not in studio.generators:
            await _load_version(ctx, studio, job.version)
        result = await studio.submit(job, update)
    except MozartError as e:  # the person's to fix (or a version gone): said to them, not retried
        return {"ok": False, "error": str(e)}
    await db.put_job_files(ctx["db"], job_id, result.files)
    log.info("job %s: done in %.1f s", job_id, sum(result.seconds.values()))
    return {"ok": True, "result": result_to_wire(result)}


async def sweep(ctx: dict) -> int:
    """Files no bot took (it stopped waiting: a restart, the queue going away) are deleted after an hour."""
    removed = await db.sweep_job_files(ctx["db"])
    if removed:
        log.info("removed %d files no bot took", removed)
    return removed


async def _load_version(ctx: dict, studio: Studio, version: str) -> None:
    served = {row.name: row.path for row in await db.serving_versions(ctx["db"])}
    if version not in served:
        log.warning("job asks for version %s, which is not served; composing with %s", version, studio.generator.version)
        return
    generator = await asyncio.to_thread(Generator.load, served[version], studio.generator.device.type)
    if generator.version in studio.generators:
        return
    studio.add(generator)


class WorkerSettings:
    """What ``arq`` runs; ``serve`` adds the queue's address and the resources."""

    functions = [compose]
    queue_name = QUEUE_NAME
    max_tries = MAX_TRIES
    max_jobs = 1
    keep_result = 3600
    poll_delay = 0.1
    health_check_interval = 10


def arq_settings(config: WorkerConfig) -> dict:
    """``WorkerSettings`` with where the queue is and how many jobs this process takes at once."""
    from arq.cron import cron
    from arq.worker import get_kwargs

    # arq hands this process up to jobs x batch jobs at once, so a batch can form from what is waiting;
    # the sweep runs on one worker of all each time (arq's cron job ids are unique per run)
    return {**get_kwargs(WorkerSettings), "redis_settings": redis_settings(config.queue_url),
            "max_jobs": config.jobs * config.batch, "job_timeout": job_timeout_s(),
            "cron_jobs": [cron(sweep, minute={0, 15, 30, 45})], **SERIALIZERS}


async def serve() -> None:
    """Take jobs until SIGTERM/SIGINT; when Redis goes away, connect again (the model stays loaded)."""
    from arq.worker import Worker
    from redis.exceptions import RedisError

    config = WorkerConfig.from_env()
    settings = arq_settings(config)
    resources = await open_resources(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            worker = Worker(**settings, ctx=dict(resources), handle_signals=False)
            running = asyncio.create_task(worker.async_run())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not running.done():
                running.cancel()
            error = (await asyncio.gather(running, return_exceptions=True))[0]
            with contextlib.suppress(RedisError, OSError, asyncio.CancelledError):
                await worker.close()
            if isinstance(error, (RedisError, OSError)) and not stop.is_set():
                log.warning("the job queue went away (%s); connecting again in %g s", error, RECONNECT_S)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONNECT_S)
            elif isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
                raise error
    finally:
        await close_resources(resources)


def main() -> int:
    if importlib.util.find_spec("arq") is None:
        raise SystemExit("error: composing workers need the job queue's library: pip install -e '.[queue]'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("arq").setLevel(logging.WARNING)
    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())

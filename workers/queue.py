"""The bot's side of the job queue: ``QueueStudio`` composes on worker processes through arq (Redis).

It is a ``Service`` to the bot, like ``service.studio.Studio``: it validates requests with a locally
loaded model (cheap, and a bad request is refused before anything is queued), serves the same
versions, and ``submit`` returns the same ``Result``. The job itself goes to Redis as JSON (``service.wire``); a worker composes
it, stores the files in the database and returns the rest; the bot takes the files from there.

While it waits it tells the person where their piece is: its place in the queue (the job's rank
in arq's queue), then the worker's progress (a Redis key the worker writes). A worker that dies
mid-job leaves its job in the queue; another worker takes it once the dead one's lock expires
(``JOB_TIMEOUT_S``), once (``MAX_TRIES``). When Redis cannot be reached, composing is refused with
a message saying it is paused, and everything else in the bot keeps answering.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import db
from composer.errors import MozartError
from composer.generate.generator import Generator
from service.base import Service
from service.jobs import JOB_TIMEOUT_S, Job, QueueFullError, Result, Update, queue_place, send_update
from service.wire import job_to_wire, result_from_wire

log = logging.getLogger("mozart.queue")

QUEUE_NAME = "mozart:compose"
PROGRESS_PREFIX = "mozart:progress:"  # + job id -> the worker's latest progress text
PROGRESS_TTL_S = 600
# JOB_TIMEOUT_S (service/jobs.py): one job's limit on a worker; a dead worker's job is taken again after it (+10 s)
JOB_TIMEOUT_VARIABLE = "MOZART_JOB_TIMEOUT_S"  # the same value for the bot and its workers
MAX_TRIES = 2  # a job whose worker died is composed again once
POLL_S = 0.25  # how often the bot looks at its job (place, progress, result)
CONNECT_TIMEOUT_S = 2.0


class ComposingPausedError(MozartError):
    def __init__(self):
        super().__init__("Composing is paused for a moment (the job queue is restarting). Everything else works; "
                         "please try /compose again in a minute.")


class ComposeFailedError(MozartError):
    def __init__(self):
        super().__init__("Something went wrong while composing your piece; nothing was posted. Please try again.")


class WorkerLostError(MozartError):
    def __init__(self):
        super().__init__("The composer working on your piece stopped, and so did its second try. "
                         "Nothing was posted; please try again.")


def _plain(value):
    """JSON for what the standard encoder refuses: NumPy numbers, and a failed job's exception (as text)."""
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    raise TypeError(f"{type(value).__name__} is not JSON")


# Jobs and results cross Redis as JSON, not arq's default pickle: whoever can write to the queue
# must not be able to run code in the bot or a worker.
SERIALIZERS = {"job_serializer": lambda data: json.dumps(data, default=_plain).encode(),
               "job_deserializer": json.loads}


def job_timeout_s() -> float:
    return float(os.environ.get(JOB_TIMEOUT_VARIABLE) or JOB_TIMEOUT_S)


def redis_client(url: str):
    """A plain Redis client for the queue's server (e.g. the shared limits), with the queue's timeouts."""
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=CONNECT_TIMEOUT_S)


def redis_settings(url: str):
    from arq.connections import RedisSettings

    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = CONNECT_TIMEOUT_S
    settings.conn_retries = 1
    settings.conn_retry_delay = 0
    return settings


class QueueStudio(Service):
    """A service whose jobs run on worker processes (``python -m workers``) behind ``queue_url``; it
    serves the same versions as a ``Studio`` (``ServedVersions``), and composes nothing itself."""

    def __init__(self, generator: Generator, queue_url: str, sessions, *, max_queue: int = 64,
                 wait_timeout_s: float | None = None):
        super().__init__(generator, max_queue=max_queue)
        self.queue_url = queue_url
        self.sessions = sessions  # the database the workers put the files in
        # a piece not done by then (every try timed out, plus time queued): the person is told, never left waiting
        self.wait_timeout_s = wait_timeout_s or (job_timeout_s() + 15) * MAX_TRIES + 120
        self._pool = None

    async def start(self) -> None:
        if self._pool is None:
            from arq import create_pool

            try:
                self._pool = await create_pool(redis_settings(self.queue_url), default_queue_name=QUEUE_NAME,
                                               **SERIALIZERS)
            except Exception as e:  # Redis down at start-up: the bot starts anyway, composing says it is paused
                log.warning("job queue %s unreachable at start-up (%s); composing is paused until it answers",
                            _safe(self.queue_url), e)

    async def close(self, timeout: float = 30.0) -> None:
        self.closed = True
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def submit(self, job: Job, update: Update | None = None, *,
                     seconds: dict[str, float] | None = None) -> Result:
        from redis.exceptions import RedisError

        seconds = {} if seconds is None else seconds
        self.refuse_when_closed()
        queued_at = time.monotonic()
        try:
            await self.start()
            if self._pool is None:
                raise ComposingPausedError()
            waiting = await self._unstarted()
            if waiting >= self.max_queue:
                raise QueueFullError(retry_after=max(5.0, waiting * self.typical_job_seconds()))
            arq_job = await self._pool.enqueue_job("compose", job_to_wire(job), _queue_name=QUEUE_NAME)
            outcome = await self._follow(arq_job, update, queued_at, seconds)
        except (RedisError, OSError, asyncio.TimeoutError) as e:
            log.warning("job queue unreachable: %s", e)
            raise ComposingPausedError() from e
        self.job_times.add(time.monotonic() - queued_at)
        if not outcome.get("ok"):
            raise MozartError(outcome["error"])  # the worker's message for the person, as the studio gives it
        files = await db.take_job_files(self.sessions, arq_job.job_id)
        result = result_from_wire(outcome["result"], files)
        seconds.update({k: v for k, v in result.seconds.items() if k not in ("queued",)})
        result.seconds = seconds
        return result

    async def _unstarted(self) -> int:
        """Jobs in the queue that no worker has started (arq keeps a running job in the queue too)."""
        from arq.constants import in_progress_key_prefix

        total = await self._pool.zcard(QUEUE_NAME)
        if total < self.max_queue:  # cheap: under the bound even if none were running
            return total
        ids = await self._pool.zrange(QUEUE_NAME, 0, -1)
        running = await self._pool.exists(*(in_progress_key_prefix + i.decode() for i in ids)) if ids else 0
        return total - running

    async def _follow(self, arq_job, update: Update | None, queued_at: float, seconds: dict[str, float]) -> dict:
        """Tell the person their place, then the worker's progress, until the job ends; its outcome."""
        from arq.jobs import JobStatus

        said, started = None, None
        deadline = queued_at + self.wait_timeout_s
        while True:
            status = await arq_job.status()
            if status == JobStatus.complete:
                info = await arq_job.result_info()
                if info is None or not info.success:
                    log.error("job %s failed on a worker: %r", arq_job.job_id, getattr(info, "result", None))
                    raise ComposeFailedError()
                seconds.setdefault("queued", (started or time.monotonic()) - queued_at)
                return info.result
            if status == JobStatus.not_found:
                raise WorkerLostError()
            text = None
            if status in (JobStatus.queued, JobStatus.deferred):
                rank = await self._pool.zrank(QUEUE_NAME, arq_job.job_id)
                if rank:
                    text = queue_place(rank)
            else:
                if started is None:
                    started = time.monotonic()
                    seconds["queued"] = started - queued_at
                progress = await self._pool.get(PROGRESS_PREFIX + arq_job.job_id)
                text = progress.decode() if progress else "Composing…"
            if text and text != said:
                said = text
                await send_update(update, text)
            if time.monotonic() > deadline:
                raise WorkerLostError()
            await asyncio.sleep(POLL_S)


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url if not parts.password else url.replace(f":{parts.password}@", ":***@")

"""The studio: one loaded model, a bounded queue, composing and rendering off the event loop.

The bot (or any asyncio program) submits jobs; workers run generation and rendering in
a thread pool so the event loop keeps answering Discord. Each job reports its place in
the queue and its progress through a callback; a full queue is refused at once with an
estimate of when to retry, rather than making people wait minutes in silence.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from composer.errors import MozartError
from composer.generate.generator import Generator, compose_on_one_cpu_thread
from composer.music.grid import Piece
from service.base import Service
from service.jobs import (GAME_FORMATS, LAYERS_FORMAT, STINGER_PREFIX, Job, QueueFullError, Result, ServiceClosedError,
                          Update, progress_reports, queue_place, send_update)
from service.versions import ServedVersions

log = logging.getLogger(__name__)


@dataclass
class _Ticket:
    job: Job
    update: Update | None
    future: asyncio.Future
    seconds: dict[str, float]  # the caller's: filled in as the job goes, so failures are measured too
    queued_at: float = field(default_factory=time.monotonic)


class Studio(Service):
    """Composes with one or more loaded model versions (``ServedVersions``) in this process's worker
    threads, or in a child process per worker (``isolate``)."""

    def __init__(self, generator: Generator, workers: int = 1, max_queue: int = 8, originality=None,
                 render_fn=None, batch: int = 1, isolate: bool = False, job_timeout_s: float | None = None):
        super().__init__(generator, max_queue=max_queue, job_timeout_s=job_timeout_s, need_folder=isolate)
        self.workers = max(1, workers)
        # Up to this many waiting requests (of one version) are composed together, their forward passes
        # shared (``Generator.generate_many``): worth it on a GPU; 1 composes each alone.
        self.batch = max(1, batch)
        # callable(piece) -> (bars, source id) or None; by default the composing checkpoint's index
        self.originality = originality
        self._render_fn = render_fn
        # isolate: each worker composes and renders in a child process of its own (``service.sandbox``),
        # killed with whatever it started once a job runs past ``job_timeout_s``; the job's callers hear
        # of it only when the work has stopped. Without isolation the limit is not enforced (a thread
        # cannot be stopped).
        self.isolate = isolate
        if isolate and (render_fn is not None or originality is not None):
            raise ValueError("an isolated studio renders with the real renderer: drop render_fn and originality")
        self._sandboxes: list = []
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="composer",
                                            initializer=compose_on_one_cpu_thread, initargs=(str(generator.device),))
        self._waiting: deque[_Ticket] = deque()
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._running = 0
        self._owners: collections.Counter = collections.Counter()  # person -> jobs of theirs running
        self._notifications: set[asyncio.Future] = set()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if not self._tasks and self.isolate:
            from service.sandbox import Sandbox

            ServedVersions.check_folder(self.generator)
            device = str(self.generator.device)
            self._sandboxes = [Sandbox(self.served.folders, device, name=f"composer-{i}") for i in range(self.workers)]
            await asyncio.gather(*(sandbox.start() for sandbox in self._sandboxes))
            self._tasks = [asyncio.create_task(self._worker(i), name=f"composer-worker-{i}") for i in range(self.workers)]
        if not self._tasks:
            if self._render_fn is None:  # pay the renderer's one-off costs before the first user does
                await asyncio.get_running_loop().run_in_executor(self._executor, warm_up_renderer)
            self._tasks = [asyncio.create_task(self._worker(i), name=f"composer-worker-{i}") for i in range(self.workers)]

    async def close(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, cancel the queued ones, let running ones finish (up to ``timeout``)."""
        self.closed = True
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.future.done():
                ticket.future.set_exception(ServiceClosedError())
        self._wakeup.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(sandbox.close() for sandbox in self._sandboxes), return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- submitting ----------------------------------------------------------------------
    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    async def submit(self, job: Job, update: Update | None = None, *,
                     seconds: dict[str, float] | None = None) -> Result:
        """Queue a job and wait for its result; raises QueueFullError when the queue is full.

        ``seconds`` (if given) receives the time spent queued, generating and rendering as
        the job goes, so a caller can report them even when the job fails; the result's
        ``seconds`` is the same dict."""
        seconds = {} if seconds is None else seconds
        self.refuse_when_closed()
        if len(self._waiting) >= self.max_queue:
            ahead = len(self._waiting) + self._running
            raise QueueFullError(retry_after=max(5.0, ahead * self.typical_job_seconds() / self.workers))
        await self.start()
        ticket = _Ticket(job, update, asyncio.get_running_loop().create_future(), seconds)
        self._waiting.append(ticket)
        position = len(self._waiting) + self._running - self.workers
        if position > 0:
            await send_update(update, queue_place(position))
        self._wakeup.set()
        return await ticket.future

    # -- working -------------------------------------------------------------------------
    async def _worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting and not self.closed:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.closed and not self._waiting:
                return
            tickets = self._take()
            if not tickets:  # only jobs of people already using their share of the workers: wait for a change
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            self._running += len(tickets)
            self._owners.update(t.job.owner for t in tickets if t.job.owner is not None)
            started = time.monotonic()
            for ticket in tickets:
                ticket.seconds["queued"] = started - ticket.queued_at
            try:
                # Progress edits go out in the background: composing never waits on Discord.
                for position, other in enumerate(list(self._waiting), start=1):
                    self._notify(other.update, queue_place(position))
                for ticket in tickets:
                    self._notify(ticket.update, "Composing…")

                def reporter(ticket):
                    return lambda stage: loop.call_soon_threadsafe(self._notify, ticket.update, stage)

                if self.isolate:
                    outcomes = await self._run_isolated(index, tickets)
                elif len(tickets) == 1:
                    outcomes = [await loop.run_in_executor(self._executor, outcome, self.run_job, tickets[0].job,
                                                           reporter(tickets[0]), tickets[0].seconds)]
                else:
                    outcomes = await loop.run_in_executor(self._executor, self.run_batch, [t.job for t in tickets],
                                                          [reporter(t) for t in tickets], [t.seconds for t in tickets])
                for ticket, (result, error) in zip(tickets, outcomes):
                    if ticket.future.done():
                        continue
                    if error is not None:  # delivered to the caller, who turns it into a message
                        ticket.future.set_exception(error)
                    else:
                        ticket.future.set_result(result)
            except Exception as e:
                for ticket in tickets:
                    if not ticket.future.done():
                        ticket.future.set_exception(e)
            finally:
                self._running -= len(tickets)
                self._owners.subtract(t.job.owner for t in tickets if t.job.owner is not None)
                self._owners += collections.Counter()  # drops the people with none running
                self._wakeup.set()  # a held job of this person may start now
                self.job_times.add((time.monotonic() - started) / len(tickets), len(tickets))

    async def _run_isolated(self, index: int, tickets: list[_Ticket]) -> list[tuple[Result | None, Exception | None]]:
        """The tickets' jobs in worker ``index``'s child process, within the deadline.

        Past it (or once every caller gave up) the child is killed and reaped before this returns:
        the callers are told, and their turns given back, only when the work has stopped."""
        from service.sandbox import AbandonedError

        jobs = [t.job if t.job.version in self.served else dataclasses.replace(t.job, version=self.generator.version)
                for t in tickets]
        reports = [lambda stage, t=t: self._notify(t.update, stage) for t in tickets]
        try:
            outcomes = await self._sandboxes[index].run(jobs, reports, self.job_timeout_s,
                                                        abandoned=lambda: all(t.future.done() for t in tickets))
        except AbandonedError:
            return [(None, AbandonedError()) for _ in tickets]
        except MozartError as e:  # the deadline, or a child that died: every job of the batch failed
            return [(None, e) for _ in tickets]
        for ticket, (result, _) in zip(tickets, outcomes):
            if result is not None:  # the child's timings, into the caller's dict
                ticket.seconds.update({k: v for k, v in result.seconds.items() if k != "queued"})
                result.seconds = ticket.seconds
        return outcomes

    def _take(self) -> list[_Ticket]:
        """The next ticket, and with ``batch`` > 1 the next waiting compositions of the same version.

        The next is the oldest of the person with the fewest jobs running, and one person runs on at most
        ``workers - 1`` workers at once: one person's many jobs never hold everyone else back."""
        for ticket in [t for t in self._waiting if t.future.done()]:  # the caller gave up
            self._waiting.remove(ticket)
        # one person never holds every worker: with 2 workers, one is always free for someone else
        share = max(1, self.workers - 1)
        ready = [t for t in self._waiting if t.job.owner is None or self._owners[t.job.owner] < share]
        if not ready:
            return []
        first = min(ready, key=lambda t: self._owners[t.job.owner] if t.job.owner is not None else 0)
        self._waiting.remove(first)
        tickets = [first]
        if self.batch > 1 and first.job.request is not None:
            for other in list(self._waiting):
                if len(tickets) >= self.batch:
                    break
                if other.job.request is not None and other.job.version == first.job.version \
                        and not other.future.done():
                    self._waiting.remove(other)
                    tickets.append(other)
        return tickets

    def _notify(self, update: Update | None, text: str) -> None:
        if update is not None:
            task = asyncio.ensure_future(send_update(update, text))
            self._notifications.add(task)  # keep a reference until it is done
            task.add_done_callback(self._notifications.discard)

    def run_job(self, job: Job, report: Callable[[str], None], seconds: dict[str, float]) -> Result:
        """Runs in a worker thread: generate (unless re-rendering), originality, render."""
        generator = self.served.get(job.version)  # retired meanwhile: the oldest
        t0 = time.perf_counter()
        piece = job.piece if job.piece is not None else generator.generate(job.request, progress_reports(report))
        seconds["generate"] = time.perf_counter() - t0
        return self._finish(generator, job, piece, report, seconds)

    def run_batch(self, jobs: list[Job], reports: list[Callable[[str], None]],
                   seconds: list[dict[str, float]]) -> list[tuple[Result | None, Exception | None]]:
        """Runs in a worker thread: compose ``jobs`` (one version) together, then finish each alone.

        When the batch fails, each request is composed alone, so one bad request fails only itself."""
        generator = self.served.get(jobs[0].version)
        log.info("composing %d requests together (version %s)", len(jobs), generator.version)
        t0 = time.perf_counter()

        progresses = [progress_reports(report) for report in reports]  # each keeps its own pace (PROGRESS_EVERY_S)

        def everyone(fraction: float) -> None:
            for progress in progresses:
                progress(fraction)

        try:
            pieces: list = generator.generate_many([job.request for job in jobs], everyone)
        except Exception:
            return [outcome(self.run_job, job, report, s) for job, report, s in zip(jobs, reports, seconds)]
        share = (time.perf_counter() - t0) / len(jobs)
        outcomes = []
        for job, piece, report, s in zip(jobs, pieces, reports, seconds):
            s["generate"] = share
            outcomes.append(outcome(self._finish, generator, job, piece, report, s))
        return outcomes

    def _finish(self, generator: Generator, job: Job, piece: Piece, report: Callable[[str], None],
                seconds: dict[str, float]) -> Result:
        """Originality and rendering of a composed piece."""
        bars = source = None
        originality = self.originality or generator.originality_of
        if originality is not None:
            try:
                bars, source = originality(piece) or (None, None)
            except Exception:
                log.exception("originality check failed")
        report("Rendering…")
        t1 = time.perf_counter()
        render = self._render_fn or _default_render
        game = [f for f in job.formats if f in GAME_FORMATS]
        rendered = render(piece, sound=job.sound, formats=tuple(f for f in job.formats if f not in game))
        files = dict(rendered.data)
        if game:
            files.update(game_files(generator, piece, rendered.sound, game))
        seconds["render"] = time.perf_counter() - t1
        if bars is not None:
            piece.extra["originality_bars"] = bars
        return Result(piece=piece, files=files, originality_bars=bars, originality_source=source,
                      sound=rendered.sound, warnings=list(rendered.warnings), seconds=seconds)


def game_files(generator: Generator, piece: Piece, sound: str, formats: list[str]) -> dict[str, bytes]:
    """The ``GAME_FORMATS`` asked for: "layers" gives one zip per layer ("layers-calm"...), a
    stinger format its zip."""
    from composer.generate.layers import compose_layers, layer_zips  # noqa: PLC0415
    from composer.render.api import safe_basename  # noqa: PLC0415
    from composer.generate.stingers import compose_stinger, stinger_zip  # noqa: PLC0415

    basename = safe_basename(piece)
    files = {}
    if LAYERS_FORMAT in formats:
        zips = layer_zips(compose_layers(generator, piece), sound, basename)
        files.update({f"{LAYERS_FORMAT}-{name}": data for name, data in zips.items()})
    for fmt in formats:
        if fmt.startswith(STINGER_PREFIX):
            files[fmt] = stinger_zip(compose_stinger(generator, piece, fmt[len(STINGER_PREFIX):]), sound, basename)
    return files


def outcome(fn, *args) -> tuple[Result | None, Exception | None]:
    """(result, None) or (None, the exception): one job's failure is that job's only."""
    try:
        return fn(*args), None
    except Exception as e:
        return None, e


def _default_render(piece: Piece, sound: str, formats: tuple[str, ...]):
    from composer.render import render

    return render(piece, sound=sound, formats=formats)


def warm_up_renderer() -> None:
    from composer.render.api import warm_up

    try:
        warm_up()
    except Exception:  # a warm-up failure shows up (with its message) on the first render
        log.warning("renderer warm-up failed", exc_info=True)

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
from typing import Awaitable, Callable

from composer.errors import MozartError
from composer.generate.generator import Generator, compose_on_one_cpu_thread
from composer.music.grid import Piece
from composer.generate.layers import LAYERS
from composer.render import DEFAULT_FORMATS
from composer.render.api import EXTENSIONS
from composer.generate.request import GenerationRequest
from composer.generate.stingers import STINGERS

# Formats made with the model after the piece (``game_files``): its intensity layers (a zip
# each: "layers-calm"...) and its stingers (a zip: "stinger-victory"...).
LAYERS_FORMAT = "layers"
STINGER_PREFIX = "stinger-"
GAME_FORMATS = (LAYERS_FORMAT, *(STINGER_PREFIX + kind for kind in STINGERS))

log = logging.getLogger(__name__)

Update = Callable[[str], Awaitable[None] | None]

JOB_TIMEOUT_S = 60.0  # one job's wall-clock limit (MOZART_JOB_TIMEOUT_S): past it the work is killed


class QueueFullError(MozartError):
    def __init__(self, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"Mozart is busy composing for others. Please try again in {retry_after:.0f} s.")


class ServiceClosedError(MozartError):
    def __init__(self):
        super().__init__("Mozart is restarting; please try again in a minute.")


@dataclass
class Job:
    """What to make: a generation request (or a ready piece to re-render) and a sound."""

    request: GenerationRequest | None = None
    piece: Piece | None = None  # re-render only (change of sound)
    sound: str = "chip"
    formats: tuple[str, ...] = DEFAULT_FORMATS
    version: str | None = None  # the model version that composes it (None: the studio's first)
    owner: int | None = field(default=None, compare=False)  # who asked: turns alternate between people (never sent)


@dataclass
class Result:
    piece: Piece
    files: dict[str, bytes]  # format -> bytes
    originality_bars: float | None
    originality_source: str | None
    sound: str = "chip"  # the sound actually used (chip after a SoundFont fallback)
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. that fallback
    seconds: dict[str, float] = field(default_factory=dict)  # queued, generate, render (the poster adds upload)


@dataclass
class _Ticket:
    job: Job
    update: Update | None
    future: asyncio.Future
    seconds: dict[str, float]  # the caller's: filled in as the job goes, so failures are measured too
    queued_at: float = field(default_factory=time.monotonic)


class VersionError(MozartError):
    """A model version that cannot be served (or retired) as asked."""


class Studio:
    """Composes with one or more loaded model versions (served side by side, so they can be
    compared on the same stream of requests). Versions share the style labels, so any of
    them can answer any request."""

    def __init__(self, generator: Generator, workers: int = 1, max_queue: int = 8, originality=None,
                 render_fn=None, batch: int = 1, isolate: bool = False, job_timeout_s: float | None = None):
        self.generators: dict[str, Generator] = {generator.version: generator}  # served versions, oldest first
        self.workers = max(1, workers)
        # Up to this many waiting requests (of one version) are composed together, their forward passes
        # shared (``Generator.generate_many``): worth it on a GPU; 1 composes each alone.
        self.batch = max(1, batch)
        self.max_queue = max_queue
        # callable(piece) -> (bars, source id) or None; by default the composing checkpoint's index
        self.originality = originality
        self._render_fn = render_fn
        # isolate: each worker composes and renders in a child process of its own (``composer.sandbox``),
        # killed with whatever it started once a job runs past ``job_timeout_s``; the job's callers hear
        # of it only when the work has stopped. Without isolation the limit is not enforced (a thread
        # cannot be stopped).
        self.isolate = isolate
        self.job_timeout_s = job_timeout_s
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
        self._closed = False
        self._recent: deque[float] = deque(maxlen=20)  # seconds per job, for retry estimates
        self._notifications: set[asyncio.Future] = set()

    # -- versions -----------------------------------------------------------------------
    @property
    def generator(self) -> Generator:
        """The oldest served version: it validates requests and names the styles."""
        return next(iter(self.generators.values()))

    @property
    def versions(self) -> list[str]:
        return list(self.generators)

    def add(self, generator: Generator) -> None:
        """Serve another version beside the others (it must know the same styles)."""
        if generator.version in self.generators:
            raise VersionError(f"Version {generator.version} is already being served.")
        if self.isolate and generator.folder is None:
            raise VersionError(f"Version {generator.version} has no model folder for the composing processes "
                               "to load: load it with Generator.load.")
        if generator.catalog.names() != self.generator.catalog.names():
            raise VersionError(f"Version {generator.version} knows other styles than {self.generator.version}; "
                               "versions served together must share their style labels.")
        self.generators[generator.version] = generator

    def retire(self, version: str) -> Generator:
        """Stop serving ``version``; jobs already assigned to it finish with it."""
        if version not in self.generators:
            raise VersionError(f"Version {version} is not being served (serving: {', '.join(self.generators)}).")
        if len(self.generators) == 1:
            raise VersionError(f"Version {version} is the only one served; load another before retiring it.")
        return self.generators.pop(version)

    # -- lifecycle -----------------------------------------------------------------------
    def _folders(self) -> dict[str, str]:
        """Served version -> its model folder: what a composing process loads."""
        return {version: str(g.folder) for version, g in self.generators.items()}

    async def start(self) -> None:
        if not self._tasks and self.isolate:
            from composer.sandbox import Sandbox

            if self.generator.folder is None:
                raise VersionError(f"Version {self.generator.version} has no model folder for the composing "
                                   "processes to load: load it with Generator.load.")
            device = str(self.generator.device)
            self._sandboxes = [Sandbox(self._folders, device, name=f"composer-{i}") for i in range(self.workers)]
            await asyncio.gather(*(sandbox.start() for sandbox in self._sandboxes))
            self._tasks = [asyncio.create_task(self._worker(i), name=f"composer-worker-{i}") for i in range(self.workers)]
        if not self._tasks:
            if self._render_fn is None:  # pay the renderer's one-off costs before the first user does
                await asyncio.get_running_loop().run_in_executor(self._executor, _warm_up_renderer)
            self._tasks = [asyncio.create_task(self._worker(i), name=f"composer-worker-{i}") for i in range(self.workers)]

    async def close(self, timeout: float = 30.0) -> None:
        """Refuse new jobs, cancel the queued ones, let running ones finish (up to ``timeout``)."""
        self._closed = True
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

    def typical_job_seconds(self) -> float:
        return sorted(self._recent)[len(self._recent) // 2] if self._recent else 3.0

    async def submit(self, job: Job, update: Update | None = None, *,
                     seconds: dict[str, float] | None = None) -> Result:
        """Queue a job and wait for its result; raises QueueFullError when the queue is full.

        ``seconds`` (if given) receives the time spent queued, generating and rendering as
        the job goes, so a caller can report them even when the job fails; the result's
        ``seconds`` is the same dict."""
        seconds = {} if seconds is None else seconds
        if self._closed:
            raise ServiceClosedError()
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

    async def parse_midi(self, data: bytes, **options) -> Piece:
        """``import_midi(data, **options)`` in a child process, killed past the job deadline: an uploaded
        file is parsed by C++ code that must not run in the bot's own process (nor block its loop)."""
        from composer.sandbox import call

        return await call("import_midi", data, timeout_s=self.job_timeout_s or JOB_TIMEOUT_S, **options)

    # -- working -------------------------------------------------------------------------
    async def _worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting and not self._closed:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self._closed and not self._waiting:
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
                    outcomes = [await loop.run_in_executor(self._executor, _outcome, self._run, tickets[0].job,
                                                           reporter(tickets[0]), tickets[0].seconds)]
                else:
                    outcomes = await loop.run_in_executor(self._executor, self._run_batch, [t.job for t in tickets],
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
                self._recent.extend([(time.monotonic() - started) / len(tickets)] * len(tickets))

    async def _run_isolated(self, index: int, tickets: list[_Ticket]) -> list[tuple[Result | None, Exception | None]]:
        """The tickets' jobs in worker ``index``'s child process, within the deadline.

        Past it (or once every caller gave up) the child is killed and reaped before this returns:
        the callers are told, and their turns given back, only when the work has stopped."""
        from composer.sandbox import AbandonedError

        served = self.generators
        jobs = [t.job if t.job.version in served else dataclasses.replace(t.job, version=self.generator.version)
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

    def _run(self, job: Job, report: Callable[[str], None], seconds: dict[str, float]) -> Result:
        """Runs in a worker thread: generate (unless re-rendering), originality, render."""
        generator = self.generators.get(job.version) or self.generator  # retired meanwhile: the oldest
        t0 = time.perf_counter()
        piece = job.piece if job.piece is not None else generator.generate(job.request, _progress(report))
        seconds["generate"] = time.perf_counter() - t0
        return self._finish(generator, job, piece, report, seconds)

    def _run_batch(self, jobs: list[Job], reports: list[Callable[[str], None]],
                   seconds: list[dict[str, float]]) -> list[tuple[Result | None, Exception | None]]:
        """Runs in a worker thread: compose ``jobs`` (one version) together, then finish each alone.

        When the batch fails, each request is composed alone, so one bad request fails only itself."""
        generator = self.generators.get(jobs[0].version) or self.generator
        log.info("composing %d requests together (version %s)", len(jobs), generator.version)
        t0 = time.perf_counter()

        progresses = [_progress(report) for report in reports]  # each keeps its own once-a-second pace

        def everyone(fraction: float) -> None:
            for progress in progresses:
                progress(fraction)

        try:
            pieces: list = generator.generate_many([job.request for job in jobs], everyone)
        except Exception:
            return [_outcome(self._run, job, report, s) for job, report, s in zip(jobs, reports, seconds)]
        share = (time.perf_counter() - t0) / len(jobs)
        outcomes = []
        for job, piece, report, s in zip(jobs, pieces, reports, seconds):
            s["generate"] = share
            outcomes.append(_outcome(self._finish, generator, job, piece, report, s))
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


def file_ending(fmt: str) -> str:
    """What a file of format ``fmt`` (a render format, or a file ``game_files`` made) ends with:
    "mp3", "beats.json", "calm.zip", "victory.zip"."""
    for prefix in (f"{LAYERS_FORMAT}-", STINGER_PREFIX):
        if fmt.startswith(prefix) and fmt[len(prefix):] in {**LAYERS, **STINGERS}:
            return f"{fmt[len(prefix):]}.zip"
    return EXTENSIONS.get(fmt, fmt)


def queue_place(ahead: int) -> str:
    """What a waiting request is told about its place."""
    return f"Queued: {ahead} piece{'s' if ahead > 1 else ''} ahead of yours."


def _progress(report: Callable[[str], None]) -> Callable[[float], None]:
    """A generator's progress callback that reports at most one edit a second."""
    last = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last[0] > 1.0 and fraction < 1.0:
            last[0] = now
            report(f"Composing… {fraction:.0%}")

    return progress


def _outcome(fn, *args) -> tuple[Result | None, Exception | None]:
    """(result, None) or (None, the exception): one job's failure is that job's only."""
    try:
        return fn(*args), None
    except Exception as e:
        return None, e


def _default_render(piece: Piece, sound: str, formats: tuple[str, ...]):
    from composer.render import render

    return render(piece, sound=sound, formats=formats)


def _warm_up_renderer() -> None:
    from composer.render.api import warm_up

    try:
        warm_up()
    except Exception:  # a warm-up failure shows up (with its message) on the first render
        log.warning("renderer warm-up failed", exc_info=True)


async def send_update(update: Update | None, text: str) -> None:
    """Tell the caller something (queue place, progress); a failure is logged, never raised."""
    if update is None:
        return
    try:
        outcome = update(text)
        if asyncio.iscoroutine(outcome):
            await outcome
    except Exception:  # a failed progress edit must never fail the job
        log.debug("progress update failed", exc_info=True)

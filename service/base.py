"""What every composing service shares, whether it composes in this process (``service.studio.Studio``)
or hands its jobs to workers (``workers.queue.QueueStudio``): the versions it serves, how long jobs
take (for a full queue's retry estimate), whether it still takes jobs, and reading uploads."""

from __future__ import annotations

from composer.generate.generator import Generator
from composer.music.grid import Piece
from service.jobs import JOB_TIMEOUT_S, Job, JobTimes, Result, ServiceClosedError, Update
from service.versions import ServedVersions


class Service:
    """``submit`` a job, wait for its result; ``start`` before, ``close`` after (subclasses say how)."""

    def __init__(self, generator: Generator, *, max_queue: int, job_timeout_s: float | None = None,
                 need_folder: bool = False):
        self.served = ServedVersions(generator, need_folder=need_folder)
        self.max_queue = max_queue
        self.job_timeout_s = job_timeout_s
        self.job_times = JobTimes()
        self.closed = False  # set by close(): new jobs are refused

    # -- versions -----------------------------------------------------------------------
    @property
    def generator(self) -> Generator:
        """The oldest served version: it validates requests and names the styles."""
        return self.served.oldest

    @property
    def generators(self) -> dict[str, Generator]:
        return self.served.generators

    @property
    def versions(self) -> list[str]:
        return self.served.names

    def add(self, generator: Generator) -> None:
        """Serve another version beside the others (it must know the same styles)."""
        self.served.add(generator)

    def retire(self, version: str) -> Generator:
        """Stop serving ``version``; jobs already assigned to it finish with it."""
        return self.served.retire(version)

    # -- jobs ------------------------------------------------------------------------------
    def typical_job_seconds(self) -> float:
        return self.job_times.typical()

    def refuse_when_closed(self) -> None:
        if self.closed:
            raise ServiceClosedError()

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self, timeout: float = 30.0) -> None:
        raise NotImplementedError

    async def submit(self, job: Job, update: Update | None = None, *,
                     seconds: dict[str, float] | None = None) -> Result:
        raise NotImplementedError

    async def parse_midi(self, data: bytes, **options) -> Piece:
        """``import_midi(data, **options)`` in a child process, killed past the job deadline: an uploaded
        file is parsed by C++ code that must not run in the bot's own process (nor block its loop)."""
        from service.sandbox import call

        return await call("import_midi", data, timeout_s=self.job_timeout_s or JOB_TIMEOUT_S, **options)

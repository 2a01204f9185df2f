"""What a job is and what it gives back, and what the person who asked for it is told meanwhile.

Shared by every service (``Studio`` in this process, ``workers.queue.QueueStudio`` on the job queue):
the job and its result, the errors a person may see, their place in the queue and the composing
progress, at most one report every ``PROGRESS_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from composer.errors import MozartError
from composer.music.grid import Piece
from composer.generate.layers import LAYERS
from composer.render import DEFAULT_FORMATS
from composer.render.api import EXTENSIONS
from composer.render.presets import DEFAULT_SOUND
from composer.generate.request import GenerationRequest
from composer.generate.stingers import STINGERS

log = logging.getLogger(__name__)

# Formats made with the model after the piece (``game_files``): its intensity layers (a zip
# each: "layers-calm"...) and its stingers (a zip: "stinger-victory"...).
LAYERS_FORMAT = "layers"
STINGER_PREFIX = "stinger-"
GAME_FORMATS = (LAYERS_FORMAT, *(STINGER_PREFIX + kind for kind in STINGERS))

Update = Callable[[str], Awaitable[None] | None]

JOB_TIMEOUT_S = 60.0  # one job's wall-clock limit (MOZART_JOB_TIMEOUT_S): past it the work is killed
# The least time between two progress reports of one job: the composer's "Composing… 40%" and the
# edits of the person's message (Discord limits edits to about five in five seconds per message).
PROGRESS_EVERY_S = 1.5


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
    sound: str = DEFAULT_SOUND
    formats: tuple[str, ...] = DEFAULT_FORMATS
    version: str | None = None  # the model version that composes it (None: the studio's first)
    owner: int | None = field(default=None, compare=False)  # who asked: turns alternate between people (never sent)


@dataclass
class Result:
    piece: Piece
    files: dict[str, bytes]  # format -> bytes
    originality_bars: float | None
    originality_source: str | None
    sound: str = DEFAULT_SOUND  # the sound actually used (chip after a SoundFont fallback)
    warnings: list[str] = field(default_factory=list)  # for the user, e.g. that fallback
    seconds: dict[str, float] = field(default_factory=dict)  # queued, generate, render (the poster adds upload)


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


def progress_reports(report: Callable[[str], None], clock: Callable[[], float] = time.monotonic
                     ) -> Callable[[float], None]:
    """A generator's progress callback that reports at most once every ``PROGRESS_EVERY_S``."""
    last = [0.0]

    def progress(fraction: float) -> None:
        now = clock()
        if now - last[0] > PROGRESS_EVERY_S and fraction < 1.0:
            last[0] = now
            report(f"Composing… {fraction:.0%}")

    return progress


class JobTimes:
    """Seconds per job of the last ``keep`` jobs: what a full queue's retry estimate is made from."""

    def __init__(self, keep: int = 20):
        self._recent: collections.deque[float] = collections.deque(maxlen=keep)

    def add(self, seconds: float, count: int = 1) -> None:
        self._recent.extend([seconds] * count)

    def typical(self) -> float:
        """The median (3 s before any job)."""
        return sorted(self._recent)[len(self._recent) // 2] if self._recent else 3.0


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

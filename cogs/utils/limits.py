"""How much one person may compose at once, and the one log line each job leaves.

People compose, listen and ask again at once, so nothing here refuses a second request
because it came soon after the first. Instead each person has:

* a number of pieces *in flight* (being composed, queued in the studio, or being posted);
* a token bucket: ``burst`` pieces in a row, then one more every ``refill_s`` seconds.

A request over either limit waits in the person's own line and is told its place
("Queued: ..."); it starts as soon as a piece of theirs is posted or a token refills.
Only a person with more than ``max_waiting`` requests already waiting is refused, with
an estimate of when to try again. All of it runs on the event loop without blocking it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from composer.errors import MozartError
from service.jobs import Update, send_update

jobs_log = logging.getLogger("mozart.jobs")

Clock = Callable[[], float]
SHARED_POLL_S = 0.5  # how often a request held by the shared limits asks again
QUIET_MAX_S = 10.0  # after a refusal, the person's requests go unanswered for up to this long


class TooManyWaitingError(MozartError):
    """A person asked for more pieces than may wait for them; the message says when to retry."""

    def __init__(self, active: int, waiting: int, retry_after: float):
        self.retry_after = retry_after
        pieces = f"{active} piece{'s' if active != 1 else ''} on the way"
        queued = f" and {waiting} waiting" if waiting else ""
        super().__init__(f"You already have {pieces}{queued}. Enjoy those first, then try again in about "
                         f"{retry_after:.0f} s.")


@dataclass(frozen=True)
class ComposeLimits:
    """Per-person limits on composing (BotConfig fills them from MOZART_USER_* variables)."""

    in_flight: int = 2  # pieces one person may have composing or queued at once
    burst: int = 5  # pieces one person may start in a row
    refill_s: float = 12.0  # seconds until one more may start after a burst (0 = no rate limit)
    max_waiting: int = 3  # requests held beyond those before "try again in ..." (0 = none wait)

    def __post_init__(self):
        if self.in_flight < 1:
            raise ValueError(f"in_flight must be >= 1 (received {self.in_flight})")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1 (received {self.burst})")
        if self.refill_s < 0:
            raise ValueError(f"refill_s must be >= 0 (received {self.refill_s})")
        if self.max_waiting < 0:
            raise ValueError(f"max_waiting must be >= 0 (received {self.max_waiting})")


class TokenBucket:
    """``capacity`` tokens, one more every ``refill_s`` seconds (0: never runs out)."""

    def __init__(self, capacity: int, refill_s: float, clock: Clock = time.monotonic):
        self.capacity = capacity
        self.refill_s = refill_s
        self._clock = clock
        self._tokens = float(capacity)
        self._at = clock()

    def _refill(self) -> float:
        now = self._clock()
        if self.refill_s > 0:
            self._tokens = min(self.capacity, self._tokens + (now - self._at) / self.refill_s)
        else:
            self._tokens = self.capacity
        self._at = now
        return self._tokens

    @property
    def tokens(self) -> float:
        return self._refill()

    @property
    def full(self) -> bool:
        return self._refill() >= self.capacity

    def take(self) -> bool:
        """Take one token if there is one."""
        if self._refill() >= 1:
            self._tokens -= 1
            return True
        return False

    def seconds_until(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens (at most ``capacity``) are there; 0 when they are now."""
        missing = min(n, self.capacity) - self._refill()
        return max(0.0, missing * self.refill_s)


class Turn:
    """One request's place in its person's line; ``with turn:`` gives the place back."""

    def __init__(self, limiter: Limiter, person: _Person, user_id: int):
        self._limiter = limiter
        self._person = person
        self.user_id = user_id
        self.slot: str | None = None  # the shared slot held (with ``Limiter.shared``)
        self.granted = False
        self.released = False
        self.error: BaseException | None = None
        self.waited_s = 0.0  # seconds between asking and starting
        self._asked_at = limiter.clock()
        self._changed = asyncio.Event()

    async def wait(self, update: Update | None = None) -> float:
        """Wait for this request's turn, telling ``update`` its place; returns the seconds waited."""
        last = None
        while not self.granted and self.error is None:
            self._changed.clear()
            text = self._limiter.describe(self)
            if text != last:
                last = text
                await send_update(update, text)
            if not self.granted and self.error is None:
                await self._changed.wait()
        if self.error is not None:
            raise self.error
        if self._limiter.shared is not None:
            await self._admit_shared(update, last)
            self.waited_s = self._limiter.clock() - self._asked_at
        return self.waited_s

    async def _admit_shared(self, update: Update | None, last: str | None) -> None:
        """Past this process's line: wait for the person's shared limits (their requests in other processes)."""
        shared, limits = self._limiter.shared, self._limiter.limits
        while True:
            try:
                admission = await shared.admit(self.user_id)
            except Exception:  # Redis away: this process's own limits still hold; the queue says it is paused
                jobs_log.warning("shared limits unreachable; using this process's only", exc_info=True)
                return
            if admission.admitted:
                self.slot = admission.slot
                return
            if admission.active >= limits.in_flight:
                text = waiting_for_pieces(admission.active, where=" (here or in other servers)")
            else:
                text = waiting_for_tokens(admission.token_wait_s)
            if text != last:
                last = text
                await send_update(update, text)
            await asyncio.sleep(min(max(admission.token_wait_s, SHARED_POLL_S), 2.0))

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._limiter._release(self)
            if self.slot is not None:
                self._limiter._release_shared(self.user_id, self.slot)

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def _grant(self) -> None:
        self.granted = True
        self.waited_s = self._limiter.clock() - self._asked_at
        self._changed.set()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self._changed.set()


class _Person:
    def __init__(self, bucket: TokenBucket):
        self.bucket = bucket
        self.active = 0  # granted turns not yet released
        self.waiting: deque[Turn] = deque()
        self.timer: asyncio.TimerHandle | None = None  # the next refill, while someone waits for it
        self.quiet_until = 0.0  # refused: until then, more requests are ignored (``Limiter.quiet``)


class Limiter:
    """Per-person in-flight limit + token bucket, with a line for those over it.

    ``enter(user)`` decides at once (no awaiting): a turn that may start now, one that
    must wait (``await turn.wait(update)``), or ``TooManyWaitingError``.
    """

    def __init__(self, limits: ComposeLimits = ComposeLimits(), *, job_seconds: Callable[[], float] = lambda: 3.0,
                 clock: Clock = time.monotonic, shared=None):
        self.limits = limits
        self.shared = shared  # ``SharedLimits``: the same limits across bot processes (Redis); None: this one only
        self._releases: set[asyncio.Task] = set()
        self.clock = clock
        self._job_seconds = job_seconds  # typical seconds a piece takes, for "try again in ..."
        self._people: dict[int, _Person] = {}
        self._closed = False

    def enter(self, user_id: int) -> Turn:
        from service.jobs import ServiceClosedError  # (the studio imports torch; bot.py imports this early)

        if self._closed:
            raise ServiceClosedError()
        if len(self._people) > 1000:
            self._forget_idle()
        person = self._people.get(user_id)
        if person is None:
            person = self._people[user_id] = _Person(TokenBucket(self.limits.burst, self.limits.refill_s, self.clock))
        must_wait = bool(person.waiting) or not self._may_start(person)
        if must_wait and len(person.waiting) >= self.limits.max_waiting:
            retry_after = self.retry_after(person)
            person.quiet_until = self.clock() + min(retry_after, QUIET_MAX_S)
            raise TooManyWaitingError(person.active, len(person.waiting), retry_after)
        turn = Turn(self, person, user_id)
        person.waiting.append(turn)
        self._pump(person)
        return turn

    def quiet(self, user_id: int) -> bool:
        """Whether ``user_id`` was just told to try again later and that time has not come: what they ask
        meanwhile is not even answered (Discord tells them it failed). A flood of presses then costs the
        bot almost nothing, and everyone else is still answered in time."""
        person = self._people.get(user_id)
        return person is not None and self.clock() < person.quiet_until

    def retry_after(self, person: _Person) -> float:
        """Seconds until one more request from ``person`` would be allowed to wait (a rough guess)."""
        behind = len(person.waiting) + 1
        by_tokens = person.bucket.seconds_until(behind)
        by_slots = self._job_seconds() * math.ceil(behind / self.limits.in_flight)
        return max(5.0, by_tokens, by_slots)

    def describe(self, turn: Turn) -> str:
        """What a waiting request is told: its place, and what it waits for."""
        person = turn._person
        try:
            ahead = list(person.waiting).index(turn)
        except ValueError:
            return "Starting…"
        place = f" ({ahead} more of yours ahead)" if ahead else ""
        if person.active >= self.limits.in_flight:
            return waiting_for_pieces(person.active, place)
        return waiting_for_tokens(person.bucket.seconds_until(ahead + 1), place)

    async def close(self) -> None:
        """Refuse new requests and tell the waiting ones that Mozart is restarting."""
        from service.jobs import ServiceClosedError

        self._closed = True
        if self.shared is not None:
            await asyncio.gather(*self._releases, return_exceptions=True)
            await self.shared.close()
        for person in self._people.values():
            if person.timer is not None:
                person.timer.cancel()
            while person.waiting:
                person.waiting.popleft()._fail(ServiceClosedError())

    def refill(self) -> None:
        """Start whatever the clock now allows (timers call this; so may tests with a fake clock)."""
        for person in list(self._people.values()):
            self._pump(person)

    # -- internals -------------------------------------------------------------------------
    def _may_start(self, person: _Person) -> bool:
        return person.active < self.limits.in_flight and person.bucket.tokens >= 1

    def _pump(self, person: _Person) -> None:
        if person.timer is not None:
            person.timer.cancel()
            person.timer = None
        changed = False
        while person.waiting and person.active < self.limits.in_flight and person.bucket.take():
            person.active += 1
            person.waiting.popleft()._grant()
            changed = True
        if changed:
            for turn in person.waiting:  # their place in line moved up
                turn._changed.set()
        if person.waiting and person.active < self.limits.in_flight and not self._closed:
            delay = person.bucket.seconds_until(1)
            person.timer = asyncio.get_running_loop().call_later(max(delay, 0.01), self._pump, person)

    def _release(self, turn: Turn) -> None:
        person = turn._person
        if turn.granted:
            person.active -= 1
        elif turn in person.waiting:
            person.waiting.remove(turn)
        if not self._closed:
            self._pump(person)
            for other in person.waiting:
                other._changed.set()

    def _release_shared(self, user_id: int, slot: str) -> None:
        task = asyncio.ensure_future(self.shared.release(user_id, slot))
        self._releases.add(task)  # keep a reference until it is done
        task.add_done_callback(self._releases.discard)

    def _forget_idle(self) -> None:
        for user_id, person in list(self._people.items()):
            if not person.active and not person.waiting and person.bucket.full and self.clock() >= person.quiet_until:
                del self._people[user_id]


def waiting_for_pieces(active: int, place: str = "", where: str = "") -> str:
    """What a request held by the in-flight limit is told."""
    return (f"Queued{place}: you have {active} piece{'s' if active != 1 else ''} on the way{where}; "
            f"this one starts when one of them is posted.")


def waiting_for_tokens(seconds: float, place: str = "") -> str:
    """What a request held by the token bucket is told."""
    return (f"Queued{place}: you've asked for many pieces in a short time; "
            f"this one starts in about {math.ceil(seconds)} s.")


# -- the job log -------------------------------------------------------------------------
def user_tag(user_id: int, salt: str) -> str:
    """A stable pseudonym for a user id in logs: HMAC-SHA256 with ``salt``, 12 hex digits."""
    return hmac.new(salt.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()[:12]


def log_job(*, user_id: int, salt: str, kind: str, style: str | None, bars: int | None,
            seconds: dict[str, float], outcome: str) -> None:
    """One INFO line per job on ``mozart.jobs``: who (pseudonymous), what, where the time went, how it ended."""
    fields = {"user": user_tag(user_id, salt), "kind": kind, "style": style or "?", "bars": bars,
              **{f"{stage}_s": round(seconds.get(stage, 0.0), 3)
                 for stage in ("limited", "queued", "generate", "render", "upload")},
              "outcome": outcome}
    jobs_log.info("job " + " ".join(f"{k}={v}" for k, v in fields.items()), extra={"job": fields})

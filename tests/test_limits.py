"""Per-person limits: asking again at once is fine, more than the limits waits its turn, only a flood is refused."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from bot import BotConfig, ConfigError, _JsonFormatter
from cogs.utils.limits import ComposeLimits, Limiter, TokenBucket, TooManyWaitingError, log_job, user_tag
from service.jobs import ServiceClosedError

ALICE, BOB = 111_222_333_444, 999_888_777_666


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- the bucket ------------------------------------------------------------------------------
def test_bucket_allows_a_burst_then_one_more_per_refill_period():
    clock = FakeClock()
    bucket = TokenBucket(capacity=5, refill_s=12, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    assert bucket.seconds_until(1) == pytest.approx(12)
    clock.advance(11.9)
    assert not bucket.take()
    clock.advance(0.1)
    assert bucket.take() and not bucket.take()
    assert bucket.seconds_until(2) == pytest.approx(24)


def test_bucket_never_holds_more_than_its_burst():
    clock = FakeClock()
    bucket = TokenBucket(capacity=3, refill_s=10, clock=clock)
    bucket.take()
    clock.advance(10_000)
    assert bucket.full and bucket.tokens == 3
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_a_bucket_without_refill_time_never_runs_out():
    bucket = TokenBucket(capacity=1, refill_s=0, clock=FakeClock())
    assert all(bucket.take() for _ in range(100))
    assert bucket.seconds_until(5) == 0


# -- the limiter -----------------------------------------------------------------------------
async def test_asking_again_right_after_a_piece_is_posted_starts_at_once():
    limiter = Limiter(ComposeLimits(in_flight=2, burst=5, refill_s=12), clock=FakeClock())
    for _ in range(5):  # compose, listen, ask again: five in a row, no waiting
        with limiter.enter(ALICE) as turn:
            assert turn.granted
            assert await turn.wait() == 0


async def test_more_than_the_in_flight_limit_waits_and_starts_when_one_is_posted():
    clock = FakeClock()
    limiter = Limiter(ComposeLimits(in_flight=2, burst=5, refill_s=12, max_waiting=3), clock=clock)
    first, second = limiter.enter(ALICE), limiter.enter(ALICE)
    third = limiter.enter(ALICE)
    assert first.granted and second.granted and not third.granted
    told: list[str] = []
    waiting = asyncio.create_task(third.wait(told.append))
    await _settle()
    assert not waiting.done()
    assert told == ["Queued: you have 2 pieces on the way; this one starts when one of them is posted."]
    assert limiter.enter(BOB).granted  # someone else is not held up
    clock.advance(7)
    first.release()  # posted
    assert await asyncio.wait_for(waiting, 1) == pytest.approx(7)
    second.release()
    third.release()


async def test_a_burst_waits_for_the_next_token_and_is_told_how_long():
    clock = FakeClock()
    limiter = Limiter(ComposeLimits(in_flight=5, burst=2, refill_s=12, max_waiting=3), clock=clock)
    for _ in range(2):
        limiter.enter(ALICE).release()
    third, fourth = limiter.enter(ALICE), limiter.enter(ALICE)
    assert not third.granted and not fourth.granted
    told3, told4 = [], []
    waits = [asyncio.create_task(third.wait(told3.append)), asyncio.create_task(fourth.wait(told4.append))]
    await _settle()
    assert told3[-1] == "Queued: you've asked for many pieces in a short time; this one starts in about 12 s."
    assert told4[-1] == ("Queued (1 more of yours ahead): you've asked for many pieces in a short time; "
                         "this one starts in about 24 s.")
    clock.advance(12)
    limiter.refill()
    assert await asyncio.wait_for(waits[0], 1) == pytest.approx(12)
    await _settle()
    assert not waits[1].done()
    assert "starts in about 12 s" in told4[-1] and "ahead" not in told4[-1]  # moved up in line
    clock.advance(12)
    limiter.refill()
    assert await asyncio.wait_for(waits[1], 1) == pytest.approx(24)


async def test_the_refill_timer_starts_a_waiting_request_by_itself():
    limiter = Limiter(ComposeLimits(in_flight=5, burst=1, refill_s=0.1))  # the real clock and loop timers
    limiter.enter(ALICE).release()
    turn = limiter.enter(ALICE)
    assert not turn.granted
    waited = await asyncio.wait_for(turn.wait(), 2)
    assert 0.05 < waited < 1.0


async def test_only_a_flood_is_refused_with_when_to_try_again():
    limiter = Limiter(ComposeLimits(in_flight=1, burst=5, refill_s=12, max_waiting=2), job_seconds=lambda: 20.0,
                      clock=FakeClock())
    turns = [limiter.enter(ALICE) for _ in range(3)]  # one running, two waiting
    assert [t.granted for t in turns] == [True, False, False]
    with pytest.raises(TooManyWaitingError) as refused:
        limiter.enter(ALICE)
    assert str(refused.value) == ("You already have 1 piece on the way and 2 waiting. Enjoy those first, "
                                  "then try again in about 60 s.")
    assert limiter.enter(BOB).granted
    turns[2].release()  # gave up waiting: the place is free again
    assert not limiter.enter(ALICE).granted


async def test_no_waiting_allowed_refuses_what_cannot_start_now():
    limiter = Limiter(ComposeLimits(in_flight=1, burst=5, refill_s=12, max_waiting=0), clock=FakeClock())
    running = limiter.enter(ALICE)
    with pytest.raises(TooManyWaitingError, match="try again in about"):
        limiter.enter(ALICE)
    running.release()
    assert limiter.enter(ALICE).granted


async def test_closing_tells_the_waiting_and_refuses_new_requests():
    limiter = Limiter(ComposeLimits(in_flight=1), clock=FakeClock())
    limiter.enter(ALICE)
    waiting = asyncio.create_task(limiter.enter(ALICE).wait())
    await _settle()
    await limiter.close()
    with pytest.raises(ServiceClosedError):
        await asyncio.wait_for(waiting, 1)
    with pytest.raises(ServiceClosedError):
        limiter.enter(BOB)


def test_limits_are_checked_when_made():
    with pytest.raises(ValueError, match="in_flight must be >= 1"):
        ComposeLimits(in_flight=0)
    with pytest.raises(ValueError, match=r"refill_s must be >= 0 \(received -1"):
        ComposeLimits(refill_s=-1)


# -- configuration ---------------------------------------------------------------------------
def test_limits_come_from_the_environment():
    default = BotConfig.from_env({"DISCORD_TOKEN": "t"})
    assert default.limits == ComposeLimits()
    config = BotConfig.from_env({"DISCORD_TOKEN": "t", "MOZART_USER_IN_FLIGHT": "3", "MOZART_USER_BURST": "8",
                                 "MOZART_USER_REFILL_S": "2.5", "MOZART_USER_WAITING": "0",
                                 "MOZART_STALL_WARNING_S": "1.5", "MOZART_LOG_SALT": "pepper"})
    assert config.limits == ComposeLimits(in_flight=3, burst=8, refill_s=2.5, max_waiting=0)
    assert config.stall_warning_s == 1.5 and config.log_salt == "pepper"
    assert "pepper" not in repr(config)
    with pytest.raises(ConfigError, match="in_flight must be >= 1"):
        BotConfig.from_env({"DISCORD_TOKEN": "t", "MOZART_USER_IN_FLIGHT": "0"})
    with pytest.raises(ConfigError, match="MOZART_USER_BURST must be a number"):
        BotConfig.from_env({"DISCORD_TOKEN": "t", "MOZART_USER_BURST": "lots"})


def test_without_a_salt_each_start_gets_its_own():
    one, two = (BotConfig.from_env({"DISCORD_TOKEN": "t"}) for _ in range(2))
    assert one.log_salt and one.log_salt != two.log_salt


# -- the job log -----------------------------------------------------------------------------
def test_user_pseudonyms_are_stable_per_salt_and_hide_the_id():
    assert user_tag(ALICE, "salt") == user_tag(ALICE, "salt")
    assert user_tag(ALICE, "salt") != user_tag(BOB, "salt")
    assert user_tag(ALICE, "salt") != user_tag(ALICE, "other salt")
    assert str(ALICE) not in user_tag(ALICE, "salt")


def test_one_job_line_says_who_what_where_the_time_went_and_how_it_ended(caplog):
    caplog.set_level(logging.INFO, logger="mozart.jobs")
    log_job(user_id=ALICE, salt="s", kind="extend", style="zelda-bach", bars=40,
            seconds={"limited": 0.5, "queued": 1.25, "generate": 2.0, "render": 0.75, "upload": 0.3},
            outcome="ok")
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (f"job user={user_tag(ALICE, 's')} kind=extend style=zelda-bach bars=40 "
                                   "limited_s=0.5 queued_s=1.25 generate_s=2.0 render_s=0.75 upload_s=0.3 outcome=ok")
    assert record.job["outcome"] == "ok" and str(ALICE) not in record.getMessage()
    assert json.loads(_JsonFormatter().format(record))["job"]["kind"] == "extend"  # LOG_FORMAT=json keeps the fields

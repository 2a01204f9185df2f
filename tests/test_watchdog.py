"""The event-loop watchdog: a blocked loop is reported once, naming the code that blocked it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot import LoopWatchdog


def _warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mozart.watchdog" and r.levelno >= logging.WARNING]


async def hog_the_loop() -> None:
    time.sleep(0.8)  # the mistake the watchdog is for: blocking work inside a coroutine


async def test_a_coroutine_that_blocks_the_loop_is_named_in_one_warning(caplog):
    caplog.set_level(logging.INFO, logger="mozart.watchdog")
    dog = LoopWatchdog(threshold_s=0.5)
    dog.start()
    try:
        await asyncio.sleep(0.3)
        await hog_the_loop()
        await asyncio.sleep(0.4)  # the loop answers again
    finally:
        await dog.stop()
    (warning,) = _warnings(caplog)
    message = warning.getMessage()
    assert message.startswith("event loop blocked for") and "running: hog_the_loop (test_watchdog.py:" in message
    assert dog.stalls == 1
    assert any("answered again after" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


async def test_a_busy_but_responsive_loop_gives_no_warning(caplog):
    caplog.set_level(logging.INFO, logger="mozart.watchdog")
    dog = LoopWatchdog(threshold_s=0.5)
    dog.start()
    try:
        async def chatter():
            for _ in range(100):
                await asyncio.sleep(0.01)

        # Blocking work in threads (as the studio does) and short steps on the loop.
        await asyncio.gather(chatter(), chatter(), asyncio.to_thread(time.sleep, 0.8), asyncio.to_thread(time.sleep, 0.8))
        time.sleep(0.2)  # a short blocking step stays under the threshold
        await asyncio.sleep(0.3)
    finally:
        await dog.stop()
    assert _warnings(caplog) == [] and dog.stalls == 0


async def test_stop_ends_the_watching_thread():
    dog = LoopWatchdog(threshold_s=0.5)
    dog.start()
    thread = dog._thread
    assert thread.is_alive()
    await dog.stop()
    assert not thread.is_alive()


def test_the_threshold_must_be_positive():
    with pytest.raises(ValueError, match=r"threshold_s must be > 0 \(received 0\)"):
        LoopWatchdog(threshold_s=0)

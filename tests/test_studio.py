"""The studio: off-loop work, queue positions, a bounded queue, clean shutdown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from composer.generate.request import GenerationRequest
from composer.render import Rendered
from service.jobs import Job, QueueFullError, ServiceClosedError
from service.studio import Studio


def _fake_render(gate: threading.Event | None = None, entered: threading.Event | None = None,
                 threads: list[int] | None = None):
    """A render that says it started (``entered``, the thread it runs in) and waits for ``gate``."""
    def render(piece, sound, formats):
        if threads is not None:
            threads.append(threading.get_ident())
        if entered is not None:
            entered.set()
        if gate is not None:
            gate.wait(30)
        return Rendered(data={fmt: f"{fmt}:{piece.extra['seed']}".encode() for fmt in formats}, sound=sound)

    return render


async def _until(condition, timeout: float = 30.0) -> None:
    """Wait for a state of the studio (never for an amount of time); ``timeout`` only ends a hung test."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def _job(seed: int) -> Job:
    return Job(request=GenerationRequest(style="doom", bars=2, form="through", steps=2, seed=seed))


async def test_jobs_run_off_the_loop_and_report_queue_positions(generator):
    gate, entered, threads = threading.Event(), threading.Event(), []
    service = Studio(generator, workers=1, max_queue=4, render_fn=_fake_render(gate, entered, threads))
    updates: dict[int, list[str]] = {1: [], 2: [], 3: []}
    tasks = [asyncio.create_task(service.submit(_job(i), updates[i].append)) for i in (1, 2, 3)]
    # The first job is blocked in its render, in a worker thread: the loop goes on (it runs this test).
    await _until(entered.is_set)
    assert threads and threads[0] != threading.get_ident()
    await asyncio.sleep(0)
    assert not any(t.done() for t in tasks) and not gate.is_set()
    gate.set()
    results = await asyncio.gather(*tasks)
    assert [r.files["mp3"] for r in results] == [b"mp3:1", b"mp3:2", b"mp3:3"]
    assert any("2 pieces ahead" in u for u in updates[3])
    assert any("1 piece ahead" in u for u in updates[3])
    assert "Composing…" in updates[1]
    await service.close()


async def test_a_full_queue_is_refused_politely(generator):
    gate = threading.Event()
    service = Studio(generator, workers=1, max_queue=1, render_fn=_fake_render(gate))
    first = asyncio.create_task(service.submit(_job(1)))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(service.submit(_job(2)))
    await asyncio.sleep(0.05)
    with pytest.raises(QueueFullError, match=r"try again in \d+ s"):
        await service.submit(_job(3))
    gate.set()
    await asyncio.gather(first, second)
    await service.close()


async def test_close_cancels_queued_jobs_and_finishes_the_running_one(generator):
    gate = threading.Event()
    service = Studio(generator, workers=1, max_queue=4, render_fn=_fake_render(gate))
    running = asyncio.create_task(service.submit(_job(1)))
    await asyncio.sleep(0.05)
    queued = asyncio.create_task(service.submit(_job(2)))
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(service.close(timeout=5))
    await asyncio.sleep(0.05)
    gate.set()
    await closing
    assert (await running).files["mid"] == b"mid:1"
    with pytest.raises(ServiceClosedError):
        await queued
    with pytest.raises(ServiceClosedError):
        await service.submit(_job(3))


async def test_generation_errors_reach_the_caller(generator):
    service = Studio(generator, render_fn=_fake_render())
    from composer.errors import UnknownStyleError

    with pytest.raises(UnknownStyleError, match="Unknown style 'nope'.*Known games"):
        await service.submit(Job(request=GenerationRequest(style="nope", bars=2, form="through")))
    await service.close()


async def test_jobs_arriving_while_positions_are_announced_all_complete(generator):
    """Slow progress edits (as on Discord) must not break the worker when jobs keep arriving."""
    service = Studio(generator, workers=1, max_queue=16, render_fn=_fake_render())

    async def slow_update(text: str) -> None:
        await asyncio.sleep(0.02)

    tasks = []
    for seed in range(8):
        tasks.append(asyncio.create_task(service.submit(_job(seed), slow_update)))
        await asyncio.sleep(0.005)
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert sorted(r.files["mid"] for r in results) == sorted(f"mid:{s}".encode() for s in range(8))
    await service.close()


async def test_each_job_reports_where_its_time_went(generator):
    """Queued, generating and rendering seconds reach the caller, for failed jobs too (the job log uses them)."""
    gate = threading.Event()
    service = Studio(generator, workers=1, max_queue=4, render_fn=_fake_render(gate))
    first = asyncio.create_task(service.submit(_job(1)))
    await asyncio.sleep(0.05)
    timings: dict[str, float] = {}
    second = asyncio.create_task(service.submit(_job(2), seconds=timings))
    await asyncio.sleep(0.4)  # the first job's render waits at the gate; the second waits in the queue
    gate.set()
    one, two = await asyncio.gather(first, second)
    assert two.seconds is timings and set(timings) == {"queued", "generate", "render"}
    # Lower bounds only where the gate guarantees them (0.4 s held); the rest compares the two jobs,
    # so a slow machine cannot fail it.
    assert timings["queued"] >= 0.3 and one.seconds["render"] >= 0.3
    assert timings["queued"] > one.seconds["queued"] and one.seconds["render"] > timings["render"]
    from composer.errors import UnknownStyleError

    failed: dict[str, float] = {}
    with pytest.raises(UnknownStyleError, match="Unknown style 'nope'"):
        await service.submit(Job(request=GenerationRequest(style="nope", bars=2, form="through")), seconds=failed)
    assert "queued" in failed and "render" not in failed
    await service.close()


async def test_waiting_requests_are_composed_together_and_come_out_as_they_would_alone(generator, monkeypatch):
    """``batch``: one forward pass for several waiting requests (a GPU worker's throughput); same pieces."""
    from composer.music.midi_io import to_midi

    alone = [to_midi(generator.generate(_job(seed).request)) for seed in range(4)]
    calls: list[int] = []
    real = generator.generate_many

    def spy(requests, progress=None):
        calls.append(len(requests))
        return real(requests, progress)

    monkeypatch.setattr(generator, "generate_many", spy)
    gate, entered = threading.Event(), threading.Event()
    service = Studio(generator, workers=1, max_queue=8, batch=3, render_fn=_fake_render(gate, entered))
    try:
        first = asyncio.create_task(service.submit(_job(99)))  # holds the only worker until the gate opens
        await _until(entered.is_set)
        waiting = [asyncio.create_task(service.submit(_job(seed))) for seed in range(4)]
        await _until(lambda: service.queue_length == 4)
        gate.set()
        results = await asyncio.gather(first, *waiting)
    finally:
        gate.set()
        await service.close()
    assert [to_midi(r.piece) for r in results[1:]] == alone
    assert calls == [1, 3, 1]  # the first alone, then the four waiting ones in batches of at most 3

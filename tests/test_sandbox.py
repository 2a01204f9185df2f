"""Killable work: a job past its deadline is stopped (its processes gone) before anyone hears of it."""

from __future__ import annotations

import asyncio
import time

import pytest

from composer.generate.request import GenerationRequest
from service.sandbox import AbandonedError, JobTimeoutError, call, group_alive
from service.jobs import Job
from service.studio import Studio


def _long_job() -> Job:
    """Several seconds of rendering (4 minutes of audio, MP3 and video) on any machine."""
    return Job(request=GenerationRequest(style="doom", bars=64, tempo=60, form="through", steps=2, seed=1),
               formats=("mp3", "mid", "png", "mp4"))


async def test_a_job_past_its_deadline_is_killed_before_its_caller_hears_of_it(generator):
    studio = Studio(generator, workers=1, isolate=True, job_timeout_s=0.5)
    await studio.start()
    try:
        sandbox = studio._sandboxes[0]
        pgid = sandbox.pgid
        assert group_alive(pgid)
        started = time.monotonic()
        with pytest.raises(JobTimeoutError, match="took longer than 0.5 s"):
            await studio.submit(_long_job())
        # When the caller hears of it, the child and everything it started (ffmpeg) are gone: no CPU left behind.
        assert not group_alive(pgid)
        assert sandbox.kills == 1 and time.monotonic() - started < 15
        assert studio._running == 0
        # The next job gets a fresh child and is composed as usual (with the time a fresh child
        # needs to load the model on a busy machine: 0.5 s was for the job that never ends).
        studio.job_timeout_s = 60
        small = Job(request=GenerationRequest(style="doom", bars=2, form="through", steps=2, seed=3))
        result = await studio.submit(small)
        assert result.files["mid"].startswith(b"MThd") and sandbox.pgid != pgid
    finally:
        await studio.close()
    assert not sandbox.alive


async def test_a_job_composed_in_a_child_process_is_the_same_piece(generator):
    """Isolation changes where the work runs, never the music: the same MIDI bytes as in a thread."""
    request = GenerationRequest(style="doom-bach", bars=4, seed=11, steps=2)
    threads = Studio(generator, workers=1)
    isolated = Studio(generator, workers=1, isolate=True, job_timeout_s=60)
    try:
        here = await threads.submit(Job(request=request, formats=("mid",)))
        there = await isolated.submit(Job(request=request, formats=("mid",)))
    finally:
        await threads.close()
        await isolated.close()
    assert there.files["mid"] == here.files["mid"]
    assert there.seconds["generate"] > 0 and "render" in there.seconds


async def test_a_job_nobody_waits_for_is_stopped(generator):
    studio = Studio(generator, workers=1, isolate=True, job_timeout_s=60)
    await studio.start()
    try:
        sandbox = studio._sandboxes[0]
        pgid = sandbox.pgid
        task = asyncio.create_task(studio.submit(_long_job()))
        await asyncio.sleep(0.5)
        task.cancel()  # e.g. arq's job_timeout cancelling a worker's coroutine
        for _ in range(100):
            if not group_alive(pgid):
                break
            await asyncio.sleep(0.1)
        assert not group_alive(pgid) and sandbox.kills == 1
    finally:
        await studio.close()
    assert AbandonedError().args  # a message, should it ever reach someone


async def test_parsing_an_upload_runs_in_a_child_with_a_deadline():
    from composer.music.grid import Piece
    from composer.music.midi_io import to_midi

    piece = Piece.empty(2)
    piece.grid[0, 0] = 60 + 3  # any onset
    parsed = await call("import_midi", to_midi(piece), timeout_s=30)
    assert parsed.n_bars >= 1
    with pytest.raises(Exception, match="could not be read"):
        await call("import_midi", b"MThd\x00\x00garbage", timeout_s=30)
    with pytest.raises(JobTimeoutError, match="Reading your file took longer than 0.001 s"):
        await call("import_midi", to_midi(piece), timeout_s=0.001)

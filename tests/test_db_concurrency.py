"""Several processes (bot shards, composing workers) migrating one fresh database at the same time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

import db
from db.migrate import current_revision, head_revision

ROOT = Path(__file__).resolve().parents[1]
# each process waits (after its imports) for the same moment, then migrates
UPGRADE = ("import asyncio, sys, time, db; time.sleep(max(0, float(sys.argv[2]) - time.time())); "
           "asyncio.run(db.upgrade(sys.argv[1]))")


@pytest.mark.slow
async def test_processes_starting_together_take_turns_migrating(database_url):
    start = str(time.time() + 4)
    processes = [subprocess.Popen([sys.executable, "-c", UPGRADE, database_url, start], cwd=ROOT,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, "\n".join(errors)
    engine = db.make_engine(database_url)
    try:
        assert await current_revision(engine) == head_revision()
    finally:
        await engine.dispose()

"""`python -m composer bench ...` (and `mozart bench`): the engine's benchmarks, which print figures (not
timed tests). This folder is the one home of every benchmark: these two commands, and the scripts beside
them that measure the whole bot (bot_latency.py, queue_load.py, abuse.py) or check that a change leaves the
music alone (identical_midi.py)."""

from __future__ import annotations

import click

from composer.cli import LazyGroup

BENCHMARKS = {
    "render": "benchmarks.rendering:render_bench",
    "generate": "benchmarks.generation:generate_bench",
}


@click.group(cls=LazyGroup, lazy_commands=BENCHMARKS)
def bench() -> None:
    """Benchmarks: rendering speed and generation latency (the bot's: benchmarks/bot_latency.py)."""

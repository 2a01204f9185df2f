"""`python -m composer bench ...`: benchmark scripts that print figures (not timed tests)."""

from __future__ import annotations

import click

from composer.cli import LazyGroup

BENCHMARKS = {
    "render": "composer.render.bench:render_bench",
    "generate": "composer.generate_bench:generate_bench",
}


@click.group(cls=LazyGroup, lazy_commands=BENCHMARKS)
def bench() -> None:
    """Benchmarks: rendering speed and generation latency (the bot's: benchmarks/bot_latency.py)."""

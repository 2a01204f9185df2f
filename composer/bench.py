"""`python -m composer bench ...`: benchmark scripts that print figures (not timed tests)."""

from __future__ import annotations

import importlib

import click

BENCHMARKS = {
    "render": "composer.render.bench:render_bench",
    "generate": "composer.generate_bench:generate_bench",
}


class _LazyBench(click.Group):
    def list_commands(self, ctx):
        return sorted(BENCHMARKS)

    def get_command(self, ctx, name):
        target = BENCHMARKS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyBench)
def bench() -> None:
    """Benchmarks: rendering speed and generation latency (the bot's: benchmarks/bot_latency.py)."""

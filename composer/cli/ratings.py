"""`python -m composer ratings ...`: the engine's ratings commands (`reward`); `mozart ratings` adds
`export`, which reads the bot's database (mozart_cli.py)."""

from __future__ import annotations

import click

from composer.cli import LazyGroup

SUBCOMMANDS = {
    "reward": "composer.cli.reward:reward_command",
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def ratings() -> None:
    """Ratings (👍/👎) as training data: learn what people like (`mozart ratings export` writes them)."""

"""`python -m composer ratings ...`: export ratings, train the reward model, simulate a panel."""

from __future__ import annotations

import click

from composer.cli import LazyGroup

SUBCOMMANDS = {
    "export": "composer.feedback.export:export_command",
    "reward": "composer.cli.reward:reward_command",
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def ratings() -> None:
    """Ratings (👍/👎) as training data: export them, learn what people like."""

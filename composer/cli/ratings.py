"""`python -m composer ratings ...`: the engine's ratings commands (`reward`); `mozart ratings` adds
`export`, which reads the bot's database (mozart_cli.py)."""

from __future__ import annotations

import click

from composer.cli import LazyGroup

SUBCOMMANDS = {
    "reward": "composer.cli.reward:reward_command",
    "export": "composer.cli.ratings:moved_export",  # mozart_cli puts the real one here
}


@click.group(cls=LazyGroup, lazy_commands=SUBCOMMANDS)
def ratings() -> None:
    """Ratings (👍/👎) as training data: learn what people like (`mozart ratings export` writes them)."""


@click.command("export", hidden=True, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
def moved_export() -> None:
    """Where the export went: it reads the bot's database, so it is the bot's command now."""
    raise click.UsageError("The ratings export reads the bot's database, so it is the bot's command: "
                           "run `mozart ratings export` (the same options).")

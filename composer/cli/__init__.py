"""`python -m composer ...`: the command line. Every command lives in this package, one module each
(the benchmarks' `bench` in benchmarks/cli.py); this module is the root group that names them.

Commands are imported lazily so that `python -m composer --help` stays fast and a broken
optional area (say, audio) does not stop the others from working.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from composer.errors import MozartError

# command name -> "module:attribute" of a click command or group
COMMANDS = {
    "corpus": "composer.cli.corpus:corpus",
    "render": "composer.cli.render:render_command",
    "train": "composer.cli.train:train_command",
    "compose": "composer.cli.compose:compose_command",
    "remix": "composer.cli.compose:remix_command",
    "stinger": "composer.cli.compose:stinger_command",
    "eval": "composer.cli.evaluate:eval_command",
    "bench": "benchmarks.cli:bench",  # benchmarks/: the one home of benchmarks, installed beside composer
    "card": "composer.cli.card:card_command",
    "textures": "composer.cli.textures:textures_command",
    "ratings": "composer.cli.ratings:ratings",
    "finetune": "composer.cli.finetune:finetune_command",
    "critic": "composer.cli.critic:critic_command",
}


class LazyGroup(click.Group):
    """A click group whose commands ("module:attribute") are imported when first used."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = COMMANDS if lazy_commands is None else lazy_commands

    def list_commands(self, ctx):
        return sorted(self.lazy_commands)

    def get_command(self, ctx, name):
        target = self.lazy_commands.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            reason = f"{name}: {e}"  # `e` is unbound once the except block ends
            return click.Command(name, help=f"(unavailable: {reason})", callback=lambda: _fail(reason))


def _fail(message: str, hint: str | None = None) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    if hint:
        click.secho(f"hint: {hint}", fg="yellow", err=True)
    sys.exit(1)


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Show debug logging.")
def cli(verbose: bool) -> None:
    """Mozart: compose original video-game music in the style of classical composers."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def run(group: click.Group) -> None:
    """Run a command group, turning a ``MozartError`` into a message instead of a traceback."""
    try:
        group(standalone_mode=True)
    except MozartError as e:
        _fail(str(e))


def main() -> None:
    run(cli)


if __name__ == "__main__":
    main()

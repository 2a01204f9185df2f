"""`mozart ...`: one entry point for everything, the bot and its database included.

    mozart bot                 # the Discord bot (same as `python bot.py`)
    mozart db upgrade          # database migrations (same as `python -m db upgrade`)
    mozart playground          # the bot in a Discord-like page on 127.0.0.1 (same as `python -m playground`)
    mozart ratings export      # the bot's ratings as a ratings file (service/export.py)
    mozart compose / remix / render / corpus / train / eval / bench / card

The music engine's commands are those of `python -m composer` (composer/cli/); this
module sits above the bot and the database, so the engine never imports either.
"""

from __future__ import annotations

import sys

import click

from composer.cli import COMMANDS, LazyGroup, cli, run
from composer.cli.ratings import SUBCOMMANDS as RATINGS_SUBCOMMANDS

MOZART_COMMANDS = {**COMMANDS, "bot": "mozart_cli:bot_command", "db": "db.cli:db_group",
                   "playground": "playground.cli:playground_command", "ratings": "mozart_cli:ratings"}


@click.command("bot")
def bot_command() -> None:
    """Run the Discord bot (configuration from the environment: see README)."""
    import bot

    sys.exit(bot.main())


ratings = LazyGroup(name="ratings", lazy_commands={**RATINGS_SUBCOMMANDS, "export": "service.export:export_command"},
                    help="Ratings (👍/👎) as training data: export them from the bot's database, learn what people like.")

mozart = LazyGroup(name="mozart", lazy_commands=MOZART_COMMANDS, callback=cli.callback, params=cli.params,
                   help="Mozart: compose original video-game music in the style of classical composers.")


def main() -> None:
    run(mozart)


if __name__ == "__main__":
    main()

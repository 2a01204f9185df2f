"""``python -m playground`` / ``mozart playground``: the bot in a Discord-like page on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import webbrowser

import click

DEFAULT_PORT = 8765


@click.command("playground")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port of the page on 127.0.0.1 (0: any free port).")
@click.option("--database", "database_url", default=None, metavar="URL",
              help="Where pieces and ratings are kept [default: playground.db in this folder; "
                   "the bot's own DATABASE_URL is not used].")
@click.option("--checkpoint", default=None, metavar="DIR", help="Model folder [default: the shipped model].")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True,
              help="Open the page in a web browser.")
def playground_command(port: int, database_url: str | None, checkpoint: str | None, open_browser: bool) -> None:
    """Try Mozart without Discord: the real bot, a fake Discord and a page that looks like a channel.

    Type /compose style:zelda-bach in the page. No token and no network are needed; everything
    listens on 127.0.0.1 only. Stop with Ctrl-C.
    """
    from bot import BotConfig, ConfigError, setup_logging
    from playground.session import DEFAULT_DATABASE

    if hasattr(signal, "SIGUSR1"):  # `kill -USR1 <pid>` prints every thread's stack: where a stuck playground is
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    setup_logging()
    logging.getLogger("fakediscord").setLevel(logging.ERROR)  # its warnings are for tests
    env = {**os.environ, "DISCORD_TOKEN": "playground", "DATABASE_URL": database_url or DEFAULT_DATABASE}
    if checkpoint:
        env["MOZART_CHECKPOINT"] = checkpoint
    try:
        config = BotConfig.from_env(env)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    from playground.web import listen

    try:
        sock = listen(port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port} ({e.strerror}): is a playground already "
                                   f"running? Try --port 0 for any free port.") from None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run(config, sock, open_browser))


async def _run(config, sock, open_browser: bool) -> None:
    from playground.session import Playground
    from playground.web import serve

    click.echo("Starting the fake Discord and the bot (loading the model takes a few seconds)...")
    async with Playground.running(config) as playground:
        runner, url = await serve(playground, sock)
        click.secho(f"Mozart playground: {url}", fg="green", bold=True)
        click.echo("Type /compose style:zelda-bach bars:32 in the page. Ctrl-C stops.")
        if open_browser:
            with contextlib.suppress(Exception):  # no browser (a server): the address above is enough
                webbrowser.open(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

"""Mozart's Discord bot: `python bot.py`.

Configuration comes from the environment:

    DISCORD_TOKEN       required; never logged
    DATABASE_URL        default sqlite+aiosqlite:///mozart.db (postgresql+asyncpg://... works too)
    MOZART_CHECKPOINT   model folder (default: the model shipped with Mozart)
    MOZART_DEVICE       auto (default), cpu, cuda, mps
    MOZART_WORKERS      compositions at a time (default 2: each uses one CPU thread)
    MOZART_QUEUE        how many pieces may wait (default 8)
    DISCORD_GUILD_ID    sync slash commands to this guild only (instant; for development)
    LOG_FORMAT          text (default) or json

This file builds the heavy things (database, model, studio (model + composing workers)) and hands them to
the bot; the cogs in ``cogs/`` hold the commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field

import discord
from discord import app_commands
from discord.ext import commands

log = logging.getLogger("mozart")

EXTENSIONS = ("cogs.compose", "cogs.remix", "cogs.ratings", "cogs.info")


class ConfigError(Exception):
    """The environment does not describe a runnable bot."""


@dataclass
class BotConfig:
    token: str = field(repr=False)  # never printed
    database_url: str = "sqlite+aiosqlite:///mozart.db"
    checkpoint: str | None = None
    device: str = "auto"
    workers: int = 2  # on 2 CPU cores: 8 queued pieces in 12.4 s instead of 22.2 s with 1
    max_queue: int = 8
    guild_id: int | None = None
    compose_cooldown_s: float = 10.0  # per user, between compositions
    max_upload_bytes: int = 1_000_000  # /remix attachments
    max_remix_bars: int = 64

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BotConfig:
        env = dict(os.environ if env is None else env)
        token = env.get("DISCORD_TOKEN", "").strip()
        if not token:
            raise ConfigError("DISCORD_TOKEN is not set. Create a bot at https://discord.com/developers/applications, "
                              "then run: DISCORD_TOKEN=... python bot.py")

        def number(name, default, kind=int):
            raw = env.get(name)
            if raw in (None, ""):
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number (got {raw!r}).") from None

        return cls(
            token=token,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            checkpoint=env.get("MOZART_CHECKPOINT") or None,
            device=env.get("MOZART_DEVICE") or "auto",
            workers=max(1, number("MOZART_WORKERS", cls.workers)),
            max_queue=max(1, number("MOZART_QUEUE", 8)),
            guild_id=number("DISCORD_GUILD_ID", None),
        )


class Mozart(commands.Bot):
    """The bot: holds the database session factory and the studio (model + composing workers) it was given."""

    def __init__(self, *, config: BotConfig, db, studio, engine=None, **options):
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True  # raw reaction events become ratings
        intents.dm_reactions = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options)
        self.config = config
        self.db = db
        self.studio = studio
        self.engine = engine
        self.tree.on_error = self.on_app_command_error

    async def setup_hook(self) -> None:
        from cogs.utils.views import PieceView

        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("Failed to load extension %s.", extension)
        self.add_view(PieceView())  # persistent: buttons of old posts keep working after restarts
        await self.studio.start()
        if self.config.guild_id:
            guild = discord.Object(id=self.config.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d slash commands%s", len(synced),
                 f" to guild {self.config.guild_id}" if self.config.guild_id else " globally")

    async def on_ready(self) -> None:
        log.info("ready as %s (id %s) in %d guilds; model %s", self.user, self.user.id, len(self.guilds),
                 self.studio.generator.version)

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError):
        from cogs.utils.errors import report_error

        await report_error(interaction, error)

    async def close(self) -> None:
        log.info("shutting down: finishing running compositions")
        await self.studio.close(timeout=30)
        await super().close()
        if self.engine is not None:
            await self.engine.dispose()


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        for key in ("error_id", "user_id", "command"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(fmt: str | None = None) -> None:
    handler = logging.StreamHandler()
    if (fmt or os.environ.get("LOG_FORMAT", "text")) == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("discord.gateway").setLevel(logging.WARNING)


async def build(config: BotConfig) -> Mozart:
    """Database (migrated), model and studio (model + composing workers), handed to a new bot."""
    import db as database
    from composer.generator import Generator
    from composer.studio import Studio

    engine = database.make_engine(config.database_url)
    await database.upgrade(engine)
    sessions = database.make_session_factory(engine)
    generator = await asyncio.to_thread(Generator.load, config.checkpoint, config.device)
    log.info("model %s loaded on %s (%d styles)", generator.version, generator.device, len(generator.catalog.names()))
    service = Studio(generator, workers=config.workers, max_queue=config.max_queue)
    return Mozart(config=config, db=sessions, studio=service, engine=engine)


async def run(config: BotConfig) -> None:
    bot = await build(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        except NotImplementedError:  # Windows
            pass
    async with bot:
        await bot.start(config.token)


def main() -> int:
    setup_logging()
    try:
        config = BotConfig.from_env()
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(config))
    except discord.LoginFailure:
        print("error: Discord rejected DISCORD_TOKEN. Check the token in the developer portal.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mozart's Discord bot: `python bot.py`.

Configuration comes from the environment: ``BotConfig.from_env`` reads it, and README.md's
table lists every variable with its default (a test keeps the two in step).

This file builds the heavy things (database, model, studio (model + composing workers),
the per-person limiter) and hands them to the bot; the cogs in ``cogs/`` hold the commands.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

import discord
from discord import app_commands
from discord.ext import commands

from cogs.utils.limits import ComposeLimits, Limiter
from service.jobs import JOB_TIMEOUT_S
from db.engine import DEFAULT_URL

log = logging.getLogger("mozart")

EXTENSIONS = ("cogs.compose", "cogs.remix", "cogs.ratings", "cogs.info", "cogs.models", "cogs.privacy", "cogs.voice")


class ConfigError(Exception):
    """The environment does not describe a runnable bot."""


@dataclass
class BotConfig:
    token: str = field(repr=False)  # never printed
    database_url: str = DEFAULT_URL  # the same default as `python -m db upgrade`
    checkpoint: str | None = None
    device: str = "auto"
    workers: int = 2  # on 2 CPU cores: 8 queued pieces in 12.4 s instead of 22.2 s with 1
    max_queue: int = 8
    batch: int = 1  # waiting compositions composed together in one forward pass (a GPU: 8 or more)
    queue_url: str | None = field(default=None, repr=False)  # Redis of the job queue; None: compose in-process
    guild_id: int | None = None
    shards: int | str | None = None  # None: one connection; "auto": Discord's count; N: N shards
    shard_ids: tuple[int, ...] | None = None  # the shards this process runs (a cluster); None: all
    limits: ComposeLimits = ComposeLimits()  # per person: pieces in flight, burst, refill, waiting
    log_salt: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)  # user ids in logs
    stall_warning_s: float = 0.5  # warn when the event loop is blocked this long (0 = off)
    max_upload_bytes: int = 1_000_000  # /remix attachments
    max_remix_bars: int = 64
    owner_ids: frozenset[int] = frozenset()  # may use /model; empty: the application's owner
    models_dir: str = "models"  # checkpoint folders `/model load` may serve beside the default
    version_floor: float = 0.1  # each served version gets at least this share of requests
    job_timeout_s: float = JOB_TIMEOUT_S  # one job's wall-clock limit: past it the work is killed
    isolate: bool = True  # compose and render in child processes that a deadline can kill (off: threads)
    upload_days: float = 30  # remix uploads (and their file names) are deleted after this many days
    ratings_per_day: int = 100  # ratings one person may add in 24 hours; more are not stored
    voice_idle_s: float = 120  # the bot leaves a voice channel after this long with nothing to play

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

        def ids(name):
            raw = env.get(name) or ""
            try:
                return [int(part) for part in raw.replace(",", " ").split()]
            except ValueError:
                raise ConfigError(f"{name} must be Discord user ids separated by commas (got {raw!r}).") from None

        if env.get("MOZART_QUEUE_URL") and importlib.util.find_spec("arq") is None:  # only a queued bot needs it
            raise ConfigError("MOZART_QUEUE_URL needs the job queue's library: pip install -e '.[queue]'")
        limits = ComposeLimits()
        try:
            limits = ComposeLimits(in_flight=number("MOZART_USER_IN_FLIGHT", limits.in_flight),
                                   burst=number("MOZART_USER_BURST", limits.burst),
                                   refill_s=number("MOZART_USER_REFILL_S", limits.refill_s, float),
                                   max_waiting=number("MOZART_USER_WAITING", limits.max_waiting))
        except ValueError as e:
            raise ConfigError(f"MOZART_USER_* limits: {e}") from None
        return cls(
            token=token,
            database_url=env.get("DATABASE_URL") or cls.database_url,
            checkpoint=env.get("MOZART_CHECKPOINT") or None,
            device=env.get("MOZART_DEVICE") or cls.device,
            workers=max(1, number("MOZART_WORKERS", cls.workers)),
            max_queue=max(1, number("MOZART_QUEUE", cls.max_queue)),
            batch=max(1, number("MOZART_BATCH", cls.batch)),
            queue_url=env.get("MOZART_QUEUE_URL") or None,
            guild_id=number("DISCORD_GUILD_ID", None),
            **_shards(env.get("MOZART_SHARDS"), ids("MOZART_SHARD_IDS")),
            limits=limits,
            **({"log_salt": env["MOZART_LOG_SALT"]} if env.get("MOZART_LOG_SALT") else {}),
            stall_warning_s=max(0.0, number("MOZART_STALL_WARNING_S", cls.stall_warning_s, float)),
            owner_ids=frozenset(ids("MOZART_OWNER_IDS")),
            models_dir=env.get("MOZART_MODELS_DIR") or cls.models_dir,
            version_floor=min(1.0, max(0.0, number("MOZART_VERSION_FLOOR", cls.version_floor, float))),
            job_timeout_s=max(1.0, number("MOZART_JOB_TIMEOUT_S", cls.job_timeout_s, float)),
            upload_days=max(0.0, number("MOZART_UPLOAD_DAYS", cls.upload_days, float)),
            ratings_per_day=max(0, number("MOZART_RATINGS_PER_DAY", cls.ratings_per_day)),
            voice_idle_s=max(1.0, number("MOZART_VOICE_IDLE_S", cls.voice_idle_s, float)),
        )


def _shards(count: str | None, shard_ids: list[int]) -> dict:
    """MOZART_SHARDS (empty, "auto" or a number) and MOZART_SHARD_IDS as BotConfig fields."""
    count = (count or "").strip().lower()
    if not count:
        if shard_ids:
            raise ConfigError("MOZART_SHARD_IDS needs MOZART_SHARDS (the total number of shards).")
        return {}
    if count == "auto":
        if shard_ids:
            raise ConfigError("MOZART_SHARD_IDS needs a number in MOZART_SHARDS, not auto.")
        return {"shards": "auto"}
    if not count.isdigit() or int(count) < 1:
        raise ConfigError(f"MOZART_SHARDS must be auto or a number of shards (got {count!r}).")
    bad = [i for i in shard_ids if not 0 <= i < int(count)]
    if bad:
        raise ConfigError(f"MOZART_SHARD_IDS {bad} are not shards of {count} (0 to {int(count) - 1}).")
    return {"shards": int(count), "shard_ids": tuple(shard_ids) or None}


class Mozart(commands.Bot):
    """The bot: holds the database session factory, the studio (model + composing workers) and the
    per-person limiter it was given; watches its own event loop for stalls."""

    def __init__(self, *, config: BotConfig, db, studio, limiter: Limiter, versions=None, engine=None, **options):
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_reactions = True  # raw reaction events become ratings
        intents.dm_reactions = True
        intents.voice_states = True  # who is in which voice channel: /play joins the person's
        if config.owner_ids:
            options.setdefault("owner_ids", set(config.owner_ids))
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options)
        self.config = config
        self.db = db
        self.studio = studio
        self.limiter = limiter
        self.versions = versions  # which served model version composes each request
        self.engine = engine
        self.watchdog = LoopWatchdog(config.stall_warning_s) if config.stall_warning_s > 0 else None
        self.tree.on_error = self.on_app_command_error

    async def setup_hook(self) -> None:
        from cogs.utils.views import PieceView

        if self.watchdog is not None:
            self.watchdog.start()
        for extension in EXTENSIONS:
            try:
                await self.load_extension(extension)
            except Exception:
                log.exception("Failed to load extension %s.", extension)
        self.add_view(PieceView())  # persistent: buttons of old posts keep working after restarts
        if missing := PieceView.missing_handlers(self):
            log.error("buttons with no handler (posted pieces still carry them): %s", ", ".join(missing))
        await self.studio.start()
        if self.config.guild_id:
            guild = discord.Object(id=self.config.guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d slash commands%s", len(synced),
                 " to the guild DISCORD_GUILD_ID names" if self.config.guild_id else " globally")

    async def on_ready(self) -> None:
        log.info("ready as %s in %d guilds; models %s", self.user, len(self.guilds), ", ".join(self.studio.versions))

    async def on_app_command_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError):
        from cogs.utils.errors import report_error

        await report_error(interaction, error)

    async def close(self) -> None:
        log.info("shutting down: finishing running compositions")
        await self.limiter.close()
        await self.studio.close(timeout=30)
        await super().close()
        if self.engine is not None:
            await self.engine.dispose()
        if self.watchdog is not None:
            await self.watchdog.stop()


class ShardedMozart(Mozart, commands.AutoShardedBot):
    """Mozart over several gateway connections (MOZART_SHARDS), or some of them (MOZART_SHARD_IDS: one
    process of a cluster). Nothing else changes: buttons find their piece in the shared database, so a
    click works whichever process receives it."""


class LoopWatchdog:
    """Warns when the event loop stops answering for more than ``threshold_s``, naming what ran.

    A heartbeat task on the loop stamps the time every ``threshold_s / 5``; a daemon thread
    checks the stamp and, once it goes stale, logs the loop thread's innermost frames
    (``sys._current_frames``): the code that blocked it, e.g. a ``time.sleep`` or a
    synchronous file read inside a coroutine. A loop crowded with many short steps is reported
    too, naming the step that was running. One warning per stall; an INFO line when it ends.
    """

    def __init__(self, threshold_s: float = 0.5, logger: logging.Logger | None = None):
        if threshold_s <= 0:
            raise ValueError(f"threshold_s must be > 0 (received {threshold_s})")
        self.threshold_s = threshold_s
        self.interval_s = threshold_s / 5
        self.log = logger or logging.getLogger("mozart.watchdog")
        self.stalls = 0  # warnings given
        self._beat = time.monotonic()
        self._loop_thread: int | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Call on the event loop's thread, from a coroutine."""
        if self._task is not None:
            return
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._task = asyncio.create_task(self._heartbeat(), name="loop-watchdog-heartbeat")
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
            self._thread = None

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(self.interval_s)

    def _watch(self) -> None:
        stalled_since = None
        while not self._stop.wait(self.interval_s / 2):
            beat = self._beat
            late = time.monotonic() - beat - self.interval_s  # a healthy beat is up to one interval old
            if late > self.threshold_s and stalled_since != beat:
                stalled_since = beat
                self.stalls += 1
                self.log.warning("event loop blocked for %.2f s so far, running: %s", late, self._where())
            elif stalled_since is not None and beat != stalled_since:
                self.log.info("event loop answered again after %.2f s", beat - stalled_since - self.interval_s)
                stalled_since = None

    def _where(self) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return "?"
        stack = traceback.StackSummary.extract(traceback.walk_stack(frame), limit=4, lookup_lines=False)
        return " <- ".join(f"{f.name} ({os.path.basename(f.filename)}:{f.lineno})" for f in stack)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        for key in ("error_id", "user", "command", "job"):
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data)


class RedactIds(logging.Filter):
    """The last guard of "no Discord id in a log line": any 17 to 20 digit number (a snowflake; every
    user, server, channel and message id since 2015) in a line, its traceback included, becomes
    ``<id>``. The bot's own lines name people by pseudonym (``user_tag``) and never need it."""

    SNOWFLAKE = re.compile(r"(?<![\d.])\d{17,20}(?!\d)")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.SNOWFLAKE.sub("<id>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.SNOWFLAKE.sub("<id>", text)
            record.exc_info = None  # the redacted text above is what is printed
        return True


def setup_logging(fmt: str | None = None) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RedactIds())
    if (fmt or os.environ.get("LOG_FORMAT", "text")) == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("discord.gateway").setLevel(logging.WARNING)


async def build(config: BotConfig) -> Mozart:
    """Database (migrated), model, studio (model + composing workers) and limiter, handed to a new bot."""
    import db as database
    from composer.generate.generator import Generator
    from cogs.utils.versions import Versions
    from service.studio import Studio

    engine = database.make_engine(config.database_url)
    await database.upgrade(engine)
    sessions = database.make_session_factory(engine)
    generator = await asyncio.to_thread(Generator.load, config.checkpoint, config.device)
    log.info("model %s loaded on %s (%d styles)", generator.version, generator.device, len(generator.catalog.names()))
    shared = None
    if config.queue_url:  # composing workers elsewhere (python -m workers); this model only checks requests
        from cogs.utils.shared_limits import SharedLimits
        from workers.queue import QueueStudio, redis_client

        service = QueueStudio(generator, config.queue_url, sessions, max_queue=config.max_queue)
        # several bot processes may serve one person: their limits are kept in the queue's Redis
        shared = SharedLimits(redis_client(config.queue_url), config.limits)
    else:
        service = Studio(generator, workers=config.workers, max_queue=config.max_queue, batch=config.batch,
                         isolate=config.isolate, job_timeout_s=config.job_timeout_s)
    limiter = Limiter(config.limits, job_seconds=service.typical_job_seconds, shared=shared)
    versions = Versions(service, sessions, config.models_dir, floor=config.version_floor, device=config.device)
    await versions.restore()
    if config.shards is None:
        return Mozart(config=config, db=sessions, studio=service, limiter=limiter, versions=versions, engine=engine)
    shard_count = None if config.shards == "auto" else config.shards  # None: as Discord recommends
    return ShardedMozart(config=config, db=sessions, studio=service, limiter=limiter, versions=versions,
                         engine=engine, shard_count=shard_count,
                         shard_ids=list(config.shard_ids) if config.shard_ids else None)


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

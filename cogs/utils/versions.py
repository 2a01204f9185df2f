"""The model versions the bot serves: which one answers each request, loading and retiring.

Every composing request is assigned a version by Thompson sampling on the 👍 share of the
pieces each version made (``composer.feedback.bandit``); the piece records its version.
The served set is kept in the database (``model_versions``), so a restart serves the
same versions again; the checkpoint in ``MOZART_CHECKPOINT`` is always served at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np

import db
from cogs.utils.errors import UserError
from composer.nn.checkpoint import CONFIG
from composer.errors import MozartError
from composer.feedback.bandit import Tally, choose, shares

log = logging.getLogger("mozart.versions")

TALLY_TTL_S = 5.0  # how long one read of the like counts serves assignments
SYNC_S = 30.0  # how often the served set is read again (another bot process may have loaded or retired one)


class Versions:
    def __init__(self, studio, sessions: db.SessionFactory, models_dir: str | Path, *, floor: float,
                 device: str = "auto", seed: int | None = None):
        self.studio = studio
        self.sessions = sessions
        self.models_dir = Path(models_dir)
        self.floor = floor
        self.device = device
        self.rng = np.random.default_rng(seed)
        self._stats: tuple[float, dict[str, db.ModelVersionStats]] | None = None  # (read at, counts)
        self._synced_at = time.monotonic()  # restore() at start-up is the first sync
        self._syncing: asyncio.Task | None = None

    # -- assignment ------------------------------------------------------------------
    async def tallies(self) -> dict[str, Tally]:
        """👍/👎 of every served version's pieces (read at most every TALLY_TTL_S)."""
        now = time.monotonic()
        if self._stats is None or now - self._stats[0] > TALLY_TTL_S:
            self._stats = (now, await db.like_ratio_by_model_version(self.sessions))
        return self.served(self._stats[1])

    def served(self, stats: dict[str, db.ModelVersionStats]) -> dict[str, Tally]:
        """The served versions' 👍/👎 in ``stats`` (what ``db.like_ratio_by_model_version`` returns)."""
        return {v: Tally(stats[v].likes, stats[v].dislikes) if v in stats else Tally() for v in self.studio.versions}

    async def assign(self) -> str:
        """The version that composes the next request; the oldest if the counts cannot be read."""
        self._sync_when_due()
        try:
            tallies = await self.tallies()
        except db.DatabaseError:
            log.warning("like counts unreadable; assigning the oldest served version")
            return self.studio.versions[0]
        return choose(tallies, self.rng, self.floor)

    def shares(self, stats: dict[str, db.ModelVersionStats]) -> dict[str, float]:
        """The share of requests each served version gets with these counts."""
        return shares(self.served(stats), self.floor)

    # -- loading and retiring -----------------------------------------------------------
    def available(self) -> list[str]:
        """Checkpoint folders in the models folder (what `/model load` offers)."""
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if (p / CONFIG).is_file())

    async def load(self, name: str) -> str:
        """Load the checkpoint folder ``name`` (inside the models folder) and serve it; its version."""
        from composer.generate.generator import Generator

        folder = self.models_dir / name
        if "/" in name or "\\" in name or name.startswith(".") or not (folder / CONFIG).is_file():
            offered = ", ".join(self.available()) or "none"
            raise UserError(f"There is no model folder `{name}` in `{self.models_dir}` (available: {offered}).")
        try:
            generator = await asyncio.to_thread(Generator.load, folder, self.device)
        except MozartError as e:
            raise UserError(f"`{name}` could not be loaded: {e}") from None
        self.studio.add(generator)
        parent = generator.meta.training.get("parent")
        try:
            await db.serve_version(self.sessions, generator.version, str(folder), parent)
        except db.DatabaseError:
            log.exception("version %s is served but not recorded: a restart will not serve it", generator.version)
        log.info("serving version %s from %s", generator.version, folder)
        return generator.version

    async def retire(self, version: str) -> None:
        self.studio.retire(version)
        await db.retire_version(self.sessions, version)
        log.info("retired version %s", version)

    def _sync_when_due(self) -> None:
        """Start a ``sync`` in the background every SYNC_S (requests never wait for a model to load)."""
        if time.monotonic() - self._synced_at < SYNC_S or (self._syncing is not None and not self._syncing.done()):
            return
        self._synced_at = time.monotonic()
        self._syncing = asyncio.create_task(self.sync(), name="versions-sync")

    async def sync(self) -> None:
        """Serve what the database says is served: in a cluster, `/model load` and `/model retire` reach
        one process, and the others follow within SYNC_S."""
        try:
            retired = await db.retired_versions(self.sessions)
            await self.restore()
        except db.DatabaseError:
            log.warning("could not read the served versions; keeping %s", ", ".join(self.studio.versions))
            return
        for version in [v for v in self.studio.versions if v in retired]:
            if len(self.studio.versions) > 1:
                self.studio.retire(version)
                log.info("version %s was retired elsewhere; no longer serving it", version)

    async def restore(self) -> None:
        """Serve again what was served before a restart; a folder that fails to load is logged and skipped."""
        from composer.generate.generator import Generator

        for row in await db.serving_versions(self.sessions):
            if row.name in self.studio.versions:
                continue
            try:
                generator = await asyncio.to_thread(Generator.load, row.path, self.device)
                if generator.version != row.name:
                    raise MozartError(f"{row.path} now holds version {generator.version}")
                self.studio.add(generator)
                log.info("serving version %s again (from %s)", row.name, row.path)
            except MozartError as e:
                log.error("could not serve version %s again: %s", row.name, e)

"""What every corpus source shares during one ``corpus build``.

A ``BuildSession`` holds the store (``data/corpus/``), the report, the options common to
all sources, and the bookkeeping that makes a build resumable and idempotent: a *unit*
(a Debian package, a music21 corpus file, a user file) whose fingerprint (content hash +
``BUILDER_VERSION``) is unchanged is skipped; a unit that changed is dropped and
re-imported; the state is saved every few seconds, so an interrupted build keeps what it
finished. Messages go through ``note``/``warn`` so they do not break the progress bars.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from composer.corpus.store import CorpusStore, Unit

BUILDER_VERSION = 1  # bump when the grids a build writes change: every unit is redone
SAVE_EVERY_S = 5.0


@dataclass
class BuildReport:
    added: int = 0  # pieces written
    removed: int = 0  # pieces dropped (their source vanished or changed)
    units_done: int = 0  # units processed this run
    units_skipped: int = 0  # units already up to date
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def nothing_to_do(self) -> bool:
        return self.units_done == 0 and self.removed == 0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(*parts: str) -> str:
    """A unit's fingerprint: its content hashes (``parts``) and the builder version."""
    return sha256("\0".join((f"builder{BUILDER_VERSION}",) + parts).encode())


class BuildSession:
    """One build's store, report and options, and the bookkeeping every source uses."""

    def __init__(
        self,
        data_dir: Path,
        *,
        only: tuple[str, ...] = (),
        jobs: int | None = None,
        force: bool = False,
        progress: bool = True,
        echo: bool = True,
    ):
        self.data_dir = Path(data_dir)
        self.only = set(only)  # labels to build; empty: every label
        self.jobs = max(1, jobs or os.cpu_count() or 1)  # processes for score parsing
        self.force = force  # re-import units that are up to date
        self.progress = progress  # show progress bars
        self.echo = echo  # print notes and warnings (they are kept in the report either way)
        self.report = BuildReport()
        self.store = CorpusStore(self.data_dir)
        self._last_save = time.monotonic()

    # -- messages ----------------------------------------------------------------------
    def note(self, message: str) -> None:
        self.report.notes.append(message)
        if self.echo:
            tqdm.write(message, file=sys.stderr)

    def warn(self, message: str) -> None:
        self.report.warnings.append(message)
        if self.echo:
            tqdm.write(f"warning: {message}", file=sys.stderr)

    def file_error(self, unit: Unit, name: str, reason: str) -> None:
        """A file of ``unit`` is skipped: remember why in its state and warn."""
        unit.errors.append(f"{name}: {reason}")
        self.warn(f"skipped {name}: {reason}")

    def bar(self, total: int, desc: str, unit: str = "file") -> tqdm:
        return tqdm(total=total, desc=desc, unit=unit, disable=not self.progress, file=sys.stderr, leave=True)

    # -- bookkeeping -------------------------------------------------------------------
    def wanted(self, label: str) -> bool:
        return not self.only or label in self.only

    def skip(self, key: str, fingerprint: str | None) -> bool:
        """Is the unit up to date (and not forced)? Counts it as skipped if so."""
        if self.force or not self.store.is_done(key, fingerprint):
            return False
        self.report.units_skipped += 1
        return True

    def replace(self, key: str) -> None:
        """Before re-importing a unit, forget what it produced last time."""
        if key in self.store.units:
            self.report.removed += self.store.drop_unit(key)

    def drop_stale(self, kind: str, planned: set[str]) -> None:
        """Forget the units of ``kind`` (for the wanted labels) whose source is gone."""
        for key in [k for k, u in self.store.units.items() if u.kind == kind and self.wanted(u.label)]:
            if key not in planned:
                self.report.removed += self.store.drop_unit(key)

    def commit(self, key: str, unit: Unit) -> None:
        """Record a finished unit; the state is saved every ``SAVE_EVERY_S`` seconds."""
        self.store.set_unit(key, unit)
        self.report.units_done += 1
        self.report.added += len(unit.ids)
        self.report.duplicates += len(unit.duplicates)
        if time.monotonic() - self._last_save > SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        self.store.save()
        self._last_save = time.monotonic()

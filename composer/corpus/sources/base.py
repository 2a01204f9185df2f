"""What a corpus source is, and the machinery shared by the sources made of files.

``Source``: ``labels()`` (what ``--only`` may name) and ``build()`` (import every unit that
is not up to date into the session's store). ``FileSource``: a source whose units are
single files (a music21 corpus file, a user's file); it only lists its ``units()`` with
their fingerprints, and ``build()`` drops the units whose file is gone, skips those that
are up to date, imports MIDI files here and parses score files in a process pool
(largest first), committing in plan order so piece ids do not depend on timing.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from composer.corpus.scores import (
    MIDI_SUFFIXES,
    SCORE_SUFFIXES,
    ScoreJob,
    import_score_job,
    skip_reason,
)
from composer.corpus.session import BuildSession
from composer.corpus.store import Unit
from composer.errors import MozartError
from composer.music.grid import Piece
from composer.music.midi_io import import_midi


class SourceUnavailable(MozartError):
    """The source cannot be read on this machine (the message says why); it is skipped."""


def midi_piece(data: bytes, source: str, **meta) -> Piece:
    """A MIDI file's piece, with ``source`` (where it came from) and ``meta`` (game, composer, title)."""
    # import_midi's first parameter is named ``source``, so Piece.source is set afterwards.
    piece = import_midi(data, **meta)
    piece.source = source
    return piece


def stem(name: str) -> str:
    """A file name without its music suffixes: 'k155/movement1.mxl' -> 'k155/movement1'."""
    lower = name.lower()
    for suffix in (".gz",) + MIDI_SUFFIXES + SCORE_SUFFIXES:
        if lower.endswith(suffix):
            name, lower = name[: -len(suffix)], lower[: -len(suffix)]
    return name


class Source:
    """One corpus source. ``name`` is its ``REGISTRY`` name: ``--source`` and its units' kind."""

    def __init__(self, session: BuildSession, name: str):
        self.session = session
        self.name = name

    def labels(self) -> set[str]:
        """The labels this source can build (``--only`` accepts them)."""
        raise NotImplementedError

    def build(self) -> None:
        """Import every wanted unit that is not up to date."""
        raise NotImplementedError


@dataclass
class WorkUnit:
    """One file of a ``FileSource``; its state key is ``"<source name>:<rel>"``."""

    rel: str  # the file as named in warnings and the manifest's ``path``
    label: str  # game or composer label
    fingerprint: str  # ``session.fingerprint`` of its content
    piece_id: str  # wanted id; "-1", "-2"... when the file holds several pieces
    job: ScoreJob  # path, metadata (``source``, game/composer) and fallback title
    midi: bytes | None = None  # MIDI data: imported here; None: ``job.path`` is parsed in the pool
    error: str | None = None  # why the file cannot be read: warned about, its state kept


class FileSource(Source):
    """A source made of files: subclasses list ``units()``; importing them is shared."""

    licence: ClassVar[str]  # the manifest's licence for every piece
    midi_bar: ClassVar[str] = "MIDI files"  # progress bar titles
    score_bar: ClassVar[str] = "score files"

    def units(self) -> list[WorkUnit]:
        """Every wanted file, up to date or not; raises ``SourceUnavailable``."""
        raise NotImplementedError

    def key(self, unit: WorkUnit) -> str:
        return f"{self.name}:{unit.rel}"

    def build(self) -> None:
        session = self.session
        try:
            units = self.units()
        except SourceUnavailable as e:
            session.warn(str(e))
            return
        session.drop_stale(self.name, {self.key(u) for u in units})
        todo = []
        for unit in units:
            if unit.error:
                session.warn(f"skipped {unit.rel}: {unit.error}")
            elif not session.skip(self.key(unit), unit.fingerprint):
                todo.append(unit)
        midi = [u for u in todo if u.midi is not None]
        if midi:
            with session.bar(len(midi), self.midi_bar) as bar:
                for unit in midi:
                    self.commit(unit, import_midi_unit(unit))
                    bar.update()
        self.parse_scores([u for u in todo if u.midi is None])

    def parse_scores(self, units: list[WorkUnit]) -> None:
        """Parse score files in a process pool (largest first), commit in plan order."""
        if not units:
            return
        done: dict[int, tuple] = {}
        next_commit = 0
        jobs = self.session.jobs
        with self.session.bar(sum(map(self.work, units)), self.score_bar, unit=self.work_unit) as bar:
            order = sorted(range(len(units)), key=lambda i: -Path(units[i].job.path).stat().st_size)
            if jobs > 1 and len(units) > 1:
                pool = ProcessPoolExecutor(max_workers=min(jobs, len(units)))
                futures = {pool.submit(self.parse_job, units[i].job): i for i in order}
                results = ((futures[f], f.result()) for f in as_completed(futures))
            else:
                pool = None
                results = ((i, self.parse_job(units[i].job)) for i in order)
            try:
                for i, result in results:
                    done[i] = result
                    bar.update(self.work(units[i]))
                    while next_commit in done:
                        self.commit(units[next_commit], done.pop(next_commit))
                        next_commit += 1
            finally:
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)

    # What parses one score unit (in a worker process: a module-level function), and how much
    # of the progress bar a unit is worth, counted in ``work_unit``s.
    parse_job = staticmethod(import_score_job)
    work_unit = "file"

    def work(self, unit: WorkUnit) -> int:
        return 1

    def licence_of(self, unit: WorkUnit) -> str:
        """The licence the manifest records for the unit's pieces."""
        return self.licence

    def commit(self, unit: WorkUnit, result: tuple[list[Piece], str | None]) -> None:
        """Store what one file gave (``(pieces, reason it was skipped)``) and record the unit."""
        session, key = self.session, self.key(unit)
        pieces, error = result
        session.replace(key)
        record = Unit(unit.fingerprint, self.name, unit.label)
        if error:
            session.file_error(record, unit.rel, error)
        for n, piece in enumerate(pieces, 1):
            session.store.add_piece(
                record,
                unit.piece_id if len(pieces) == 1 else f"{unit.piece_id}-{n}",
                piece,
                source=unit.job.meta["source"],
                source_type=self.name,
                path=unit.rel,
                licence=self.licence_of(unit),
            )
        session.commit(key, record)


def import_midi_unit(unit: WorkUnit) -> tuple[list[Piece], str | None]:
    """``([piece], None)`` or ``([], reason)``; never raises."""
    meta = dict(unit.job.meta)
    try:
        return [midi_piece(unit.midi, meta.pop("source"), title=unit.job.fallback_title, **meta)], None
    except Exception as e:  # a MIDI library failure must not stop the build
        return [], skip_reason(e)

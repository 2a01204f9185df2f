"""Score files (MusicXML, MXL, Humdrum, ABC) -> pieces, in worker processes.

music21 parsing is slow (a Beethoven quartet takes about a minute), so the builder runs
``import_score_job`` in a process pool. Jobs never raise: they return the pieces or the
reason the file was skipped.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from composer.errors import CorruptMidiError, EmptyMidiError, MidiImportError
from composer.music.grid import Piece

SCORE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".krn", ".abc")
MIDI_SUFFIXES = (".mid", ".midi")
# When one work exists in several formats (bach/bwv277.krn and .mxl) keep the first.
FORMAT_PREFERENCE = (".mxl", ".musicxml", ".xml", ".krn", ".abc")


@dataclass
class ScoreJob:
    path: str  # file to parse
    meta: dict  # game / composer / source, passed to the Piece
    fallback_title: str  # used when the file names no title


def _title(score, fallback: str) -> str:
    md = score.metadata
    if md is not None:
        for value in (md.title, md.movementName):
            if value and not str(value).lower().endswith(SCORE_SUFFIXES):
                return str(value).strip()
    return fallback


def _scores(parsed) -> list:
    """An Opus whose scores all share one title is one piece with a voice per tune (how
    the Josquin ABC files are written): merge it. Otherwise each tune is its own piece."""
    import music21

    if not isinstance(parsed, music21.stream.Opus):
        return [parsed]
    scores = list(parsed.scores)
    titles = {(s.metadata.title if s.metadata else None) for s in scores}
    if len(scores) > 1 and len(titles) == 1 and None not in titles:
        try:
            return [parsed.mergeScores()]
        except Exception:  # odd opus: fall back to one piece per tune
            return scores
    return scores


def import_score(job: ScoreJob) -> list[Piece]:
    """Parse one score file into pieces; raises ``MidiImportError`` for unusable files."""
    import music21

    from composer.music.music21_io import from_stream

    path = Path(job.path)
    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:
        raise CorruptMidiError(f"{path.name} could not be parsed ({type(e).__name__}: {e}).") from None
    scores = _scores(parsed)
    pieces = []
    for i, score in enumerate(scores):
        title = _title(score, job.fallback_title if len(scores) == 1 else f"{job.fallback_title} {i + 1}")
        try:
            pieces.append(from_stream(score, title=title, **job.meta))
        except EmptyMidiError:
            continue
    if not pieces:
        raise EmptyMidiError(f"{path.name} contains no notes.")
    return pieces


def skip_reason(error: Exception) -> str:
    """Why a file is skipped: our import errors say it themselves, others with their type."""
    return str(error) if isinstance(error, MidiImportError) else f"{type(error).__name__}: {error}"


def import_score_job(job: ScoreJob) -> tuple[list[Piece], str | None]:
    """Pool entry point: ``(pieces, None)`` or ``([], reason)``; never raises."""
    try:
        return import_score(job), None
    except Exception as e:  # music21 has many ways to fail on odd files
        return [], skip_reason(e)


def read_maybe_gzip(path: Path) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data

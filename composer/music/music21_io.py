"""music21 streams (the music21 corpus, MusicXML, Humdrum, ABC files) -> grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from composer.errors import CorruptMidiError, EmptyMidiError, MidiImportError
from composer.music.grid import Piece, estimate_key, frames_per_bar
from composer.music.reduction import Part, reduce_parts

DEFAULT_TEMPO = 96.0  # chorales and quartets carry no tempo; a moderate default


def _part_notes(part) -> Part:
    starts, ends, pitches = [], [], []
    flat = part.stripTies().flatten()
    for element in flat.notes:
        length = float(element.duration.quarterLength)
        if length <= 0:  # grace notes take no time on the grid
            continue
        offset = float(element.offset)
        for pitch in getattr(element, "pitches", ()):
            starts.append(offset)
            ends.append(offset + length)
            pitches.append(int(pitch.midi))
    name = part.partName or part.id or ""
    return Part(name=str(name), is_drum=False, starts=np.array(starts), ends=np.array(ends), pitches=np.array(pitches))


def _time_signature(score) -> tuple[int, int]:
    for ts in score.recurse().getElementsByClass("TimeSignature"):
        try:
            frames_per_bar((ts.numerator, ts.denominator))
            return ts.numerator, ts.denominator
        except Exception:
            break
    return 4, 4


def _pickup_frames(score, bar_frames: int) -> int:
    """Frames of silence to add so that a pickup (anacrusis) ends on the first bar line."""
    parts = score.parts if score.parts else [score]
    measures = parts[0].getElementsByClass("Measure")
    if not measures:
        return 0
    first = measures[0]
    filled = float(first.duration.quarterLength) * 4
    if first.number == 0 and 0 < filled < bar_frames:
        return int(round(bar_frames - filled))
    return 0


def _tempo(score) -> float:
    for mark in score.recurse().getElementsByClass("MetronomeMark"):
        qpm = mark.getQuarterBPM()
        if qpm and 20 <= qpm <= 400:
            return float(qpm)
    return DEFAULT_TEMPO


def from_stream(score, **meta) -> Piece:
    """A music21 Score (or single part) -> ``Piece``; every part is pitched (no drums)."""
    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    time_signature = _time_signature(score)
    bar_frames = frames_per_bar(time_signature)
    grid = reduce_parts([_part_notes(p) for p in parts], bar_frames, _pickup_frames(score, bar_frames))
    title = meta.pop("title", None) or (score.metadata.title if score.metadata else "") or ""
    piece = Piece(grid=grid, time_signature=time_signature, tempo=_tempo(score), title=title, **meta)
    piece.key = estimate_key(piece)
    return piece


def import_score_file(path: str | Path, **meta) -> list[Piece]:
    """Parse a MusicXML/MXL/Humdrum/ABC file (an ABC book may hold many tunes)."""
    import music21

    path = Path(path)
    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:
        raise CorruptMidiError(f"{path.name} could not be parsed ({type(e).__name__}: {e}).") from None
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    pieces = []
    for i, score in enumerate(scores):
        try:
            pieces.append(from_stream(score, source=str(path.name), **meta))
        except EmptyMidiError:
            continue
    if not pieces:
        raise MidiImportError(f"{path.name} contains no notes.")
    return pieces

"""MIDI <-> grid, through symusic (a fast C++ MIDI library with Python bindings).

Import is bounded: the file size, the note count and the length are capped before any
large allocation, so a hostile or enormous upload costs milliseconds, not memory.
"""

from __future__ import annotations

from pathlib import Path

import symusic

from composer import tokens as T
from composer.errors import CorruptMidiError, EmptyMidiError, MidiTooLargeError
from composer.grid import Piece, estimate_key, frames_per_bar
from composer.reduction import Part, reduce_parts

MAX_MIDI_BYTES = 4 * 1024 * 1024
MAX_NOTES = 100_000
TICKS_PER_QUARTER = 480

# General MIDI programs (0-based) per voice when no sound preset says otherwise.
DEFAULT_PROGRAMS = {"lead": 80, "counter": 81, "harmony": 80, "bass": 38, "drums": 0}
VELOCITIES = {"lead": 100, "counter": 84, "harmony": 72, "bass": 96, "drums": 90}


def _read_bytes(source: bytes | str | Path, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), "upload"
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as e:
            raise CorruptMidiError(f"Cannot read {path.name}: {e.strerror}.") from None
        if size > max_bytes:
            raise MidiTooLargeError(
                f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB."
            )
        data, name = path.read_bytes(), path.name
    if len(data) > max_bytes:
        raise MidiTooLargeError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB.")
    if len(data) == 0:
        raise EmptyMidiError("The file is empty.")
    if not data.startswith(b"MThd"):
        raise CorruptMidiError(f"{name} is not a MIDI file (it does not start with the MIDI header).")
    return data, name


def import_midi(
    midi: bytes | str | Path,
    *,
    max_bytes: int = MAX_MIDI_BYTES,
    max_notes: int = MAX_NOTES,
    crop_bars: int | None = None,
    **meta,
) -> Piece:
    """Read a MIDI file (path or bytes) into a ``Piece``, reducing its parts to the five roles.

    ``crop_bars`` keeps only the first bars (what /remix wants); extra keyword arguments
    become piece metadata (title, game, composer...).
    """
    data, name = _read_bytes(midi, max_bytes)
    try:
        score = symusic.Score.from_midi(data)
    except Exception as e:  # symusic raises RuntimeError with a terse message
        raise CorruptMidiError(f"{name} could not be read as MIDI ({e}).") from None
    n_notes = sum(t.note_num() for t in score.tracks)
    if n_notes > max_notes:
        raise MidiTooLargeError(f"{name} has {n_notes} notes; the limit is {max_notes}.")
    if n_notes == 0:
        raise EmptyMidiError(f"{name} contains no notes.")

    score = score.to("quarter")
    time_signature = (4, 4)
    if len(score.time_signatures):
        ts = score.time_signatures[0]
        try:
            frames_per_bar((ts.numerator, ts.denominator))
            time_signature = (ts.numerator, ts.denominator)
        except Exception:
            pass  # exotic signature: fall back to 4/4
    tempo = float(score.tempos[0].qpm) if len(score.tempos) else 120.0
    if not 20 <= tempo <= 400:
        tempo = 120.0

    parts = []
    for track in score.tracks:
        arrays = track.notes.numpy()
        if len(arrays["pitch"]) == 0:
            continue
        parts.append(
            Part(
                name=track.name or "",
                is_drum=bool(track.is_drum),
                starts=arrays["time"],
                ends=arrays["time"] + arrays["duration"],
                pitches=arrays["pitch"],
            )
        )
    fpb = frames_per_bar(time_signature)
    crop = crop_bars * fpb if crop_bars else None
    grid = reduce_parts(parts, fpb, crop_frames=crop)
    meta.setdefault("title", Path(name).stem if name != "upload" else "")
    meta.setdefault("source", name)
    piece = Piece(grid=grid, time_signature=time_signature, tempo=round(tempo, 2), **meta)
    if piece.key is None:
        piece.key = estimate_key(piece)
    return piece


def to_score(piece: Piece, programs: dict[str, int] | None = None) -> symusic.Score:
    """One named track per voice (empty voices are left out), GM programs per voice."""
    programs = {**DEFAULT_PROGRAMS, **(programs or {})}
    tick = TICKS_PER_QUARTER // T.FRAMES_PER_QUARTER
    score = symusic.Score(TICKS_PER_QUARTER)
    score.tempos.append(symusic.Tempo(0, qpm=float(piece.tempo)))
    score.time_signatures.append(symusic.TimeSignature(0, *piece.time_signature))
    by_voice: dict[int, list] = {v: [] for v in range(T.N_VOICES)}
    for note in piece.notes():
        by_voice[note.voice].append(note)
    for v, name in enumerate(T.VOICES):
        if not by_voice[v]:
            continue
        is_drum = v == T.DRUM_VOICE
        track = symusic.Track(name=name, program=0 if is_drum else programs[name], is_drum=is_drum)
        velocity = VELOCITIES[name]
        for note in by_voice[v]:
            pitch = T.DRUM_EXPORT_KEY[T.drum_name(note.pitch)] if is_drum else note.pitch
            accent = 10 if note.start % piece.frames_per_bar == 0 else 0
            track.notes.append(
                symusic.Note(note.start * tick, (note.end - note.start) * tick, pitch, min(127, velocity + accent))
            )
        score.tracks.append(track)
    return score


def to_midi(piece: Piece, programs: dict[str, int] | None = None) -> bytes:
    """A clean type-1 multi-track MIDI file of the piece."""
    return bytes(to_score(piece, programs).dumps_midi())


def write_midi(piece: Piece, path: str | Path, programs: dict[str, int] | None = None) -> Path:
    path = Path(path)
    path.write_bytes(to_midi(piece, programs))
    return path

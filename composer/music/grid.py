"""The multi-voice grid: Mozart's representation of a piece of music.

A ``Piece`` is a ``(frames, 5)`` array of tokens (see ``composer.music.tokens``) on a 16th-note
grid, plus the metadata that lives beside the grid: time signature, tempo, key, the
style labels (game and/or composer) and, for generated pieces, the form sections.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from composer.music import tokens as T
from composer.errors import MozartError, TranspositionError

SUPPORTED_DENOMINATORS = (2, 4, 8, 16)
DEFAULT_TIME_SIGNATURE = "4/4"  # where neither a request, a style nor a file says otherwise
_MAGIC = b"MZG1"


def frames_per_bar(time_signature: tuple[int, int]) -> int:
    """16th-note frames in one bar: 4/4 -> 16, 3/4 -> 12, 6/8 -> 12."""
    num, den = time_signature
    if num < 1 or den not in SUPPORTED_DENOMINATORS:
        raise MozartError(f"Unsupported time signature {num}/{den}: use n/2, n/4, n/8 or n/16.")
    frames = Fraction(num * 16, den)
    if frames.denominator != 1:
        raise MozartError(f"Time signature {num}/{den} does not fill whole 16th notes.")
    return int(frames)


def parse_time_signature(text: str) -> tuple[int, int]:
    """'3/4' -> (3, 4), with a clear error for anything else."""
    try:
        num, den = (int(part) for part in text.strip().split("/"))
    except ValueError:
        raise MozartError(f"Time signature {text!r} is not of the form 3/4 or 4/4.") from None
    frames_per_bar((num, den))
    return num, den


@dataclass
class Note:
    """A note of one voice, in frames: ``start`` inclusive, ``end`` exclusive."""

    voice: int
    start: int
    end: int
    pitch: int  # MIDI pitch; for drums, the drum token


def drop_leading_holds(grid: np.ndarray) -> None:
    """In place: HOLDs at the start of a grid cut mid-note continue a note it cannot see; they become rests."""
    for v in range(T.DRUM_VOICE):
        column = grid[:, v]
        nonhold = np.flatnonzero(column != T.HOLD)
        column[: nonhold[0] if len(nonhold) else len(column)] = T.REST


def clean_holds(grid: np.ndarray) -> np.ndarray:
    """A copy where every HOLD continues a note: orphan holds (after a rest or at the start) become rests."""
    grid = grid.copy()
    for v in range(T.DRUM_VOICE):
        column = grid[:, v]
        sounding = False
        for f in range(len(column)):
            token = column[f]
            if token == T.HOLD and not sounding:
                column[f] = T.REST
            sounding = token >= T.PITCH_OFFSET or (token == T.HOLD and sounding)
    return grid


@dataclass
class Piece:
    grid: np.ndarray  # (frames, 5) uint8 tokens
    time_signature: tuple[int, int] = (4, 4)
    tempo: float = 120.0  # quarter notes per minute
    key: str | None = None  # e.g. "D minor"
    title: str = ""
    game: str | None = None
    composer: str | None = None
    sections: list[str] | None = None  # one form label per bar ("A", "B"...) for generated pieces
    source: str = ""  # where it came from: a file, a corpus id, "generated"
    extra: dict = field(default_factory=dict)  # free JSON-native metadata (seed, params...)

    def __post_init__(self) -> None:
        self.grid = np.ascontiguousarray(self.grid, dtype=np.uint8)
        self.time_signature = (int(self.time_signature[0]), int(self.time_signature[1]))
        if self.grid.ndim != 2 or self.grid.shape[1] != T.N_VOICES:
            raise ValueError(f"grid must have shape (frames, {T.N_VOICES}), got {self.grid.shape}")

    # -- shape -------------------------------------------------------------------------
    @property
    def frames_per_bar(self) -> int:
        return frames_per_bar(self.time_signature)

    @property
    def n_frames(self) -> int:
        return int(self.grid.shape[0])

    @property
    def n_bars(self) -> int:
        return -(-self.n_frames // self.frames_per_bar)

    @property
    def seconds(self) -> float:
        return self.n_frames / T.FRAMES_PER_QUARTER * 60.0 / self.tempo

    @property
    def labels(self) -> list[str]:
        return [label for label in (self.game, self.composer) if label]

    @classmethod
    def empty(cls, bars: int, time_signature: tuple[int, int] = (4, 4), **meta) -> Piece:
        grid = np.zeros((bars * frames_per_bar(time_signature), T.N_VOICES), np.uint8)
        return cls(grid=grid, time_signature=time_signature, **meta)

    def copy(self, **changes) -> Piece:
        changes.setdefault("grid", self.grid.copy())
        changes.setdefault("extra", dict(self.extra))
        if self.sections is not None:
            changes.setdefault("sections", list(self.sections))
        return replace(self, **changes)

    def pad_to_bars(self) -> Piece:
        """Pad with rests to a whole number of bars."""
        missing = self.n_bars * self.frames_per_bar - self.n_frames
        if missing == 0:
            return self
        pad = np.zeros((missing, T.N_VOICES), np.uint8)
        return self.copy(grid=np.concatenate([self.grid, pad]))

    def bars(self, start: int, stop: int) -> Piece:
        """Bars ``start..stop-1`` as a new piece."""
        fpb = self.frames_per_bar
        grid = self.grid[start * fpb : stop * fpb].copy()
        drop_leading_holds(grid)  # a slice must not begin with a HOLD whose note started before it
        sections = self.sections[start:stop] if self.sections else None
        return self.copy(grid=grid, sections=sections)

    # -- notes -------------------------------------------------------------------------
    def notes(self, voice: int | None = None) -> list[Note]:
        """Notes in frame units (drum "notes" last one frame and carry the drum token)."""
        voices = range(T.N_VOICES) if voice is None else [voice]
        out: list[Note] = []
        for v in voices:
            column = self.grid[:, v]
            if v == T.DRUM_VOICE:
                for f in np.flatnonzero(column):
                    out.append(Note(v, int(f), int(f) + 1, int(column[f])))
                continue
            onsets = np.flatnonzero(T.is_onset(column))
            for f in onsets:
                end = f + 1
                while end < len(column) and column[end] == T.HOLD:
                    end += 1
                out.append(Note(v, int(f), int(end), int(T.pitch_of(column[f]))))
        return out

    def pitch_range(self) -> tuple[int, int] | None:
        """Lowest and highest pitch of all pitched voices, or None if there are none."""
        pitched = self.grid[:, :T.DRUM_VOICE]
        ons = pitched[T.is_onset(pitched)]
        if ons.size == 0:
            return None
        return int(T.pitch_of(ons.min())), int(T.pitch_of(ons.max()))

    def note_count(self) -> int:
        pitched = self.grid[:, :T.DRUM_VOICE]
        return int(T.is_onset(pitched).sum() + (self.grid[:, T.DRUM_VOICE] != 0).sum())

    # -- transposition -----------------------------------------------------------------
    def transposition_range(self, low: int = T.PITCH_MIN, high: int = T.PITCH_MAX) -> tuple[int, int]:
        """Smallest and largest shift (semitones) that keep every pitch in ``low..high``."""
        rng = self.pitch_range()
        if rng is None:
            return -127, 127
        return low - rng[0], high - rng[1]

    def transpose(self, semitones: int, low: int = T.PITCH_MIN, high: int = T.PITCH_MAX) -> Piece:
        """The piece moved by ``semitones``; raises ``TranspositionError`` if it would leave the range."""
        if semitones == 0:
            return self.copy()
        lo, hi = self.transposition_range(low, high)
        if not lo <= semitones <= hi:
            rng = self.pitch_range()
            raise TranspositionError(
                f"Cannot transpose by {semitones:+d} semitones: pitches {rng[0]}..{rng[1]} would leave "
                f"the range {low}..{high}. Allowed shifts: {lo:+d}..{hi:+d}."
            )
        grid = self.grid.copy()
        pitched = grid[:, :T.DRUM_VOICE]
        mask = T.is_onset(pitched)
        pitched[mask] = (pitched[mask].astype(np.int16) + semitones).astype(np.uint8)
        return self.copy(grid=grid, key=transpose_key_name(self.key, semitones))

    # -- serialisation -----------------------------------------------------------------
    def meta(self) -> dict:
        return {
            "time_signature": list(self.time_signature),
            "tempo": self.tempo,
            "key": self.key,
            "title": self.title,
            "game": self.game,
            "composer": self.composer,
            "sections": self.sections,
            "source": self.source,
            "extra": self.extra,
        }

    def to_bytes(self) -> bytes:
        """Compact, pickle-free serialisation: magic, JSON header, raw uint8 grid."""
        header = json.dumps({**self.meta(), "frames": self.n_frames}, separators=(",", ":")).encode()
        return _MAGIC + struct.pack("<I", len(header)) + header + self.grid.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Piece:
        if data[:4] != _MAGIC:
            raise ValueError("not a serialised Mozart grid")
        (n,) = struct.unpack("<I", data[4:8])
        meta = json.loads(data[8 : 8 + n])
        frames = meta.pop("frames")
        grid = np.frombuffer(data[8 + n :], dtype=np.uint8).reshape(frames, T.N_VOICES).copy()
        meta["time_signature"] = tuple(meta["time_signature"])
        return cls(grid=grid, **meta)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Piece):
            return NotImplemented
        return np.array_equal(self.grid, other.grid) and self.meta() == other.meta()


_PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_PC_ALIASES = {"Db": 1, "D#": 3, "Gb": 6, "G#": 8, "A#": 10, "Cb": 11, "B#": 0, "E#": 5, "Fb": 4}


def parse_key(text: str) -> tuple[int, str]:
    """'D minor' / 'f#' / 'Bb major' -> (pitch class, mode). Lower-case tonic alone = minor."""
    parts = text.strip().replace("-", " ").split()
    if not parts or len(parts) > 2:
        raise MozartError(f"Key {text!r} is not like 'C major' or 'A minor'.")
    tonic = parts[0]
    mode = parts[1].lower() if len(parts) == 2 else ("minor" if tonic[0].islower() else "major")
    tonic = tonic[0].upper() + tonic[1:].replace("-", "b")
    if mode not in ("major", "minor"):
        raise MozartError(f"Key mode {mode!r} must be major or minor.")
    if tonic in _PITCH_CLASSES:
        return _PITCH_CLASSES.index(tonic), mode
    if tonic in _PC_ALIASES:
        return _PC_ALIASES[tonic], mode
    raise MozartError(f"Key {text!r} has an unknown tonic {tonic!r}; use e.g. C, F#, Bb.")


def key_name(pitch_class: int, mode: str) -> str:
    return f"{_PITCH_CLASSES[pitch_class % 12]} {mode}"


def transpose_key_name(key: str | None, semitones: int) -> str | None:
    if not key:
        return key
    try:
        pc, mode = parse_key(key)
    except MozartError:
        return key
    return key_name(pc + semitones, mode)


# Krumhansl-Kessler key profiles (Krumhansl 1990, "Cognitive Foundations of Musical Pitch").
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_histogram(piece: Piece) -> np.ndarray:
    """Duration-weighted pitch-class histogram of the pitched voices."""
    hist = np.zeros(12)
    for note in piece.notes():
        if note.voice != T.DRUM_VOICE:
            hist[note.pitch % 12] += note.end - note.start
    return hist


def key_from_histogram(hist: np.ndarray) -> tuple[int, str] | None:
    """Krumhansl-Schmuckler key finding: correlate a pitch-class histogram with all 24
    rotated profiles; (tonic pitch class, "major"/"minor"), or None for an empty histogram."""
    hist = np.asarray(hist, dtype=np.float64)
    if hist.sum() == 0 or np.all(hist == hist[0]):
        return None
    best, best_r = None, -2.0
    for mode, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
        for tonic in range(12):
            r = np.corrcoef(hist, np.roll(profile, tonic))[0, 1]
            if r > best_r:
                best, best_r = (tonic, mode), r
    return best


def estimate_key(piece: Piece) -> str | None:
    """The piece's key name from its duration-weighted pitch-class histogram."""
    found = key_from_histogram(pitch_class_histogram(piece))
    return key_name(*found) if found else None


def section_runs(sections: list[str]) -> list[tuple[int, int, str]]:
    """(first bar, bar after the last, label) of each run of equal labels."""
    runs = []
    start = 0
    for i in range(1, len(sections) + 1):
        if i == len(sections) or sections[i] != sections[start]:
            runs.append((start, i, sections[start]))
            start = i
    return runs


def form_sections(sections: list[str]) -> list[tuple[int, int, str]]:
    """(first bar, bar after the last, label) of each section of a form, one per letter.

    A form's repeats of a letter are all as long as each other (``section_lengths``), so a run
    of one letter that is a whole number of that letter's shortest run is that many sections:
    AABA's opening sixteen bars of A are two A's of eight bars, as in its other A."""
    runs = section_runs(sections)
    shortest: dict[str, int] = {}
    for start, stop, label in runs:
        shortest[label] = min(shortest.get(label, stop - start), stop - start)
    split = []
    for start, stop, label in runs:
        length = shortest[label]
        if (stop - start) % length:
            split.append((start, stop, label))
        else:
            split += [(s, s + length, label) for s in range(start, stop, length)]
    return split

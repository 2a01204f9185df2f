"""Role reduction: many instrument parts -> the grid's five monophonic voices.

Any source (a 12-track game MIDI, a string quartet, a piano piece) is a list of parts
holding notes in quarter-note time. The reduction, following DESIGN.md:

* percussion parts -> ``drums`` (GM key -> drum class; one class per frame, by priority);
* the pitched parts ranked by median pitch: highest -> ``lead``, lowest -> ``bass``,
  second highest -> ``counter``, the rest -> ``harmony``;
* each voice keeps one note at a time (the highest at a shared onset; the lowest for the
  bass; a new onset cuts the sounding note). Notes a voice had to drop (chord tones) are
  offered to ``counter``/``harmony`` where those are silent, so chords are not all lost.

Parts named exactly after the voices (what ``midi_io.to_midi`` writes) map straight back,
which makes grid -> MIDI -> grid lossless.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from composer.music import tokens as T
from composer.errors import CorruptMidiError, DrumsOnlyError, EmptyMidiError, MidiTooLargeError

MAX_FRAMES = 16_384  # 1024 bars of 4/4: ~34 minutes at 120 bpm
# Note times are cast to int64 frames, which overflows past 2**61 quarters; anything past
# MAX_FRAMES is refused or cropped anyway, so the bound only has to sit between the two.
MAX_QUARTERS = 2.0**40


@dataclass
class Part:
    """One source part: notes as parallel arrays in quarter notes."""

    name: str
    is_drum: bool
    starts: np.ndarray  # quarter notes
    ends: np.ndarray
    pitches: np.ndarray

    def __len__(self) -> int:
        return len(self.pitches)


def quantise(quarters: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(quarters, dtype=np.float64) * T.FRAMES_PER_QUARTER).astype(np.int64)


def _frames(part: Part, offset_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    starts = quantise(part.starts) + offset_frames
    ends = np.maximum(quantise(part.ends) + offset_frames, starts + 1)
    pitches = np.asarray(part.pitches, dtype=np.int64)
    return starts, ends, pitches


def _fit_pitch(pitch: int) -> int:
    """Fold an out-of-range pitch into the grid range by octaves."""
    while pitch < T.PITCH_MIN:
        pitch += 12
    while pitch > T.PITCH_MAX:
        pitch -= 12
    return pitch


def write_line(column: np.ndarray, notes: list[tuple[int, int, int]], prefer_low: bool = False) -> list:
    """Write notes (start, end, pitch) into a monophonic column; return the notes dropped.

    At a shared onset the highest note wins (the lowest if ``prefer_low``); a later onset
    cuts the note still sounding. Frames beyond the column are ignored.
    """
    n = len(column)
    order = sorted(notes, key=lambda x: (x[0], x[2] if prefer_low else -x[2]))
    dropped = []
    last_start, last_end = -1, -1
    for start, end, pitch in order:
        if start >= n:
            continue
        if start == last_start:
            dropped.append((start, end, pitch))
            continue
        end = min(end, n)
        if last_end > end:  # the cut note must not continue after this one
            tail = column[end:last_end]
            tail[tail == T.HOLD] = T.REST
        column[start] = T.onset(_fit_pitch(pitch))
        column[start + 1 : end] = T.HOLD
        last_start, last_end = start, end
    return dropped


def fill_free(column: np.ndarray, notes: list[tuple[int, int, int]]) -> list:
    """Place notes only where the column rests for their whole length; return the rest."""
    left = []
    n = len(column)
    for start, end, pitch in sorted(notes, key=lambda x: (x[0], -x[2])):
        end = min(end, n)
        if start < n and np.all(column[start:end] == T.REST):
            column[start] = T.onset(_fit_pitch(pitch))
            column[start + 1 : end] = T.HOLD
        else:
            left.append((start, end, pitch))
    return left


def _drum_column(parts: list[Part], n_frames: int, offset: int) -> np.ndarray:
    column = np.zeros(n_frames, np.uint8)
    rank = np.full(n_frames, len(T.DRUM_PRIORITY), np.int64)
    for part in parts:
        starts, _, keys = _frames(part, offset)
        for f, key in zip(starts, keys):
            if not 0 <= f < n_frames:
                continue
            name = T.drum_class_of_gm_key(int(key))
            r = T.DRUM_PRIORITY.index(name)
            if r < rank[f]:
                rank[f] = r
                column[f] = T.drum_token(name)
    return column


def roles_by_pitch(pitched: list[Part]) -> dict[int, list[Part]]:
    """Voice -> parts, by median pitch: highest lead, lowest bass, second counter, the rest harmony."""
    ranked = sorted(pitched, key=lambda p: float(np.median(p.pitches)), reverse=True)
    lead, counter, harmony, bass = (T.VOICE_INDEX[v] for v in T.PITCHED_VOICES)
    roles = {lead: [ranked[0]], bass: [ranked[-1]]}
    if len(ranked) >= 3:
        roles[counter] = [ranked[1]]
    if len(ranked) >= 4:
        roles[harmony] = ranked[2:-1]
    return roles


def reduce_parts(
    parts: list[Part],
    frames_per_bar: int,
    offset_frames: int = 0,
    max_frames: int = MAX_FRAMES,
    crop_frames: int | None = None,
    roles: Callable[[list[Part]], dict[int, list[Part]]] | None = None,
) -> np.ndarray:
    """Build the (frames, 5) grid from parts. ``offset_frames`` shifts everything right
    (used to align a pickup bar); ``crop_frames`` keeps only the beginning; ``roles`` gives
    the pitched parts (two or more) their voices (default ``roles_by_pitch``)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        raise EmptyMidiError("The file contains no notes.")
    for p in parts:
        times = np.concatenate([np.asarray(p.starts, np.float64), np.asarray(p.ends, np.float64)])
        # NaN fails both comparisons; an infinite time used to end in an IndexError.
        if not np.all((times >= 0) & (times < MAX_QUARTERS)):
            raise CorruptMidiError("The file could not be read as MIDI (it has notes at impossible times).")
    pitched = [p for p in parts if not p.is_drum]
    drums = [p for p in parts if p.is_drum]
    if not pitched:
        raise DrumsOnlyError("The file contains only drums; Mozart needs at least one melodic part.")

    last = max(int(quantise(p.ends).max()) for p in parts) + offset_frames
    n_frames = max(last, 1)
    if crop_frames is not None:
        n_frames = min(n_frames, crop_frames)
    if n_frames > max_frames:
        raise MidiTooLargeError(
            f"The piece is {n_frames // frames_per_bar} bars long; the limit is "
            f"{max_frames // frames_per_bar} bars. Trim it and try again."
        )
    n_frames = -(-n_frames // frames_per_bar) * frames_per_bar
    grid = np.zeros((n_frames, T.N_VOICES), np.uint8)
    grid[:, T.DRUM_VOICE] = _drum_column(drums, n_frames, offset_frames)

    def notes_of(ps: list[Part]) -> list[tuple[int, int, int]]:
        out = []
        for p in ps:
            s, e, pi = _frames(p, offset_frames)
            out.extend(zip(s.tolist(), e.tolist(), pi.tolist()))
        return out

    by_name = {p.name.strip().lower(): p for p in pitched}
    if len(by_name) == len(pitched) and set(by_name) <= set(T.PITCHED_VOICES):
        # Our own export: one part per voice, already monophonic.
        for name, part in by_name.items():
            write_line(grid[:, T.VOICE_INDEX[name]], notes_of([part]), prefer_low=name == "bass")
        return grid

    lead, counter, harmony, bass = (T.VOICE_INDEX[v] for v in T.PITCHED_VOICES)
    if len(pitched) == 1:
        # One (often polyphonic) part, e.g. piano: skyline to lead, bottom line to bass.
        dropped = write_line(grid[:, lead], notes_of(pitched))
        dropped = write_line(grid[:, bass], dropped, prefer_low=True)
        fill_free(grid[:, harmony], fill_free(grid[:, counter], dropped))
        return grid

    roles = (roles or roles_by_pitch)(pitched)
    overflow = []
    for voice, ps in roles.items():
        overflow += write_line(grid[:, voice], notes_of(ps), prefer_low=voice == bass)
    fill_free(grid[:, harmony], fill_free(grid[:, counter], overflow))
    return grid

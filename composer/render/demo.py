"""A dense, deterministic five-voice piece for benchmarks and tests (no model, no files).

It is a plausible game tune: a I-vi-IV-V style progression in D minor, an eighth- and
sixteenth-note lead with held notes at phrase ends, a quarter-note counter-melody, an
arpeggiated harmony, an eighth-note bass and a rock drum pattern using every drum class.
"""

from __future__ import annotations

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece

# chords as scale degrees of D natural minor (i, VI, III, VII, iv, v)
_PROGRESSION = ((0, 2, 4), (5, 0, 2), (2, 4, 6), (6, 1, 3), (3, 5, 0), (4, 6, 1), (0, 2, 4), (4, 6, 1))
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_TONIC = 62  # D4


def _pitch(degree: int, octave: int = 0) -> int:
    octave += degree // 7
    return _TONIC + _MINOR[degree % 7] + 12 * octave


def _put(grid: np.ndarray, voice: int, start: int, length: int, pitch: int) -> None:
    grid[start, voice] = T.onset(pitch)
    grid[start + 1 : start + length, voice] = T.HOLD


def demo_piece(bars: int = 32, tempo: float = 120.0, seed: int = 0) -> Piece:
    """A ``bars``-bar 4/4 piece with all five voices busy (sections A A B A... per 8 bars)."""
    rng = np.random.default_rng(seed)
    piece = Piece.empty(
        bars,
        tempo=tempo,
        key="D minor",
        title="Demo Overture",
        game="zelda",
        composer="bach",
        source="generated",
        extra={"seed": seed},
    )
    grid = piece.grid
    lead, counter, harmony, bass, drums = range(5)
    for bar in range(bars):
        f0 = bar * 16
        chord = _PROGRESSION[bar % len(_PROGRESSION)]
        phrase_end = bar % 4 == 3
        # lead: eighths and sixteenths walking around chord tones, a long note at phrase ends
        f = f0
        degree = chord[0] + 7
        while f < f0 + 16:
            if phrase_end and f >= f0 + 8:
                _put(grid, lead, f, f0 + 16 - f, _pitch(chord[0], 1))
                break
            length = int(rng.choice([2, 2, 1, 1, 4]))
            length = min(length, f0 + 16 - f)
            degree += int(rng.choice([-2, -1, 1, 2, 0]))
            degree = int(np.clip(degree, 5, 14))
            _put(grid, lead, f, length, _pitch(degree))
            f += length
        # counter: quarters on chord tones an octave below the lead
        for beat in range(4):
            _put(grid, counter, f0 + 4 * beat, 4 if beat < 3 else 3, _pitch(chord[(beat + 1) % 3], 0))
        # harmony: eighth-note arpeggio of the chord
        for k in range(8):
            _put(grid, harmony, f0 + 2 * k, 2, _pitch(chord[k % 3], -1 + (k // 3) % 2))
        # bass: eighths, root and fifth
        for k in range(8):
            _put(grid, bass, f0 + 2 * k, 2, _pitch(chord[0] + (4 if k % 4 == 2 else 0), -2))
        # drums: kick 1 and 3, snare 2 and 4, hats on eighths, an open hat, fills every 4 bars
        for k in range(16):
            token = 0
            if k % 2 == 0:
                token = T.drum_token("hat")
            if k in (0, 8, 10):
                token = T.drum_token("kick")
            if k in (4, 12):
                token = T.drum_token("snare")
            if k == 14:
                token = T.drum_token("open_hat")
            if k == 7:
                token = T.drum_token("perc")
            if phrase_end and k >= 12:
                token = T.drum_token("tom" if k % 2 == 0 else "snare")
            if bar % 8 == 0 and k == 0:
                token = T.drum_token("cymbal")
            grid[f0 + k, drums] = token
    piece.sections = [("A", "A", "B", "A")[(bar // 8) % 4] for bar in range(bars)]
    return piece

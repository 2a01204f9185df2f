"""Structure: does a theme come back? Bar-by-bar self-similarity and a theme-return score.

The original experiment's music "could not sustain a theme". Two measures:

* ``self_similarity(piece)`` — a (bars x bars) matrix: the share of sounding cells two bars
  have in common (a picture of the form: an AABA piece shows bright off-diagonal blocks);
* ``theme_return(piece)`` — how much of the first four bars' lead comes back later,
  exactly or transposed, as the best match over later bar-aligned windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece

__all__ = [
    "self_similarity",
    "bar_repetition",
    "theme_return",
    "theme_return_detail",
    "ThemeReturn",
    "THEME_BARS",
    "MAX_SHIFT",
]

THEME_BARS = 4  # the theme: the lead's first four bars
MAX_SHIFT = 12  # transpositions tried: -12..12 semitones


def self_similarity(piece: Piece, voices: tuple[int, ...] | None = None) -> np.ndarray:
    """(bars, bars) matrix S with S[i, j] = what bars i and j share.

    S_ij = #(cells c: x_i[c] = x_j[c] != rest) / #(cells c: x_i[c] != rest or x_j[c] != rest),
    over the bar's frames x ``voices`` (all five by default): a Jaccard index of the two
    bars' sounding cells (a note, a hold or a drum hit must be the same token at the same
    place in the bar). S_ii = 1; two silent bars count as identical (1). Only whole bars
    are compared (Foote, "Visualizing music and audio using self-similarity", ACM MM 1999,
    on symbolic bars instead of audio frames)."""
    fpb = piece.frames_per_bar
    bars = piece.n_frames // fpb
    cols = list(range(T.N_VOICES)) if voices is None else list(voices)
    x = piece.grid[: bars * fpb, cols].reshape(bars, -1)
    sounding = x != T.REST
    same = ((x[:, None, :] == x[None, :, :]) & sounding[:, None, :]).sum(-1)
    union = (sounding[:, None, :] | sounding[None, :, :]).sum(-1)
    return np.where(union > 0, same / np.maximum(union, 1), 1.0)


def bar_repetition(piece: Piece) -> float:
    """Mean over bars of the bar's best similarity with any *other* bar (from
    ``self_similarity``): 1 when every bar recurs exactly, near 0 for material that never
    repeats. NaN for fewer than two bars."""
    s = self_similarity(piece)
    if len(s) < 2:
        return math.nan
    off = s - np.eye(len(s)) * 2  # drop the diagonal from the max
    return float(off.max(1).mean())


@dataclass
class ThemeReturn:
    score: float  # best fraction of matching lead cells, in [0, 1] (NaN if undefined)
    bar: int | None = None  # where the best return starts (bars from the piece's start)
    shift: int | None = None  # its transposition (semitones)
    theme_start: int | None = None  # the bar the theme starts on


def _lead_cells(lead: np.ndarray) -> np.ndarray:
    """Lead tokens -> one int per cell: -1 silent, else 2 * sounding pitch + (1 if it starts
    here): a hold carries the pitch of the note it continues, so two holds only match when
    the same pitch is held."""
    frames = np.arange(len(lead))
    onset = lead >= T.PITCH_OFFSET
    last = np.maximum.accumulate(np.where(onset, frames, -1))
    sounding = (lead != T.REST) & (last >= 0)
    pitch = lead[np.maximum(last, 0)].astype(np.int64)
    return np.where(sounding, 2 * pitch + onset, -1)


def theme_return_detail(piece: Piece, theme_bars: int = THEME_BARS, max_shift: int = MAX_SHIFT) -> ThemeReturn:
    """The best return of the theme, with where and in which transposition (see ``theme_return``)."""
    fpb = piece.frames_per_bar
    lead = piece.grid[:, T.VOICE_INDEX["lead"]]
    bars = len(lead) // fpb
    first_note = np.flatnonzero(lead >= T.PITCH_OFFSET)
    if len(first_note) == 0:
        return ThemeReturn(math.nan)
    start_bar = int(first_note[0]) // fpb
    n = theme_bars * fpb
    if bars - start_bar < 2 * theme_bars:
        return ThemeReturn(math.nan, theme_start=start_bar)
    cells = _lead_cells(lead)
    theme = cells[start_bar * fpb : start_bar * fpb + n]
    later = np.arange(start_bar + theme_bars, bars - theme_bars + 1)  # bar-aligned windows after the theme
    windows = np.stack([cells[b * fpb : b * fpb + n] for b in later])  # (W, n)
    sounding = theme >= 0
    pitches = theme[sounding] // 2
    best = ThemeReturn(-1.0, theme_start=start_bar)
    for shift in range(-max_shift, max_shift + 1):
        if pitches.min() + shift < T.PITCH_OFFSET or pitches.max() + shift >= T.PITCHED_VOCAB:
            continue  # this transposition leaves the grid's range
        moved = np.where(sounding, theme + 2 * shift, -1)
        either = (windows >= 0) | sounding
        scores = ((windows == moved) & either).sum(1) / np.maximum(either.sum(1), 1)
        k = int(np.argmax(scores))
        # ties: prefer the smallest shift (0 first), then the earliest bar
        if scores[k] > best.score + 1e-12 or (abs(scores[k] - best.score) <= 1e-12 and abs(shift) < abs(best.shift)):
            best = ThemeReturn(float(scores[k]), int(later[k]), shift, start_bar)
    return best


def theme_return(piece: Piece, theme_bars: int = THEME_BARS, max_shift: int = MAX_SHIFT) -> float:
    """How much of the first ``theme_bars`` bars' lead returns later, in [0, 1].

    The theme is the lead's first four bars, counted from the bar of its first note (an
    intro without the lead is skipped). For every later bar-aligned window of the same
    length that does not overlap the theme, and every transposition k in -12..12,

        match(w, k) = #(cells where theme + k = window, not both silent) / #(cells not both silent)

    over the lead's cells, a cell being silent or (sounding pitch, note starts here?): a
    hold matches a hold of the same pitch, so long notes do not match by accident. The
    score is the best match: 1 for a piece made of exact (or transposed) repeats, low for
    material that never returns. NaN without a lead, or with fewer than 2 x theme_bars bars
    from the first lead note. A symbolic, transposition-aware reading of the repetition that
    self-similarity matrices show (Foote 1999)."""
    return theme_return_detail(piece, theme_bars, max_shift).score

"""Loop seams: does the end of a piece lead back into its beginning like any bar line does?

Game music loops, so the jump from the last bar to the first is heard as often as any other
bar line. ``boundary_cost`` measures how abruptly the pitched voices move across one bar line;
``seam_score`` compares the seam (last bar -> first bar) with the piece's own bar lines:
1 means the seam is as smooth as a typical bar line, 2 twice as abrupt.
"""

from __future__ import annotations

import math

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece

__all__ = ["boundary_cost", "seam_score", "MAX_LEAP"]

MAX_LEAP = 12  # semitones: a leap of an octave or more counts as an octave


def boundary_cost(before: np.ndarray, after: np.ndarray) -> float:
    """Mean over the pitched voices of the leap (semitones, capped at ``MAX_LEAP``) from the
    last pitch of ``before`` to the first pitch of ``after`` (two bars' grids); a note held
    across the line costs 0, a voice that stops or starts costs ``MAX_LEAP`` / 2. ``nan``
    when no voice sounds on either side."""
    costs = []
    for v in range(T.DRUM_VOICE):
        if after[0, v] == T.HOLD:
            costs.append(0.0)
            continue
        last = before[:, v][T.is_onset(before[:, v])]
        first = after[:, v][T.is_onset(after[:, v])]
        if len(last) and len(first):
            costs.append(float(min(MAX_LEAP, abs(int(T.pitch_of(first[0])) - int(T.pitch_of(last[-1]))))))
        elif len(last) or len(first):
            costs.append(MAX_LEAP / 2)
    return float(np.mean(costs)) if costs else math.nan


def seam_score(piece: Piece) -> float:
    """(1 + the seam's cost) / (1 + the mean cost of the piece's internal bar lines).

    Exactly 1 for a piece that is its own rotation by a bar (every bar line alike);
    ``nan`` for a piece of one bar or without pitched notes."""
    fpb = piece.frames_per_bar
    bars = [piece.grid[b * fpb : (b + 1) * fpb] for b in range(piece.n_bars)]
    if len(bars) < 2:
        return math.nan
    inner = [boundary_cost(a, b) for a, b in zip(bars, bars[1:])]
    inner = [c for c in inner if not math.isnan(c)]
    seam = boundary_cost(bars[-1], bars[0])
    if not inner or math.isnan(seam):
        return math.nan
    return (1.0 + seam) / (1.0 + float(np.mean(inner)))

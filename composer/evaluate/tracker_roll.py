"""How a tracker song was reduced to the grid, for a person to check: a summary and a picture.

The picture puts the module's own notes (one colour per stream, drums as ticks at the
bottom, the tracker's rows as a fine ruler) above the grid that came of them (the voices'
colours of every piano roll), on one time axis in 16th notes, so that a note the reduction
moved, dropped or put in the wrong voice shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.corpus.module_grid import streams_of
from composer.corpus.modules import Module, Song
from composer.music.grid import Piece
from composer.render.pianoroll import VOICE_COLOURS, note_arrays


def describe_song(module: Module, song: Song, piece: Piece | None) -> str:
    """A few lines: the song's clock and what became of each stream."""
    if piece is None:
        return f"{song.seconds:.0f} s, {len(song.notes)} notes: too short or sparse to be music (skipped)"
    r = piece.extra["rows_per_16th"]
    lines = [f"{song.seconds:.0f} s, {song.rows} rows, {r:g} row(s) a 16th -> {piece.n_bars} bars of "
             f"{piece.time_signature[0]}/{piece.time_signature[1]} at {piece.tempo:g} bpm, {piece.key}"]
    for s in streams_of(module, song):
        name = module.instruments[s.instrument] if s.instrument < len(module.instruments) else ""
        what = f"drum ({s.drum})" if s.drum else f"pitched, median {np.median(song.notes.pitch[s.index]) + s.shift:.0f}" + (
            f", octave {s.shift:+d}" if s.shift else "")
        lines.append(f"  channel {s.channel:2d} instrument {s.instrument + 1:3d} {name[:22]!r:24} {len(s.index):5d} notes: {what}")
    return "\n".join(lines)


def plot_reduction(module: Module, song: Song, piece: Piece, path: str | Path, bars: int = 8, title: str = "") -> Path:
    from composer.evaluate.plots import pyplot, save_figure

    plt = pyplot()
    r = piece.extra["rows_per_16th"]
    frames = min(piece.n_frames, bars * piece.frames_per_bar)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True)
    notes = song.notes
    streams = streams_of(module, song)
    palette = plt.get_cmap("tab20")
    low, high = piece.pitch_range() or (40, 80)
    drum_row = low - 6
    for k, s in enumerate(streams):
        start, end = notes.row[s.index] / r, notes.end_row[s.index] / r
        keep = start < frames
        if s.drum:
            top.scatter(start[keep], np.full(keep.sum(), drum_row - k % 4), marker="|", s=40, color="black")
            continue
        pitch = np.rint(notes.pitch[s.index]) + s.shift
        top.hlines(pitch[keep], start[keep], np.minimum(end[keep], frames), colors=[palette(k % 20)], linewidth=3)
    top.set_ylim(drum_row - 5, high + 3)
    top.set_title(f"{title or module.title or 'module'}: the tracker's notes (a colour per stream, drums at the bottom; "
                  f"ticks: rows, {r:g} a 16th)", fontsize=9)
    for row in np.arange(0, frames * r + 1):
        top.axvline(row / r, color="#eeeeee", lw=0.4, zorder=0)
    for v, name in enumerate(T.VOICES[: T.DRUM_VOICE]):
        onsets, ends, pitches = note_arrays(piece, v)
        keep = onsets < frames
        bottom.hlines(pitches[keep], onsets[keep], np.minimum(ends[keep], frames), colors=VOICE_COLOURS[name],
                      linewidth=3, label=name)
    hits = np.flatnonzero(piece.grid[:frames, T.DRUM_VOICE])
    bottom.scatter(hits, np.full(len(hits), drum_row), marker="|", s=40, color=VOICE_COLOURS["drums"], label="drums")
    bottom.set_ylim(drum_row - 5, high + 3)
    bottom.legend(loc="upper right", fontsize=7, ncol=5)
    bottom.set_title("the grid: five voices on 16th notes", fontsize=9)
    bottom.set_xlabel("16th notes")
    for ax in (top, bottom):
        for bar in range(0, bars + 1):
            ax.axvline(bar * piece.frames_per_bar, color="#999999", lw=0.8, zorder=0)
        ax.set_xlim(0, frames)
        ax.set_ylabel("MIDI pitch")
    return save_figure(fig, path)

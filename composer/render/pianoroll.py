"""Piano-roll PNG of a piece: one colour per voice, drums as markers in a lane below.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state, safe in
threads). matplotlib is imported on first use, not when ``composer.render`` is imported.
All notes of the piece are one ``PolyCollection``, so drawing cost barely grows with the
number of notes.
"""

from __future__ import annotations

import io
import threading

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece, form_sections

WIDTH_PX, HEIGHT_PX = 1600, 600  # Discord shows ~550 px wide previews; this stays legible
DPI = 100
VOICE_COLOURS = {  # Okabe-Ito palette (colour-blind safe); exact RGB values appear in the image
    "lead": "#D55E00",
    "counter": "#0072B2",
    "harmony": "#009E73",
    "bass": "#CC79A7",
    "drums": "#3A3A3A",
}
DRUM_MARKERS = {"kick": "o", "snare": "s", "hat": "x", "open_hat": "X", "tom": "D", "cymbal": "*", "perc": "^"}
SECTION_COLOURS = ("#EEF2F8", "#FBF1DC", "#E7F4EC", "#F6E6F0", "#EFEFEF", "#FDF7D9")
_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
DRAW_ORDER = ("harmony", "bass", "counter", "lead")  # the melody ends up on top

_import_lock = threading.Lock()
_draw_lock = threading.Lock()  # matplotlib's font cache is shared and not thread-safe


def _matplotlib():
    """(Figure, FigureCanvasAgg, PolyCollection, LineCollection, Patch), imported once."""
    with _import_lock:
        import matplotlib  # noqa: PLC0415 - lazy: ~0.3 s to import

        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
        from matplotlib.collections import LineCollection, PolyCollection  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
        from matplotlib.patches import Patch  # noqa: PLC0415

    return Figure, FigureCanvasAgg, PolyCollection, LineCollection, Patch


def warm_up() -> None:
    """Import matplotlib now (e.g. at bot start-up) so the first piano roll is fast."""
    _matplotlib()


def describe(piece: Piece) -> str:
    """The title line: title, style, tempo, key, time signature, seed.

    A generated piece's title is "<style> #<seed>"; the seed is named once, as "seed N", so
    that no "#N" contradicts the piece number the bot shows beside the picture."""
    seed = piece.extra.get("seed") if piece.extra else None
    title = piece.title or "Untitled"
    if seed is not None and title.endswith(f" #{seed}"):
        title = title[: -len(f" #{seed}")]
    parts = [title]
    if piece.labels and "-".join(piece.labels) != title:  # "zelda-bach — dink × bach", not "bach — bach"
        parts[0] += f" — {' × '.join(piece.labels)}"
    parts.append(f"{piece.tempo:g} bpm")
    if piece.key:
        parts.append(piece.key)
    parts.append(f"{piece.time_signature[0]}/{piece.time_signature[1]}")
    if seed is not None:
        parts.append(f"seed {seed}")
    return "  ·  ".join(parts)


def note_arrays(piece: Piece, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onset frames, end frames and pitches of a pitched voice, vectorised."""
    column = piece.grid[:, v]
    onsets = np.flatnonzero(T.is_onset(column))
    not_hold = np.append(np.flatnonzero(column != T.HOLD), len(column))
    ends = not_hold[np.searchsorted(not_hold, onsets, side="right")]
    return onsets, ends, T.pitch_of(column[onsets].astype(np.int64))


def pitch_span(piece: Piece) -> tuple[int, int]:
    """(lowest, highest) pitch drawn: the piece's range with two semitones of air each side."""
    low, high = piece.pitch_range() or (60, 72)
    return low - 2, high + 2


def section_palette(sections: list[str]) -> dict[str, str]:
    """Section label -> background colour, in order of first appearance."""
    palette: dict[str, str] = {}
    for label in sections:
        palette.setdefault(label, SECTION_COLOURS[len(palette) % len(SECTION_COLOURS)])
    return palette


def piano_roll(piece: Piece, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """PNG bytes of the piano roll (``width_px`` x ``height_px``); one drawing at a time."""
    with _draw_lock:
        return _piano_roll(piece, width_px, height_px)


def _piano_roll(piece: Piece, width_px: int, height_px: int) -> bytes:
    Figure, FigureCanvasAgg, PolyCollection, LineCollection, Patch = _matplotlib()
    fpb = piece.frames_per_bar
    n_bars = max(1, piece.n_bars)

    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.045, 0.09, 0.945, 0.80))
    ax.set_facecolor("white")

    # -- notes: one PolyCollection of rectangles for all pitched voices ----------------
    verts, colours = [], []
    for name in DRAW_ORDER:
        v = T.VOICE_INDEX[name]
        on, end, pitch = note_arrays(piece, v)
        if len(on) == 0:
            continue
        x0, x1 = on / fpb, end / fpb - 0.12 / fpb  # a hairline gap shows repeated notes
        y0, y1 = pitch - 0.42, pitch + 0.42
        corners = [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]
        verts.append(np.stack([np.stack(corner, 1) for corner in corners], 1))  # (notes, 4, 2)
        colours += [VOICE_COLOURS[name]] * len(on)
    lo, hi = pitch_span(piece)
    if verts:
        ax.add_collection(
            PolyCollection(np.concatenate(verts), facecolors=colours, edgecolors="none", antialiased=False, zorder=3)
        )

    # -- drums: one marker row per class, in a lane under the lowest note ---------------
    drums = piece.grid[:, T.DRUM_VOICE]
    hits = np.flatnonzero(drums)
    row_gap = max(1.2, (hi - lo) / 22)
    lane_top = lo - row_gap
    rows = {name: lane_top - i * row_gap for i, name in enumerate(T.DRUM_CLASSES)} if len(hits) else {}
    bottom = lane_top - len(T.DRUM_CLASSES) * row_gap if len(hits) else lo
    for token in np.unique(drums[hits]).tolist():
        name = T.drum_name(token)
        frames = hits[drums[hits] == token]
        ax.scatter(
            frames / fpb + 0.5 / fpb,
            np.full(len(frames), rows[name]),
            s={"hat": 26, "open_hat": 26, "cymbal": 60}.get(name, 22),
            marker=DRUM_MARKERS[name],
            c=VOICE_COLOURS["drums"],
            linewidths=1.4 if name in ("hat", "open_hat") else 0,
            zorder=3,
        )
    if len(hits):
        ax.axhspan(bottom, lo - row_gap / 2, color="#F7F7F7", zorder=0, lw=0)

    # -- sections, bar lines, bar numbers ------------------------------------------------
    top = hi + (hi - bottom) * 0.07
    if piece.sections:
        sections = list(piece.sections)[:n_bars]
        palette = section_palette(sections)
        for k, (start, stop, label) in enumerate(form_sections(sections)):
            ax.axvspan(start, stop, color=palette[label], zorder=0, lw=0)
            if k:  # where a section starts: a line across the roll, so A A shows two sections
                ax.axvline(start, color="#8C8C8C", lw=1.6, zorder=1.5)
            ax.text(
                (start + stop) / 2, hi + (top - hi) * 0.5, label,
                ha="center", va="center", fontsize=11, fontweight="bold", color="#555555", zorder=4,
            )  # fmt: skip
    bar_x = np.arange(n_bars + 1)
    segments = np.stack(
        [np.stack([bar_x, np.full_like(bar_x, bottom)], 1), np.stack([bar_x, np.full_like(bar_x, top)], 1)], 1
    )  # (bars + 1, 2, 2)
    widths = np.where(bar_x % 4 == 0, 1.0, 0.5)
    ax.add_collection(LineCollection(segments, colors="#B0B0B0", linewidths=widths, zorder=1))
    step = next(s for s in (1, 2, 4, 8, 16, 32, 64) if n_bars / s <= 40)
    ticks = np.arange(0, n_bars, step)
    ax.set_xticks(ticks + 0.5 if step == 1 else ticks, [str(t + 1) for t in ticks], fontsize=9)
    ax.tick_params(axis="x", length=0 if step == 1 else 3)
    ax.set_xlim(0, n_bars)
    ax.set_ylim(bottom, top)

    # -- y axis: octaves (C notes) and drum rows -----------------------------------------
    cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(
        list(rows.values()) + cs,
        [n.replace("_", " ") for n in rows] + [f"C{p // 12 - 1}" for p in cs],
        fontsize=8,
    )
    ax.hlines(cs, 0, n_bars, colors="#E4E4E4", linewidths=0.6, zorder=0.5)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)

    # -- title and legend ----------------------------------------------------------------
    handles = [Patch(facecolor=VOICE_COLOURS[name], label=name) for name in T.VOICES]
    legend = fig.legend(handles=handles, loc="center right", bbox_to_anchor=(0.99, 0.955), ncol=5, fontsize=10,
                        frameon=False)
    _title_beside(fig, legend, describe(piece), left=0.045, y=0.955)
    ax.set_xlabel("bar", fontsize=9, labelpad=2)

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return out.getvalue()


TITLE_SIZES = (14, 13, 12, 11, 10)  # points, largest first: a long title is set smaller...
TITLE_GAP_PX = 24  # ...to keep this much space before the legend, and shortened ("…") below the last size


def _title_beside(fig, legend, text: str, left: float, y: float) -> None:
    """The title at ``left``, in the largest size that ends before the legend; if none does, its
    first part (the piece's name, which a remixed file's name can make long) is shortened."""
    renderer = fig.canvas.get_renderer()
    limit = legend.get_window_extent(renderer).x0 - TITLE_GAP_PX
    title = fig.text(left, y, text, fontsize=TITLE_SIZES[0], fontweight="bold", va="center", ha="left")
    for size in TITLE_SIZES:
        title.set_fontsize(size)
        if title.get_window_extent(renderer).x1 <= limit:
            return
    name, sep, rest = text.partition("  ·  ")
    for keep in range(len(name) - 1, 0, -1):
        title.set_text(name[:keep].rstrip() + "…" + sep + rest)
        if title.get_window_extent(renderer).x1 <= limit:
            return

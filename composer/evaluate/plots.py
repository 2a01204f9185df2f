"""The report's pictures (PNG, 110 dpi): statistics, likelihood, originality, self-similarity.

Matplotlib is imported on first use, with the file-only Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from composer.analysis.metrics import METRIC_LABELS
from composer.analysis.structure import self_similarity
from composer.evaluate.formatting import fmt
from composer.evaluate.targets import COPY_BARS
from composer.music import tokens as T
from composer.music.grid import Piece

__all__ = ["pyplot", "save_figure", "plot_statistics", "plot_likelihood", "plot_originality", "plot_self_similarity",
           "plot_rolls"]


def pyplot():
    """``matplotlib.pyplot``, drawing to files only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> Path:
    """Write a report figure (PNG, 110 dpi) and free it."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def plot_statistics(stats: dict, path: Path) -> Path:
    plt = pyplot()
    names = list(stats["metrics"])
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    colours = {"train": "tab:gray", "test": "tab:blue", "generated": "tab:red"}
    for ax, m in zip(axes.flat, names):
        ax.axis("on")
        raw = {k: np.array([row[m] for row in stats["values"][k]], float) for k in colours}
        weights = {k: np.asarray(stats.get("weights", {}).get(k, np.ones(len(v))), float) for k, v in raw.items()}
        keep = {k: np.isfinite(v) & (weights[k] > 0) for k, v in raw.items()}
        series = {k: v[keep[k]] for k, v in raw.items()}
        allv = np.concatenate([v for v in series.values() if len(v)]) if any(len(v) for v in series.values()) else np.zeros(1)
        lo, hi = float(allv.min()), float(allv.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 21)
        for k, v in series.items():
            if len(v):
                ax.hist(v, bins=bins, weights=weights[k][keep[k]], density=True, histtype="step", color=colours[k],
                        label=k, linewidth=1.4)
        oa = stats["metrics"][m]["overlap_generated_test"]
        ax.set_title(f"{METRIC_LABELS[m]}\nOA gen-test {fmt(oa, 2)}", fontsize=8)
        ax.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_likelihood(lk: dict, path: Path) -> Path:
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, res in lk["models"].items():
        rates = [float(r) for r in res["masked"]]
        vals = [res["masked"][r]["nll"] for r in res["masked"]]
        if any(v is not None and np.isfinite(v) for v in vals):
            a.plot(rates, vals, marker="o", label=f"{name} ({res['arch']})")
    a.set_xlabel("mask rate")
    a.set_ylabel("masked-cell NLL (nats/cell)")
    a.legend(fontsize=7)
    a.set_title("masked-cell NLL, test split", fontsize=9)
    names = list(lk["models"])
    width = 0.8 / len(names)
    x = np.arange(T.N_VOICES)
    for k, name in enumerate(names):
        per = lk["models"][name]["continuation"]["per_voice"]
        b.bar(x + k * width, [per[v] for v in T.VOICES], width, label=name)
    b.set_xticks(x + width * (len(names) - 1) / 2, T.VOICES)
    b.set_ylabel("continuation NLL (nats/cell)")
    b.set_title("continuation NLL per voice, test split", fontsize=9)
    b.legend(fontsize=7)
    return save_figure(fig, path)


def plot_originality(og: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    g = [r["bars"] for r in og["generated"]]
    t = [r["bars"] for r in og["test"]]
    top = max(g + t + [COPY_BARS + 1])
    bins = np.linspace(0, top, 25)
    ax.hist(t, bins=bins, density=True, histtype="step", color="tab:blue", label="held-out real")
    ax.hist(g, bins=bins, density=True, histtype="step", color="tab:red", label="generated")
    ax.axvline(COPY_BARS, color="k", linestyle=":", linewidth=1)
    ax.set_xlabel("longest span shared with a training piece (bars)")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_self_similarity(pieces: list[Piece], titles: list[str], path: str | Path, columns: int = 4) -> Path:
    """One self-similarity picture per piece, in a grid, saved as PNG."""
    plt = pyplot()
    n = max(1, len(pieces))
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, piece, title in zip(axes.flat, pieces, titles):
        s = self_similarity(piece)
        ax.axis("on")
        ax.imshow(s, cmap="magma", vmin=0, vmax=1, origin="upper", interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("bar", fontsize=7)
        ax.set_ylabel("bar", fontsize=7)
        ax.tick_params(labelsize=6)
    return save_figure(fig, path)


ROLL_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")  # lead, counter, harmony, bass


def _roll_image(piece: Piece, bars: int, lo: int, hi: int) -> np.ndarray:
    """(pitches, frames) voice index + 1 where a note sounds (lower voices drawn first), else 0."""
    frames = min(len(piece.grid), bars * piece.frames_per_bar)
    image = np.zeros((hi - lo + 1, frames), np.int8)
    for v in reversed(range(T.DRUM_VOICE)):
        column = piece.grid[:frames, v].astype(np.int64)
        pitch = np.where(T.is_onset(column), T.pitch_of(np.maximum(column, T.PITCH_OFFSET)), -1)
        for f in range(1, frames):  # a hold sounds the note before it
            if column[f] == T.HOLD and pitch[f - 1] >= 0:
                pitch[f] = pitch[f - 1]
        sounding = (pitch >= lo) & (pitch <= hi)
        image[pitch[sounding] - lo, np.flatnonzero(sounding)] = v + 1
    return image


def plot_rolls(generated: list[Piece], real: list[Piece], path: str | Path, bars: int = 8) -> Path | None:
    """Per style, the first ``bars`` bars of a generated piece beside a held-out real one of
    that label: what a reader can compare without listening. Blends have no real twin."""
    from matplotlib.colors import ListedColormap

    from composer.evaluate.real import label_of

    real_by_label = {}
    for piece in real:
        real_by_label.setdefault(label_of(piece), piece)
    pairs = []
    for piece in generated:
        labels = piece.labels
        if len(labels) == 1 and labels[0] in real_by_label and labels[0] not in [p[0] for p in pairs]:
            pairs.append((labels[0], piece, real_by_label[labels[0]]))
    if not pairs:
        return None
    plt = pyplot()
    cmap = ListedColormap(["white", *ROLL_COLOURS])
    fig, axes = plt.subplots(len(pairs), 2, figsize=(12, 1.6 * len(pairs)), squeeze=False)
    for row, (label, made, source) in enumerate(pairs):
        for col, (piece, kind) in enumerate(((made, "generated"), (source, "real"))):
            ax = axes[row, col]
            span = piece.pitch_range() or (48, 84)
            ax.imshow(_roll_image(piece, bars, span[0], span[1]), origin="lower", aspect="auto", cmap=cmap,
                      vmin=0, vmax=len(ROLL_COLOURS), interpolation="nearest")
            for bar in range(1, bars):
                ax.axvline(bar * piece.frames_per_bar - 0.5, color="#cccccc", lw=0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{kind} {label}" + (f" (seed {piece.extra.get('seed')})" if kind == "generated" else
                                                f" ({piece.source.split(':', 1)[-1][:40]})"), fontsize=8)
    return save_figure(fig, path)

"""Per-piece musical statistics, and the overlap of two sets' distributions (MGEval).

Every metric is a pure function of a ``Piece`` returning a float, ``math.nan`` when it is
undefined (no notes, too short). Where muspy computes a metric already we build a
``muspy.Music`` straight from the grid (resolution 4 = 16th notes, one track per voice,
drums ``is_drum=True``) and call it; the others are computed on the grid.

Densities are per *whole note* (16 frames = one 4/4 bar) so that pieces in 3/4, 4/2 and
4/4 compare on the same footing; for 4/4 this is exactly "per bar".
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from composer.music import tokens as T
from composer.music.grid import Piece

__all__ = [
    "to_muspy",
    "voice_notes",
    "pitch_class_entropy",
    "scale_consistency",
    "pitch_range",
    "polyphony",
    "note_density",
    "groove_consistency",
    "empty_beat_rate",
    "drum_density",
    "pitch_interval_entropy",
    "rest_rate",
    "mean_ioi",
    "upper_line_share",
    "drum_groove",
    "METRICS",
    "METRIC_LABELS",
    "piece_metrics",
    "mgeval_overlap",
]

FRAMES_PER_WHOLE = 4 * T.FRAMES_PER_QUARTER  # 16: densities are per whole note (a 4/4 bar)
MAX_INTERVAL = 12  # interval histograms clip at an octave either way


# -- notes -------------------------------------------------------------------------------
def voice_notes(grid: np.ndarray, voice: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Notes of one voice as arrays ``(starts, ends, pitches)`` in frames (vectorised
    ``Piece.notes``). Drum hits last one frame and carry the GM key of their class."""
    column = grid[:, voice]
    if voice == T.DRUM_VOICE:
        starts = np.flatnonzero(column)
        keys = np.array([T.DRUM_EXPORT_KEY[name] for name in T.DRUM_CLASSES])
        return starts, starts + 1, keys[column[starts].astype(np.int64) - 1] if len(starts) else starts
    starts = np.flatnonzero(column >= T.PITCH_OFFSET)
    breaks = np.flatnonzero(column != T.HOLD)  # a note ends at the next cell that is not a hold
    following = np.searchsorted(breaks, starts, side="right")
    ends = np.where(following < len(breaks), breaks[np.minimum(following, len(breaks) - 1)], len(column))
    return starts, ends, column[starts].astype(np.int64) - T.PITCH_OFFSET + T.PITCH_MIN


def to_muspy(piece: Piece):
    """The piece as a ``muspy.Music``: resolution 4 (16th notes), one track per voice."""
    import muspy

    tracks = []
    for v, name in enumerate(T.VOICES):
        starts, ends, pitches = voice_notes(piece.grid, v)
        notes = [muspy.Note(time=int(s), pitch=int(p), duration=int(e - s), velocity=64)
                 for s, e, p in zip(starts, ends, pitches)]
        tracks.append(muspy.Track(program=0, is_drum=v == T.DRUM_VOICE, name=name, notes=notes))
    num, den = piece.time_signature
    return muspy.Music(resolution=T.FRAMES_PER_QUARTER, tempos=[muspy.Tempo(time=0, qpm=float(piece.tempo))],
                       time_signatures=[muspy.TimeSignature(time=0, numerator=num, denominator=den)], tracks=tracks)


def _has_pitched_notes(piece: Piece) -> bool:
    return bool((piece.grid[:, : T.DRUM_VOICE] >= T.PITCH_OFFSET).any())


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total <= 0:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


# -- metrics -----------------------------------------------------------------------------
def pitch_class_entropy(piece: Piece) -> float:
    """Shannon entropy (bits) of the note-count pitch-class histogram of the pitched voices.

    H = -sum_i P(pc = i) log2 P(pc = i); 0 for one pitch class, log2(12) ~= 3.585 for all
    twelve equally. NaN without notes. Computed by ``muspy.pitch_class_entropy``
    (Wu & Yang, "The Jazz Transformer on the Front Line", ISMIR 2020)."""
    if not _has_pitched_notes(piece):
        return math.nan
    import muspy

    return float(muspy.pitch_class_entropy(to_muspy(piece)))


def scale_consistency(piece: Piece) -> float:
    """Largest share of pitched notes inside one major or minor scale, over all 24 scales.

    max_{root, mode} #(notes in scale) / #(notes); NaN without notes. Computed by
    ``muspy.scale_consistency`` (Mogren, "C-RNN-GAN", 2016)."""
    if not _has_pitched_notes(piece):
        return math.nan
    import muspy

    return float(muspy.scale_consistency(to_muspy(piece)))


def pitch_range(piece: Piece) -> float:
    """Highest minus lowest MIDI pitch of the pitched voices (semitones); NaN without notes.

    Computed by ``muspy.pitch_range`` (which would say 0 for an empty piece; we say NaN)."""
    if not _has_pitched_notes(piece):
        return math.nan
    import muspy

    return float(muspy.pitch_range(to_muspy(piece)))


def polyphony(piece: Piece) -> float:
    """Mean number of pitches sounding at once, over the frames where at least one sounds.

    #(sounding (frame, pitch) pairs) / #(frames with a sounding pitch); drums ignored; NaN
    without notes. Computed by ``muspy.polyphony`` (Dong et al., Pypianoroll, ISMIR LBD 2018)."""
    if not _has_pitched_notes(piece):
        return math.nan
    import muspy

    return float(muspy.polyphony(to_muspy(piece)))


def note_density(piece: Piece) -> float:
    """Pitched onsets per whole note (16 frames, one 4/4 bar), all four pitched voices.

    #(onsets) * 16 / frames; NaN for an empty grid."""
    if piece.n_frames == 0:
        return math.nan
    onsets = int((piece.grid[:, : T.DRUM_VOICE] >= T.PITCH_OFFSET).sum())
    return onsets * FRAMES_PER_WHOLE / piece.n_frames


def drum_density(piece: Piece) -> float:
    """Drum hits per whole note (16 frames, one 4/4 bar): #(drum cells != rest) * 16 / frames.

    0 for a piece without drums; NaN for an empty grid."""
    if piece.n_frames == 0:
        return math.nan
    return int((piece.grid[:, T.DRUM_VOICE] != T.REST).sum()) * FRAMES_PER_WHOLE / piece.n_frames


def _onset_matrix(piece: Piece) -> np.ndarray:
    """(frames,) bool: a note or drum hit starts in this frame (any voice)."""
    grid = piece.grid
    return (grid[:, : T.DRUM_VOICE] >= T.PITCH_OFFSET).any(1) | (grid[:, T.DRUM_VOICE] != T.REST)


def groove_consistency(piece: Piece) -> float:
    """1 minus the mean Hamming distance between neighbouring bars' onset patterns.

    groove = 1 - 1/(B-1) sum_{i=1}^{B-1} d(G_i, G_{i+1}) / F, where G_i is the binary onset
    vector (any voice, drums included) of bar i, F frames per bar and B whole bars; NaN
    for fewer than two bars (Wu & Yang, ISMIR 2020). Computed on the grid rather than by
    ``muspy.groove_consistency``, which counts one extra, empty bar when the last note
    ends on a bar line and so penalises every piece that ends cleanly."""
    fpb = piece.frames_per_bar
    bars = piece.n_frames // fpb
    if bars < 2:
        return math.nan
    patterns = _onset_matrix(piece)[: bars * fpb].reshape(bars, fpb)
    return float(1.0 - np.count_nonzero(patterns[1:] != patterns[:-1]) / (fpb * (bars - 1)))


def empty_beat_rate(piece: Piece) -> float:
    """Share of beats (quarter notes) in which nothing sounds: no pitched note held or
    struck and no drum hit.

    #(empty beats) / #(beats); NaN for a grid shorter than a beat (Dong et al., Pypianoroll,
    2018). Computed on the grid: ``muspy.empty_beat_rate`` counts one beat past the end and
    marks the beat after a note that ends on a beat line as non-empty."""
    q = T.FRAMES_PER_QUARTER
    beats = piece.n_frames // q
    if beats < 1:
        return math.nan
    grid = piece.grid[: beats * q]
    sounding = (grid[:, : T.DRUM_VOICE] != T.REST).any(1) | (grid[:, T.DRUM_VOICE] != T.REST)
    return float(1.0 - sounding.reshape(beats, q).any(1).mean())


def pitch_interval_entropy(piece: Piece) -> float:
    """Entropy (bits) of the melodic-interval histogram of the pitched voices.

    Intervals between consecutive onsets within each voice, clipped to +-12 semitones (25
    bins); H = -sum_k P(k) log2 P(k); NaN with no interval (Yang & Lerch, "On the evaluation
    of generative models in music", Neural Comput. Appl. 2018: the PI histogram)."""
    counts = np.zeros(2 * MAX_INTERVAL + 1)
    for v in range(T.DRUM_VOICE):
        _, _, pitches = voice_notes(piece.grid, v)
        if len(pitches) > 1:
            steps = np.clip(np.diff(pitches), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
            counts += np.bincount(steps, minlength=len(counts))
    return _entropy_bits(counts)


def rest_rate(piece: Piece) -> float:
    """Share of the four pitched voices' cells that are rests (silent), in [0, 1].

    #(pitched cells == REST) / (4 * frames); NaN for an empty grid. Low for a four-part
    chorale, higher for a tune whose counter-melody comes and goes."""
    if piece.n_frames == 0:
        return math.nan
    return float((piece.grid[:, : T.DRUM_VOICE] == T.REST).mean())


def mean_ioi(piece: Piece) -> float:
    """Mean inter-onset interval of the lead voice, in 16th-note frames.

    mean(diff(onset frames)); NaN with fewer than two lead notes (Yang & Lerch 2018: IOI)."""
    starts, _, _ = voice_notes(piece.grid, T.VOICE_INDEX["lead"])
    if len(starts) < 2:
        return math.nan
    return float(np.diff(starts).mean())


def upper_line_share(piece: Piece) -> float:
    """Share of whole bars in which some pitched voice other than the bass sounds.

    A piece that is a bass line with little above it scores low; real music of every label
    has a line above the bass in at least three quarters of the bars of 96-100 % of its
    pieces. NaN with no whole bar."""
    fpb = piece.frames_per_bar
    bars = piece.n_frames // fpb
    if bars < 1:
        return math.nan
    upper = [T.VOICE_INDEX[v] for v in ("lead", "counter", "harmony")]
    grid = piece.grid[: bars * fpb].reshape(bars, fpb, T.N_VOICES)
    return float((grid[:, :, upper] != T.REST).any((1, 2)).mean())


def drum_groove(piece: Piece) -> float:
    """How alike neighbouring bars' drums are: 1 minus the mean share of cells whose drum
    token differs, over pairs of neighbouring bars where either has a hit.

    The drums-only, class-aware version of ``groove_consistency``: game drums repeat a
    pattern with small changes (real doom 0.8-0.9), scattered hits score near the drums'
    own density. NaN with fewer than two such pairs."""
    fpb = piece.frames_per_bar
    bars = piece.n_frames // fpb
    if bars < 2:
        return math.nan
    drums = piece.grid[: bars * fpb, T.DRUM_VOICE].reshape(bars, fpb)
    pairs = (drums[1:] != T.REST).any(1) | (drums[:-1] != T.REST).any(1)
    if pairs.sum() < 2:
        return math.nan
    return float(1.0 - (drums[1:] != drums[:-1])[pairs].mean())


METRICS: dict[str, Callable[[Piece], float]] = {
    "pitch_class_entropy": pitch_class_entropy,
    "scale_consistency": scale_consistency,
    "pitch_range": pitch_range,
    "polyphony": polyphony,
    "note_density": note_density,
    "groove_consistency": groove_consistency,
    "empty_beat_rate": empty_beat_rate,
    "drum_density": drum_density,
    "pitch_interval_entropy": pitch_interval_entropy,
    "rest_rate": rest_rate,
    "mean_ioi": mean_ioi,
}

METRIC_LABELS = {
    "pitch_class_entropy": "pitch-class entropy (bits)",
    "scale_consistency": "scale consistency",
    "pitch_range": "pitch range (semitones)",
    "polyphony": "polyphony (pitches at once)",
    "note_density": "note density (onsets / 4/4 bar)",
    "groove_consistency": "groove consistency",
    "empty_beat_rate": "empty-beat rate",
    "drum_density": "drum density (hits / 4/4 bar)",
    "pitch_interval_entropy": "interval entropy (bits)",
    "rest_rate": "rest rate (pitched cells)",
    "mean_ioi": "lead inter-onset interval (16ths)",
}


def piece_metrics(piece: Piece) -> dict[str, float]:
    """Every metric of ``METRICS`` for one piece (muspy's ``Music`` is built once)."""
    import muspy

    out = {name: fn(piece) for name, fn in METRICS.items()
           if name not in ("pitch_class_entropy", "scale_consistency", "pitch_range", "polyphony")}
    if _has_pitched_notes(piece):
        music = to_muspy(piece)
        out["pitch_class_entropy"] = float(muspy.pitch_class_entropy(music))
        out["scale_consistency"] = float(muspy.scale_consistency(music))
        out["pitch_range"] = float(muspy.pitch_range(music))
        out["polyphony"] = float(muspy.polyphony(music))
    else:
        for name in ("pitch_class_entropy", "scale_consistency", "pitch_range", "polyphony"):
            out[name] = math.nan
    return {name: out[name] for name in METRICS}


# -- comparing two sets ------------------------------------------------------------------
def _density(sample: np.ndarray, weights: np.ndarray, scale: float):
    """A (weighted) KDE with Scott's rule; a narrow Gaussian when the sample has no spread."""
    from scipy.stats import gaussian_kde

    if len(sample) >= 2 and np.std(sample) > 0 and (weights > 0).sum() >= 2:
        spread = np.sqrt(np.average((sample - np.average(sample, weights=weights)) ** 2, weights=weights))
        if spread > 0:
            kde = gaussian_kde(sample, weights=weights)
            return kde, float(np.sqrt(kde.covariance[0, 0]))
    width = 0.02 * scale

    def spike(x):
        bumps = np.exp(-0.5 * ((x[:, None] - sample[None, :]) / width) ** 2) / (width * math.sqrt(2 * math.pi))
        return bumps @ weights

    return spike, width


def mgeval_overlap(a, b, wa=None, wb=None, points: int = 4096) -> float:
    """Overlapping area of the two samples' kernel density estimates, in [0, 1].

    OA = integral of min(f_a(x), f_b(x)) dx, with f the Gaussian KDE (Scott's bandwidth) of
    each sample (NaNs dropped; optional non-negative weights ``wa``/``wb``, e.g. to match a
    style mix), integrated by the trapezoid rule on a common grid. 1 = the same
    distribution, 0 = disjoint. A sample without spread (all one value) becomes a narrow
    Gaussian (2 % of the pooled spread) so constant arrays work; two constant, equal
    samples overlap 1. NaN if either sample is empty (or weighs nothing). After MGEval
    (Yang & Lerch, "On the evaluation of generative models in music", 2018), which takes
    the overlap of KDEs; here applied to the feature values directly, as in Wu & Yang
    (ISMIR 2020)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    wa = np.ones(len(a)) if wa is None else np.asarray(wa, float)
    wb = np.ones(len(b)) if wb is None else np.asarray(wb, float)
    keep_a, keep_b = np.isfinite(a) & (wa > 0), np.isfinite(b) & (wb > 0)
    a, wa, b, wb = a[keep_a], wa[keep_a], b[keep_b], wb[keep_b]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    wa, wb = wa / wa.sum(), wb / wb.sum()
    both = np.concatenate([a, b])
    spread = float(both.max() - both.min())
    if spread == 0:
        return 1.0
    scale = max(float(np.std(both)), spread / 4)
    fa, width_a = _density(a, wa, scale)
    fb, width_b = _density(b, wb, scale)
    pad = 4 * max(width_a, width_b)
    x = np.linspace(both.min() - pad, both.max() + pad, points)
    overlap = np.trapezoid(np.minimum(fa(x), fb(x)), x)
    return float(min(1.0, max(0.0, overlap)))

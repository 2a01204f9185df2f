"""Sampling: the hidden cells of a pass drawn (``sample_into``), with its helpers (tonal pull, the
style's melodic intervals or a leap penalty, its register and its vertical intervals, nucleus
filtering), and key moves.

Pure functions over tensors and grids; the draft and the infiller's loops call them between forward passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from composer.music import tokens as T
from composer.music.grid import Piece, estimate_key, key_from_histogram, key_name, parse_key
from composer.generate.request import GenerationRequest
from composer.nn.intervals import SPAN, UNKNOWN, Lines, sounding

if TYPE_CHECKING:
    from composer.generate.batch import Batch


# Scale degrees (semitones above the tonic) that count as in key: the major scale, and the
# natural minor with its raised leading tone (harmonic minor's contribution).
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}
TONAL_PULL = float(np.log(4.0))  # nats added to in-key pitches at tonality 1


def scale_bonus(grid: torch.Tensor, reqs: list[GenerationRequest]) -> list[torch.Tensor | None]:
    """Per request, a bonus over the pitch tokens favouring the key's scale.

    The key is the requested one, else the key of the notes visible in ``grid`` (B, T, 5)
    (none before any note is written, so the first pass chooses freely). Real music in
    every style of the corpus keeps over 90 % of its notes in key; the model alone drifts,
    because each Gibbs pass re-decides most pitches from a sparse context.
    """
    pitches = torch.arange(T.PITCH_MIN, T.PITCH_MAX + 1)
    out: list[torch.Tensor | None] = []
    for b, r in enumerate(reqs):
        if r.tonality <= 0:
            out.append(None)
            continue
        if r.key:
            found = parse_key(r.key)
        else:
            tokens = grid[b, :, : T.DRUM_VOICE]
            notes = tokens[(tokens >= T.PITCH_OFFSET) & (tokens < T.PITCHED_VOCAB)]
            hist = np.bincount(((notes - T.PITCH_OFFSET + T.PITCH_MIN) % 12).numpy(), minlength=12)
            found = key_from_histogram(hist) if hist.sum() >= 8 else None
        if found is None:
            out.append(None)
            continue
        tonic, mode = found
        in_key = torch.isin((pitches - tonic) % 12, torch.tensor(SCALES[mode]))
        out.append(in_key.float() * (r.tonality * TONAL_PULL))
    return out


def neighbours(columns: torch.Tensor, frames: torch.Tensor, voices: torch.Tensor) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each cell (``frames[i]``, ``voices[i]``) of ``columns`` (T, voices): the pitch of its
    voice's previous note and whether there is one, then the same for its next note."""
    tokens = columns.numpy()
    n = len(tokens)
    index = np.arange(n)[:, None]
    is_note = (tokens >= T.PITCH_OFFSET) & (tokens < T.PITCHED_VOCAB)  # MASK is not a note
    last = np.maximum.accumulate(np.where(is_note, index, -1), axis=0)  # latest note at or before t
    following = np.minimum.accumulate(np.where(is_note, index, n)[::-1], axis=0)[::-1]  # first at or after t
    f, v = frames.numpy(), voices.numpy()
    before = np.where(f > 0, last[np.maximum(f - 1, 0), v], -1)
    after = np.where(f + 1 < n, following[np.minimum(f + 1, n - 1), v], n)
    out = []
    for neighbour in (before, after):
        found = (neighbour >= 0) & (neighbour < n)
        pitch = tokens[np.clip(neighbour, 0, n - 1), v].astype(np.int64) - T.PITCH_OFFSET + T.PITCH_MIN
        out.append((pitch, found))
    return out


CANDIDATES = np.arange(T.PITCH_MIN, T.PITCH_MAX + 1)  # the pitch of each note token, in order
VOICE_ORDER = (T.VOICE_INDEX["bass"], T.VOICE_INDEX["lead"], T.VOICE_INDEX["counter"], T.VOICE_INDEX["harmony"])
# The pull towards where the style's voices lie, as a share of ``smoothness``: calibrated intervals
# alone let lines wander (lead range 20 semitones in 16 bars against 15 in real music). 0.5 and 1
# gave the same overlap on both selection sets; 0.5 was harder to tell from real music.
REGISTER_SHARE = 0.5


def interval_scores(columns: torch.Tensor, frames: torch.Tensor, voices: torch.Tensor, lines: Lines) -> torch.Tensor:
    """(len(frames), pitches): for each candidate pitch at each cell, the log-odds in the style's
    ``lines`` of the intervals it makes with its voice's previous and next notes as they stand in
    ``columns`` (T, voices)."""
    logp = lines.log_odds("melodic", voices)  # (cells, intervals)
    out = torch.zeros((len(frames), len(CANDIDATES)))
    rows = torch.arange(len(frames))[:, None]
    for k, (pitch, found) in enumerate(neighbours(columns, frames, voices)):
        step = CANDIDATES[None, :] - pitch[:, None] if k == 0 else pitch[:, None] - CANDIDATES[None, :]
        step = torch.from_numpy(np.clip(step, -SPAN, SPAN) + SPAN)
        out += logp[rows, step] * torch.from_numpy(found.astype(np.float32))[:, None]
    return out


def vertical_scores(columns: torch.Tensor, frames: torch.Tensor, voices: torch.Tensor, lines: Lines) -> torch.Tensor | None:
    """(len(frames), pitches): for each candidate pitch at each cell, the log-odds in the style's
    ``lines`` of the intervals it sounds above the other voices at that frame, as they stand in
    ``columns`` (T, voices); a voice not drawn there yet counts with the pitch it had just before
    (most cells hold). None when ``lines`` has no vertical table."""
    logp = lines.log_odds("vertical", voices)  # (cells, voices, 12)
    if logp is None:
        return None
    pitch = sounding(columns.numpy())
    before = np.vstack([np.full((1, pitch.shape[1]), UNKNOWN), pitch[:-1]])
    pitch = np.where(pitch == UNKNOWN, before, pitch)
    f, v = frames.numpy(), voices.numpy()
    other = pitch[f]  # (cells, voices)
    known = (other >= 0) & (np.arange(other.shape[1])[None, :] != v[:, None])
    if not known.any():
        return torch.zeros((len(frames), len(CANDIDATES)))
    interval = torch.from_numpy((CANDIDATES[None, None, :] - other[:, :, None]) % 12)  # (cells, voices, pitches)
    scores = torch.gather(logp, 2, interval)  # (cells, voices, pitches)
    return (scores * torch.from_numpy(known.astype(np.float32))[:, :, None]).sum(1)


def leap_sizes(columns: torch.Tensor, frames: torch.Tensor, voices: torch.Tensor,
               free_interval: int = 4) -> torch.Tensor:
    """(len(frames), pitches): how far each candidate pitch at each cell leaps beyond
    ``free_interval`` semitones from its voice's previous and next notes as they stand in
    ``columns`` (T, voices): what ``smoothness`` penalises for a model without a style's
    intervals (``nn/intervals.py``), per semitone."""
    candidates = torch.from_numpy(CANDIDATES.astype(np.float32))[None, :]
    out = torch.zeros((len(frames), candidates.shape[1]))
    for pitch, found in neighbours(columns, frames, voices):
        leap = (candidates - torch.from_numpy(pitch.astype(np.float32))[:, None]).abs().sub(free_interval).clamp_min(0)
        out += leap * torch.from_numpy(found.astype(np.float32))[:, None]
    return out


def draw(scores: torch.Tensor, first: int, temperature: float, top_p: float, generator: torch.Generator,
         shape_notes=None, kind_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Sample one token per row of ``scores`` (N, V) in two draws: *whether* a note starts
    (``draw_kinds``), then *which* note (``draw_notes``)."""
    tokens = draw_kinds(scores, first, generator, kind_bias)
    notes = torch.nonzero(tokens == first).flatten()
    if len(notes):
        tokens[notes] = draw_notes(scores, notes, first, temperature, top_p, generator, shape_notes)
    return tokens


def draw_kinds(scores: torch.Tensor, first: int, generator: torch.Generator,
               kind_bias: torch.Tensor | None = None) -> torch.Tensor:
    """One token per row of ``scores`` (N, V): one of the ``first`` tokens before the notes, or
    ``first`` for "a note", from the model's own odds; ``kind_bias`` (N, first + 1) adds nats (a
    texture plan).

    Sharpening the whole distribution would favour rests and holds (they carry most of
    the mass) and, compounded over Gibbs passes, thin the music out; keeping this draw at
    temperature 1 keeps the note density of the style."""
    probs = torch.softmax(scores, -1)
    kinds = torch.cat([probs[:, :first], probs[:, first:].sum(-1, keepdim=True)], -1)
    if kind_bias is not None:
        kinds = torch.softmax(torch.log(kinds.clamp_min(1e-30)) + kind_bias, -1)
    return torch.multinomial(kinds, 1, generator=generator).flatten()


def draw_notes(scores: torch.Tensor, rows: torch.Tensor, first: int, temperature: float, top_p: float,
               generator: torch.Generator, shape_notes=None) -> torch.Tensor:
    """The note token of each of ``rows`` of ``scores``, with temperature and nucleus filtering;
    ``shape_notes(rows)`` adds scores over their notes (tonal pull, intervals)."""
    note_scores = scores[rows, first:]
    if shape_notes is not None:
        note_scores = note_scores + shape_notes(rows)
    note_probs = nucleus(torch.softmax(note_scores / temperature, -1), top_p)
    return first + torch.multinomial(note_probs, 1, generator=generator).flatten()


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero out the tail outside the smallest set of tokens holding ``top_p`` of the mass."""
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(-1, descending=True)
    cumulative = sorted_p.cumsum(-1)
    drop = cumulative - sorted_p > top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    filtered = torch.zeros_like(probs).scatter(-1, order, sorted_p)
    return filtered / filtered.sum(-1, keepdim=True)


def sample_into(x: torch.Tensor, hide: torch.Tensor, logp: list[torch.Tensor], batch: Batch,
                constraint: torch.Tensor | None, bonus: list[torch.Tensor | None] | None = None,
                kind_bias: torch.Tensor | None = None, drum_bias: torch.Tensor | None = None) -> torch.Tensor:
    """Sample every hidden cell (``draw``): the four pitched voices one after another (the bass
    first), with the tonal pull of ``bonus`` (per request, over pitches) and the pull of the
    style's melodic intervals and register (``batch.lines``; else the leap penalty) and of its
    vertical intervals over the voices drawn before, then the drums; ``constraint`` is the allowed
    tokens of ``x``'s frames; ``kind_bias`` (B, T, 5, 3) and ``drum_bias`` (B, T, drum tokens) are a texture plan's and
    a groove's nats (``Steering.biases``)."""
    gens = batch.gens
    x = x.clone()
    pitched = torch.stack(logp[: T.DRUM_VOICE], 2)  # (B, T, 4, V)
    for b, r in enumerate(batch.reqs):
        lines = batch.lines[b] if batch.lines is not None else None
        frames, voices = torch.nonzero(hide[b, :, : T.DRUM_VOICE], as_tuple=True)
        if len(frames):
            scores = pitched[b, frames, voices]
            if constraint is not None:
                scores = scores.masked_fill(~constraint[b, frames, voices], float("-inf"))

            def shape_notes(rows, b=b, r=r, frames=frames, voices=voices, lines=lines):
                extra = torch.zeros((len(rows), T.PITCH_MAX - T.PITCH_MIN + 1))
                if bonus is not None and bonus[b] is not None:
                    extra = extra + bonus[b]
                columns = x[b, :, : T.DRUM_VOICE]
                if r.smoothness > 0 and lines is not None:
                    extra = extra + r.smoothness * interval_scores(columns, frames[rows], voices[rows], lines)
                    register = lines.log_odds("register", voices[rows])
                    if register is not None:
                        extra = extra + REGISTER_SHARE * r.smoothness * register
                elif r.smoothness > 0:
                    extra = extra - r.smoothness * leap_sizes(columns, frames[rows], voices[rows])
                if r.consonance > 0 and lines is not None:
                    chords = vertical_scores(columns, frames[rows], voices[rows], lines)
                    if chords is not None:
                        extra = extra + r.consonance * chords
                return extra

            # Whether each cell rests, holds or starts a note first; then the notes voice after voice, the
            # bass first, each pitch sounding against the rests, holds and notes drawn before it.
            tokens = draw_kinds(scores, T.PITCH_OFFSET, gens[b], None if kind_bias is None else kind_bias[b, frames, voices])
            notes = tokens == T.PITCH_OFFSET
            x[b, frames[~notes], voices[~notes]] = tokens[~notes]
            starting = set(voices[notes].tolist())
            for voice in (v for v in VOICE_ORDER if v in starting):
                rows = torch.nonzero(notes & (voices == voice)).flatten()
                x[b, frames[rows], voice] = draw_notes(scores, rows, T.PITCH_OFFSET, r.temperature, r.top_p,
                                                       gens[b], shape_notes)
        drums = torch.nonzero(hide[b, :, T.DRUM_VOICE]).flatten()
        if len(drums):
            scores = logp[T.DRUM_VOICE][b, drums]
            if constraint is not None:  # (a kept primer's drums are never hidden, so only infill() constrains them)
                scores = scores.masked_fill(~constraint[b, drums, T.DRUM_VOICE, : T.DRUM_VOCAB], float("-inf"))
            if drum_bias is not None:
                scores = scores + drum_bias[b, drums]
            x[b, drums, T.DRUM_VOICE] = draw(scores, 1, r.temperature, r.top_p, gens[b], None,
                                             None if kind_bias is None else kind_bias[b, drums, T.DRUM_VOICE][:, [0, 2]])
    return x


def move_to_key(piece: Piece, key: str) -> Piece:
    """Transpose to the requested key (a minor key shares the relative major's notes),
    choosing the smallest shift that stays in range."""
    target_pc, target_mode = parse_key(key)
    current = estimate_key(piece)
    if current is None:
        piece.key = key_name(target_pc, target_mode)
        return piece
    pc, mode = parse_key(current)
    if mode != target_mode:  # compare relative majors
        pc = (pc + 3) % 12 if mode == "minor" else pc
        target_pc_major = (target_pc + 3) % 12 if target_mode == "minor" else target_pc
    else:
        target_pc_major = target_pc
    base = (target_pc_major - pc) % 12
    lo, hi = piece.transposition_range()
    candidates = sorted((s for s in (base, base - 12) if lo <= s <= hi), key=abs)
    moved = piece.transpose(candidates[0]) if candidates else piece
    moved.key = key_name(target_pc, target_mode)
    return moved



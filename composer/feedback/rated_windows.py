"""Rated pieces as KTO examples: each piece cut at bar lines into training-length windows carrying its
verdict, the held-out pieces drawn per verdict, and the windows batched with their style rows (see
finetune.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from composer.errors import MozartError, UnknownStyleError
from composer.feedback.records import RatedRecord
from composer.generate.conditions import style_experts
from composer.generate.styles import StyleCatalog
from composer.music import tokens as T
from composer.music.grid import drop_leading_holds
from composer.nn.checkpoint import CheckpointMeta


MASK_STREAM, HOLDOUT_STREAM = 1, 2  # the seed's random streams for the folds and the held-out draw


# --- the rated pieces, as windows ------------------------------------------------------------

@dataclass
class RatedWindows:
    """Every rated piece cut into bar-aligned windows: one row per window."""

    tokens: np.ndarray  # (N, W, 5) uint8, padded with rests
    valid: np.ndarray  # (N, W) bool
    folds: np.ndarray  # (N, W, 5) int64: which of the masks hides each cell (seeded per piece)
    frames_per_bar: np.ndarray  # (N,)
    verdict: np.ndarray  # (N,) +1 liked, -1 disliked
    piece: np.ndarray  # (N,) index into ``pieces``
    heldout: np.ndarray  # (N,) bool
    conditions: list[list[tuple[int, int, float, float]]]  # per window: (game, composer, w_pitched, w_drums)
    pieces: list[dict] = field(default_factory=list)  # per piece: piece_id, verdict, style, heldout

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def cells(self) -> np.ndarray:
        """Scored cells per window."""
        return self.valid.sum(1) * T.N_VOICES


def style_conditions(catalog: StyleCatalog, style: str, blend: float, none_game: int,
                     none_composer: int) -> list[tuple[int, int, float, float]]:
    """The label rows a piece of ``style`` is scored with, as the generator composes it
    (``style_experts``, without guidance). An unknown style is the "none" label pair."""
    try:
        s = catalog.resolve(style)
    except UnknownStyleError:
        return [(none_game, none_composer, 1.0, 1.0)]
    return style_experts(s, blend, none_game, none_composer)


def crop_windows(grid: np.ndarray, fpb: int, window_frames: int) -> list[np.ndarray]:
    """Cut a grid at bar lines into the fewest equal windows of at most ``window_frames``."""
    bars = max(1, -(-len(grid) // fpb))
    per_window = max(1, window_frames // fpb)
    out = []
    for chunk in np.array_split(np.arange(bars), -(-bars // per_window)):
        window = grid[chunk[0] * fpb : (chunk[-1] + 1) * fpb].copy()
        drop_leading_holds(window)
        out.append(window)
    return out


def holdout_pieces(verdicts: list[int], share: float, seed: int) -> np.ndarray:
    """Seeded held-out pieces: ``share`` of the liked and of the disliked ones (rounded),
    always leaving at least one of each kind to train on."""
    rng = np.random.default_rng([seed, HOLDOUT_STREAM])
    out = np.zeros(len(verdicts), bool)
    verdicts = np.asarray(verdicts)
    for kind in (1, -1):
        members = np.flatnonzero(verdicts == kind)
        n = min(round(share * len(members)), max(0, len(members) - 1))
        out[rng.permutation(members)[:n]] = True
    return out


def rated_windows(records: list[RatedRecord], meta: CheckpointMeta, window_frames: int, masks: int,
                  holdout: float, seed: int) -> tuple[RatedWindows, dict]:
    """The liked and disliked pieces as windows (ties and unreadable files skipped), with
    their label rows and mask folds. Returns the windows and counts of what was skipped."""
    catalog = StyleCatalog.from_meta(meta)
    kept, skipped = [], {"ties": 0, "unreadable": 0}
    for record in records:
        if record.verdict == 0:
            skipped["ties"] += 1
            continue
        try:
            piece = record.piece().pad_to_bars()
        except MozartError:
            piece = None
        if piece is None or piece.n_frames == 0:
            skipped["unreadable"] += 1
            continue
        kept.append((record, piece))
    held = holdout_pieces([r.verdict for r, _ in kept], holdout, seed)
    rows: dict[str, list] = {k: [] for k in ("tokens", "folds", "fpb", "verdict", "piece", "heldout", "conditions")}
    pieces = []
    for p, ((record, piece), is_held) in enumerate(zip(kept, held)):
        blend = float(record.params.get("blend", 0.5))
        conditions = style_conditions(catalog, record.style, blend, meta.model.n_games, meta.model.n_composers)
        pieces.append({"piece_id": record.piece_id, "verdict": record.verdict, "style": record.style,
                       "heldout": bool(is_held), "bars": piece.n_bars})
        for w, window in enumerate(crop_windows(piece.grid, piece.frames_per_bar, window_frames)):
            rng = np.random.default_rng([seed, MASK_STREAM, record.piece_id, w])
            folds = (rng.permutation(window_frames * T.N_VOICES) % masks).reshape(window_frames, T.N_VOICES)
            rows["tokens"].append(window)
            rows["folds"].append(folds)
            rows["fpb"].append(piece.frames_per_bar)
            rows["verdict"].append(record.verdict)
            rows["piece"].append(p)
            rows["heldout"].append(is_held)
            rows["conditions"].append(conditions)
    n = len(rows["tokens"])
    tokens = np.zeros((n, window_frames, T.N_VOICES), np.uint8)
    valid = np.zeros((n, window_frames), bool)
    for i, window in enumerate(rows["tokens"]):
        tokens[i, : len(window)] = window
        valid[i, : len(window)] = True
    windows = RatedWindows(tokens, valid, np.array(rows["folds"], np.int64).reshape(n, window_frames, T.N_VOICES),
                           np.array(rows["fpb"], np.int64), np.array(rows["verdict"], np.int64),
                           np.array(rows["piece"], np.int64), np.array(rows["heldout"], bool),
                           rows["conditions"], pieces)
    return windows, skipped


def rated_batch(windows: RatedWindows, index: np.ndarray, device) -> dict[str, torch.Tensor]:
    """Tensors for ``log_likelihood``: the windows, and one row per (window, label condition)."""
    rows, game, composer, weights = [], [], [], []
    for b, i in enumerate(index):
        for g, c, w_pitched, w_drums in windows.conditions[i]:
            rows.append(b)
            game.append(g)
            composer.append(c)
            weights.append([w_pitched] * T.DRUM_VOICE + [w_drums])

    def tensor(x, dtype=torch.long):
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)

    return {"tokens": tensor(windows.tokens[index].astype(np.int64)), "valid": tensor(windows.valid[index], torch.bool),
            "folds": tensor(windows.folds[index]), "frames_per_bar": tensor(windows.frames_per_bar[index]),
            "rows": tensor(rows), "game": tensor(game), "composer": tensor(composer),
            "weights": tensor(weights, torch.float32)}

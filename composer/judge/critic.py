"""The realism critic as a judge: how likely a piece is real music rather than the composer's own.

A small convolutional network reads windows of the grid itself (every voice's tokens,
embedded; dilated convolutions over time; mean and max pooled) and gives the log-odds
that the window is real; a style head, when trained, which label a real window is. A
piece's score is the mean over its windows. This module holds the network, its files
(``critic.json``, ``critic.safetensors``) and its scores; how it is trained, and on what,
is ``composer/feedback/critic_training.py``.

What it is for: ``best_of`` reranking (the generator adds its score to the reward model's
when both are present) and the rater of the KTO loop (``critic rate`` writes ratings that
``finetune`` reads). The evaluation's own classifier never chooses or trains anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from composer.corpus.store import atomic_write
from composer.errors import MozartError
from composer.music import tokens as T
from composer.music.grid import Piece
from composer.nn.folder import CRITIC_CONFIG, CRITIC_WEIGHTS

__all__ = ["Critic", "CriticConfig", "CriticError", "CriticNet", "CriticSummary", "windows_of"]

FORMAT = "mozart.critic/1"


class CriticError(MozartError):
    """A critic that cannot be trained from what it was given, or a critic file that cannot be used."""


@dataclass
class CriticConfig:
    """The network's shape and how it was trained, as ``critic.json`` keeps them."""

    window: int = 64  # frames per window: four 4/4 bars
    hop: int = 32  # frames between a piece's windows when it is scored
    embed: int = 12  # per voice
    channels: int = 64
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    dropout: float = 0.1
    steps: int = 1500
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    transpose: int = 6  # random shift in [-transpose, transpose) semitones while training
    seed: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> CriticConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise CriticError(f"Unknown critic settings: {', '.join(sorted(unknown))}.")
        data = dict(data)
        if "dilations" in data:
            data["dilations"] = tuple(data["dilations"])
        return cls(**data)


class CriticNet(nn.Module):
    """(batch, window, 5) tokens -> (batch,) log-odds of real, and (batch, labels) log-probabilities
    of which label a real window is (``n_labels`` > 0: the style head)."""

    def __init__(self, cfg: CriticConfig, n_labels: int = 0):
        super().__init__()
        self.pitched = nn.ModuleList(nn.Embedding(T.PITCHED_VOCAB, cfg.embed) for _ in range(T.DRUM_VOICE))
        self.drums = nn.Embedding(T.DRUM_VOCAB, cfg.embed)
        width = cfg.embed * T.N_VOICES
        layers: list[nn.Module] = [nn.Conv1d(width, cfg.channels, 1)]
        for d in cfg.dilations:
            layers += [nn.GELU(), nn.Conv1d(cfg.channels, cfg.channels, 3, padding=d, dilation=d)]
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.channels, 1)
        self.style = nn.Linear(2 * cfg.channels, n_labels) if n_labels else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        parts = [emb(x[..., v]) for v, emb in enumerate(self.pitched)] + [self.drums(x[..., T.DRUM_VOICE])]
        h = self.body(torch.cat(parts, -1).transpose(1, 2))  # (B, C, W)
        pooled = self.drop(nn.functional.gelu(torch.cat([h.mean(2), h.amax(2)], 1)))
        style = self.style(pooled).log_softmax(-1) if self.style is not None else None
        return self.head(pooled).squeeze(1), style


def windows_of(grid: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(n, window, 5) windows of a grid every ``hop`` frames; a grid shorter than a window is
    padded with rests (so every piece gets at least one)."""
    grid = np.asarray(grid, np.int64)
    if len(grid) < window:
        grid = np.concatenate([grid, np.zeros((window - len(grid), T.N_VOICES), np.int64)])
    starts = range(0, len(grid) - window + 1, hop)
    return np.stack([grid[s : s + window] for s in starts])


@dataclass
class CriticSummary:
    """How the critic was made and how well it tells held-out real from generated windows."""

    real_windows: int = 0
    generated_windows: int = 0
    heldout_real_pieces: int = 0  # valid split
    heldout_generated_pieces: int = 0  # generated pieces kept out of training
    heldout_balanced_accuracy: float = math.nan  # per piece, by the sign of the mean log-odds
    generator_version: str = ""  # the model whose pieces it learnt to tell apart
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass
class Critic:
    """The trained network and its config: ``score(piece)`` is the mean log-odds of real."""

    net: CriticNet
    cfg: CriticConfig
    summary: CriticSummary = field(default_factory=CriticSummary)
    labels: list[str] = field(default_factory=list)  # the style head's labels (none: no style head)

    @torch.no_grad()
    def _windows(self, grids: list[np.ndarray]) -> tuple[torch.Tensor | None, np.ndarray, torch.Tensor]:
        self.net.eval()
        wins = [windows_of(g, self.cfg.window, self.cfg.hop) for g in grids]
        logits, style = self.net(torch.from_numpy(np.concatenate(wins)))
        return style, np.cumsum([0] + [len(w) for w in wins]), logits

    def scores(self, grids: list[np.ndarray]) -> np.ndarray:
        """Mean log-odds of real over each grid's windows (higher: more like real music)."""
        _, bounds, logits = self._windows(grids)
        logits = logits.numpy()
        return np.array([logits[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])

    def style_scores(self, grids: list[np.ndarray], wanted: list[list[str]]) -> np.ndarray:
        """Mean log-probability, over each grid's windows, that the window is one of its
        ``wanted`` labels (a blend: either parent). NaN where the critic knows none of them."""
        if not self.labels:
            raise CriticError("This critic has no style head (train it again with `critic train`).")
        style, bounds, _ = self._windows(grids)
        out = np.full(len(grids), np.nan)
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
            idx = [self.labels.index(x) for x in wanted[i] if x in self.labels]
            if idx:
                out[i] = float(torch.logsumexp(style[a:b, idx], -1).mean())
        return out

    def score(self, piece: Piece) -> float:
        return float(self.scores([piece.grid])[0])

    @property
    def fingerprint(self) -> str:
        """A short hash of the weights: which critic chose a ``best_of`` piece."""
        import hashlib

        h = hashlib.sha256()
        for name, tensor in sorted(self.net.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().float().numpy().tobytes())
        return h.hexdigest()[:12]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().half().contiguous() for k, v in self.net.state_dict().items()}
        tmp = folder / (CRITIC_WEIGHTS + ".tmp")
        save_file(state, str(tmp))
        tmp.replace(folder / CRITIC_WEIGHTS)
        doc = {"format": FORMAT, "config": asdict(self.cfg), "labels": self.labels,
               "summary": _finite(asdict(self.summary))}
        atomic_write(folder / CRITIC_CONFIG, json.dumps(doc, indent=2).encode())

    @classmethod
    def load(cls, folder: str | Path) -> Critic:
        folder = Path(folder)
        try:
            doc = json.loads((folder / CRITIC_CONFIG).read_text())
        except (OSError, ValueError) as e:
            raise CriticError(f"Cannot read the critic in {folder}: {e}") from e
        if doc.get("format") != FORMAT:
            raise CriticError(f"{folder / CRITIC_CONFIG} is not a Mozart critic ({FORMAT}).")
        cfg = CriticConfig.from_dict(doc["config"])
        labels = [str(x) for x in doc.get("labels", [])]
        net = CriticNet(cfg, len(labels))
        state = {k: v.float() for k, v in load_file(str(folder / CRITIC_WEIGHTS)).items()}
        net.load_state_dict(state)
        summary = CriticSummary(**{k: (math.nan if v is None else v) for k, v in doc.get("summary", {}).items()
                                   if k in CriticSummary.__dataclass_fields__})
        return cls(net.eval(), cfg, summary, labels)


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}

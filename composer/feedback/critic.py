"""The realism critic: how likely a piece is real music rather than the composer's own.

A small convolutional network reads windows of the grid itself (every voice's tokens,
embedded; four dilated convolutions over time; mean and max pooled) and gives the log-odds
that the window is real. A piece's score is the mean over its windows. It is trained apart
from the evaluation, on purpose:

* **its own features**: it learns from the tokens, where the evaluation's real-vs-generated
  classifier reads hand-made histograms (``evaluate/style.py``);
* **its own split**: real windows come from the corpus' *train* split only, generated ones
  from seeds far from the evaluation's (0-449 judged, 1000-1449 for sampler choices).
  Its accuracy is checked on held-out generated pieces against the *valid* split.

Every window is transposed by a random -6..+5 semitones while training, so the key a piece
happens to be in tells nothing. What it is for: ``best_of`` reranking (the generator adds
its score to the reward model's when both are present) and the rater of the KTO loop
(``critic rate`` writes ratings that ``finetune`` reads). The evaluation's own classifier
never chooses or trains anything.

    python -m composer critic train --into composer/default_model      # compose, train, check, save
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
from tqdm import tqdm

from composer.music import tokens as T
from composer.nn.folder import CRITIC_CONFIG, CRITIC_WEIGHTS
from composer.corpus.store import atomic_write
from composer.errors import MozartError
from composer.music.grid import Piece

__all__ = ["Critic", "CriticConfig", "CriticError", "CriticNet", "train_critic",
           "windows_of"]

FORMAT = "mozart.critic/1"


class CriticError(MozartError):
    """A critic that cannot be trained from what it was given, or a critic file that cannot be used."""


@dataclass
class CriticConfig:
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


def transpose(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each window's pitched onsets moved by its own shift (semitones), kept in range; holds,
    rests and drums unchanged."""
    pitched = x[..., : T.DRUM_VOICE]
    moved = (pitched + shift.view(-1, 1, 1)).clamp(T.PITCH_OFFSET, T.PITCHED_VOCAB - 1)
    pitched = torch.where(pitched >= T.PITCH_OFFSET, moved, pitched)
    return torch.cat([pitched, x[..., T.DRUM_VOICE :]], -1)


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


# -- training --------------------------------------------------------------------------------
def train_critic(real: list[np.ndarray], generated: list[np.ndarray], cfg: CriticConfig | None = None,
                 heldout_real: list[np.ndarray] = (), heldout_generated: list[np.ndarray] = (),
                 quiet: bool = False, real_labels: list[str] | None = None) -> Critic:
    """Train on windows of ``real`` and ``generated`` grids (classes balanced per batch),
    then measure per-piece balanced accuracy on the held-out grids. With ``real_labels`` (one
    per real grid) a style head learns, from the real windows only, which label each is."""
    import time

    cfg = cfg or CriticConfig()
    if not real or not generated:
        raise CriticError("The critic needs real and generated pieces to learn from.")
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    real_parts = [windows_of(g, cfg.window, cfg.hop) for g in real]
    real_w = np.concatenate(real_parts)
    gen_w = np.concatenate([windows_of(g, cfg.window, cfg.hop) for g in generated])
    labels = sorted(set(real_labels)) if real_labels else []
    real_y = (torch.from_numpy(np.concatenate([np.full(len(w), labels.index(x)) for w, x in zip(real_parts, real_labels)]))
              if labels else None)
    net = CriticNet(cfg, len(labels))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    half = cfg.batch // 2
    y = torch.cat([torch.ones(half), torch.zeros(half)])
    net.train()
    bar = tqdm(range(cfg.steps), desc="critic", disable=quiet, dynamic_ncols=True, leave=False)
    for _ in bar:
        pick = rng.integers(len(real_w), size=half)
        batch = np.concatenate([real_w[pick], gen_w[rng.integers(len(gen_w), size=half)]])
        x = torch.from_numpy(batch)
        shift = torch.from_numpy(rng.integers(-cfg.transpose, cfg.transpose, size=len(x)))
        logits, style = net(transpose(x, shift))
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y)
        if style is not None:
            loss = loss + nn.functional.nll_loss(style[:half], real_y[torch.from_numpy(pick)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    critic = Critic(net.eval(), cfg, CriticSummary(real_windows=len(real_w), generated_windows=len(gen_w)), labels)
    if len(heldout_real) and len(heldout_generated):
        is_real = critic.scores(list(heldout_real)) > 0
        is_gen = critic.scores(list(heldout_generated)) <= 0
        critic.summary.heldout_balanced_accuracy = float((is_real.mean() + is_gen.mean()) / 2)
        critic.summary.heldout_real_pieces = len(heldout_real)
        critic.summary.heldout_generated_pieces = len(heldout_generated)
    critic.summary.seconds = round(time.perf_counter() - started, 1)
    return critic


# -- the data --------------------------------------------------------------------------------
GENERATED_SEED = 20000  # far from the evaluation's seeds (0-449 judged, 1000-1449 for sampler choices)
RATED_SEED = 30000  # the pieces `critic rate` composes for KTO: apart from the critic's own and the evaluation's


def compose_generated(generator, n: int, bars: int, styles: list[str] | None, seed: int = GENERATED_SEED,
                      cache: Path | None = None, quiet: bool = False) -> tuple[list[np.ndarray], list[str]]:
    """``n`` pieces as the evaluation plans them (styles and forms in turn), from ``seed``:
    their grids and style names. ``cache`` (an .npz) keeps them, so a second run is free."""
    from composer.evaluate.plan import EvalConfig, generate_pieces, style_name

    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=False)
        if int(data["n"]) == n and int(data["bars"]) == bars and int(data["seed"]) == seed:
            grids = np.split(data["grid"], data["offsets"][1:-1])
            return [g.astype(np.uint8) for g in grids], [str(s) for s in data["styles"]]
    cfg = EvalConfig(n=n, bars=bars, styles=styles, seed=seed, quiet=quiet)
    pieces = generate_pieces(generator, cfg)
    grids, names = [p.grid for p in pieces], [style_name(p) for p in pieces]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(g) for g in grids])
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, grid=np.concatenate(grids), offsets=offsets, styles=np.array(names), n=n, bars=bars, seed=seed)
        tmp.replace(cache)
    return grids, names


def real_grids(data: str | Path, mix: dict[str, float], count: int, frames: int, split: str,
               seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """About ``count`` excerpts of ``split`` in the label proportions of ``mix``: grids, labels."""
    from composer.evaluate.real import RealData, label_of

    real = RealData.load(data, splits=(split,))
    pieces = real.matched_excerpts(mix, count, frames, splits=(split,), seed=seed)
    return [p.grid for p in pieces], [label_of(p) for p in pieces]


def label_mix(catalog, styles: list[str]) -> dict[str, float]:
    """Share of each trained label among ``styles`` (a blend counts half to each parent)."""
    mix: dict[str, float] = {}
    for name in styles:
        style = catalog.resolve(name)
        labels = [x for x in (style.game, style.composer) if x]
        for label in labels:
            mix[label] = mix.get(label, 0.0) + 1.0 / len(labels)
    total = sum(mix.values()) or 1.0
    return {k: v / total for k, v in mix.items()}



def rate_by_style(styles: list[str], realism: np.ndarray, share: float) -> list[int]:
    """+1 for the top ``share`` of each style's pieces by realism, -1 for the bottom, 0 between:
    ranking within a style keeps KTO from learning to prefer whole styles."""
    verdicts = [0] * len(styles)
    for style in set(styles):
        mine = [i for i, s in enumerate(styles) if s == style]
        order = sorted(mine, key=lambda i: realism[i])
        k = int(round(share * len(mine)))
        for i in order[:k]:
            verdicts[i] = -1
        for i in order[len(order) - k:] if k else []:
            verdicts[i] = +1
    return verdicts

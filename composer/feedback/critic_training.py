"""Training the realism critic (``composer/judge/critic.py``), and the pieces it learns from.

It is trained apart from the evaluation, on purpose:

* **its own features**: it learns from the tokens, where the evaluation's real-vs-generated
  classifier reads hand-made histograms (``evaluate/style.py``);
* **its own split**: real windows come from the corpus' *train* split only, generated ones
  from seeds far from the evaluation's (0-449 judged, 1000-1449 for sampler choices).
  Its accuracy is checked on held-out generated pieces against the *valid* split.

Every window is transposed by a random -6..+5 semitones while training, so the key a piece
happens to be in tells nothing. ``rate_by_style`` turns its scores into the ratings of the
KTO loop.

    python -m composer critic train --into composer/default_model      # compose, train, check, save
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from composer.judge.critic import Critic, CriticConfig, CriticError, CriticNet, CriticSummary, windows_of
from composer.music import tokens as T

__all__ = ["GENERATED_SEED", "RATED_SEED", "compose_generated", "label_mix", "rate_by_style", "real_grids",
           "train_critic"]


# -- training --------------------------------------------------------------------------------
def transpose(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each window's pitched onsets moved by its own shift (semitones), kept in range; holds,
    rests and drums unchanged."""
    pitched = x[..., : T.DRUM_VOICE]
    moved = (pitched + shift.view(-1, 1, 1)).clamp(T.PITCH_OFFSET, T.PITCHED_VOCAB - 1)
    pitched = torch.where(pitched >= T.PITCH_OFFSET, moved, pitched)
    return torch.cat([pitched, x[..., T.DRUM_VOICE :]], -1)


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

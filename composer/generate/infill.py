"""The infiller's loops, both sides in view: annealed block Gibbs over the free cells, a share of the
repeats re-sampled, a few bars re-written in the bars around them.

Infilling is annealed block Gibbs sampling (Coconet, Huang et al. 2017): hide every free
cell, predict and sample them in one forward pass, then repeatedly hide a shrinking random
share and re-sample. A v1 checkpoint (no draft) composes this way from scratch; measured,
that thins the texture (rests in 39 % of pitched cells against 18 % in real music), which
is why v2 drafts first.
"""

from __future__ import annotations

from typing import Callable

import torch

from composer.generate.batch import Batch
from composer.generate.conditions import labels, product_of_experts
from composer.generate.draft import draft_left_to_right
from composer.generate.sampling import sample_into, scale_bonus
from composer.nn.model import GridModel

REWRITE_CONTEXT_BARS = 4  # bars either side that the infiller reads when it re-writes a few bars


def infill(network: GridModel, x: torch.Tensor, free: torch.Tensor, batch: Batch,
           progress: Callable[[float], None], steps: int | None = None) -> torch.Tensor:
    """The infiller's pass over the ``free`` cells: annealed Gibbs (``gibbs``) in ``steps`` passes
    (the batch's by default) with the bidirectional ``network``.

    A v1 causal baseline checkpoint has no bidirectional network, and a next-frame network cannot
    see the cells after a free one: its one network drafts the free cells instead
    (``draft_left_to_right``: left to right, without a texture plan, ``steps`` unused)."""
    if network.config.causal:
        return draft_left_to_right(network, x, free, batch, progress)
    return gibbs(network, x, free, batch, progress, batch.steps if steps is None else steps)


def gibbs(network: GridModel, x: torch.Tensor, free: torch.Tensor, batch: Batch, progress: Callable[[float], None],
          steps: int, p_max=0.9, p_min=0.05, eta=0.75) -> torch.Tensor:
    """Annealed block Gibbs: at step n hide each free cell with probability
    max(p_min, p_max - n (p_max - p_min) / (eta N)), re-predict, re-sample. ``network`` must be
    bidirectional (``infill`` drafts with a next-frame one)."""
    if network.config.causal:
        raise ValueError(f"Gibbs sampling needs a bidirectional network; {network.config.arch} is a next-frame "
                         "network (infill() drafts with it instead)")
    mask_ids = GridModel.mask_ids()
    for n in range(steps):
        if n == 0:
            hide = free & (x == mask_ids)
        else:
            p = max(p_min, p_max - n * (p_max - p_min) / (eta * steps))
            hide = free & (batch.uniform(x.shape) < p)
        if not hide.any():
            continue
        x = resample(network, x, hide, batch)
        progress((n + 1) / steps)
    return x


def vary_repeats(network: GridModel, x: torch.Tensor, repeat: torch.Tensor, batch: Batch, passes=2) -> torch.Tensor:
    """Re-sample a small share of the repeated sections' cells (per request's ``variation``)."""
    share = torch.tensor([r.variation for r in batch.reqs])[:, None, None]
    for _ in range(passes):
        hide = repeat & (batch.uniform(x.shape) < share / passes)
        if hide.any():
            x = resample(network, x, hide, batch)
    return x


def rewrite(network: GridModel, x: torch.Tensor, region: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Hide ``region`` and infill it with the bidirectional network, both sides in view."""
    if not region.any():
        return x
    # Only the bars around the region are read: REWRITE_CONTEXT_BARS either side is context enough.
    fpb, constraint = batch.fpb, batch.constraint
    frames = torch.nonzero(region.any(-1).any(0)).flatten()
    lo = max(0, int(frames[0]) // fpb - REWRITE_CONTEXT_BARS) * fpb  # on a bar line: positions count from it
    hi = min(x.shape[1], int(frames[-1]) + 1 + REWRITE_CONTEXT_BARS * fpb)
    part = torch.where(region[:, lo:hi], GridModel.mask_ids(), x[:, lo:hi])
    window = batch.over(slice(lo, hi), None if constraint is None else constraint[:, lo:hi])
    part = infill(network, part, region[:, lo:hi], window, lambda f: None, steps=max(4, batch.steps // 2))
    x = x.clone()
    x[:, lo:hi] = part
    return x


def resample(network: GridModel, x: torch.Tensor, hide: torch.Tensor, batch: Batch) -> torch.Tensor:
    """One infilling step: hide the ``hide`` cells of ``x``, predict them from the rest, draw them again."""
    inputs = torch.where(hide, GridModel.mask_ids(), x)
    return sample_into(x, hide, predict(network, inputs, batch), batch, batch.constraint, scale_bonus(inputs, batch.reqs))


def predict(network: GridModel, inputs: torch.Tensor, batch: Batch) -> list[torch.Tensor]:
    """Blended log-probabilities per voice, 5 x (B, T, V): one forward pass of ``network`` over
    ``inputs`` for every row of the batch's conditions (in the batch's precision), combined by the
    product of experts."""
    rows, game, composer, meter, weights = labels(batch.conds, batch.fpb, batch.device)
    with torch.autocast(batch.device.type, dtype=batch.precision or torch.float32, enabled=batch.precision is not None):
        logits = network(inputs[rows].to(batch.device), game, composer, meter)
    return product_of_experts(logits, rows, weights, inputs.shape[0])  # (which takes them to float32)

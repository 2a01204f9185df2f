"""The draft loop: a next-frame network writes the free cells frame by frame, left to right, each
frame seeing every frame before it; cells already fixed (a kept primer, a repeated theme) are read."""

from __future__ import annotations

from typing import Callable

import torch

from composer.music import tokens as T
from composer.generate.batch import Batch
from composer.generate.conditions import labels, product_of_experts
from composer.generate.sampling import sample_into, scale_bonus
from composer.generate.steering import Steering
from composer.nn.model import GridModel

LINE_CONTEXT_BARS = 2  # how far back a drafted note looks for the previous note of its voice


def draft_left_to_right(network: GridModel, x: torch.Tensor, free: torch.Tensor, batch: Batch,
                        progress: Callable[[float], None], steer: Steering | None = None) -> torch.Tensor:
    """Frame-by-frame sampling with a next-frame ``network``: free cells are written,
    fixed ones are read, and every frame sees all the frames before it; ``steer``
    (frames counted from the piece's start) adds a texture plan and a groove."""
    fpb, reqs, constraint = batch.fpb, batch.reqs, batch.constraint
    rows, game, composer, meter, weights = labels(batch.conds, fpb, batch.device)
    start = GridModel.mask_ids().expand(len(batch.conds), 1, -1).to(batch.device)  # what comes before frame 0
    state = bonus = None
    x = x.clone()
    written = torch.nonzero(free.any(-1).any(0)).flatten()  # frames with a cell to write
    fed = 0  # frames whose inputs the network has read
    for t in written.tolist():
        # The inputs for frames fed..t: the frames before them (fixed ones read in one call).
        inputs = x[rows, max(0, fed - 1) : t].to(batch.device)
        if fed == 0:
            inputs = torch.cat([start, inputs], 1)
        logits, state = network.step(inputs, game, composer, meter, fed, state)
        fed = t + 1
        now = [w[:, min(t, w.shape[1] - 1)] if w.dim() == 2 else w for w in weights]
        logp = [lp[:, None, :] for lp in product_of_experts(logits, rows, now, x.shape[0])]
        if bonus is None or t % fpb == 0:  # re-estimate the key once a bar from what is written
            bonus = scale_bonus(x[:, :t], reqs)
        # The frame with the bars before it, so the intervals (or the leap penalty) see the previous notes.
        lo = max(0, t - LINE_CONTEXT_BARS * fpb)
        hide = torch.zeros((x.shape[0], t + 1 - lo, T.N_VOICES), dtype=torch.bool)
        hide[:, -1] = free[:, t]
        logp = [lp.expand(-1, t + 1 - lo, -1) for lp in logp]
        kinds, drums = steer.biases(x, t, t + 1 - lo) if steer is not None else (None, None)
        window = sample_into(x[:, lo : t + 1], hide, logp, batch,
                             None if constraint is None else constraint[:, lo : t + 1], bonus, kinds, drums)
        x[:, t] = window[:, -1]
        if t % fpb == fpb - 1:
            progress((t + 1) / x.shape[1])
    return x


def is_continuation(free: torch.Tensor) -> bool:
    """Whether the free cells of one grid (T, 5) are whole frames after every fixed cell:
    what a left-to-right draft can write (a new piece, or an extension of one)."""
    whole = free.all(-1)
    partial = free.any(-1) & ~whole
    return not bool(partial.any()) and bool((whole.int().diff() >= 0).all())

"""The state of a batch of requests of one shape, made once and read by every pass over it (the
draft, the infiller's loops, a loop's seam): settings, random streams, forward rows, allowed tokens."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from composer.music import tokens as T
from composer.generate.conditions import Condition, conditions_over
from composer.generate.request import GenerationRequest
from composer.nn.intervals import Lines

if TYPE_CHECKING:
    from composer.generate.steering import Steering


@dataclass
class Batch:
    """What every pass over a batch of requests of one shape reads, made once per batch
    (``Generator._batch``) instead of passed along argument by argument."""

    reqs: list[GenerationRequest]  # one per grid of the batch: its sampling settings and seed
    conds: list[Condition]  # the forward rows: each request's style experts (and guidance)
    fpb: int  # frames per bar (one metre per batch)
    steps: int  # the infiller's Gibbs passes
    gens: list[torch.Generator]  # one random stream per request, seeded by it: the piece replays
    device: torch.device  # where the networks run
    constraint: torch.Tensor | None = None  # (B, T, 5, V) allowed tokens (a kept rhythm), or None
    steer: Steering | None = None  # texture plans and grooves for the draft, or None
    lines: list[Lines] | None = None  # each request's style's melodic intervals, when the model has them
    precision: torch.dtype | None = None  # the dtype the infiller's forward passes run in (None: float32)

    def over(self, index, constraint: torch.Tensor | None) -> Batch:
        """The batch as seen by a window of frames (``index``: a slice or index tensor) whose allowed
        tokens are ``constraint``: a re-written window or a loop's seam."""
        return replace(self, conds=conditions_over(self.conds, index), constraint=constraint)

    def uniform(self, shape) -> torch.Tensor:
        """A uniform number per cell of ``shape`` (B, ...), each grid's from its own request's stream."""
        return torch.stack([torch.rand(shape[1:], generator=g) for g in self.gens])


def rhythm_constraint(reqs: list[GenerationRequest], frames: int) -> torch.Tensor | None:
    """(B, T, 5, V) allowed tokens when a request keeps another piece's rhythm."""
    if all(r.rhythm_of is None for r in reqs):
        return None
    allowed = torch.ones((len(reqs), frames, T.N_VOICES, T.PITCHED_VOCAB), dtype=torch.bool)
    for b, r in enumerate(reqs):
        if r.rhythm_of is None:
            continue
        grid = torch.from_numpy(r.rhythm_of.grid[:frames].astype(np.int64))
        n = len(grid)
        kind = torch.where(grid >= T.PITCH_OFFSET, 2, grid)  # 0 rest, 1 hold, 2 onset
        vocab_kind = torch.clamp(torch.arange(T.PITCHED_VOCAB), max=2)
        allowed[b, :n] = kind[..., None] == vocab_kind
    return allowed

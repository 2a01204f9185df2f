"""Texture besides the network: each request's texture plan and drum groove, which steer the draft
(``Steering``), and a remix's re-composed drums made a groove (``regroove_drums``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from composer.music import tokens as T
from composer.generate.conditions import DRUM_BLEND_SHARE
from composer.generate.request import GenerationRequest, section_letters
from composer.generate.seeds import TEXTURE_STREAM
from composer.generate.styles import Style
from composer.nn.texture import FORCE as FORCE_REST
from composer.nn.texture import Groove, Plan, TextureBank, regroove


@dataclass
class Steering:
    """What steers the draft besides the network, per request of a batch: the texture plan,
    the drum groove, and how strongly (the request's ``texture``)."""

    plans: list[Plan | None]
    grooves: list[Groove | None]
    strength: list[float]
    offset: int = 0  # frame t of the grid drafted is the piece's frame t - offset

    def shifted(self, offset: int) -> Steering:
        """The plans for a grid whose frame t is the piece's t - ``offset`` (a loop's opening
        re-drafted after its end); grooves stay with the piece itself."""
        return Steering(self.plans, [None] * len(self.grooves), self.strength, offset)

    def biases(self, x: torch.Tensor, t: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Nats for frame ``t`` of ``x`` (B, T, 5), as the last of ``width`` frames:
        (B, width, 5, 3) on [rest, hold, onset] and (B, width, DRUM_VOCAB) on the drum tokens."""
        kinds = torch.zeros((x.shape[0], width, T.N_VOICES, 3))
        drums = torch.zeros((x.shape[0], width, T.DRUM_VOCAB))
        for b, (plan, groove, strength) in enumerate(zip(self.plans, self.grooves, self.strength)):
            if plan is not None:
                kinds[b, -1] = plan.kind_bias(x[b], t, strength, self.offset)
            pull = groove.token_bias(x[b], t, strength) if groove is not None else None
            if pull is not None and kinds[b, -1, T.DRUM_VOICE, 0] < FORCE_REST:
                drums[b, -1] = pull
                kinds[b, -1, T.DRUM_VOICE] = 0.0  # the groove sets the drums' density, not the plan's count
        return kinds, drums


def steering_for(reqs: list[GenerationRequest], styles: list[Style], blends: list, fpb: int,
                 textures: TextureBank | None) -> Steering | None:
    """Each request's texture plan and drum groove (none when ``texture`` is 0, when the
    checkpoint has no texture bank, or for an extension, whose texture is its primer's);
    ``blends``: each request's composer share, per frame where its sections alternate
    (``conditions.texture_share``)."""
    plans, grooves = [], []
    for r, style, blend in zip(reqs, styles, blends):
        if r.texture <= 0 or textures is None or r.primer is not None:
            plans.append(None)
            grooves.append(None)
            continue
        sections = section_letters(r)
        rng = np.random.default_rng([int(r.seed), TEXTURE_STREAM])
        if not style.is_blend:
            blend = 0.0
        elif isinstance(blend, torch.Tensor):
            blend = blend[::fpb].numpy()  # per bar: each section's parent
        plans.append(textures.plan(style.game, style.composer, blend, r.bars, fpb, sections, rng, DRUM_BLEND_SHARE))
        grooves.append(Groove(fpb, sections, r.bars))
    if all(p is None for p in plans):
        return None
    return Steering(plans, grooves, [r.texture for r in reqs])


def regroove_drums(x: torch.Tensor, free: torch.Tensor, reqs: list[GenerationRequest], fpb: int) -> torch.Tensor:
    """Drums a remix re-composed become a groove with variations (``texture.regroove``)."""
    x = x.clone()
    for b, r in enumerate(reqs):
        hidden = free[b, :, T.DRUM_VOICE].numpy()
        if r.texture > 0 and hidden.any():
            rng = np.random.default_rng([int(r.seed), TEXTURE_STREAM])
            column = regroove(x[b, :, T.DRUM_VOICE].numpy(), hidden, fpb, rng)
            x[b, :, T.DRUM_VOICE] = torch.from_numpy(column.astype(np.int64))
    return x

"""KTO's maths: the likelihood of a rated window under each network (the draft's exact one, the infiller's
pseudo-likelihood), the implied reward and the loss (see finetune.py for the method)."""

from __future__ import annotations

import numpy as np
import torch

from composer.feedback.rated_windows import RatedWindows, rated_batch
from composer.nn.model import GridModel, cell_log_probs


# --- the two likelihoods -----------------------------------------------------------------------

def sequence_log_likelihood(draft: GridModel, tokens, game, composer, frames_per_bar) -> torch.Tensor:
    """The causal draft's exact log-likelihood, per cell: log p(cell | every frame before it),
    (B, T, 5). Summed over a grid's cells it is log p(grid): the network shifts its input by a
    frame itself and the voices of a frame are independent given the past."""
    assert draft.config.causal, "sequence_log_likelihood is for the next-frame (causal) networks"
    return cell_log_probs(draft(tokens, game, composer, frames_per_bar), tokens)


def pseudo_log_likelihood(infiller: GridModel, tokens, folds, masks: int, game, composer,
                          frames_per_bar) -> torch.Tensor:
    """The bidirectional infiller's pseudo-likelihood, per cell (B, T, 5): with the cells
    split into ``masks`` folds (``folds`` (B, T, 5) in 0..masks-1), mask k hides fold k and
    every cell is scored once, from the cells outside its fold (Coconet's NLL estimate).
    All masks run as one batch of B x masks rows."""
    B, L, V = tokens.shape
    hidden = folds[:, None] == torch.arange(masks, device=tokens.device)[None, :, None, None]  # (B, M, T, 5)
    rep = tokens[:, None].expand(B, masks, L, V).reshape(B * masks, L, V)
    inputs = torch.where(hidden.reshape(B * masks, L, V), GridModel.mask_ids().to(tokens.device), rep)
    logits = infiller(inputs, game.repeat_interleave(masks), composer.repeat_interleave(masks),
                      frames_per_bar.repeat_interleave(masks))
    logp = cell_log_probs(logits, rep).view(B, masks, L, V)
    return (logp * hidden).sum(1)


def log_likelihood(network: GridModel, batch: dict[str, torch.Tensor], masks: int) -> torch.Tensor:
    """Summed log-likelihood (nats) of each window of a ``rated_batch``, (B,): the draft's
    exact one or the infiller's pseudo-likelihood, the label rows of a window weighted as
    the generator's product of experts."""
    rows = batch["rows"]
    tokens, fpb = batch["tokens"][rows], batch["frames_per_bar"][rows]
    if network.config.causal:
        cells = sequence_log_likelihood(network, tokens, batch["game"], batch["composer"], fpb)
    else:
        cells = pseudo_log_likelihood(network, tokens, batch["folds"][rows], masks, batch["game"], batch["composer"],
                                      fpb)
    per_row = (cells * batch["valid"][rows][..., None]).sum(1)  # (R, 5)
    per_row = (per_row * batch["weights"]).sum(1)  # (R,)
    return torch.zeros(len(batch["tokens"]), device=per_row.device).index_add(0, rows, per_row)


@torch.no_grad()
def score_windows(network: GridModel, windows: RatedWindows, masks: int, device, batch_size: int = 16) -> np.ndarray:
    """``log_likelihood`` of every rated window, (N,) float64 (the network in eval mode)."""
    was_training = network.training
    network.eval()
    out = [log_likelihood(network, rated_batch(windows, np.arange(s, min(s + batch_size, len(windows))), device),
                          masks).double().cpu() for s in range(0, len(windows), batch_size)]
    network.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0)


# --- the implied reward and the KTO loss ------------------------------------------------------

def implied_reward(policy_ll: torch.Tensor, reference_ll: torch.Tensor, cells: torch.Tensor,
                   reward_cells: int) -> torch.Tensor:
    """r(x) = reward_cells x (log pθ(x) - log pref(x)) / cells(x): the per-cell mean
    log-ratio at the scale of one full training window (see the module's docstring)."""
    return reward_cells * (policy_ll - reference_ll) / cells


def kto_weights(n_desirable: int, n_undesirable: int) -> tuple[float, float]:
    """(λ_D, λ_U): the majority kind weighs 1, the minority's weight brings
    λ_D n_D / (λ_U n_U) to the nearest end of [1, 4/3] (the paper's recommendation)."""
    if n_desirable == 0 or n_undesirable == 0:
        return 1.0, 1.0
    ratio = n_desirable / n_undesirable
    if ratio < 1:
        return 1 / ratio, 1.0  # too few liked: λ_D n_D = n_U
    if ratio > 4 / 3:
        return 1.0, ratio * 3 / 4  # too few disliked: λ_D n_D = 4/3 λ_U n_U
    return 1.0, 1.0


def kto_loss(reward: torch.Tensor, desirable: torch.Tensor, beta: float, lambda_d: float,
             lambda_u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The KTO loss of a batch (mean) and its reference point z_ref = max(0, batch mean of
    r), detached: the paper's practical estimate of KL(πθ || πref).
    desirable: λ_D (1 - σ(β (r - z_ref)));  undesirable: λ_U (1 - σ(β (z_ref - r)))."""
    z_ref = reward.detach().mean().clamp(min=0)
    liked = lambda_d * (1 - torch.sigmoid(beta * (reward - z_ref)))
    disliked = lambda_u * (1 - torch.sigmoid(beta * (z_ref - reward)))
    return torch.where(desirable, liked, disliked).mean(), z_ref

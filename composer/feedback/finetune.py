"""Preference fine-tuning from 👍/👎 with KTO (Ethayarajh et al. 2024, "KTO: Model Alignment
as Prospect Theoretic Optimization").

    python -m composer finetune --ratings ratings.jsonl --base composer/default_model --out runs/kto

KTO needs only a binary label per piece, which is what Discord ratings are: a liked piece
(more 👍 than 👎) is *desirable*, a disliked one *undesirable*, a tie is skipped. Read top
to bottom: the rated pieces as windows, the two likelihoods, the implied reward and the
KTO loss, replay, the loop, the report, the output folder, the command.

**What is scored.** A v2 composer has two networks and both are tuned. The causal draft
(``td_lstm``) gives the exact log-likelihood of a grid, sum over cells of log p(cell |
every frame before it) (the five voices of a frame are independent given the past). The
bidirectional infiller (``td_bilstm``) has no tractable likelihood, so it gets a
*pseudo-likelihood* as Coconet estimates its NLL: the cells of a window are split at random
into ``--masks`` equal folds; mask k hides fold k and the infiller scores the hidden cells
from the rest. Every cell is scored exactly once, from (masks - 1)/masks of the others.
The folds are seeded by the piece (and window), so the policy and the reference always
see the same masks and the reference's scores are computed once, before training. A base
without a draft (v1) tunes its infiller alone.

**Windows.** The networks were trained on windows of at most ``window_bars`` x 16 frames
(16 bars of 4/4 = 256 frames). A longer piece is cut at bar lines into the fewest equal
windows that fit (32 bars -> 2 x 16, 20 bars -> 2 x 10); each window is one KTO example
carrying the piece's verdict (a longer piece weighs more, as it holds more music). The
held-out share is drawn by piece, per verdict (seeded), so no window of a held-out piece
is trained on.

**Styles.** The record's style is resolved by the base's ``StyleCatalog``; an unknown style
gets the "none" labels. A two-label style is scored as the generator composes it, a
product of experts: the game-conditioned and the composer-conditioned log-probabilities
weighted by the request's ``blend`` (drums by ``blend x DRUM_BLEND_SHARE``), without the
normaliser. Classifier-free guidance is a sampling-time contrast and is left out.

**Reward normalisation.** r(x) = C x (log pθ(x) - log pref(x)) / cells(x), the per-cell
mean log-ratio scaled to the cells of one full training window, C = window frames x 5
voices (1,280 for v2). So ``--beta`` keeps the paper's meaning for a sequence of training-
window length (beta = 0.1: the sigmoid saturates once the model moves by about 20 nats per
window, 0.016 nats per cell), and a short window's reward is not small merely because it
is short. With the plain per-cell mean instead, beta = 0.1 would never saturate and KTO
would reduce to unbounded likelihood raising and lowering; with the plain sum, long pieces
would saturate first. The report gives the unscaled per-cell shift (nats per cell).

**The loss** (per network, on a batch of rated windows):
z_ref = max(0, batch mean of r) (detached: the paper's practical estimate of the KL term);
desirable: λ_D (1 - σ(β (r - z_ref))); undesirable: λ_U (1 - σ(β (z_ref - r))); the majority
kind gets λ = 1 and the minority's λ brings λ_D n_D / (λ_U n_U) into [1, 4/3], as the paper
recommends. **Replay**: each step also trains on a batch of corpus windows (``--data``,
train split) with the network's own training loss (masked cells from ``make_mask`` for the
infiller, next frame for the draft), weighted by ``--replay``, so the model does not
forget. The reference is a frozen copy of the base; dropout is off in the policy so a
reward measures the weights, not the noise.

**Output**: the base's layout (infiller at the top, ``draft/`` when the base has one, fp16,
the base's other files such as ``originality.npz`` and ``reward.json`` copied), written to
OUT.tmp and renamed to OUT when complete. ``config.json`` records the new version, and in
``training``: ``parent``, ``ratings`` (the ``RatingsSummary``), ``kto`` (the settings) and
``shift`` (the measured likelihood shift, measured on the fp16 weights that are saved).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from composer.music import tokens as T
from composer.nn.checkpoint import (
    CONFIG,
    DRAFT,
    TRAINING_STATE,
    WEIGHTS,
    CheckpointMeta,
    default_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from composer.nn.data import WindowSampler, make_mask, to_model_inputs
from composer.errors import CheckpointError, MozartError, UnknownStyleError
from composer.evaluate.likelihood import label_map
from composer.feedback.records import RatedRecord, RatingsSummary, read_records
from composer.generate.generator import style_experts
from composer.music.grid import drop_leading_holds
from composer.nn.model import GridModel, choose_device
from composer.generate.styles import StyleCatalog
from composer.nn.train import TrainConfig, loss_and_counts

MASK_STREAM, HOLDOUT_STREAM, BATCH_STREAM, REPLAY_STREAM = 1, 2, 3, 4  # the seed's random streams
TRAINING_RUN_FILES = {WEIGHTS, CONFIG, TRAINING_STATE, "training_state.json", "metrics.jsonl"}  # not copied
CORPUS_CHECK_WINDOWS = 32  # held-out corpus windows scored before and after (forgetting)


@dataclass
class FinetuneConfig:
    ratings: str
    base: str | None = None  # None: the shipped model (or $MOZART_CHECKPOINT)
    out: str = "runs/kto"
    data: str = "data/encoded"
    replay: float = 1.0  # weight of the corpus replay loss (0: ratings alone, no corpus needed)
    steps: int = 200
    beta: float = 0.1
    # 3e-4 over 1e-4, chosen with the feedback loop's first panel (149 rated pieces, 96 paired
    # requests on seeds kept out of docs/FEEDBACK.md): expected like ratio 0.510 (v2) -> 0.542
    # at 1e-4, 0.577 at 3e-4, corpus NLL unchanged (infiller 1.145 -> 1.140, draft 0.750).
    lr: float = 3e-4
    masks: int = 4  # folds of the infiller's pseudo-likelihood
    holdout: float = 0.2  # share of the rated pieces (per verdict) kept for the report
    seed: int = 0
    batch_size: int = 8  # rated windows per step (and corpus windows for replay)
    device: str = "auto"
    threads: int | None = None  # torch CPU threads (None: torch's default)
    max_minutes: float | None = None
    version: str | None = None  # default: <base version>-kto<N>
    overwrite: bool = False
    grad_clip: float = 1.0
    warmup_steps: int = 10

    def check(self) -> None:
        problems = [text for bad, text in (
            (self.steps < 1, "--steps must be at least 1"),
            (self.beta <= 0, "--beta must be positive"),
            (self.lr <= 0, "--lr must be positive"),
            (self.masks < 1, "--masks must be at least 1"),
            (not 0 <= self.holdout < 1, "--holdout must be in [0, 1)"),
            (self.replay < 0, "--replay must be 0 or more"),
            (self.batch_size < 1, "--batch-size must be at least 1"),
        ) if bad]
        if problems:
            raise MozartError("; ".join(problems) + ".")


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


# --- the two likelihoods -----------------------------------------------------------------------

def token_log_probs(logits: list[torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """log p of the true token of every cell: (B, T, 5) from the network's 5 x (B, T, V)."""
    return torch.stack([torch.log_softmax(lg.float(), -1).gather(-1, tokens[..., v : v + 1]).squeeze(-1)
                        for v, lg in enumerate(logits)], -1)


def sequence_log_likelihood(draft: GridModel, tokens, game, composer, frames_per_bar) -> torch.Tensor:
    """The causal draft's exact log-likelihood, per cell: log p(cell | every frame before it),
    (B, T, 5). Summed over a grid's cells it is log p(grid): the network shifts its input by a
    frame itself and the voices of a frame are independent given the past."""
    assert draft.config.causal, "sequence_log_likelihood is for the next-frame (causal) networks"
    return token_log_probs(draft(tokens, game, composer, frames_per_bar), tokens)


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
    logp = token_log_probs(logits, rep).view(B, masks, L, V)
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


# --- replay: the corpus, so the model does not forget ---------------------------------------

class Replay:
    """Corpus windows from the train split, their labels mapped onto the base's by name."""

    def __init__(self, data: str, meta: CheckpointMeta, base_train: TrainConfig, window_frames: int, seed: int):
        from composer.corpus.encoded import load_meta, load_split

        self.manifest_hash = load_meta(data)["manifest_sha256"]
        self.meta, self.train_cfg = meta, base_train
        self.split = load_split(data, "train")
        self.sampler = WindowSampler(self.split, window_frames, base_train.max_transpose, base_train.label_balance,
                                     seed=seed)
        self.rng = np.random.default_rng([seed, REPLAY_STREAM])
        try:
            check = load_split(data, "valid")
        except (OSError, KeyError):
            check = self.split
        batch = WindowSampler(check, window_frames, 0, seed=seed).sample(CORPUS_CHECK_WINDOWS)
        self.check_batch = self._relabel(batch, check)

    def _relabel(self, batch: dict, split) -> dict:
        """The corpus' label indices as the base's (an unknown label and -1 become its "none")."""
        for kind, names, known in (("game", split.games, self.meta.games),
                                   ("composer", split.composers, self.meta.composers)):
            batch[kind] = label_map(names, known)[np.asarray(batch[kind], np.int64)]
        return batch

    def inputs(self, network: GridModel, batch: dict, rng: np.random.Generator, device, style_dropout: float) -> dict:
        hidden = None if network.config.causal else \
            make_mask(len(batch["tokens"]), batch["tokens"].shape[1], batch["frames_per_bar"], rng)
        return to_model_inputs(batch, hidden, network.config.n_games, network.config.n_composers, style_dropout, rng,
                               device)

    def sample(self, batch_size: int) -> dict:
        return self._relabel(self.sampler.sample(batch_size), self.split)

    @torch.no_grad()
    def check_nll(self, network: GridModel, device) -> float:
        """Masked-cell (infiller) or next-frame (draft) NLL on fixed held-out corpus windows."""
        was_training = network.training
        network.eval()
        rng = np.random.default_rng(0)
        loss, _, _ = loss_and_counts(network, self.inputs(network, self.check_batch, rng, device, 0.0))
        network.train(was_training)
        return float(loss)


# --- the loop -------------------------------------------------------------------------------------

def disable_dropout(network: nn.Module) -> nn.Module:
    """No dropout anywhere (the rewards would measure the noise, not the weights)."""
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        elif isinstance(module, (nn.LSTM, nn.MultiheadAttention)):
            module.dropout = 0.0
    return network


def load_base(folder: Path, device) -> tuple[dict[str, GridModel], CheckpointMeta, CheckpointMeta | None]:
    """The base's networks by name ("infiller", and "draft" when it has one) and metas."""
    infiller, meta = load_checkpoint(folder, device)
    networks, draft_meta = {"infiller": infiller}, None
    if (folder / DRAFT).is_dir():
        draft, draft_meta = load_checkpoint(folder / DRAFT, device)
        if not draft_meta.model.causal:
            raise CheckpointError(f"The draft network in {folder / DRAFT} must be a next-frame model.")
        networks["draft"] = draft
    return networks, meta, draft_meta


def training_window(meta: CheckpointMeta) -> tuple[TrainConfig, int]:
    """The base's training settings and window (frames): 16 bars of 4/4 unless it says otherwise."""
    saved = meta.training.get("train_config", {})
    cfg = TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__})
    return cfg, cfg.window_bars * 16


def finetune(cfg: FinetuneConfig, quiet: bool = False) -> dict:
    """Fine-tune the base on the ratings, write OUT, and return the ``training`` record."""
    cfg.check()
    started = time.time()
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    base_dir = Path(cfg.base) if cfg.base else default_checkpoint_path()
    out = Path(cfg.out)
    if out.resolve() == base_dir.resolve():
        raise MozartError("--out must be a new folder, not the base checkpoint itself.")
    if out.exists() and not cfg.overwrite:
        raise MozartError(f"{out} already exists: choose another --out, or pass --overwrite to replace it.")
    records = read_records(cfg.ratings)
    device = choose_device(cfg.device)
    reference, meta, draft_meta = load_base(base_dir, device)
    base_train, window_frames = training_window(meta)
    reward_cells = window_frames * T.N_VOICES

    replay = None
    if cfg.replay > 0:
        try:
            replay = Replay(cfg.data, meta, base_train, window_frames, cfg.seed)
        except (MozartError, OSError) as e:
            raise MozartError(
                f"{e} Fine-tuning replays corpus windows so the model does not forget what it learnt: point --data "
                f"at the encoded corpus, or pass --replay 0 to learn from the ratings alone (it may drift from the "
                f"corpus).") from None

    windows, skipped = rated_windows(records, meta, window_frames, cfg.masks, cfg.holdout, cfg.seed)
    train_idx = np.flatnonzero(~windows.heldout)
    if len(train_idx) == 0:
        raise MozartError(f"{Path(cfg.ratings).name} has no liked or disliked piece to learn from "
                          f"({skipped['ties']} ties, {skipped['unreadable']} unreadable).")

    policy = {name: disable_dropout(copy.deepcopy(net)).train() for name, net in reference.items()}
    for net in reference.values():
        net.requires_grad_(False)
    ref_ll = {name: score_windows(net, windows, cfg.masks, device) for name, net in reference.items()}
    cells = torch.as_tensor(windows.cells, dtype=torch.float32, device=device)
    desirable = torch.as_tensor(windows.verdict > 0, device=device)
    n_d = int((windows.verdict[train_idx] > 0).sum())
    lambda_d, lambda_u = kto_weights(n_d, len(train_idx) - n_d)
    corpus_nll = {name: {"base": replay.check_nll(net, device)} for name, net in reference.items()} if replay else {}

    params = [p for net in policy.values() for p in net.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.98))
    rng = np.random.default_rng([cfg.seed, BATCH_STREAM])
    replay_rng = np.random.default_rng([cfg.seed, REPLAY_STREAM])
    bar = tqdm(total=cfg.steps, disable=quiet, dynamic_ncols=True, desc="kto")
    stop_reason, step, history = "steps", 0, []
    for step in range(1, cfg.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * min(1.0, step / max(1, cfg.warmup_steps))
        index = rng.choice(train_idx, size=cfg.batch_size, replace=len(train_idx) < cfg.batch_size)
        batch = rated_batch(windows, index, device)
        rows = torch.as_tensor(index, device=device)
        corpus = replay.sample(cfg.batch_size) if replay else None
        optimizer.zero_grad(set_to_none=True)
        logged = {}
        for name, net in policy.items():
            reward = implied_reward(log_likelihood(net, batch, cfg.masks),
                                    torch.as_tensor(ref_ll[name][index], dtype=torch.float32, device=device),
                                    cells[rows], reward_cells)
            loss, z_ref = kto_loss(reward, desirable[rows], cfg.beta, lambda_d, lambda_u)
            if corpus is not None:
                replay_loss = loss_and_counts(net, replay.inputs(net, corpus, replay_rng, device,
                                                                 base_train.style_dropout))[0]
                loss = loss + cfg.replay * replay_loss
                logged[f"{name}_replay"] = round(replay_loss.item(), 4)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            logged.update(step_stats(name, loss, z_ref, reward, desirable[rows]))
        optimizer.step()
        if step % max(1, cfg.steps // 20) == 0 or step == cfg.steps:
            history.append({"step": step, **logged})
        bar.update(1)
        bar.set_postfix({k.replace("infiller", "inf"): v for k, v in logged.items()
                         if k.endswith(("loss", "margin")) and v is not None})
        if cfg.max_minutes is not None and time.time() - started > cfg.max_minutes * 60:
            stop_reason = "time_budget"
            break
    bar.close()

    # Measure what will be saved: the weights after their round trip through fp16.
    for net in policy.values():
        net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    shift = {name: likelihood_shift(windows, score_windows(net, windows, cfg.masks, device) - ref_ll[name])
             for name, net in policy.items()}
    for name, net in policy.items():
        if replay:
            corpus_nll[name]["finetuned"] = replay.check_nll(net, device)
    summary = RatingsSummary.of(cfg.ratings, records)
    version = cfg.version or default_version(meta.version, out, summary.versions)
    record = {
        "parent": meta.version,
        "ratings": asdict(summary),
        "kto": {
            "beta": cfg.beta, "lr": cfg.lr, "steps": cfg.steps, "steps_done": step, "stop_reason": stop_reason,
            "batch_size": cfg.batch_size, "masks": cfg.masks, "holdout": cfg.holdout, "seed": cfg.seed,
            "replay": cfg.replay, "lambda_desirable": round(lambda_d, 4), "lambda_undesirable": round(lambda_u, 4),
            "reward": f"per-cell mean log-ratio x {reward_cells} cells (one {window_frames}-frame window)",
            "window_frames": window_frames, "networks": list(policy),
            "pieces": {"train": _count(windows.pieces, False), "heldout": _count(windows.pieces, True),
                       "skipped": skipped},
            "windows": {"train": len(train_idx), "heldout": int(windows.heldout.sum())},
            "corpus": {"manifest_hash": replay.manifest_hash} if replay else None,
            "corpus_nll": {n: {k: round(v, 4) for k, v in d.items()} for n, d in corpus_nll.items()},
            "seconds": round(time.time() - started, 1), "device": device.type,
            "curve": history,
        },
        "shift": shift,
    }
    write_output(base_dir, out, policy, meta, draft_meta, version, record, cfg.overwrite)
    return {"version": version, **record}


def step_stats(name: str, loss, z_ref, reward, liked) -> dict:
    """What the progress bar and the curve show: the loss, z_ref, and the reward margin
    (mean r of the liked windows - of the disliked ones, nats per training window)."""
    margin = (reward[liked].mean() - reward[~liked].mean()).item() if liked.any() and (~liked).any() else None
    return {f"{name}_loss": round(loss.item(), 4), f"{name}_z": round(z_ref.item(), 4),
            f"{name}_margin": None if margin is None else round(margin, 4)}


def _count(pieces: list[dict], heldout: bool) -> dict:
    return {"liked": sum(p["verdict"] > 0 and p["heldout"] == heldout for p in pieces),
            "disliked": sum(p["verdict"] < 0 and p["heldout"] == heldout for p in pieces)}


# --- the report -----------------------------------------------------------------------------------

def likelihood_shift(windows: RatedWindows, delta: np.ndarray) -> dict:
    """Mean per-cell log-likelihood shift (policy - reference, nats per cell) of the liked
    and the disliked pieces, on the held-out and the training pieces: each piece's shift is
    its windows' summed log-ratio over its cells, then pieces are averaged."""
    n = len(windows.pieces)
    ratio = np.bincount(windows.piece, weights=delta, minlength=n)
    cells = np.bincount(windows.piece, weights=windows.cells, minlength=n)
    per_piece = ratio / np.maximum(cells, 1)
    out = {}
    for split, held in (("heldout", True), ("train", False)):
        entry = {}
        for kind, sign in (("liked", 1), ("disliked", -1)):
            members = [i for i, p in enumerate(windows.pieces) if p["heldout"] == held and p["verdict"] == sign]
            entry[kind] = round(float(np.mean(per_piece[members])), 5) if members else None
            entry[f"{kind}_pieces"] = len(members)
        out[split] = entry
    return out


def format_report(record: dict) -> str:
    """The likelihood shift as a small table (liked should go up, disliked down)."""
    def fmt(x):
        return "     n/a" if x is None else f"{x:+.4f}"

    lines = [(f"version {record['version']} (parent {record['parent']}), "
              f"{record['kto']['steps_done']} steps in {record['kto']['seconds'] / 60:.1f} min"),
             "log-likelihood shift, nats per cell (fine-tuned - base): liked should rise, disliked fall",
             f"{'network':<9} {'pieces':<9} {'liked':>9} {'disliked':>9}"]
    for name, splits in record["shift"].items():
        for split, e in splits.items():
            lines.append(f"{name:<9} {split:<9} {fmt(e['liked']):>9} {fmt(e['disliked']):>9}   "
                         f"({e['liked_pieces']} liked, {e['disliked_pieces']} disliked)")
    for name, nll in record["kto"]["corpus_nll"].items():
        lines.append(f"{name}: corpus NLL {nll['base']:.4f} -> {nll['finetuned']:.4f} nats per cell")
    return "\n".join(lines)


# --- the output folder ----------------------------------------------------------------------------

def default_version(base_version: str, out: Path, rated_versions: list[str]) -> str:
    """``<base version>-kto<N>``, N one more than any fine-tune of the same base known here
    (the base itself, the versions in the ratings, the checkpoints beside OUT): a fine-tune
    of ``v2-kto1`` is ``v2-kto2``."""
    stem = re.sub(r"-kto\d+$", "", base_version)
    known = {base_version, *rated_versions}
    if out.parent.is_dir():
        for config in list(out.parent.glob(f"*/{CONFIG}")):
            try:
                known.add(json.loads(config.read_text()).get("version", ""))
            except (OSError, ValueError):
                continue
    numbers = [int(m.group(1)) for v in known if (m := re.fullmatch(re.escape(stem) + r"-kto(\d+)", v))]
    return f"{stem}-kto{max(numbers, default=0) + 1}"


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s/'\"]+/)*([^\s/'\"]+)")


def without_machine_paths(value):
    """``value`` (JSON-native) with every absolute path in its strings cut to its last part
    (the base's record of its own training may name the machine's folders)."""
    if isinstance(value, dict):
        return {k: without_machine_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_machine_paths(v) for v in value]
    return ABSOLUTE_PATH.sub(r"\1", value) if isinstance(value, str) else value


def write_output(base_dir: Path, out: Path, policy: dict[str, GridModel], meta: CheckpointMeta,
                 draft_meta: CheckpointMeta | None, version: str, record: dict, overwrite: bool) -> None:
    """The base's layout in OUT.tmp (fp16, its other files copied), then renamed to OUT."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    for name, source, target, base_meta in (("infiller", base_dir, tmp, meta),
                                             ("draft", base_dir / DRAFT, tmp / DRAFT, draft_meta)):
        if name not in policy:
            continue
        new_meta = copy.deepcopy(base_meta)
        new_meta.version = version
        new_meta.training = without_machine_paths({**base_meta.training, **record})
        save_checkpoint(target, policy[name], new_meta, half=True)
        for item in source.iterdir():
            if item.is_file() and item.name not in TRAINING_RUN_FILES:
                shutil.copy2(item, target / item.name)
    if out.exists() and overwrite:
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)

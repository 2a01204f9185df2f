"""Preference fine-tuning from 👍/👎 with KTO (Ethayarajh et al. 2024, "KTO: Model Alignment
as Prospect Theoretic Optimization").

    python -m composer finetune --ratings ratings.jsonl --base composer/default_model --out runs/kto

KTO needs only a binary label per piece, which is what Discord ratings are: a liked piece
(more 👍 than 👎) is *desirable*, a disliked one *undesirable*, a tie is skipped. One job a
module: the rated pieces as windows (rated_windows.py), the two likelihoods, the implied
reward and the KTO loss (kto.py), replay (replay.py), the command (cli/finetune.py); here,
top to bottom: the config, the loop, the report, the output folder.

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from composer.music import tokens as T
from composer.nn.checkpoint import (
    CONFIG,
    TRAINING_STATE,
    WEIGHTS,
    CheckpointMeta,
    default_checkpoint_path,
    save_checkpoint,
)
from composer.errors import MozartError
from composer.feedback.rated_windows import RatedWindows, rated_batch, rated_windows
from composer.feedback.kto import implied_reward, kto_loss, kto_weights, log_likelihood, score_windows
from composer.feedback.replay import REPLAY_STREAM, Replay
from composer.feedback.records import RatingsSummary, read_records
from composer.nn.folder import ComposerFolder
from composer.nn.model import GridModel, choose_device
from composer.nn.train import TrainConfig, loss_and_counts

BATCH_STREAM = 3  # the seed's random stream for the batches (1 and 2: rated_windows.py; 4: replay.py)
TRAINING_RUN_FILES = {WEIGHTS, CONFIG, TRAINING_STATE, "training_state.json", "metrics.jsonl"}  # not copied


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
    infiller, meta, draft, draft_meta = ComposerFolder(folder).networks(device)
    networks = {"infiller": infiller} if draft is None else {"infiller": infiller, "draft": draft}
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
                                             ("draft", ComposerFolder(base_dir).draft, ComposerFolder(tmp).draft, draft_meta)):
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

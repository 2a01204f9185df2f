"""Training: teach the network to fill in hidden cells of the grid.

Read top to bottom: the config, the loop (sample windows -> hide cells -> predict them ->
AdamW step), validation (masked-cell NLL per voice), checkpoints. The command is cli/train.py;
under ``--ddp`` (torchrun) the collective steps are nn/distributed.py's, and every rank trains
on its own slice of each global batch while rank 0 validates, decides on stopping and writes.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from composer.music import tokens as T
from composer.nn.checkpoint import (
    CheckpointMeta,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from composer.corpus.encoded import EncodedSplit, load_meta, load_split, manifest_path
from composer.nn.data import WindowSampler, make_mask, to_model_inputs, validation_windows
from composer.errors import MozartError
from composer.nn.model import GridModel, ModelConfig, cell_nll, choose_device
from composer.nn.originality import OriginalityIndex
from composer.nn.folder import ComposerFolder
from composer.nn.distributed import Ranks, global_batch_loss, process_group, rank_seed
from composer.nn.style_facts import label_info_from_manifest
from composer.nn.intervals import IntervalBank
from composer.nn.texture import TextureBank

DEFAULT_ALIASES = {"zelda": "dink"}  # no Zelda music is free: the closest free action-RPG answers


@dataclass
class TrainConfig:
    data: str = "data/encoded"  # output of `corpus encode`: the data root or its encoded/ folder
    window_bars: int = 16  # training window (16 bars of 4/4 = 256 frames)
    batch_size: int = 32
    lr: float = 2e-3  # peak learning rate
    min_lr: float = 1e-4  # end of the cosine decay
    weight_decay: float = 0.01
    warmup_steps: int = 100
    max_steps: int = 3000
    max_minutes: float | None = None  # stop early on a wall-clock budget (the schedule is by steps)
    steps_per_epoch: int = 200  # validation and checkpoint every this many steps
    patience: int = 4  # epochs without validation improvement before stopping
    grad_clip: float = 1.0
    max_transpose: int = 6  # augmentation: random shift within +-this many semitones
    style_dropout: float = 0.15  # drop a label so the model also learns unconditional music
    label_balance: float = 0.5  # 1 = sample labels by size, 0 = all labels equally
    val_mask_rate: float = 0.5
    val_max_windows: int = 400  # bound validation time
    seed: int = 1234
    device: str = "auto"  # auto = cuda, then mps, then cpu
    threads: int | None = None  # torch CPU threads (None = torch's default)
    aliases: dict = field(default_factory=lambda: dict(DEFAULT_ALIASES))

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        return cls(**data)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * progress))


def loss_and_counts(model: GridModel, inputs: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean NLL over the scored cells, plus per-voice NLL sums and counts."""
    logits = model(inputs["inputs"], inputs["game"], inputs["composer"], inputs["frames_per_bar"])
    per_voice = cell_nll(logits, inputs["targets"], inputs["weights"])
    counts = inputs["weights"].sum(dim=(0, 1))
    return per_voice.sum() / counts.sum().clamp(min=1), per_voice.detach(), counts.detach()


@torch.no_grad()
def evaluate(model: GridModel, split: EncodedSplit, cfg: TrainConfig, device, n_games: int, n_composers: int,
             mask_rate: float | None = None, max_windows: int | None = None) -> dict:
    """Masked-cell NLL per voice (nats per hidden cell) with a fixed random mask.

    For the causal ``lstm`` model every cell is scored from the frames before it (its
    natural next-frame NLL), since it cannot see hidden cells' futures."""
    model.eval()
    rate = cfg.val_mask_rate if mask_rate is None else mask_rate
    rng = np.random.default_rng(0)
    window = cfg.window_bars * 16
    sums, counts = torch.zeros(T.N_VOICES), torch.zeros(T.N_VOICES)
    batch: list = []

    def flush():
        nonlocal sums, counts
        B = len(batch)
        tokens = np.zeros((B, window, T.N_VOICES), np.uint8)
        valid = np.zeros((B, window), bool)
        for b, (i, w) in enumerate(batch):
            tokens[b, : len(w)] = w
            valid[b, : len(w)] = True
        idx = [i for i, _ in batch]
        data = {"tokens": tokens, "valid": valid, "game": split.game[idx], "composer": split.composer[idx],
                "frames_per_bar": split.frames_per_bar[idx]}
        hidden = None if model.config.causal else rng.random(tokens.shape) < rate
        inputs = to_model_inputs(data, hidden, n_games, n_composers, 0.0, rng, device)
        _, s, c = loss_and_counts(model, inputs)
        sums += s.cpu()
        counts += c.cpu()
        batch.clear()

    limit = max_windows or cfg.val_max_windows
    for n, item in enumerate(validation_windows(split, window)):
        if n >= limit:
            break
        batch.append(item)
        if len(batch) == 16:
            flush()
    if batch:
        flush()
    model.train()
    per_voice = (sums / counts.clamp(min=1)).tolist()
    return {"nll": float(sums.sum() / counts.sum().clamp(min=1)),
            "nll_per_voice": dict(zip(T.VOICES, [round(x, 4) for x in per_voice]))}


def train(cfg: TrainConfig, model_cfg: ModelConfig, out: Path, resume: bool = False, command: str = "",
          quiet: bool = False, ddp: bool = False) -> dict:
    """Train and write the best checkpoint to ``out`` (and ``out/last`` for resuming).

    ``ddp=True``: this process is one rank of a ``torchrun`` job (see the module's docstring);
    every rank returns rank 0's summary."""
    with process_group(ddp, cfg.device) as ranks:
        return _train(cfg, model_cfg, out, resume, command, quiet, ranks)


def _train(cfg: TrainConfig, model_cfg: ModelConfig, out: Path, resume: bool, command: str, quiet: bool,
           ranks: Ranks) -> dict:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(rank_seed(cfg.seed, ranks.rank))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = ranks.device if ranks.active else choose_device(cfg.device)
    if cfg.batch_size % ranks.world:
        raise MozartError(f"The batch size ({cfg.batch_size}) must split evenly among the {ranks.world} processes.")
    batch_size = cfg.batch_size // ranks.world  # this rank's share of the global batch
    train_split = load_split(cfg.data, "train")
    valid_split = load_split(cfg.data, "valid")
    games, composers = train_split.games, train_split.composers
    model_cfg.n_games, model_cfg.n_composers = len(games), len(composers)

    model = GridModel(model_cfg).to(device)  # the same seed: the same start on every rank
    if ranks.rank:  # but each rank its own dropout
        torch.manual_seed(int(np.random.SeedSequence(cfg.seed, spawn_key=(ranks.rank,)).generate_state(1)[0]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    sampler = WindowSampler(train_split, cfg.window_bars * 16, cfg.max_transpose, cfg.label_balance,
                            seed=rank_seed(cfg.seed, ranks.rank))
    progress = {"step": 0, "best_val": float("inf"), "bad_epochs": 0, "seconds": 0.0, "history": []}
    last_dir = out / "last"
    # Under DDP every rank reads OUT/last itself (OUT must be visible to all), as rank 0 decides.
    if resume and ranks.share((last_dir / "training_state.json").exists()):
        loaded, _ = load_checkpoint(last_dir, device)
        model.load_state_dict(loaded.state_dict())
        progress = load_training_state(last_dir, optimizer)
        rng = np.random.default_rng(rank_seed([cfg.seed, progress["step"]], ranks.rank))
        sampler.rng = np.random.default_rng(rank_seed([cfg.seed, progress["step"], 1], ranks.rank))
        if ranks.main:
            print(f"resumed at step {progress['step']} (best validation NLL {progress['best_val']:.4f})")
    net = model
    if ranks.active:  # DDP broadcasts rank 0's weights now and averages the gradients in backward()
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    meta = CheckpointMeta(
        model=model_cfg, games=games, composers=composers, aliases=cfg.aliases,
        label_info=label_info_from_manifest(manifest_path(cfg.data)),
        manifest_hash=load_meta(cfg.data)["manifest_sha256"],
        version=f"{out.name}-{time.strftime('%Y%m%d')}",
    )
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
    log = (out / "metrics.jsonl").open("a") if ranks.main else None
    use_amp = device.type == "cuda"
    model.train()
    started = time.time() - progress["seconds"]
    bar = tqdm(total=cfg.max_steps, initial=progress["step"], disable=quiet or not ranks.main, dynamic_ncols=True,
               desc="train")
    frames_per_step = cfg.batch_size * cfg.window_bars * 16
    stop_reason = "max_steps"
    while progress["step"] < cfg.max_steps:
        step = progress["step"]
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        batch = sampler.sample(batch_size)
        hidden = None if model_cfg.causal else \
            make_mask(batch_size, batch["tokens"].shape[1], batch["frames_per_bar"], rng)
        inputs = to_model_inputs(batch, hidden, len(games), len(composers), cfg.style_dropout, rng, device)
        t0 = time.time()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=use_amp):
            loss, _, counts = loss_and_counts(net, inputs)
        objective = loss
        if ranks.active:
            loss, objective = global_batch_loss(loss, counts, ranks.world)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        progress["step"] = step = step + 1
        elapsed = time.time() - started
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", fps=f"{frames_per_step / max(1e-6, time.time() - t0):.0f}")
        if log:
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 4), "lr": lr_at(step - 1, cfg),
                                  "grad_norm": round(float(grad_norm), 3), "seconds": round(elapsed, 1)}) + "\n")

        out_of_time = cfg.max_minutes is not None and elapsed > cfg.max_minutes * 60
        if ranks.active and cfg.max_minutes is not None:
            out_of_time = ranks.agree(out_of_time)  # rank 0's clock: every rank validates and stops together
        if step % cfg.steps_per_epoch == 0 or step == cfg.max_steps or out_of_time:
            stop = None
            if ranks.main:  # the others wait for its decision
                result = evaluate(model, valid_split, cfg, device, len(games), len(composers))
                progress["seconds"] = time.time() - started
                record = {"step": step, "seconds": round(progress["seconds"], 1), "val_nll": round(result["nll"], 4),
                          "val_nll_per_voice": result["nll_per_voice"], "train_loss": round(loss.item(), 4)}
                progress["history"].append(record)
                log.write(json.dumps({"validation": record}) + "\n")
                log.flush()
                improved = result["nll"] < progress["best_val"] - 1e-4
                if improved:
                    progress["best_val"], progress["bad_epochs"] = result["nll"], 0
                    meta.training = _training_summary(cfg, command, progress, device, record, model, ranks)
                    save_checkpoint(out, model, meta)
                else:
                    progress["bad_epochs"] += 1
                save_checkpoint(last_dir, model, meta)
                save_training_state(last_dir, optimizer, progress)
                bar.write(f"step {step}: validation NLL {result['nll']:.4f} "
                          f"({'best' if improved else 'no improvement'}; {progress['seconds'] / 60:.1f} min)")
                if progress["bad_epochs"] >= cfg.patience:
                    stop = "early_stopping"
                elif out_of_time:
                    stop = "time_budget"
            stop = ranks.share(stop)
            if stop:
                stop_reason = stop
                break
    bar.close()
    summary = None
    if ranks.main:
        log.close()
        # Final summary in the best checkpoint's config.
        best_model, best_meta = load_checkpoint(out)
        best_meta.training["stop_reason"] = stop_reason
        best_meta.training["total_seconds"] = round(time.time() - started, 1)
        best_meta.training["curve"] = progress["history"]
        save_checkpoint(out, best_model, best_meta)
        # The originality index, the bar textures and the intervals travel with the model: the corpus this model saw.
        folder = ComposerFolder(out)
        OriginalityIndex.from_encoded(cfg.data, ("train",)).save(folder.originality)
        train_split = load_split(cfg.data, "train")
        TextureBank.from_split(train_split).save(folder.textures)
        IntervalBank.from_split(train_split).save(folder.intervals)
        summary = best_meta.training
    return ranks.share(summary)


def _training_summary(cfg, command, progress, device, record, model, ranks: Ranks) -> dict:
    summary = {
        "command": command,
        "train_config": asdict(cfg),
        "best_step": record["step"],
        "seconds_to_best": record["seconds"],
        "val_nll": record["val_nll"],
        "val_nll_per_voice": record["val_nll_per_voice"],
        "parameters": model.num_parameters(),
        "device": str(device),
        "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
                    + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else ""),
        "torch": torch.__version__,
    }
    if ranks.active:
        summary["hardware"] += f" (x {ranks.world} processes)"
        summary["ddp"] = {"processes": ranks.world, "backend": dist.get_backend(),
                          "batch_per_process": cfg.batch_size // ranks.world}
    return summary


def load_config_file(path: str | None) -> tuple[TrainConfig, ModelConfig]:
    if not path:
        return TrainConfig(), ModelConfig()
    data = json.loads(Path(path).read_text())
    return TrainConfig.from_dict(data.get("train", {})), ModelConfig.from_dict(data.get("model", {}))

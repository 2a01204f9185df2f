"""Training: teach the network to fill in hidden cells of the grid.

Read top to bottom: the config, the loop (sample windows -> hide cells -> predict them ->
AdamW step), validation (masked-cell NLL per voice), checkpoints, the CLI.

    python -m composer train --config configs/default.json --out checkpoints/NAME
    python -m composer train --recipe configs/v2.json --out runs/v2     (several stages: recipe.py)
    torchrun --nproc_per_node 4 -m composer train --ddp --config ... --out ...   (DistributedDataParallel)

With ``--ddp`` every process started by ``torchrun`` trains on its own slice of each batch
(``batch_size`` stays the global batch, split evenly; each rank draws windows and masks from
its own random stream) and DDP averages the gradients, scaled so the step is the one a single
process would take on the whole global batch. Rank 0 validates, decides on stopping (the
others follow its decision), writes the checkpoints, the metrics and the progress bar.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path

import click
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from composer.music import tokens as T
from composer.nn.checkpoint import (
    ORIGINALITY_INDEX,
    TEXTURES,
    CheckpointMeta,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from composer.corpus.encoded import EncodedSplit, load_meta, load_split, manifest_path
from composer.corpus.store import read_manifest
from composer.nn.data import WindowSampler, make_mask, to_model_inputs, validation_windows
from composer.errors import MozartError
from composer.music.grid import DEFAULT_TIME_SIGNATURE, frames_per_bar, parse_time_signature
from composer.nn.model import ARCHITECTURES, MAX_FRAMES_PER_BAR, GridModel, ModelConfig, cell_nll, choose_device
from composer.nn.originality import OriginalityIndex
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


def label_info_from_manifest(manifest: Path) -> dict:
    """Per label: pieces, hours, source and licence (for /styles and the card), and the
    style's habits that generation draws from: its metres and keys (share of pieces) and its
    tempi (median and quartiles)."""
    info: dict[str, dict] = {}
    tempos: dict[str, list] = {}
    metres: dict[str, Counter] = {}
    keys: dict[str, Counter] = {}
    for row in read_manifest(manifest):
        for kind in ("game", "composer"):
            label = row.get(kind)
            if not label:
                continue
            entry = info.setdefault(label, {"kind": kind, "pieces": 0, "hours": 0.0, "sources": [], "licences": []})
            entry["pieces"] += 1
            entry["hours"] += row["seconds"] / 3600
            tempos.setdefault(label, []).append(float(row["tempo"]))
            metres.setdefault(label, Counter())[row["time_signature"]] += 1
            if row.get("key"):
                keys.setdefault(label, Counter())[row["key"]] += 1
            source = str(row.get("package") or row.get("source", "")).split(":")[0].split("/")[0]
            if source and source not in entry["sources"] and len(entry["sources"]) < 3:
                entry["sources"].append(source)
            licence = row.get("licence")
            if licence and licence not in entry["licences"] and len(entry["licences"]) < 3:
                entry["licences"].append(licence)
    for label, entry in info.items():
        entry["hours"] = round(entry["hours"], 2)
        entry.update(style_habits(tempos[label], metres[label], keys.get(label)))
    return info


MIN_FRAMES_PER_BAR = 6  # 3/8; shorter "bars" (1/8, 2/8) are MIDI files' bogus metres, not a habit


def style_habits(tempos: list[float], metres: Counter, keys: Counter | None = None, min_share: float = 0.03) -> dict:
    """``tempo`` (median), ``tempo_range`` (quartiles), ``metres`` ({"3/4": share, ...}) and
    ``keys`` ({"D minor": share, ...}). Metres and keys of fewer than ``min_share`` of the
    pieces are left out (a style's rarities), as are metres whose bars are too short or too
    long to compose in."""
    metres = Counter({m: n for m, n in metres.items()
                      if MIN_FRAMES_PER_BAR <= frames_per_bar(parse_time_signature(m)) <= MAX_FRAMES_PER_BAR})
    metres = metres or Counter({DEFAULT_TIME_SIGNATURE: 1})
    total = sum(metres.values())
    common = {m: n / total for m, n in metres.most_common() if n / total >= min_share} or {metres.most_common(1)[0][0]: 1.0}
    kept = sum(common.values())
    habits = {"tempo": float(np.median(tempos)),
              "tempo_range": [float(np.percentile(tempos, 25)), float(np.percentile(tempos, 75))],
              "metres": {m: round(share / kept, 3) for m, share in common.items()}}
    if keys:
        total = sum(keys.values())
        usual = {k: n for k, n in keys.most_common() if n / total >= min_share}
        habits["keys"] = {k: round(n / sum(usual.values()), 3) for k, n in usual.items()}
    return habits


@dataclass
class Ranks:
    """Where this process stands in a ``torchrun`` job (a lone process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # under DDP: this rank's device (cuda:LOCAL_RANK or cpu)
    active: bool = False  # True under --ddp, even with a single process

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, value):
        """Rank 0's ``value`` (anything picklable) on every rank."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank: one small tensor, cheap enough for every step."""
        if not self.active:
            return flag
        tensor = torch.tensor([float(flag)], device=self.device)
        dist.broadcast(tensor, src=0)
        return bool(tensor.item())


def ddp_world_size() -> int:
    """The number of processes ``torchrun`` started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(enabled: bool, device_name: str = "auto"):
    """Join the ``torchrun`` job for the block: gloo on the CPU, nccl on CUDA (one GPU per
    process, ``LOCAL_RANK``'s). Yields ``Ranks``. A group already open (a recipe's stages
    share one) is used and left open; one opened here is destroyed at the end, errors included."""
    if not enabled:
        yield Ranks()
        return
    if "LOCAL_RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise MozartError("--ddp trains as one process of a torchrun job: "
                          "torchrun --nproc_per_node N -m composer train --ddp ...")
    local_rank = int(os.environ["LOCAL_RANK"])
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise MozartError(f"--ddp trains on CUDA GPUs or on the CPU, not on {device.type}.")
    created = not dist.is_initialized()
    if created:  # the others wait while rank 0 validates and saves: allow that 30 minutes (nccl's default is 10)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), device, True)
    except BaseException:
        if created and dist.is_initialized():
            dist.destroy_process_group()
        raise
    if created and dist.is_initialized():
        # every rank finished (rank 0 writes last) before the group goes: a gloo rank whose peer
        # tore its connections down first could abort at exit ("terminate called", exit -6)
        dist.barrier()
        dist.destroy_process_group()


def rank_seed(entropy, rank: int):
    """Rank 0 keeps the single-process seed (a one-process run is unchanged); every other
    rank gets an independent stream of the same seed."""
    return entropy if rank == 0 else np.random.SeedSequence(entropy, spawn_key=(rank,))


def global_batch_loss(loss: torch.Tensor, counts: torch.Tensor, world: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Under DDP: the global batch's mean NLL per scored cell (what one process would log for
    the whole batch), and the objective to backpropagate: this rank's NLL sum over the global
    cell count, times ``world``, since DDP averages the ranks' gradients. Their average is then
    exactly the gradient of the global mean, whatever the split of the scored cells."""
    local_count = counts.sum()
    local_sum = loss * local_count.clamp(min=1)
    totals = torch.stack([local_sum.detach().float(), local_count.float()])
    dist.all_reduce(totals)
    total_count = totals[1].clamp(min=1)
    return totals[0] / total_count, local_sum * (world / total_count)


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
        # The originality index and the bar textures travel with the model: the corpus this model saw.
        OriginalityIndex.from_encoded(cfg.data, ("train",)).save(out / ORIGINALITY_INDEX)
        TextureBank.from_split(load_split(cfg.data, "train")).save(out / TEXTURES)
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


@click.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="JSON with 'train' and 'model' sections.")
@click.option("--recipe", "recipe_path", type=click.Path(exists=True, dir_okay=False),
              help="JSON listing training stages (configs/v2.json): runs them all, resuming what was stopped, "
                   "and assembles the composer in OUT/model.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Checkpoint folder to write.")
@click.option("--data", help="The data root or its encoded/ folder (default: data/encoded).")
@click.option("--arch", type=click.Choice(ARCHITECTURES), help="Override the architecture.")
@click.option("--hidden", type=int, help="Override the hidden size.")
@click.option("--max-steps", type=int, help="Override the number of optimisation steps.")
@click.option("--max-minutes", type=float, help="Stop after this many minutes (wall clock).")
@click.option("--batch-size", type=int, help="Override the batch size.")
@click.option("--device", help="cuda, mps or cpu (default: auto).")
@click.option("--resume", is_flag=True, help="Continue from OUT/last if present.")
@click.option("--ddp", is_flag=True,
              help="Distributed data-parallel training, one process per GPU (nccl) or CPU slot (gloo), "
                   "started by torchrun: `torchrun --nproc_per_node 4 -m composer train --ddp --config ... "
                   "--out ...`. The batch size stays the global batch, split evenly among the processes; "
                   "rank 0 validates and writes OUT (which every process must see, to --resume).")
def train_command(config_path, recipe_path, out, data, arch, hidden, max_steps, max_minutes, batch_size, device, resume,
                  ddp):
    """Train a composer model on the encoded corpus."""
    _train_or_recipe(config_path, recipe_path, out, data, arch, hidden, max_steps, max_minutes, batch_size, device,
                     resume, ddp)
    if ddp:
        leave_torchrun()


def leave_torchrun() -> None:
    """End a --ddp process once its work is saved and said, without the interpreter's teardown: there,
    torch's gloo threads abort about one run in four ("terminate called without an active exception",
    exit -6), which torchrun reports as a failed job although everything was written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _train_or_recipe(config_path, recipe_path, out, data, arch, hidden, max_steps, max_minutes, batch_size, device,
                     resume, ddp) -> None:
    command = "python -m composer " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if ddp_world_size() > 1 and not ddp:
        raise click.UsageError(f"torchrun started {ddp_world_size()} processes: add --ddp, or each would train "
                               "alone and overwrite the others' checkpoints.")
    main_rank = int(os.environ.get("RANK", "0")) == 0 or not ddp
    if recipe_path:
        from composer.nn.recipe import run_recipe

        if config_path or arch or hidden or max_steps or max_minutes or batch_size:
            raise click.UsageError("--recipe takes its settings from the recipe: only --out, --data, --device "
                                   "and --ddp apply.")
        try:
            folder = run_recipe(recipe_path, out, data=data, device=device, command=command, ddp=ddp,
                                quiet=not main_rank)
        except MozartError as e:
            raise click.ClickException(str(e)) from None
        if main_rank:
            click.echo(f"composer assembled in {folder}")
        return
    cfg, model_cfg = load_config_file(config_path)
    for name, value in (("data", data), ("max_steps", max_steps), ("max_minutes", max_minutes),
                        ("batch_size", batch_size), ("device", device)):
        if value is not None:
            setattr(cfg, name, value)
    if arch:
        model_cfg.arch = arch
    if hidden:
        model_cfg.hidden = hidden
    model_cfg.__post_init__()
    try:
        load_meta(cfg.data)
    except MozartError as e:
        raise click.ClickException(str(e)) from None
    try:
        summary = train(cfg, model_cfg, Path(out), resume=resume, command=command, ddp=ddp)
    except MozartError as e:
        raise click.ClickException(str(e)) from None
    if not main_rank:
        return
    click.echo(f"best validation NLL {summary['val_nll']:.4f} at step {summary['best_step']} "
               f"({summary['seconds_to_best'] / 60:.1f} min); stopped: {summary['stop_reason']}")
    click.echo(f"checkpoint: {out}")

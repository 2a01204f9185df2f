"""`python -m composer train`: one network from a config, or a whole composer from a recipe.

    python -m composer train --config configs/default.json --out checkpoints/NAME
    python -m composer train --recipe configs/v2.json --out runs/v2     (several stages: nn/recipe.py)
    torchrun --nproc_per_node 4 -m composer train --ddp --config ... --out ...   (nn/distributed.py)
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import click

from composer.corpus.encoded import load_meta
from composer.errors import MozartError
from composer.nn.distributed import ddp_world_size, leave_torchrun
from composer.nn.model import ARCHITECTURES
from composer.nn.recipe import run_recipe
from composer.nn.train import load_config_file, train


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


def _train_or_recipe(config_path, recipe_path, out, data, arch, hidden, max_steps, max_minutes, batch_size, device,
                     resume, ddp) -> None:
    command = "python -m composer " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if ddp_world_size() > 1 and not ddp:
        raise click.UsageError(f"torchrun started {ddp_world_size()} processes: add --ddp, or each would train "
                               "alone and overwrite the others' checkpoints.")
    main_rank = int(os.environ.get("RANK", "0")) == 0 or not ddp
    if recipe_path:
        if config_path or arch or hidden or max_steps or max_minutes or batch_size:
            raise click.UsageError("--recipe takes its settings from the recipe: only --out, --data, --device "
                                   "and --ddp apply.")
        try:
            folder = run_recipe(recipe_path, out, data=data, device=device, command=command, ddp=ddp,
                                quiet=not main_rank)
        except MozartError as e:
            raise click.ClickException(str(e)) from None
        if main_rank:
            from composer.generate.calibrate import calibrate_folder

            click.echo("calibrating: the intervals its networks write alone (generate/calibrate.py, a few minutes)")
            calibrate_folder(folder)
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

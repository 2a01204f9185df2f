"""`python -m composer ratings reward`: fit the reward model on exported ratings, optionally into a model
folder."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import click

from composer.feedback.records import read_records
from composer.feedback.reward_fitting import evaluate_reward
from composer.generate.styles import StyleCatalog
from composer.judge.reward import DEFAULT_L2, RewardError


def _catalog_of(folder: Path | None) -> StyleCatalog | None:
    """The style labels of the checkpoint in ``folder`` (its config.json), if there is one."""
    from composer.nn.checkpoint import CONFIG, CheckpointMeta

    if folder is None or not (folder / CONFIG).exists():
        return None
    return StyleCatalog.from_meta(CheckpointMeta.from_dict(json.loads((folder / CONFIG).read_text())))

def _fmt(x: float, pct: bool = False) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{100 * x:.1f} %" if pct else f"{x:.3f}"


@click.command("reward")
@click.option("--ratings", "ratings_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ratings export (JSON lines, from `mozart ratings export`).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the reward model (JSON).")
@click.option("--into", type=click.Path(file_okay=False, path_type=Path),
              help="Also copy it to CHECKPOINT_FOLDER/reward.json, where composing with best_of finds it.")
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path),
              help="Read the style labels from this checkpoint (default: the --into folder, else the shipped model).")
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="Share of the pieces held out to measure the model.")
@click.option("--seed", default=0, show_default=True, type=int, help="Chooses the held-out pieces.")
@click.option("--l2", default=DEFAULT_L2, show_default=True, type=click.FloatRange(0, None),
              help="Weight of the L2 penalty (larger = simpler model).")
def reward_command(ratings_file: Path, out: Path, into: Path | None, checkpoint: Path | None, holdout: float,
                   seed: int, l2: float) -> None:
    """Learn what people like: a model of P(👍) from a piece's statistics and style, measured
    on held-out pieces against always guessing the most common answer."""
    from composer.nn.checkpoint import CONFIG, default_checkpoint_path
    from composer.nn.folder import ComposerFolder

    if into is not None and not (into / CONFIG).exists():
        raise RewardError(f"No Mozart checkpoint in {into} (expected {CONFIG}); --into names a model folder.")
    records = read_records(ratings_file)
    catalog = _catalog_of(checkpoint or into or default_checkpoint_path())
    model = evaluate_reward(records, holdout=holdout, seed=seed, catalog=catalog, l2=l2)
    model.summary.ratings_sha256 = hashlib.sha256(ratings_file.read_bytes()).hexdigest()
    s = model.summary
    click.echo(f"{s.ratings} ratings of {s.pieces} pieces ({s.liked} 👍); held out {s.heldout_pieces} pieces "
               f"({s.heldout_ratings} ratings), seed {s.seed}")
    click.echo(f"{'':24s}{'held-out accuracy':>18s}{'log-loss':>10s}")
    click.echo(f"{'reward model':24s}{_fmt(s.heldout_accuracy, True):>18s}{_fmt(s.heldout_log_loss):>10s}")
    click.echo(f"{'majority vote (baseline)':24s}{_fmt(s.baseline_accuracy, True):>18s}{_fmt(s.baseline_log_loss):>10s}")
    if not s.heldout_accuracy > s.baseline_accuracy:
        click.secho("warning: the model does no better than the majority vote on held-out pieces; "
                    "best_of would choose almost at random", fg="yellow", err=True)
    model.save(out)
    click.echo(f"wrote {out} (refit on all {s.ratings} ratings)")
    if into is not None:
        target = ComposerFolder(into).install_reward(out)
        click.echo(f"copied to {target}: composing with best_of > 1 now uses it")

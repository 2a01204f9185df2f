"""`python -m composer finetune`: fine-tune a model folder on rated pieces (KTO), into a new folder."""

from __future__ import annotations

import click

from composer.errors import MozartError
from composer.feedback.finetune import FinetuneConfig, finetune, format_report


# --- the command ----------------------------------------------------------------------------------

def _default(name: str):
    """An option's default is the config's: declared once."""
    return FinetuneConfig.__dataclass_fields__[name].default


@click.command("finetune")
@click.option("--ratings", required=True, type=click.Path(dir_okay=False),
              help="Ratings export (mozart ratings export --out FILE).")
@click.option("--base", type=click.Path(file_okay=False), help="Checkpoint to start from (default: the shipped model).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint folder to write.")
@click.option("--data", default=_default("data"), show_default=True, help="Encoded corpus for replay.")
@click.option("--replay", default=_default("replay"), show_default=True, type=float,
              help="Weight of the corpus replay loss (0: the ratings alone, no corpus needed).")
@click.option("--steps", default=_default("steps"), show_default=True, type=int, help="Optimisation steps.")
@click.option("--beta", default=_default("beta"), show_default=True, type=float,
              help="KTO's beta, for rewards in nats per 16-bar window.")
@click.option("--lr", default=_default("lr"), show_default=True, type=float, help="Learning rate (AdamW).")
@click.option("--masks", default=_default("masks"), show_default=True, type=int, help="Masks of the infiller's pseudo-likelihood.")
@click.option("--holdout", default=_default("holdout"), show_default=True, type=float,
              help="Share of the rated pieces (per verdict) kept out of training, for the report.")
@click.option("--seed", default=_default("seed"), show_default=True, type=int)
@click.option("--batch-size", default=_default("batch_size"), show_default=True, type=int,
              help="Rated windows (and corpus windows) per step.")
@click.option("--device", default=_default("device"), show_default=True, help="cuda, mps or cpu (auto: the best available).")
@click.option("--threads", type=int, help="Torch CPU threads (on a busy 2-core machine 1 is several times faster).")
@click.option("--max-minutes", type=float, help="Stop after this many minutes (wall clock).")
@click.option("--version", "version", help="Version of the new model (default: <base version>-kto<N>).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def finetune_command(**options):
    """Fine-tune a composer on 👍/👎 ratings with KTO (both networks of a v2 composer)."""
    cfg = FinetuneConfig(**options)
    try:
        record = finetune(cfg)
    except MozartError as e:
        raise click.ClickException(str(e)) from None
    click.echo(format_report(record))
    click.echo(f"checkpoint: {cfg.out}")

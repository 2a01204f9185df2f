"""`python -m composer card`: write the model card of a model folder, and ship the folder (--ship)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.nn.card import build_card


@click.command("card")
@click.option("--checkpoint", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--data", default="data/encoded", show_default=True, type=click.Path(file_okay=False),
              help="The data root or its encoded/ folder.")
@click.option("--out", default="MODEL_CARD.md", show_default=True)
@click.option("--ship", type=click.Path(file_okay=False), help="Also write an fp16 copy of the checkpoint here.")
def card_command(checkpoint, data, out, ship):
    """Write the model card (and optionally an fp16 copy for shipping)."""
    checkpoint = Path(checkpoint)
    if ship:
        from composer.nn.folder import ComposerFolder

        shipped = ComposerFolder(checkpoint).ship(ship)
        checkpoint = shipped.path
        click.echo(f"fp16 copy in {ship}: {shipped.weights_mb():.1f} MB of weights")
    Path(out).write_text(build_card(checkpoint, Path(data)))
    click.echo(f"wrote {out}")
    summary = json.loads((checkpoint / "config.json").read_text())["training"]
    click.echo(f"validation NLL at training time: {summary.get('val_nll')}")

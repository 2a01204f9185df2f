"""`python -m composer textures`: (re)build the bar textures of a model folder from its corpus."""

from __future__ import annotations

from pathlib import Path

import click

from composer.nn.folder import ComposerFolder
from composer.nn.texture import TextureBank


@click.command("textures")
@click.option("--checkpoint", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Model folder to add textures.npz to.")
@click.option("--data", default="data/encoded", show_default=True, help="The encoded corpus it was trained on.")
def textures_command(folder: Path, data: str) -> None:
    """Write CHECKPOINT/textures.npz: the bar textures of the training split, for the labels
    the checkpoint knows (what texture plans are drawn from)."""
    from composer.nn.checkpoint import load_checkpoint
    from composer.corpus.encoded import load_split

    _, meta = load_checkpoint(folder, "cpu")
    bank = TextureBank.from_split(load_split(data, "train"), meta.games + meta.composers)
    target = ComposerFolder(folder).textures
    bank.save(target)
    click.echo(f"{target}: {len(bank.piece_label)} pieces, {len(bank.onsets)} bars, "
               f"{len(bank.labels)} labels ({target.stat().st_size / 1e3:.0f} kB)")

"""`python -m composer textures`: (re)build the style habits a model folder composes by from its
corpus: the bar textures (textures.npz) and the melodic intervals (intervals.npz)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.nn.folder import ComposerFolder
from composer.nn.intervals import IntervalBank
from composer.nn.texture import TextureBank


@click.command("textures")
@click.option("--checkpoint", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Model folder to add textures.npz and intervals.npz to.")
@click.option("--data", default="data/encoded", show_default=True, help="The encoded corpus it was trained on.")
def textures_command(folder: Path, data: str) -> None:
    """Write CHECKPOINT/textures.npz, the bar textures of the training split for the labels the
    checkpoint knows (what texture plans are drawn from), and CHECKPOINT/intervals.npz, the
    split's melodic intervals per label and voice (what the lines keep to)."""
    from composer.nn.checkpoint import load_checkpoint
    from composer.corpus.encoded import load_split

    _, meta = load_checkpoint(folder, "cpu")
    split = load_split(data, "train")
    into = ComposerFolder(folder)
    bank = TextureBank.from_split(split, meta.games + meta.composers)
    bank.save(into.textures)
    click.echo(f"{into.textures}: {len(bank.piece_label)} pieces, {len(bank.onsets)} bars, "
               f"{len(bank.labels)} labels ({into.textures.stat().st_size / 1e3:.0f} kB)")
    intervals = IntervalBank.from_split(split)
    intervals.save(into.intervals)
    click.echo(f"{into.intervals}: {int(intervals.counts[-1].sum())} intervals, {len(intervals.labels)} labels "
               f"({into.intervals.stat().st_size / 1e3:.0f} kB)")

"""`python -m composer textures`: (re)build the style habits a model folder composes by from its
corpus: the bar textures (textures.npz) and the intervals (intervals.npz), calibrated by the
intervals its networks write on their own."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from composer.generate.calibrate import PIECES_PER_LABEL, calibrate_folder
from composer.nn.folder import ComposerFolder
from composer.nn.intervals import IntervalBank
from composer.nn.texture import TextureBank


@click.command("textures")
@click.option("--checkpoint", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="Model folder to add textures.npz and intervals.npz to.")
@click.option("--data", default="data/encoded", show_default=True, help="The encoded corpus it was trained on.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Count the intervals the folder's networks write on their own (about two minutes).")
@click.option("--pieces-per-label", type=click.IntRange(1, 200), default=PIECES_PER_LABEL, show_default=True,
              help="Pieces composed per label to calibrate by.")
def textures_command(folder: Path, data: str, calibrate: bool, pieces_per_label: int) -> None:
    """Write CHECKPOINT/textures.npz, the bar textures of the training split for the labels the
    checkpoint knows (what texture plans are drawn from), and CHECKPOINT/intervals.npz, the
    split's melodic and vertical intervals per label and voice (what the lines and chords keep
    to), calibrated by the networks' own."""
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
    if calibrate:
        with tqdm(desc="calibrating", unit="piece", dynamic_ncols=True, leave=False) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            intervals = calibrate_folder(folder, pieces_per_label=pieces_per_label, progress=progress)
    click.echo(f"{into.intervals}: {int(intervals.counts[-1].sum())} melodic intervals, {len(intervals.labels)} "
               f"labels, {'calibrated' if intervals.own else 'not calibrated'} "
               f"({into.intervals.stat().st_size / 1e3:.0f} kB)")

"""`python -m composer corpus ...`: build, inspect and encode the training corpus."""

from __future__ import annotations

from pathlib import Path

import click

from composer.corpus import DATA_ENV
from composer.corpus.sources import SOURCES

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=DATA_ENV,
    default="data",
    show_default=True,
    help=f"Data folder (or ${DATA_ENV}); the corpus goes to DATA/corpus, the arrays to DATA/encoded.",
)


@click.group()
def corpus() -> None:
    """Build the training corpus (game MIDI, classical scores, folk tunes, your folders) and encode it."""


@corpus.command()
@data_option
@click.option("--only", "only", multiple=True, metavar="LABEL", help="Build only this label (repeatable): doom, bach, zelda...")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of downloaded .deb files, or a tree they were unpacked into (for machines without apt-get).",
)
@click.option("--jobs", type=click.IntRange(1, 64), default=None, help="Processes for score parsing (default: all cores).")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(SOURCES),
    help="Build only these sources (repeatable; default: all).",
)
@click.option("--palestrina-cap", type=click.IntRange(0), default=300, show_default=True, help="Palestrina pieces to use (of 1318).")
@click.option("--non-commercial", is_flag=True,
              help="Also use folk collections licensed for non-commercial use only (the Essen songs).")
@click.option("--force", is_flag=True, help="Re-import everything, even what is up to date.")
@click.option("--refresh", is_flag=True, help="Download the packages again (newer versions) instead of using the cache.")
def build(data_dir: Path, only, from_dir, jobs, sources, palestrina_cap, non_commercial, force, refresh) -> None:
    """Fetch and import every source into DATA/corpus (cached: a second run does nothing)."""
    from composer.corpus.build import build_corpus

    report = build_corpus(
        data_dir,
        only=tuple(only),
        from_dir=from_dir,
        jobs=jobs,
        sources=tuple(sources) or SOURCES,
        palestrina_cap=palestrina_cap,
        non_commercial=non_commercial,
        force=force,
        refresh=refresh,
    )
    if report.nothing_to_do:
        click.echo(f"nothing to do: {report.units_skipped} sources already up to date in {data_dir / 'corpus'}.")
    else:
        click.echo(
            f"corpus: {report.added} pieces added, {report.removed} removed, {report.duplicates} duplicates skipped, "
            f"{report.units_skipped} sources up to date ({report.seconds:.0f} s)."
        )
    if report.warnings:
        click.secho(f"{len(report.warnings)} warnings (files skipped are named above).", fg="yellow")
    click.echo(f"next: python -m composer corpus stats --data {data_dir}")


@corpus.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the per-label numbers as JSON.")
def stats(data_dir: Path, as_json: bool) -> None:
    """Pieces, bars and hours per game and composer label."""
    from composer.corpus.stats import count_remix_inputs, format_stats, load_entries, stats_json

    entries = load_entries(data_dir)
    if not entries:
        click.secho(f"error: no corpus in {data_dir / 'corpus'}.", fg="red", err=True)
        click.secho("hint: run `python -m composer corpus build` first.", fg="yellow", err=True)
        raise SystemExit(1)
    click.echo(stats_json(entries) if as_json else format_stats(entries, count_remix_inputs(data_dir)))


@corpus.command("module")
@data_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--roll", "roll", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the module's notes above the grid they became (PNG; first song, 8 bars).")
@click.option("--bars", type=click.IntRange(1, 64), default=8, show_default=True, help="Bars the picture shows.")
def module(data_dir: Path, path: Path, roll: Path | None, bars: int) -> None:
    """How a tracker module (MOD, XM, S3M, IT, or a game archive holding some) becomes grid pieces."""
    from composer.corpus.archives import ArchiveError, modules_in
    from composer.corpus.module_grid import song_piece
    from composer.corpus.modules import read_module
    from composer.corpus.sources.tracker import ensure_libxmp
    from composer.evaluate.tracker_roll import describe_song, plot_reduction
    from composer.errors import MozartError

    try:
        ensure_libxmp(data_dir)
        inner = modules_in(path.name, path.read_bytes())
        if not inner:
            raise MozartError(f"{path.name} is not a module or an archive of modules (.mod .xm .s3m .it .stm .zik .dat).")
        for name, data in inner:
            mod = read_module(data, name)
            click.echo(f"{name}: {mod.format}, {mod.channels} channels, {len(mod.songs)} song(s)")
            for k, song in enumerate(mod.songs):
                piece = song_piece(mod, song)
                click.echo(f"song {k + 1}: {describe_song(mod, song, piece)}")
                if roll and piece is not None:
                    click.echo(f"wrote {plot_reduction(mod, song, piece, roll, bars=bars, title=name)}")
                    roll = None
    except (MozartError, ArchiveError) as e:
        click.secho(f"error: {e}", fg="red", err=True)
        raise SystemExit(1)


@corpus.command()
@data_option
@click.option("--force", is_flag=True, help="Rewrite the arrays even if they match the manifest.")
def encode(data_dir: Path, force: bool) -> None:
    """Write DATA/encoded/{train,valid,test}.npz + meta.json (split by piece, per label)."""
    from composer.corpus.encoded import encode_corpus

    meta, notes = encode_corpus(data_dir, force=force)
    for note in notes:
        click.echo(f"note: {note}")
    frames, pieces = meta["frames"], meta["pieces"]
    for name in ("train", "valid", "test"):
        click.echo(f"{name:<6}{pieces[name]:>6} pieces {frames[name]:>9} frames")
    click.echo(f"labels: {len(meta['games'])} games, {len(meta['composers'])} composers -> {data_dir / 'encoded'}")

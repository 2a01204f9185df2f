"""`python -m composer render FILE.mid`: render any MIDI file to audio, MIDI and a piano roll."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from composer.errors import MidiImportError, MozartError
from composer.render.api import DEFAULT_FORMATS, FORMATS
from composer.render.presets import DEFAULT_SOUND, SOUNDS


@click.command("render")
@click.argument("midi_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--sound", "-s", default=DEFAULT_SOUND, show_default=True, type=click.Choice(list(SOUNDS), case_sensitive=False),
    help="Sound preset. " + " ".join(f"{name}: {p.description}" for name, p in SOUNDS.items()),
)  # fmt: skip
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out"),
              show_default=True, help="Folder to write the files to (created if missing).")  # fmt: skip
@click.option("--format", "-f", "formats", multiple=True, type=click.Choice(FORMATS),
              help=f"Output format; repeat for several. Default: {' '.join(DEFAULT_FORMATS)}.")  # fmt: skip
@click.option("--bars", type=click.IntRange(min=1), default=None, help="Render only the first N bars.")
@click.option("--title", default=None, help="Title for the tags and the piano roll (default: the file name).")
def render_command(midi_file: Path, sound: str, out_dir: Path, formats: tuple[str, ...], bars: int | None,
                   title: str | None) -> None:  # fmt: skip
    """Render MIDI_FILE with a sound preset: MP3/OGG/WAV audio, MIDI and a piano-roll PNG.

    The file is first reduced to Mozart's five voices (lead, counter, harmony, bass, drums),
    so what you hear is what the model would see.
    """
    from composer.music.midi_io import import_midi  # noqa: PLC0415 - keep --help fast
    from composer.render.api import render  # noqa: PLC0415

    try:
        meta = {"title": title} if title else {}
        piece = import_midi(midi_file, crop_bars=bars, **meta)
        rendered = render(piece, sound=sound, formats=formats or DEFAULT_FORMATS, out_dir=out_dir,
                          basename=midi_file.stem)  # fmt: skip
    except MidiImportError as e:
        _fail(str(e), "give a Standard MIDI File (.mid) that contains notes.")
    except MozartError as e:
        _fail(str(e))
    for warning in rendered.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(
        f"{piece.title or midi_file.name}: {piece.n_bars} bars, {piece.tempo:g} bpm, "
        f"{rendered.music_seconds:.1f} s, sound {rendered.sound}"
    )
    for fmt, path in rendered.paths.items():
        step = rendered.timings.get(fmt)
        took = f"  ({step:.2f} s)" if step is not None else ""
        click.echo(f"  wrote {path}  {len(rendered[fmt]) / 1024:,.0f} KiB{took}")
    click.echo(f"  total {rendered.timings['total']:.2f} s")


def _fail(message: str, hint: str | None = None) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    if hint:
        click.secho(f"hint: {hint}", fg="yellow", err=True)
    sys.exit(1)

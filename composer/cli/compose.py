"""`mozart compose` and `mozart remix`: write a piece as MIDI, MP3 and a piano roll.

Both take their options from ``GenerationRequest``'s declarations (composer/cli/options.py),
so the command line and the bot offer the same ranges, defaults and choices.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import click

from composer.cli.options import request_from_options, request_options, sound_option
from composer.errors import MozartError
from composer.music.grid import Piece
from composer.generate.layers import LAYERS
from composer.generate.request import FORMS, MAX_BARS, MAX_REMIX_BARS, GenerationRequest, remix_request
from composer.generate.stingers import STINGERS

SAMPLING = ("blend", "temperature", "top_p", "steps", "tonality", "guidance", "smoothness", "consonance", "seed")

checkpoint_option = click.option("--checkpoint", type=click.Path(file_okay=False),
                                 help="Model folder (default: the shipped model or $MOZART_CHECKPOINT).")
out_option = click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                          help="Folder to write into.")
midi_only_option = click.option("--midi-only", is_flag=True, help="Skip audio and the picture.")
stems_option = click.option("--stems", is_flag=True,
                            help="Also write a zip with one audio file per voice, for mixing in a game or a DAW.")
video_option = click.option("--video", is_flag=True,
                            help="Also write an MP4: the piano roll scrolling under a playhead with the music.")
score_option = click.option("--score", is_flag=True,
                            help="Also write the sheet music: its first page as a PNG, the whole score as MusicXML "
                                 "(opens in MuseScore and other notation programs).")
layers_option = click.option("--layers", is_flag=True,
                             help=f"Also write the piece at {', '.join(LAYERS)} intensity, bar for bar, for a game to "
                                  "cross-fade (a zip each: audio, MIDI, beat map).")



def output_options(command):
    """What compose and remix both write, and where: sound, model, folder, and the extra files."""
    for option in reversed((sound_option, checkpoint_option, out_option, midi_only_option, stems_option,
                            video_option)):
        command = option(command)
    return command


@click.command("compose")
@request_options("style", "bars", "form", "time_signature", "tempo", "key", "loop", *SAMPLING, "variation", "best_of")
@output_options
@layers_option
@score_option
def compose_command(sound, checkpoint, out, midi_only, stems, video, layers, score, **params):
    """Compose an original piece and write it as MIDI (plus MP3, a piano roll and its beat map;
    with --loop, OGG and WAV that carry their loop points)."""
    request = request_from_options(params)
    piece, took, version, generator = _compose(request, checkpoint)
    written = _write(piece, sound, Path(out), _formats(midi_only, stems, video, score, request.loop), _stem(piece))
    click.echo(f"composed '{piece.extra['style']}' seed {piece.extra['seed']}: {_shape(piece)} "
               f"(in {took:.2f} s, model {version})")
    click.echo(f"  {_form(request.form)}")
    if request.loop:
        click.echo(f"  {LOOP_TEXT}")
    if layers:
        written += _write_layers(generator, piece, sound, Path(out), _stem(piece))
    _wrote(written)


@click.command("stinger")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The piece (a MIDI file, Mozart's or any) whose key, tempo, metre and last bars it follows.")
@click.option("--kind", required=True, type=click.Choice(list(STINGERS)),
              help="; ".join(f"{name}: {s.description}" for name, s in STINGERS.items()))
@request_options("style", "seed")
@sound_option
@checkpoint_option
@out_option
def stinger_command(source, kind, sound, checkpoint, out, **params):
    """Write a 1-2 bar stinger for the piece in SOURCE: a jingle in its key, tempo, metre and
    STYLE, to play over it or after it (audio, MIDI and beat map)."""
    from composer.generate.generator import Generator, compose_on_one_cpu_thread
    from composer.music.midi_io import import_midi
    from composer.generate.stingers import compose_stinger

    piece = import_midi(source, title=source.stem)
    base = request_from_options(params)
    piece.extra = {"style": base.style, "seed": base.seed or 0, "params": base.params()}
    generator = Generator.load(checkpoint)
    compose_on_one_cpu_thread(generator.device)
    started = time.perf_counter()
    stinger = compose_stinger(generator, piece, kind)
    took = time.perf_counter() - started
    written = _write(stinger, sound, Path(out), ("mp3", "ogg", "mid"), f"{_safe(source.stem)}-{kind}")
    click.echo(f"{kind} stinger for {source} in '{generator.catalog.resolve(base.style).name}': {_shape(stinger)} "
               f"(in {took:.2f} s)")
    _wrote(written)


@click.command("remix")
@click.argument("midi_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@request_options("style", "keep", "strength", *SAMPLING)
@click.option("--max-bars", default=MAX_REMIX_BARS, show_default=True, type=click.IntRange(1, MAX_BARS),
              help="Remix only the first bars of the file.")
@output_options
@score_option
def remix_command(midi_file, max_bars, sound, checkpoint, out, midi_only, stems, video, score, **params):
    """Re-imagine MIDI_FILE in a style: keep its melody (or bass, drums, chords, rhythm) and
    re-compose the rest, exactly as the bot's /remix does."""
    from composer.music.midi_io import import_midi

    source = import_midi(midi_file, crop_bars=max_bars + 1, title=midi_file.stem)
    cropped = source.n_bars > max_bars
    if cropped:
        source = source.bars(0, max_bars)
    base = request_from_options(params)
    request = remix_request(source, base.style, keep=base.keep, strength=base.strength,
                            **{k: getattr(base, k) for k in SAMPLING})
    piece, took, version, _ = _compose(request, checkpoint)
    stem = f"{_safe(midi_file.stem)}-{_stem(piece)}"  # the files say which tune they remix
    written = _write(piece, sound, Path(out), _formats(midi_only, stems, video, score), stem)
    click.echo(f"remixed {midi_file}{f' (its first {max_bars} bars; --max-bars for more)' if cropped else ''} "
               f"as '{piece.extra['style']}' seed {piece.extra['seed']}: {_shape(piece)} (in {took:.2f} s, "
               f"model {version})")
    click.echo(f"  {_kept(request.keep, request.strength)}")
    _wrote(written)


def _formats(midi_only: bool, stems: bool, video: bool, score: bool = False, loop: bool = False) -> tuple[str, ...]:
    """The MIDI (and its beat map); unless ``midi_only``, MP3 and piano roll, OGG and WAV for a loop
    (they carry its loop points), stems and video when asked; the score when asked, even with ``midi_only``."""
    from composer.render.api import LOOP_FORMATS, SCORE_FORMATS, piece_formats

    if midi_only:
        return ("mid", *(SCORE_FORMATS if score else ()))
    return piece_formats(video=video, score=score, loop=LOOP_FORMATS if loop else (), stems=stems)


def _write_layers(generator, piece: Piece, sound: str, out_dir: Path, stem: str) -> list[Path]:
    """One zip per layer (composer/generate/layers.py), timed."""
    from composer.generate.layers import compose_layers, layer_zips

    started = time.perf_counter()
    zips = layer_zips(compose_layers(generator, piece), sound, stem)
    took = time.perf_counter() - started
    click.echo(f"  layers {', '.join(LAYERS)}: the same bars, tempo and chords (in {took:.2f} s)")
    paths = []
    for name, data in zips.items():
        path = out_dir / f"{stem}-{name}.zip"
        path.write_bytes(data)
        paths.append(path)
    return paths


LOOP_TEXT = "a loop: its end leads back into its start; the MIDI and the audio repeat without a gap"


def _compose(request: GenerationRequest, checkpoint: str | None) -> tuple[Piece, float, str, object]:
    """The piece, the seconds composing it took, the model's version and the generator."""
    from composer.generate.generator import Generator, compose_on_one_cpu_thread

    generator = Generator.load(checkpoint)
    compose_on_one_cpu_thread(generator.device)
    started = time.perf_counter()
    piece = generator.generate(request)
    return piece, time.perf_counter() - started, generator.version, generator


def _shape(piece: Piece) -> str:
    bars = f"{piece.n_bars} bar{'s' if piece.n_bars != 1 else ''}"
    return (f"{bars} of {piece.time_signature[0]}/{piece.time_signature[1]} at {piece.tempo:g} bpm "
            f"in {piece.key}, {piece.seconds:.0f} s of music")


def _form(form: str) -> str:
    """'form AABA: a theme, its return, ...', or 'through-composed: no repeats ...'."""
    letters, sounds = FORMS[form]
    return f"form {letters}: {sounds}" if letters else f"through-composed: {sounds}"


def _kept(keep: tuple[str, ...], strength: float) -> str:
    """What a remix kept of its file and how much of the rest it re-composed."""
    if "everything" in keep:
        return "kept all of it"
    share = "all" if strength >= 1 else f"{strength:.0%}"
    if not keep:
        return f"kept no voice whole; re-composed {share} of it"
    named = keep[0] if len(keep) == 1 else ", ".join(keep[:-1]) + " and " + keep[-1]
    return f"kept its {named}; re-composed {share} of the rest"


def _stem(piece: Piece) -> str:
    return f"{piece.extra['style']}-{piece.extra['seed']}"


def _safe(name: str) -> str:
    """A file name's stem as a piece of another file name: letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^\w.-]+", "-", name).strip("-.") or "remix"


def _wrote(paths: list[Path]) -> None:
    for path in paths:
        click.echo(f"  wrote {path}")


def _write(piece: Piece, sound: str, out_dir: Path, formats: tuple[str, ...], stem: str) -> list[Path]:
    """The files in ``formats``, named ``stem``.*, the beat map beside the MIDI; the MIDI and
    its beat map alone when that is all, or when audio is unavailable."""
    from composer.music.midi_io import write_midi
    from composer.render.beatmap import EXTENSION, beat_map_json

    out_dir.mkdir(parents=True, exist_ok=True)
    if formats != ("mid",):
        try:
            from composer.render import render

            rendered = render(piece, sound=sound, formats=formats, out_dir=out_dir, basename=stem)
            return list(rendered.paths.values())
        except (ImportError, MozartError) as e:
            click.secho(f"warning: audio/picture skipped: {e}", fg="yellow", err=True)
    beats = out_dir / f"{stem}.{EXTENSION}"
    beats.write_bytes(beat_map_json(piece))
    return [write_midi(piece, out_dir / f"{stem}.mid"), beats]

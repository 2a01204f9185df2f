"""`python -m composer compose`: write a new piece (MIDI, and MP3 + PNG when rendering is available)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from composer.errors import MozartError
from composer.generator import Generator
from composer.request import FORMS, GenerationRequest
from composer.grid import parse_time_signature


@click.command("compose")
@click.option("--style", default="zelda-bach", show_default=True, help="game-composer (zelda-bach) or one label (bach).")
@click.option("--bars", default=32, show_default=True, type=click.IntRange(1, 128), help="Length in bars.")
@click.option("--form", default="AABA", show_default=True, type=click.Choice(list(FORMS)), help="Section layout; repeats bring the theme back.")
@click.option("--time-signature", default="4/4", show_default=True, help="4/4, 3/4, 6/8...")
@click.option("--tempo", type=float, help="Quarter notes per minute (default: the style's typical tempo).")
@click.option("--key", help="e.g. 'D minor' (default: whatever the model writes).")
@click.option("--blend", default=0.5, show_default=True, type=float, help="0 = all game, 1 = all composer.")
@click.option("--temperature", default=0.9, show_default=True, type=float, help="Lower is safer, higher is wilder.")
@click.option("--top-p", default=0.95, show_default=True, type=float, help="Nucleus sampling mass.")
@click.option("--steps", default=16, show_default=True, type=int, help="Gibbs sampling passes.")
@click.option("--guidance", default=0.0, show_default=True, type=float, help="Push towards the style (0-3; 0.5 is more typical of it, ~35 % slower).")
@click.option("--smoothness", default=0.4, show_default=True, type=float, help="Penalty on melodic leaps (0 = the model's own, wider lines).")
@click.option("--seed", type=int, help="Same seed + same options + same model = same piece.")
@click.option("--sound", default="chip", show_default=True, help="chip, orchestra or piano.")
@click.option("--checkpoint", type=click.Path(file_okay=False), help="Model folder (default: the shipped model or $MOZART_CHECKPOINT).")
@click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--midi-only", is_flag=True, help="Skip audio and the picture.")
def compose_command(style, bars, form, time_signature, tempo, key, blend, temperature, top_p, steps, guidance,
                    smoothness, seed, sound,
                    checkpoint, out, midi_only):
    """Compose an original piece and write it as MIDI (plus MP3 and a piano roll)."""
    generator = Generator.load(checkpoint)
    request = GenerationRequest(style=style, bars=bars, form=form, time_signature=parse_time_signature(time_signature),
                                tempo=tempo, key=key, blend=blend, temperature=temperature, top_p=top_p,
                                steps=steps, guidance=guidance, smoothness=smoothness, seed=seed)
    started = time.perf_counter()
    piece = generator.generate(request)
    took = time.perf_counter() - started
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{piece.extra['style']}-{piece.extra['seed']}"
    written = []
    try:
        if midi_only:
            raise ImportError
        from composer.render import render

        rendered = render(piece, sound=sound, formats=("mid", "mp3", "png"), out_dir=out_dir, basename=stem)
        written = list(rendered.paths.values())
    except ImportError:
        from composer.midi_io import write_midi

        written = [write_midi(piece, out_dir / f"{stem}.mid")]
    except MozartError as e:
        from composer.midi_io import write_midi

        click.secho(f"warning: audio/picture skipped: {e}", fg="yellow", err=True)
        written = [write_midi(piece, out_dir / f"{stem}.mid")]
    click.echo(f"composed '{piece.extra['style']}' seed {piece.extra['seed']}: {piece.n_bars} bars of "
               f"{piece.time_signature[0]}/{piece.time_signature[1]} at {piece.tempo:g} bpm in {piece.key}, "
               f"form {form}, {piece.seconds:.0f} s of music, in {took:.2f} s (model {generator.version})")
    for path in written:
        click.echo(f"  wrote {path}")

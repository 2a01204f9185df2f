"""`python -m composer bench render`: real-time factors of every rendering step.

Works anywhere: the piece is generated (``demo_piece``: dense, five voices, every drum
class), not read from a file. Figures are medians of ``--runs`` warm runs; the first
(cold) run, which builds wavetables and imports matplotlib, is reported separately.
"""

from __future__ import annotations

import statistics
import time

import click

from composer.render import audio as A
from composer.render.api import render, synthesise
from composer.render.chip import ChipConfig, ChipSynth
from composer.render.demo import demo_piece
from composer.render.presets import SOUNDS

# target: (comparison, value)
TARGETS = {
    "chip": (">=", 200.0),
    "soundfont": (">=", 80.0),
    "mp3": (">=", 80.0),
    "png": ("<=", 0.3),
    "mp3_128_bars_mb": ("<", 8.0),
    "total_32_bars": ("<=", 1.2),
    "mp4_32_bars_mb": ("<=", 8.0),
    "mp4_32_bars_s": ("<=", 5.0),
    "score_32_bars_s": ("<=", 1.5),
    "layers_32_bars_s": ("<=", 3.0),
}
VIDEO_PIECE = {"style": "zelda-bach", "bars": 32, "seed": 7}  # `compose --style zelda-bach --bars 32 --seed 7`


def _median_time(fn, runs: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(runs):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), value


def _verdict(key: str, value: float) -> str:
    op, target = TARGETS[key]
    ok = {">=": value >= target, "<=": value <= target, "<": value < target}[op]
    return click.style(f"{'ok' if ok else 'MISS'} (target {op} {target:g})", fg="green" if ok else "red")


@click.command("render")
@click.option("--runs", default=3, show_default=True, type=click.IntRange(min=1), help="Warm runs per figure.")
@click.option("--tempo", default=120.0, show_default=True, help="Tempo of the benchmark pieces (bpm).")
@click.option("--layers-only", is_flag=True, help="Only the time of --layers for 32 bars.")
def render_bench(runs: int, tempo: float, layers_only: bool) -> None:
    """Chip and SoundFont synthesis, MP3 encoding and piano roll speed; MP3 size; 32-bar total; video;
    intensity layers (``--layers``) of 32 bars."""
    if layers_only:
        _layers_bench(runs, tempo)
        return
    seconds_per_bar = 4 * 60 / tempo
    bars64 = max(1, round(64 / seconds_per_bar))
    piece = demo_piece(bars64, tempo)
    notes = piece.note_count()
    click.echo(f"piece: {bars64} bars at {tempo:g} bpm = {piece.seconds:.1f} s, {notes} notes, runs {runs}")

    # -- synthesis ----------------------------------------------------------------------
    t = time.perf_counter()
    synthesise(piece, SOUNDS["chip"])
    cold = time.perf_counter() - t
    dt, (x, rate, _, _) = _median_time(lambda: synthesise(piece, SOUNDS["chip"]), runs)
    rt = piece.seconds / dt
    click.echo(
        f"chip synthesis      {dt * 1e3:7.1f} ms  {rt:7.0f}x RT  (cold {cold * 1e3:.0f} ms)  {_verdict('chip', rt)}"
    )
    fresh = ChipSynth(ChipConfig(reuse_notes=False))
    dt, _ = _median_time(lambda: fresh.render(piece), runs)
    rt = piece.seconds / dt
    click.echo(
        f"chip, no note reuse {dt * 1e3:7.1f} ms  {rt:7.0f}x RT  (worst case: every note synthesised)  "
        f"{_verdict('chip', rt)}"
    )

    sf_audio = None
    for name in ("orchestra", "piano"):
        dt, (y, sf_rate, used, _) = _median_time(lambda n=name: synthesise(piece, SOUNDS[n]), runs)
        if used != name:
            click.secho(f"{name}: no usable SoundFont, skipped", fg="yellow")
            continue
        sf_audio = sf_audio or (y, sf_rate)
        rt = piece.seconds / dt
        click.echo(f"soundfont {name:9s} {dt * 1e3:7.1f} ms  {rt:7.0f}x RT  {_verdict('soundfont', rt)}")

    # -- mastering and MP3 ------------------------------------------------------------
    dt, mastered = _median_time(lambda: A.master(x, rate), runs)
    click.echo(f"master (loudness, limiter, fade) {dt * 1e3:.1f} ms")
    tags = {"title": "bench"}
    dt, _ = _median_time(lambda: A.encode(mastered, rate, "mp3", tags), runs)
    rt = len(mastered) / rate / dt
    click.echo(f"mp3 encode (chip, {rate} Hz stereo)  {dt:.2f} s  {rt:5.0f}x RT  {_verdict('mp3', rt)}")
    if sf_audio is not None:
        y = A.master(*sf_audio)
        dt, _ = _median_time(lambda: A.encode(y, sf_audio[1], "mp3", tags), runs)
        rt = len(y) / sf_audio[1] / dt
        click.echo(f"mp3 encode (soundfont, {sf_audio[1]} Hz stereo)  {dt:.2f} s  {rt:5.0f}x RT  {_verdict('mp3', rt)}")

    # -- piano roll -------------------------------------------------------------------
    from composer.render.pianoroll import piano_roll  # noqa: PLC0415 - time the import

    t = time.perf_counter()
    piano_roll(piece)
    cold = time.perf_counter() - t
    dt, _ = _median_time(lambda: piano_roll(piece), runs)
    click.echo(f"piano roll          {dt:.3f} s  (cold, with matplotlib import: {cold:.2f} s)  {_verdict('png', dt)}")

    # -- sizes and end to end ---------------------------------------------------------
    long_piece = demo_piece(128, 120.0)
    t = time.perf_counter()
    mp3 = render(long_piece, "chip", ("mp3",))["mp3"]
    mb = len(mp3) / 1e6
    click.echo(
        f"mp3 of 128 bars at 120 bpm ({long_piece.seconds:.0f} s): {mb:.2f} MB "
        f"in {time.perf_counter() - t:.2f} s  {_verdict('mp3_128_bars_mb', mb)}"
    )
    piece32 = demo_piece(32, tempo)
    for name in SOUNDS:
        for concurrent in (True, False):
            results = [render(piece32, name, ("mp3", "mid", "png"), concurrent=concurrent) for _ in range(runs)]
            total = statistics.median(r.timings["total"] for r in results)
            steps = {k: statistics.median(r.timings.get(k, 0.0) for r in results) for k in ("synth", "mp3", "png")}
            detail = ", ".join(f"{k} {v:.2f}" for k, v in steps.items())
            how = "concurrent" if concurrent else "sequential"
            verdict = _verdict("total_32_bars", total) if concurrent else ""
            click.echo(f"32 bars, mp3+mid+png, {name:9s} {how:10s} {total:.2f} s  ({detail})  {verdict}")

    _video_bench(runs, tempo)
    _score_bench(runs, tempo)
    _layers_bench(runs, tempo)


def _score_bench(runs: int, tempo: float) -> None:
    """The score's first page (PNG) and the whole MusicXML of 32 bars; the first run loads verovio's font."""
    from composer.render.score import musicxml, score_png  # noqa: PLC0415

    for label, piece in _video_pieces(tempo):
        t = time.perf_counter()
        score_png(piece)
        cold = time.perf_counter() - t
        png_s, _ = _median_time(lambda: score_png(piece), runs)
        xml_s, _ = _median_time(lambda: musicxml(piece), runs)
        click.echo(f"score of 32 bars ({label}): first page png {png_s:.2f} s  {_verdict('score_32_bars_s', png_s)}  "
                   f"(cold {cold:.2f} s), whole musicxml {xml_s:.2f} s")

def _layers_bench(runs: int, tempo: float) -> None:
    """What ``compose --layers`` adds for 32 bars (median of ``runs``): the infiller's passes
    and the three zips (OGG, MIDI, beat map each), with the machine's load, since the encoders
    compete for its cores."""
    import os  # noqa: PLC0415

    from composer.generate.generator import Generator, compose_on_one_cpu_thread  # noqa: PLC0415 - loads torch
    from composer.generate.layers import compose_layers, layer_zips  # noqa: PLC0415
    from composer.generate.request import GenerationRequest  # noqa: PLC0415

    generator = Generator.load(None)
    compose_on_one_cpu_thread(generator.device)
    piece = generator.generate(GenerationRequest(**{**VIDEO_PIECE, "tempo": tempo}))
    infill, zips, total = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        layers = compose_layers(generator, piece)
        t1 = time.perf_counter()
        layer_zips(layers, "chip", "bench")
        t2 = time.perf_counter()
        infill.append(t1 - t0)
        zips.append(t2 - t1)
        total.append(t2 - t0)
    dt = statistics.median(total)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    click.echo(f"--layers of 32 bars ({piece.seconds:.0f} s, model {generator.version}): {dt:.2f} s "
               f"(infill {statistics.median(infill):.2f} s, three zips {statistics.median(zips):.2f} s; "
               f"load average {load:.1f} on {os.cpu_count()} cores)  {_verdict('layers_32_bars_s', dt)}")


def _video_bench(runs: int, tempo: float) -> None:
    """MP4 size and render time (median of ``runs``) for 32 bars, alone and with the post's other files."""
    for label, video_piece in _video_pieces(tempo):
        for formats in (("mp4",), ("mp3", "mid", "png", "mp4")):
            results = [render(video_piece, "chip", formats) for _ in range(runs)]
            total = statistics.median(r.timings["total"] for r in results)
            mb = len(results[-1]["mp4"]) / 1e6
            click.echo(f"video of 32 bars ({label}, {results[-1].seconds:.1f} s), {'+'.join(formats):16s} "
                       f"mp4 {mb:.2f} MB  {_verdict('mp4_32_bars_mb', mb)}  render {total:.2f} s  "
                       f"{_verdict('mp4_32_bars_s', total)}")


def _video_pieces(tempo: float):
    """(label, piece): the shipped model's 32 bars of ``VIDEO_PIECE`` (what a /compose with
    video makes), then the denser demo piece. The benchmark, not the renderer, reaches up
    to the generator."""
    from composer.generate.generator import Generator, compose_on_one_cpu_thread  # noqa: PLC0415 - loads torch
    from composer.generate.request import GenerationRequest  # noqa: PLC0415

    generator = Generator.load(None)
    compose_on_one_cpu_thread(generator.device)
    model_piece = generator.generate(GenerationRequest(**VIDEO_PIECE))
    name = f"{VIDEO_PIECE['style']} seed {VIDEO_PIECE['seed']}, model {generator.version}"
    yield name, model_piece
    yield f"demo piece at {tempo:g} bpm", demo_piece(32, tempo)

"""`python -m composer bench generate`: generation latency and memory with a checkpoint."""

from __future__ import annotations

import resource
import statistics
import time

import click

from composer.generator import Generator
from composer.request import GenerationRequest


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@click.command("generate")
@click.option("--checkpoint", type=click.Path(file_okay=False), help="Model folder (default: the shipped model).")
@click.option("--style", default="zelda-bach", show_default=True)
@click.option("--form", default="AABA", show_default=True)
@click.option("--runs", default=7, show_default=True, help="Timed runs per length (after one warm-up).")
@click.option("--bars", "bar_counts", multiple=True, type=int, default=(8, 32, 128), show_default=True)
@click.option("--device", default="auto", show_default=True)
def generate_bench(checkpoint, style, form, runs, bar_counts, device):
    """Seconds to compose 8, 32 and 128 bars (p50/p95), how cost grows with length, peak memory."""
    import torch

    generator = Generator.load(checkpoint, device=device)
    click.echo(f"model {generator.version} ({generator.meta.model.arch}, hidden {generator.meta.model.hidden}, "
               f"{generator.model.num_parameters() / 1e6:.2f} M parameters) on {generator.device}, "
               f"{torch.get_num_threads()} CPU threads; style {style}, form {form}")
    p50s = {}
    for bars in bar_counts:
        generator.generate(GenerationRequest(style=style, bars=bars, form=form, seed=0))  # warm-up
        times = []
        for seed in range(1, runs + 1):
            started = time.perf_counter()
            generator.generate(GenerationRequest(style=style, bars=bars, form=form, seed=seed))
            times.append(time.perf_counter() - started)
        p50s[bars] = statistics.median(times)
        click.echo(f"{bars:4d} bars: p50 {p50s[bars]:.3f} s  p95 {_percentile(times, 0.95):.3f} s  "
                   f"({p50s[bars] / bars * 1000:.1f} ms per bar)")
    if len(p50s) > 1:
        low, high = min(p50s), max(p50s)
        click.echo(f"cost growth {low} -> {high} bars: x{p50s[high] / p50s[low]:.2f} for x{high / low:.0f} bars")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"peak memory (max RSS of this process, model included): {peak_mib:.0f} MiB")

"""`python -m composer bench generate`: generation latency and memory with a checkpoint."""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import time
from contextlib import contextmanager

import click

from composer.generate.generator import Generator, compose_on_one_cpu_thread
from composer.generate.request import GenerationRequest
from composer.cli.options import precision_option


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _spin() -> None:
    while True:
        pass


@contextmanager
def competing_load(processes: int):
    """``processes`` busy-looping processes (another job on the machine) while the block runs."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(processes)]
    for p in spinners:
        p.start()
    try:
        yield
    finally:
        for p in spinners:
            p.terminate()
            p.join()


@click.command("generate")
@click.option("--checkpoint", type=click.Path(file_okay=False), help="Model folder (default: the shipped model).")
@click.option("--style", default="zelda-bach", show_default=True)
@click.option("--form", default="AABA", show_default=True)
@click.option("--runs", default=7, show_default=True, help="Timed runs per length (after one warm-up).")
@click.option("--bars", "bar_counts", multiple=True, type=int, default=(8, 32, 128), show_default=True)
@click.option("--device", default="auto", show_default=True)
@precision_option
@click.option("--threads", type=click.IntRange(1, 256),
              help="torch CPU threads (default: one, as the CLI and the bot compose).")
@click.option("--load", "load", default=0, show_default=True, type=click.IntRange(0, 64),
              help="Also time it with this many busy-looping processes competing for the CPU "
                   f"(this machine has {os.cpu_count()} cores).")
def generate_bench(checkpoint, style, form, runs, bar_counts, device, precision, threads, load):
    """Seconds to compose 8, 32 and 128 bars (p50/p95), how cost grows with length, peak memory;
    with --load, the same under a competing load and the slowdown."""
    import torch

    generator = Generator.load(checkpoint, device=device, precision=precision)
    if threads:
        torch.set_num_threads(threads)
    else:
        compose_on_one_cpu_thread(generator.device)
    click.echo(f"model {generator.version} ({generator.meta.model.arch}, hidden {generator.meta.model.hidden}, "
               f"{generator.model.num_parameters() / 1e6:.2f} M parameters"
               + (f"; draft {generator.draft.config.arch}, {generator.draft.num_parameters() / 1e6:.2f} M"
                  if generator.draft is not None else "")
               + f") on {generator.device}, "
               f"{torch.get_num_threads()} CPU threads, infiller in {generator.precision or torch.float32}; "
               f"style {style}, form {form}")
    p50s = {}

    def timed(bars: int) -> list[float]:
        times = []
        for seed in range(1, runs + 1):
            started = time.perf_counter()
            generator.generate(GenerationRequest(style=style, bars=bars, form=form, seed=seed))
            times.append(time.perf_counter() - started)
        return times

    for bars in bar_counts:
        generator.generate(GenerationRequest(style=style, bars=bars, form=form, seed=0))  # warm-up
        times = timed(bars)
        p50s[bars] = statistics.median(times)
        click.echo(f"{bars:4d} bars: p50 {p50s[bars]:.3f} s  p95 {_percentile(times, 0.95):.3f} s  "
                   f"({p50s[bars] / bars * 1000:.1f} ms per bar)")
        if load:
            with competing_load(load):
                busy = statistics.median(timed(bars))
            click.echo(f"{bars:4d} bars with {load} busy processes: p50 {busy:.3f} s "
                       f"(x{busy / p50s[bars]:.2f} the idle time)")
    if len(p50s) > 1:
        low, high = min(p50s), max(p50s)
        click.echo(f"cost growth {low} -> {high} bars: x{p50s[high] / p50s[low]:.2f} for x{high / low:.0f} bars")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(f"peak memory (max RSS of this process, model included): {peak_mib:.0f} MiB")

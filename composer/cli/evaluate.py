"""`python -m composer eval`: the evaluation report, and the five-architecture comparison.

    python -m composer eval --checkpoint runs/default --n 64 --out reports/default
    python -m composer eval compare --minutes 20 --out reports/compare   # or --max-steps 2000
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from composer.errors import MozartError
from composer.evaluate.plan import EvalConfig
from composer.cli.options import precision_option
from composer.cli.versus import versus_command
from composer.generate.request import MAX_BARS


class DefaultGroup(click.Group):
    """A group whose first argument may be an option of the default command: `eval --checkpoint X`
    runs `eval run --checkpoint X`."""

    default_command = "run"

    def parse_args(self, ctx, args):
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group("eval", cls=DefaultGroup)
def eval_command():
    """Evaluate a checkpoint (default: `run`), compare the five architectures (`compare`), or put two
    reports side by side (`versus`)."""


eval_command.add_command(versus_command)


def _checks(data: str) -> None:
    from composer.corpus.encoded import load_meta

    try:
        load_meta(data)
    except MozartError as e:
        raise click.ClickException(str(e)) from None


THREADS_HELP = ("torch CPU threads (default: torch's choice). Use 1 when anything else is running: on a busy "
                "2-core machine two threads can be 100x slower than one.")


def _threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@eval_command.command("run")
@click.option("--checkpoint", type=click.Path(file_okay=False), help="Model folder (default: the shipped model or $MOZART_CHECKPOINT).")
@click.option("--n", "n", default=EvalConfig.n, show_default=True, type=click.IntRange(1, 4096), help="Pieces to generate.")
@click.option("--bars", default=EvalConfig.bars, show_default=True, type=click.IntRange(8, MAX_BARS),
              help="Length of every generated piece and real excerpt.")
@click.option("--out", type=click.Path(file_okay=False), help="Report folder (default: reports/<checkpoint name>).")
@click.option("--data", default="data", show_default=True, help="Data root (or its encoded/ folder).")
@click.option("--seed", default=EvalConfig.seed, show_default=True, type=int, help="Piece i gets seed + i; masks and classifiers are seeded too.")
@click.option("--steps", default=EvalConfig.steps, show_default=True, type=int, help="Gibbs passes per piece.")
@click.option("--styles", help="Comma-separated styles to generate (default: every label + a few blends).")
@click.option("--baseline-lstm", type=click.Path(file_okay=False), help="Checkpoint of a unidirectional `lstm` model: the original's approach, as a likelihood baseline.")
@click.option("--positions", default=EvalConfig.continuation_positions, show_default=True, type=int, help="Test frames scored for continuation NLL.")
@click.option("--windows", default=EvalConfig.masked_windows, show_default=True, type=int, help="Test windows scored for masked-cell NLL.")
@click.option("--device", default="auto", show_default=True, help="cuda, mps, cpu or auto.")
@precision_option
@click.option("--no-likelihood", is_flag=True, help="Skip the likelihood section.")
@click.option("--threads", type=click.IntRange(1, 256), help=THREADS_HELP)
@click.option("--set", "settings", multiple=True, metavar="FIELD=VALUE",
              help="Set a request field for every piece, e.g. --set smoothness=0 (repeatable): to measure a sampler change.")
def run_command(checkpoint, n, bars, out, data, seed, steps, styles, baseline_lstm, positions, windows, device,
                precision, no_likelihood, threads, settings):
    """Generate N pieces and measure them against held-out real music: report.md + figures.json."""
    from composer.nn.checkpoint import default_checkpoint_path
    from composer.evaluate.report import evaluate_checkpoint

    _checks(data)
    _threads(threads)
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint_path()
    out = Path(out) if out else Path("reports") / checkpoint.name
    cfg = EvalConfig(n=n, bars=bars, seed=seed, steps=steps, device=device, precision=precision,
                     baseline_lstm=baseline_lstm,
                     styles=[s.strip() for s in styles.split(",") if s.strip()] if styles else None,
                     continuation_positions=positions, masked_windows=windows, likelihood=not no_likelihood,
                     request=_request_settings(settings),
                     command="python -m composer " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    try:
        fig = evaluate_checkpoint(checkpoint, data, cfg, out)
    except MozartError as e:
        raise click.ClickException(str(e)) from None
    for key, t in fig["targets"].items():
        colour = {"met": "green", "missed": "red"}.get(t["status"], "yellow")
        click.secho(f"{key:13s} {t['status']:13s} {t['detail']}", fg=colour)
    click.echo(f"report: {out / 'report.md'} ({fig['meta']['seconds'] / 60:.1f} min)")


def _request_settings(settings: tuple[str, ...]) -> dict:
    import json

    from composer.generate.request import GenerationRequest

    known = GenerationRequest.specs()
    out = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep or name not in known:
            raise click.BadParameter(f"{item!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(known))}",
                                     param_hint="--set")
        try:
            out[name] = json.loads(value)  # numbers, true/false
        except ValueError:
            out[name] = value  # words: a key, a metre
    return out


@eval_command.command("compare")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), help="Wall-clock training budget per architecture.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Or exactly this many training steps each: "
              "the same on any machine, under any load (give one of --minutes and --max-steps).")
@click.option("--out", default="reports/compare", show_default=True, type=click.Path(file_okay=False), help="Report folder; runs go to OUT/runs/<arch>.")
@click.option("--archs", default="lstm,bilstm,td_bilstm,td_bilstm_attn,transformer", show_default=True, help="Comma-separated subset.")
@click.option("--config", "config_path", default="configs/default.json", show_default=True, help="Training config shared by every architecture (its 'model' section minus arch).")
@click.option("--data", default="data", show_default=True, help="Data root (or its encoded/ folder).")
@click.option("--n", "n", default=16, show_default=True, type=int, help="Generated pieces per architecture for the non-likelihood figures.")
@click.option("--resume-existing", is_flag=True, help="Skip architectures whose run finished; resume unfinished ones.")
@click.option("--device", default="auto", show_default=True, help="cuda, mps, cpu or auto.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", type=click.IntRange(1, 256), help=THREADS_HELP)
def compare_command(minutes, max_steps, out, archs, config_path, data, n, resume_existing, device, seed, threads):
    """Train each architecture for the same budget, evaluate all, plot the learning curves."""
    from composer.evaluate.compare import ARCHS, compare

    if (minutes is None) == (max_steps is None):
        raise click.UsageError("Give the budget as --minutes (wall clock) or --max-steps (training steps), not both.")

    _checks(data)
    _threads(threads)
    chosen = [a.strip() for a in archs.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in ARCHS]
    if unknown:
        raise click.ClickException(f"Unknown architecture(s): {', '.join(unknown)}. Choose from {', '.join(ARCHS)}.")
    path = compare(chosen, minutes, Path(out), data=data, config_path=config_path if Path(config_path).exists() else None,
                   n=n, resume_existing=resume_existing, device=device, seed=seed, max_steps=max_steps)
    click.echo(f"comparison: {path}")

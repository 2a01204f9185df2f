"""`python -m composer critic train|rate`: train the realism critic into a model folder; rate composed
pieces for KTO."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from composer.feedback.critic_training import (
    RATED_SEED, compose_generated, label_mix, rate_by_style, real_grids, train_critic,
)
from composer.judge.critic import Critic, CriticConfig, CriticError
from composer.nn.folder import CRITIC_WEIGHTS


# -- the command -----------------------------------------------------------------------------
@click.group("critic")
def critic_command() -> None:
    """The realism critic: a network that tells real music from this composer's, for best_of and KTO."""


@critic_command.command("train")
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path),
              help="The model whose pieces it learns to tell from real music (default: the shipped model).")
@click.option("--into", type=click.Path(file_okay=False, path_type=Path),
              help="Save it in this model folder, where best_of finds it (default: --out only).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/critic"),
              show_default=True, help="Work folder: the generated pieces (kept for a rerun) and the critic.")
@click.option("--data", default="data", show_default=True, help="Data root (or its encoded/ folder).")
@click.option("--n", default=900, show_default=True, type=click.IntRange(20, 20000), help="Pieces to compose.")
@click.option("--bars", default=16, show_default=True, type=click.IntRange(8, 64), help="Bars of every piece (the evaluation's length).")
@click.option("--styles", help="Comma-separated styles (default: the evaluation's).")
@click.option("--steps", default=CriticConfig.steps, show_default=True, type=click.IntRange(1, 10**6))
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="torch CPU threads.")
def train_command(checkpoint, into, out, data, n, bars, styles, steps, threads) -> None:
    """Compose N pieces, learn to tell their windows from real ones (train split), check it on
    a fifth of the pieces held out against the valid split, and save it."""
    from composer.nn.checkpoint import CONFIG
    from composer.evaluate.plan import default_styles
    from composer.generate.generator import Generator

    torch.set_num_threads(threads)
    if into is not None and not (into / CONFIG).exists():
        raise CriticError(f"No Mozart checkpoint in {into} (expected {CONFIG}); --into names a model folder.")
    generator = Generator.load(checkpoint)
    names = styles.split(",") if styles else default_styles(generator.catalog)
    grids, styles_of = compose_generated(generator, n, bars, names, cache=out / f"generated-{generator.version}.npz")
    mix = label_mix(generator.catalog, styles_of)
    frames = bars * 16
    rng = np.random.default_rng(0)
    held = np.zeros(len(grids), bool)
    held[rng.permutation(len(grids))[: len(grids) // 5]] = True
    train_gen = [g for g, h in zip(grids, held) if not h]
    test_gen = [g for g, h in zip(grids, held) if h]
    real, labels = real_grids(data, mix, 4 * len(train_gen), frames, "train")
    heldout_real, heldout_labels = real_grids(data, mix, len(test_gen), frames, "valid", seed=1)
    critic = train_critic(real, train_gen, CriticConfig(steps=steps), heldout_real, test_gen, real_labels=labels)
    if critic.labels:
        known = [i for i, x in enumerate(heldout_labels) if x in critic.labels]
        guessed = critic.style_scores([heldout_real[i] for i in known], [[heldout_labels[i]] for i in known])
        critic.summary.extra["heldout_style_log_prob"] = round(float(np.mean(guessed)), 3)
    critic.summary.generator_version = generator.version
    s = critic.summary
    click.echo(f"trained on {s.real_windows} real windows (train split) and {s.generated_windows} generated ones "
               f"in {s.seconds:.0f} s")
    click.echo(f"held out: {s.heldout_real_pieces} real pieces (valid split), {s.heldout_generated_pieces} generated: "
               f"balanced accuracy {100 * s.heldout_balanced_accuracy:.1f} %")
    if "heldout_style_log_prob" in s.extra:
        click.echo(f"style head: held-out real pieces' own label at mean log-probability "
                   f"{s.extra['heldout_style_log_prob']:+.2f} ({len(critic.labels)} labels)")
    critic.save(out)
    click.echo(f"wrote {out / CRITIC_WEIGHTS}")
    if into is not None:
        critic.save(into)
        click.echo(f"saved in {into}: composing with best_of > 1 now uses it")


@critic_command.command("rate")
@click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path),
              help="The model to compose with and rate (default: the shipped model).")
@click.option("--critic", "critic_folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder holding the critic (default: --checkpoint's).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Ratings file to write (what `finetune --ratings` reads).")
@click.option("--n", default=400, show_default=True, type=click.IntRange(2, 20000), help="Pieces to compose.")
@click.option("--bars", default=16, show_default=True, type=click.IntRange(8, 64), help="Bars of every piece (the evaluation's length).")
@click.option("--styles", help="Comma-separated styles (default: the evaluation's).")
@click.option("--seed", default=RATED_SEED, show_default=True, type=int, help="Piece i gets seed + i.")
@click.option("--share", default=1 / 3, show_default=True, type=click.FloatRange(0.05, 0.5),
              help="The critic's top share is 👍, its bottom share 👎; the middle is left unrated.")
@click.option("--style-weight", default=1.0, show_default=True, type=click.FloatRange(0, None),
              help="Weight of the style head's verdict (log P(the asked style)) beside realism (its log-odds).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 256), help="torch CPU threads.")
def rate_command(checkpoint, critic_folder, out, n, bars, styles, seed, share, style_weight, threads) -> None:
    """The critic as a listener: compose N pieces, 👍 the ones it finds most like real music of
    the style asked for and 👎 the least, per style, and write them as a ratings file for KTO."""
    from composer.evaluate.plan import EvalConfig, default_styles, generate_pieces, style_name
    from composer.feedback.records import RatedRecord, write_records
    from composer.generate.generator import Generator
    from composer.music.midi_io import to_midi

    torch.set_num_threads(threads)
    generator = Generator.load(checkpoint)
    critic = Critic.load(critic_folder) if critic_folder else generator.critic
    if critic is None:
        raise CriticError(f"No critic in {checkpoint or 'the shipped model'}: train one with "
                          "`python -m composer critic train --into <folder>`, or name it with --critic.")
    names = styles.split(",") if styles else default_styles(generator.catalog)
    pieces = generate_pieces(generator, EvalConfig(n=n, bars=bars, styles=names, seed=seed))
    realism = critic.scores([p.grid for p in pieces])
    fitness = realism.copy()
    if critic.labels and style_weight > 0:
        fidelity = critic.style_scores([p.grid for p in pieces], [p.labels for p in pieces])
        fitness += style_weight * np.nan_to_num(fidelity, nan=0.0)
    verdicts = rate_by_style([style_name(p) for p in pieces], fitness, share)
    records = [RatedRecord(piece_id=i, kind="compose", style=style_name(p), model_version=generator.version,
                           seed=int(p.extra.get("seed", seed + i)), params=dict(p.extra.get("params", {})),
                           midi=to_midi(p), ratings={"critic": v})
               for i, (p, v) in enumerate(zip(pieces, verdicts)) if v != 0]
    write_records(out, records)
    liked = sum(r.verdict > 0 for r in records)
    click.echo(f"rated {len(records)} of {n} pieces: {liked} 👍, {len(records) - liked} 👎 "
               f"(realism log-odds: median {np.median(realism):+.2f}); wrote {out}")

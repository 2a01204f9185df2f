"""Calibration: the intervals a model's networks write on their own, so the sampler adds only what
they miss of a style's (``nn/intervals.py``: a candidate is scored by the ratio of the style's
odds to these).

The networks compose a few pieces of every label they know with the interval pulls off
(``smoothness`` and ``consonance`` 0; everything else at its default), and the bank counts their
intervals as it counted the training pieces'. Training, ``python -m composer textures`` and the
recipe run it once per model folder; it takes about two minutes on the 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from composer.generate.generator import Generator
from composer.generate.request import GenerationRequest
from composer.nn.folder import ComposerFolder
from composer.nn.intervals import IntervalBank

PIECES_PER_LABEL = 12
BARS = 16
SEED = 90_000  # far from the evaluation's seeds (0-449, 1000+, 2000+)
BATCH = 16


def calibrate(generator: Generator, pieces_per_label: int = PIECES_PER_LABEL, bars: int = BARS,
              progress: Callable[[int, int], None] | None = None) -> IntervalBank:
    """The generator's interval bank with its ``own`` tables counted in ``pieces_per_label`` pieces
    of ``bars`` bars of every label it knows, composed with the interval pulls off."""
    if generator.intervals is None:
        raise ValueError(f"model {generator.version} has no intervals.npz to calibrate: "
                         "run `python -m composer textures --checkpoint <its folder>` first.")
    catalog = generator.catalog
    requests = [GenerationRequest(style=label, bars=bars, seed=SEED + k, smoothness=0.0, consonance=0.0)
                for label in catalog.games + catalog.composers for k in range(pieces_per_label)]
    pieces = []
    for lo in range(0, len(requests), BATCH):
        pieces += generator.generate_many(requests[lo : lo + BATCH])
        if progress is not None:
            progress(len(pieces), len(requests))
    return generator.intervals.calibrated([(p.grid, p.labels) for p in pieces])


def calibrate_folder(folder: str | Path, device: str = "cpu", **kwargs) -> IntervalBank:
    """Calibrate the model in ``folder`` and write its intervals.npz back."""
    bank = calibrate(Generator.load(folder, device), **kwargs)
    bank.save(ComposerFolder(folder).intervals)
    return bank

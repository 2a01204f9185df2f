"""A simulated listening panel: raters whose 👍 depends on measurable qualities of a piece.

There are no real users on a development machine, so the ratings loop is measured with
simulated raters. Their taste is declared here and nowhere else:

* **quality** of a piece = how close its statistics (``analysis.metrics``: pitch-class
  entropy, scale consistency, polyphony, note density, empty beats, rests, the lead's
  inter-onset interval, ...) lie to real music's, in robust z-scores (median / IQR of real
  excerpts), averaged over the statistics and capped at ``CAP`` per statistic:
  ``quality = -mean_f min(|z_f|, CAP)`` (0 = typical of real music);
* rater r likes a piece with probability ``sigmoid(bias_r + sharpness x (quality - centre))``:
  each rater has their own leniency (``bias_r`` ~ N(0, leniency)), and a rater only rates
  a share ``attention`` of the pieces they see, as people do.

With ``per_style``, the reference is the real music *of the piece's own labels* (its game's
and composer's excerpts, averaged for a blend; the whole corpus for a label with fewer than
``MIN_STYLE_EXCERPTS``): a listener who asked for ``doom-mozart`` wants it to sound like Doom
and Mozart, not like music in general.

``centre`` is calibrated on the pieces of the model being improved (their median quality),
so that model gets about half 👍: the panel can then tell better from worse either way.
It is a proxy, not people: it rewards realism as these statistics see it, nothing else.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from composer.analysis.metrics import METRICS, piece_metrics
from composer.music.grid import Piece

CAP = 3.0  # a statistic can cost at most this many robust z-scores
MIN_STYLE_EXCERPTS = 8  # fewer real excerpts of a label: it is judged against all real music

Reference = dict[str, tuple[float, float]]  # statistic -> (median, scale) of real music


def reference_of(table: list[dict[str, float]]) -> Reference:
    """Median and interquartile range of each statistic over real excerpts' ``piece_metrics``."""
    reference = {}
    for name in METRICS:
        values = np.array([row[name] for row in table], float)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            continue
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        reference[name] = (float(median), float(max(q3 - q1, 1e-3)))
    return reference


@dataclass
class Panel:
    reference: Reference  # all real music
    styles: dict[str, Reference] = field(default_factory=dict)  # label -> its own music (per_style)
    centre: float = -1.0  # the quality that gets a 50 % 👍 chance from an average rater
    sharpness: float = 4.0  # logits per unit of quality
    raters: int = 12
    leniency: float = 0.5  # spread of the raters' own bias (logits)
    attention: float = 0.5  # share of pieces each rater rates
    seed: int = 0
    biases: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.biases:
            self.biases = list(np.random.default_rng([self.seed, 1]).normal(0, self.leniency, self.raters))

    @classmethod
    def from_real(cls, pieces: list[Piece], per_style: bool = False, **settings) -> Panel:
        """Reference statistics from real excerpts (the test split, as the evaluation uses)."""
        table = [piece_metrics(p) for p in pieces]
        styles = {}
        if per_style:
            for label in {l for p in pieces for l in (p.game, p.composer) if l}:
                rows = [row for row, p in zip(table, pieces) if label in (p.game, p.composer)]
                if len(rows) >= MIN_STYLE_EXCERPTS:
                    styles[label] = reference_of(rows)
        return cls(reference=reference_of(table), styles=styles, **settings)

    def _cost(self, stats: dict[str, float], reference: Reference) -> float:
        costs = []
        for name, (median, scale) in reference.items():
            value = stats.get(name, math.nan)
            costs.append(CAP if not math.isfinite(value) else min(abs(value - median) / scale, CAP))
        return float(np.mean(costs))

    def quality(self, piece: Piece) -> float:
        """0 = typical of the real music it is compared with; more negative = less typical."""
        stats = piece_metrics(piece)
        references = [self.styles[l] for l in (piece.game, piece.composer) if l in self.styles] or [self.reference]
        return -float(np.mean([self._cost(stats, r) for r in references]))

    def calibrate(self, pieces: list[Piece]) -> None:
        """Centre the panel on these pieces: their median quality gets a 50 % 👍 chance."""
        self.centre = float(np.median([self.quality(p) for p in pieces]))

    def like_chance(self, piece: Piece, rater: int | None = None, quality: float | None = None) -> float:
        """P(👍) from rater ``rater`` (None: the average rater)."""
        q = self.quality(piece) if quality is None else quality
        bias = 0.0 if rater is None else self.biases[rater]
        return 1 / (1 + math.exp(-(bias + self.sharpness * (q - self.centre))))

    def rate(self, piece: Piece, rng: np.random.Generator) -> dict[int, int]:
        """Rater index -> +1/-1 for the raters who rated this piece (each with chance ``attention``)."""
        q = self.quality(piece)
        out = {}
        for r in range(self.raters):
            if rng.random() < self.attention:
                out[r] = 1 if rng.random() < self.like_chance(piece, r, q) else -1
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Panel:
        data = json.loads(Path(path).read_text())
        data["reference"] = {k: tuple(v) for k, v in data["reference"].items()}
        data["styles"] = {label: {k: tuple(v) for k, v in ref.items()} for label, ref in data.get("styles", {}).items()}
        return cls(**data)

"""Which model version answers the next request: Thompson sampling on each version's 👍 share.

Each version's chance of a 👍 has a Beta(1 + likes, 1 + dislikes) posterior (a uniform
prior). A request goes to the version whose posterior draw is highest, so a version is
chosen as often as it is likely to be the best: a clear winner soon takes most requests,
while a close race keeps being measured. A floor share keeps every version served (a new
version starts unrated, and tastes drift): with probability ``floor x versions`` the
choice is uniform instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta  # imported here, not on first use: its import blocks for half a second

DEFAULT_FLOOR = 0.1  # each served version gets at least this share of requests
CREDIBLE_LEVEL = 0.95


@dataclass(frozen=True)
class Tally:
    likes: int = 0
    dislikes: int = 0

    @property
    def rated(self) -> int:
        return self.likes + self.dislikes

    @property
    def ratio(self) -> float:
        """Share of 👍 among ratings; NaN when unrated."""
        return self.likes / self.rated if self.rated else float("nan")

    def interval(self, level: float = CREDIBLE_LEVEL) -> tuple[float, float]:
        """Equal-tailed credible interval of the 👍 chance under the Beta(1 + likes, 1 + dislikes) posterior."""
        tail = (1 - level) / 2
        a, b = 1 + self.likes, 1 + self.dislikes
        return float(beta.ppf(tail, a, b)), float(beta.ppf(1 - tail, a, b))


def check_floor(floor: float, versions: int) -> float:
    """The floor actually usable with ``versions`` versions (at most an equal split)."""
    if not 0 <= floor <= 1:
        raise ValueError(f"the floor share must be within 0..1 (received {floor})")
    return min(floor, 1 / max(1, versions))


def choose(tallies: dict[str, Tally], rng: np.random.Generator, floor: float = DEFAULT_FLOOR) -> str:
    """One Thompson draw over ``tallies`` (version -> Tally), with the floor share."""
    if not tallies:
        raise ValueError("no version to choose from")
    names = list(tallies)
    if len(names) == 1:
        return names[0]
    if rng.random() < check_floor(floor, len(names)) * len(names):
        return names[int(rng.integers(len(names)))]
    draws = [rng.beta(1 + t.likes, 1 + t.dislikes) for t in tallies.values()]
    return names[int(np.argmax(draws))]


def shares(tallies: dict[str, Tally], floor: float = DEFAULT_FLOOR, draws: int = 4000, seed: int = 0) -> dict[str, float]:
    """The share of requests each version gets now (Monte Carlo over the posteriors)."""
    names = list(tallies)
    if not names:
        return {}
    rng = np.random.default_rng(seed)
    samples = np.stack([rng.beta(1 + t.likes, 1 + t.dislikes, draws) for t in tallies.values()])
    best = np.bincount(samples.argmax(0), minlength=len(names)) / draws
    uniform = check_floor(floor, len(names)) * len(names)
    return {name: float(uniform / len(names) + (1 - uniform) * share) for name, share in zip(names, best)}

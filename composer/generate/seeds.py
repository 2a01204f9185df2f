"""The random streams of a request's seed: each use of the seed draws from a stream of its own,
numbered here, so no two uses draw the same numbers and adding one changes none of the others."""

from __future__ import annotations

import numpy as np

from composer.generate.request import MAX_SEED

HABITS_STREAM = 1  # the seed's random stream for a style's habits (metre, tempo, key), apart from sampling
BEST_OF_STREAM = 2  # the seed's stream for the seeds of best_of's other candidates
RETRY_STREAM = 3  # the seed's stream for the seeds of a near-silent piece's new attempts
TEXTURE_STREAM = 4  # the seed's stream for its texture plan and a remix's groove
BLEND_STREAM = 5  # the seed's stream for which sections of a blend are the composer's
LAYER_STREAM = 6  # the seed's stream for a piece's intensity layers (composer/generate/layers.py)
STINGER_STREAM = 7  # the seed's stream for a piece's stingers (composer/generate/stingers.py)


def derived_seed(seed: int, stream: int, k: int) -> int:
    """The k-th seed drawn from ``seed`` in one of its streams: always the same."""
    return int(np.random.SeedSequence([int(seed), stream, k]).generate_state(1)[0]) % (MAX_SEED + 1)

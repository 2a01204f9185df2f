"""The offline training corpus: fetch, reduce to grids, label, split and encode.

``python -m composer corpus build`` gathers the music that can be had on these machines
(game MIDI inside Debian packages, the classical scores that ship with music21, and the
user's own folders: one module each in ``composer/corpus/sources/``), turns every piece
into a grid and writes ``data/corpus/``:
``pieces/<label>/<slug>.mzg`` (``Piece.to_bytes()``) and ``manifest.jsonl`` (one JSON line
per piece). ``corpus stats`` summarises it; ``corpus encode`` writes the train/valid/test
arrays in ``data/encoded/`` that the trainer loads with
``composer.corpus.encoded.load_split(data_dir, "train")``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "MOZART_DATA"


def default_data_dir() -> Path:
    """``$MOZART_DATA`` if set, else ``./data``."""
    return Path(os.environ.get(DATA_ENV) or "data")

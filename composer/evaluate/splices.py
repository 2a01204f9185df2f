"""Real music spliced like a blend: what the style classifier makes of the two parents themselves.

A blend's figure is the share of its pieces the classifier hears as one of its parents. That
depends on the classifier as much as on the composer: it recognises held-out real Mozart a
quarter of the time. So for every generated blend piece, ``SPLICES_PER_PIECE`` real
counterparts are laid out like it, window for window: each run of windows that the piece gives
to one parent (``blend_over_frames``) is filled with as many consecutive windows of one held-out
real piece of that parent (valid and test splits: the classifier learnt from train). The share
of counterparts heard as a parent is what real music of those two parents scores in that layout,
beside the generated figure. It is a reference, not a bound: a generated blend whose lines are
one parent's throughout can be heard as a parent more often than real music cut and joined.
"""

from __future__ import annotations

from itertools import groupby

import numpy as np

from composer.evaluate.plan import style_name
from composer.evaluate.real import RealData, label_of
from composer.evaluate.style import WINDOW, Classifier, window_features
from composer.generate.conditions import blend_over_frames
from composer.generate.request import GenerationRequest
from composer.generate.styles import StyleCatalog
from composer.music.grid import Piece

__all__ = ["SPLICES_PER_PIECE", "HELD_OUT", "composer_windows", "real_splices"]

SPLICES_PER_PIECE = 8  # real counterparts drawn for each generated blend piece
HELD_OUT = ("valid", "test")  # the splits the style classifier never saw


def composer_windows(piece: Piece, catalog: StyleCatalog) -> list[bool] | None:
    """Whether each whole window of a generated blend piece is its composer's (most of its
    frames), as the generator laid its sections out; None for a single label, or a blend whose
    parents mix throughout (texture 0, a remix, a piece too short for two sections)."""
    params = piece.extra.get("params")
    if not params or not piece.game or not piece.composer:
        return None
    request = GenerationRequest.from_params(params)
    fpb = len(piece.grid) // request.bars
    share = blend_over_frames(request, catalog.resolve(piece.extra["style"]), fpb)
    if isinstance(share, float):
        return None
    windows = len(piece.grid) // WINDOW
    return [bool(share[w * WINDOW:(w + 1) * WINDOW].float().mean() > 0.5) for w in range(windows)]


def real_splices(clf: Classifier, classes: list[str], real: RealData, generated: list[Piece],
                 layouts: list[list[bool] | None], seed: int) -> dict[str, dict]:
    """Per blend style, the share of real counterparts of its pieces (see the module docstring)
    that ``clf`` classifies as one of the two parents, and how many held-out pieces of each parent
    they could be drawn from. A piece with a run longer than every held-out piece of its parent
    gets no counterpart."""
    wanted = {label for piece, layout in zip(generated, layouts) if layout for label in (piece.game, piece.composer)}
    logp: dict[str, list[np.ndarray]] = {label: [] for label in wanted}  # each held-out piece's windows
    for split in HELD_OUT:
        for piece in real.pieces(split):
            if label_of(piece) in wanted and len(X := window_features(piece.grid)):
                logp[label_of(piece)].append(clf.log_proba(X))
    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {}
    for piece, layout in zip(generated, layouts):
        if not layout:
            continue
        entry = out.setdefault(style_name(piece), {"heard": [], "real_pieces": {
            label: len(logp[label]) for label in (piece.game, piece.composer)}})
        runs = [(piece.composer if composer else piece.game, len(list(run))) for composer, run in groupby(layout)]
        choices = [[lp for lp in logp[label] if len(lp) >= length] for label, length in runs]
        if not all(choices):
            continue
        parents = {classes.index(piece.game), classes.index(piece.composer)}
        for _ in range(SPLICES_PER_PIECE):
            total = np.zeros(len(classes))
            for (label, length), pieces in zip(runs, choices):
                lp = pieces[rng.integers(len(pieces))]
                start = rng.integers(len(lp) - length + 1)
                total += lp[start:start + length].sum(0)
            entry["heard"].append(int(total.argmax()) in parents)
    return {style: {"share": float(np.mean(e["heard"])) if e["heard"] else float("nan"), "splices": len(e["heard"]),
                    "real_pieces": e["real_pieces"]} for style, e in out.items()}

"""Remixed drums: do they groove like the target style's real drums?

    python benchmarks/remix_drums.py [--checkpoint DIR] [--data data] [--seeds 6] [--out docs/evaluation]

Remixes held-out pieces with no drums (Bach chorales and folk tunes from the test split,
and the remix inputs the corpus build collects) in game styles, keeping the melody and
re-composing the rest (strength 0.7), with the texture plan off (v2's sampler: the infiller
scatters drum hits) and on (the drums re-composed as a groove). Prints, per target style,
the median bar-to-bar drum groove (``analysis.metrics.drum_groove``) of the remixes beside
the real 10-90 % range of that style; with ``--out``, writes the piano rolls of one remix
both ways.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.analysis.metrics import drum_groove  # noqa: E402
from composer.evaluate.real import RealData, label_of  # noqa: E402
from composer.generate.generator import Generator, compose_on_one_cpu_thread  # noqa: E402
from composer.music.midi_io import import_midi  # noqa: E402
from composer.generate.request import remix_request  # noqa: E402

TARGETS = ("doom-mozart", "doom", "simutrans", "openttd")
REMIX_BARS = 16


def sources(real: RealData, data: Path, n: int) -> list:
    """Drumless held-out pieces: chorales, folk tunes, then the corpus build's remix inputs."""
    out = []
    for piece in real.pieces("test"):
        if label_of(piece) in ("bach", "folk") and piece.n_bars >= 8 and not piece.grid[:, 4].any():
            out.append(piece.bars(0, min(piece.n_bars, REMIX_BARS)))
        if len(out) >= n:
            break
    for path in sorted((data / "remix_inputs").glob("*/*.mid"))[:n]:
        out.append(import_midi(path, crop_bars=REMIX_BARS))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model folder (default: the shipped model)")
    parser.add_argument("--data", default="data", help="data root with the encoded corpus")
    parser.add_argument("--sources", type=int, default=6, help="held-out pieces of each kind to remix")
    parser.add_argument("--out", help="folder for the piano rolls of one remix (v2 sampler and texture plan)")
    args = parser.parse_args()
    generator = Generator.load(args.checkpoint, device="cpu")
    compose_on_one_cpu_thread("cpu")
    real = RealData.load(args.data)
    pieces = sources(real, Path(args.data), args.sources)
    real_groove: dict[str, list[float]] = {}
    for split in real.splits:
        for piece in real.excerpts(split, REMIX_BARS * 16, per_piece=1):
            real_groove.setdefault(label_of(piece), []).append(drum_groove(piece))
    print(f"{len(pieces)} drumless sources, {REMIX_BARS} bars each, remixed keeping the melody (strength 0.7)")
    print(f"{'style':<12} {'texture 0 (v2)':>15} {'texture 1':>10}   real 10-90 % (median)")
    shown, best_gain = None, -1.0  # the remix whose drums the texture plan changed most
    for style in TARGETS:
        grooves = {0.0: [], 1.0: []}
        for k, source in enumerate(pieces):
            for texture in grooves:
                request = remix_request(source, style, keep=("melody",), strength=0.7, seed=k, texture=texture)
                piece = generator.generate(request)
                grooves[texture].append(drum_groove(piece))
            gain = grooves[1.0][-1] - grooves[0.0][-1]
            if np.isfinite(gain) and gain > best_gain:
                shown, best_gain = (source, style, k), gain
        game = generator.catalog.resolve(style).game
        values = np.array([g for g in real_groove.get(game, []) if np.isfinite(g)])
        lo, mid, hi = np.percentile(values, (10, 50, 90)) if len(values) else (np.nan,) * 3

        def median(xs):
            xs = [x for x in xs if np.isfinite(x)]
            return float(np.median(xs)) if xs else float("nan")

        print(f"{style:<12} {median(grooves[0.0]):>15.2f} {median(grooves[1.0]):>10.2f}   "
              f"{lo:.2f}-{hi:.2f} ({mid:.2f}, {game}, n={len(values)})")
    if args.out and shown:
        from composer.render.pianoroll import piano_roll

        source, style, seed = shown
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for texture, name in ((0.0, "remix_drums_v2.png"), (1.0, "remix_drums_v3.png")):
            piece = generator.generate(remix_request(source, style, keep=("melody",), strength=0.7, seed=seed,
                                                     texture=texture))
            (out / name).write_bytes(piano_roll(piece))
            print(f"wrote {out / name} (drum groove {drum_groove(piece):.2f})")


if __name__ == "__main__":
    main()

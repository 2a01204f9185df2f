"""A line above the bass: how many pieces have one in three quarters of their bars?

    python benchmarks/upper_line.py [--checkpoint DIR] [--n 240] [--texture 1]

Composes ``n`` pieces cycling over every style the model knows (single labels and the
headline blends), every form, 8 and 32 bars, and loops on every other piece, then prints
the share of pieces with a voice other than bass and drums in at least three quarters of
their bars (all of them, and those of 8 bars), and the pieces that fall short.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.analysis.metrics import upper_line_share  # noqa: E402
from composer.generate.generator import Generator, compose_on_one_cpu_thread  # noqa: E402
from composer.generate.request import FORMS, GenerationRequest  # noqa: E402

BLENDS = ("zelda-bach", "doom-mozart", "simutrans-bach")
UPPER_BARS = 0.75


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model folder (default: the shipped model)")
    parser.add_argument("--n", type=int, default=240)
    parser.add_argument("--texture", type=float, default=GenerationRequest.default("texture"))
    parser.add_argument("--seed", type=int, default=0, help="piece i gets seed + i")
    parser.add_argument("--styles", help="comma-separated styles (default: every label and the headline blends)")
    args = parser.parse_args()
    generator = Generator.load(args.checkpoint, device="cpu")
    compose_on_one_cpu_thread("cpu")
    catalog = generator.catalog
    styles = ([s.strip() for s in args.styles.split(",")] if args.styles else
              list(catalog.games) + list(catalog.composers) + [b for b in BLENDS if catalog.resolve(b).is_blend])
    forms = list(FORMS)
    requests = [GenerationRequest(style=styles[i % len(styles)], form=forms[(i // len(styles)) % len(forms)],
                                  bars=(8, 32)[i % 2], loop=(i // 2) % 2 == 1, seed=args.seed + i,
                                  texture=args.texture) for i in range(args.n)]
    started = time.time()
    shares = [upper_line_share(generator.generate(r)) for r in requests]
    ok = [s >= UPPER_BARS for s in shares]
    short = [o for o, r in zip(ok, requests) if r.bars <= 8]
    print(f"{args.n} pieces ({len(styles)} styles, {len(forms)} forms, 8 and 32 bars, half of them loops; "
          f"texture {args.texture:g}; {time.time() - started:.0f} s)")
    print(f"a line above the bass in >= {UPPER_BARS:.0%} of the bars: {sum(ok) / len(ok):.1%} of pieces; "
          f"of the {len(short)} pieces of 8 bars: {sum(short) / max(1, len(short)):.1%}")
    for r, s in zip(requests, shares):
        if s < UPPER_BARS:
            print(f"  {r.style} {r.form} {r.bars} bars{' loop' if r.loop else ''} seed {r.seed}: {s:.0%} of bars")


if __name__ == "__main__":
    main()

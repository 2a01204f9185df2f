"""Does a change leave the music alone? The MIDI of a fixed set of requests, fingerprinted.

    python benchmarks/identical_midi.py --write before.json   # on main, before the change
    python benchmarks/identical_midi.py --check before.json   # after it: exit 1 if any MIDI differs

The requests cover every path that composes: the forms (AABA, ABA, rondo, through), a loop, 3/4
and 6/8, a blend, texture off, best_of (where the model has a reward model or a critic: `--checkpoint` a copy of the shipped model with one), a remix of an example file, a variation and an extension
of a composed piece, on the shipped model (or ``--checkpoint``), one CPU thread. Each line is the
SHA-256 of the piece's MIDI as the bot would store it (``to_midi``), and its shape for reading.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from composer.errors import GenerationParameterError  # noqa: E402
from composer.generate.generator import Generator, compose_on_one_cpu_thread  # noqa: E402
from composer.music.midi_io import import_midi, to_midi  # noqa: E402
from composer.nn.model import PRECISIONS  # noqa: E402
from composer.generate.request import GenerationRequest, extend_request, remix_request, variation_request  # noqa: E402

EXAMPLE = ROOT / "examples" / "ode-to-joy.mid"


def requests() -> dict[str, GenerationRequest]:
    return {
        "aaba": GenerationRequest(style="zelda-bach", bars=16, form="AABA", seed=1),
        "aba": GenerationRequest(style="doom-mozart", bars=16, form="ABA", seed=2),
        "rondo": GenerationRequest(style="bach", bars=20, form="rondo", seed=3),
        "through": GenerationRequest(style="blupi", bars=8, form="through", seed=4),
        "loop": GenerationRequest(style="doom", bars=8, loop=True, seed=5),
        "3/4": GenerationRequest(style="mozart", bars=8, time_signature="3/4", seed=6),
        "6/8": GenerationRequest(style="folk", bars=8, time_signature="6/8", seed=7),
        "texture-0": GenerationRequest(style="simutrans-bach", bars=8, texture=0.0, seed=8),
        "best-of": GenerationRequest(style="zelda-bach", bars=8, best_of=3, seed=9),
    }


def fingerprints(checkpoint: str | None, precision: str = "auto") -> dict[str, str]:
    generator = Generator.load(checkpoint, device="cpu", precision=precision)
    compose_on_one_cpu_thread("cpu")
    out, made = {}, {}
    for name, request in requests().items():
        try:
            made[name] = piece = generator.generate(request)
        except GenerationParameterError as e:  # best_of on a model without a judge
            out[name] = f"not composed: {e}".split(".")[0]
            continue
        out[name] = _line(piece)
    source = import_midi(EXAMPLE, crop_bars=8, title=EXAMPLE.stem)
    out["remix"] = _line(generator.generate(remix_request(source, "doom-mozart", seed=10)))
    base = requests()["aaba"]
    out["variation"] = _line(generator.generate(variation_request(made["aaba"], base, seed=11)))
    out["extend"] = _line(generator.generate(extend_request(made["aaba"], base, seed=12)))
    return {"model": generator.version, **out}


def _line(piece) -> str:
    digest = hashlib.sha256(to_midi(piece)).hexdigest()[:16]
    return f"{digest}  {piece.n_bars} bars {piece.time_signature[0]}/{piece.time_signature[1]} {piece.key}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="model folder (default: the shipped model)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="the infiller's precision (auto: bfloat16 where this CPU has it natively)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", type=Path, help="save the fingerprints here")
    group.add_argument("--check", type=Path, help="compare with fingerprints saved by --write")
    args = parser.parse_args()
    now = fingerprints(args.checkpoint, args.precision)
    for name, line in now.items():
        print(f"{name:10s} {line}")
    if args.write:
        args.write.write_text(json.dumps(now, indent=1) + "\n")
        print(f"saved to {args.write}")
    if args.check:
        before = json.loads(args.check.read_text())
        changed = [name for name in before if before[name] != now.get(name)]
        print("identical: every MIDI is byte for byte the same" if not changed else
              f"CHANGED: {', '.join(changed)}")
        sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()

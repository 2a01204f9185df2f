"""What to compose: ``GenerationRequest``, and the forms a piece can take."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from composer import tokens as T
from composer.errors import GenerationParameterError, MozartError
from composer.grid import Piece, frames_per_bar, parse_key
from composer.model import MAX_FRAMES_PER_BAR

FORMS = {"through": None, "AABA": "AABA", "ABAC": "ABAC", "rondo": "ABACA", "AB": "AB", "ABA": "ABA"}
MAX_BARS = 128

# Remix "keep" words -> the voices they keep.
KEEP_WORDS = {
    "melody": ("lead",),
    "bass": ("bass",),
    "drums": ("drums",),
    "chords": ("counter", "harmony"),
    "harmony": ("counter", "harmony"),
    "rhythm": (),  # handled as a constraint: same onsets/holds/rests, new pitches
}


@dataclass
class GenerationRequest:
    style: str = "zelda-bach"  # game-composer, or one label
    bars: int = 16  # 1..128
    time_signature: tuple[int, int] = (4, 4)
    tempo: float | None = None  # quarter notes per minute; None = the style's typical tempo
    key: str | None = None  # e.g. "D minor"; None = whatever the model writes
    blend: float = 0.5  # 0 = all game, 1 = all composer (two-label styles only)
    temperature: float = 0.9  # 1.0 = the model's distribution; lower = safer
    top_p: float = 0.95  # nucleus sampling: keep the smallest set of tokens with this mass
    seed: int | None = None  # same seed + same parameters + same checkpoint = same piece
    form: str = "through"  # through, AABA, ABAC, rondo (ABACA), AB, ABA
    steps: int = 16  # Gibbs passes
    variation: float = 0.3  # share of repeated-section cells re-sampled (real repeats are rarely exact)
    tonality: float = 2.0  # pull towards the key's scale while sampling pitches (0 = off)
    guidance: float = 0.0  # classifier-free guidance towards the style (0 = off; 0.5: more typical, ~35 % slower)
    smoothness: float = 0.4  # nats per semitone of leap beyond a major third from the neighbouring notes (0 = off)
    primer: Piece | None = None  # cells to start from (remix, extend, variation)
    keep: np.ndarray | None = None  # (frames, 5) bool: primer cells that must not change
    rhythm_of: Piece | None = None  # keep this piece's rests/holds/onsets, re-choose pitches

    def validate(self) -> None:
        def bad(message):
            raise GenerationParameterError(message)

        if not 1 <= int(self.bars) <= MAX_BARS:
            bad(f"bars must be between 1 and {MAX_BARS} (received {self.bars}).")
        try:
            fpb = frames_per_bar(tuple(self.time_signature))
        except MozartError as e:
            bad(str(e))
        if fpb > MAX_FRAMES_PER_BAR:
            bad(f"Time signature {self.time_signature[0]}/{self.time_signature[1]} has too many beats.")
        if self.tempo is not None and not 30 <= self.tempo <= 300:
            bad(f"tempo must be between 30 and 300 bpm (received {self.tempo}).")
        if self.key is not None:
            parse_key(self.key)
        if not 0.0 <= self.blend <= 1.0:
            bad(f"blend must be between 0 and 1 (received {self.blend}).")
        if not 0.05 <= self.temperature <= 3.0:
            bad(f"temperature must be between 0.05 and 3 (received {self.temperature}).")
        if not 0.0 < self.top_p <= 1.0:
            bad(f"top_p must be in (0, 1] (received {self.top_p}).")
        if self.form not in FORMS:
            bad(f"Unknown form '{self.form}'. Forms: {', '.join(FORMS)}.")
        if FORMS[self.form] and self.bars < len(FORMS[self.form]):
            bad(f"Form {self.form} needs at least {len(FORMS[self.form])} bars (received {self.bars}).")
        if not 1 <= self.steps <= 200:
            bad(f"steps must be between 1 and 200 (received {self.steps}).")
        if not 0.0 <= self.tonality <= 3.0:
            bad(f"tonality must be between 0 and 3 (received {self.tonality}).")
        if not 0.0 <= self.guidance <= 3.0:
            bad(f"guidance must be between 0 and 3 (received {self.guidance}).")
        if not 0.0 <= self.smoothness <= 2.0:
            bad(f"smoothness must be between 0 and 2 (received {self.smoothness}).")
        if not 0.0 <= self.variation <= 1.0:
            bad(f"variation must be between 0 and 1 (received {self.variation}).")
        frames = self.bars * fpb
        for name, piece in (("primer", self.primer), ("rhythm_of", self.rhythm_of)):
            if piece is not None and piece.frames_per_bar != fpb:
                bad(f"The {name} is in {piece.time_signature[0]}/{piece.time_signature[1]}, "
                    f"not {self.time_signature[0]}/{self.time_signature[1]}.")
        if self.keep is not None:
            if self.primer is None:
                bad("keep needs a primer.")
            if self.keep.shape[1] != T.N_VOICES or self.keep.shape[0] > frames:
                bad(f"keep must have shape (<= {frames}, {T.N_VOICES}) (received {self.keep.shape}).")
        if (self.primer is not None or self.rhythm_of is not None) and FORMS[self.form]:
            bad("A form cannot be combined with a primer; use form 'through'.")

    def params(self) -> dict:
        """JSON-native parameters: what the database stores to reproduce the piece."""
        d = asdict(self)
        for key in ("primer", "keep", "rhythm_of"):
            d.pop(key)
        d["time_signature"] = list(self.time_signature)
        return d


def section_lengths(bars: int, sections: str) -> list[int]:
    """Bars per section: repeats of A all have A's length; other sections share the rest."""
    n = len(sections)
    base = bars // n
    lengths = [base] * n
    others = [i for i, s in enumerate(sections) if s != "A"] or [n - 1]
    for k in range(bars - base * n):
        lengths[others[k % len(others)]] += 1
    return lengths


# -- requests built from an existing piece -----------------------------------------------
def extend_request(piece: Piece, bars: int = 8, **overrides) -> GenerationRequest:
    """Continue ``piece`` by ``bars`` more bars (the original cells are kept)."""
    total = min(MAX_BARS, piece.n_bars + bars)
    keep = np.ones((piece.n_frames, T.N_VOICES), bool)
    return _from_piece(piece, bars=total, primer=piece, keep=keep, **overrides)


def variation_request(piece: Piece, share: float = 0.25, seed: int | None = None, **overrides) -> GenerationRequest:
    """The same piece with ``share`` of its cells re-sampled."""
    rng = np.random.default_rng(seed)
    keep = rng.random(piece.grid.shape) >= share
    return _from_piece(piece, primer=piece, keep=keep, seed=seed, **overrides)


def remix_request(source: Piece, style: str, keep: tuple[str, ...] = ("melody",), strength: float = 0.7,
                  seed: int | None = None, **overrides) -> GenerationRequest:
    """Re-imagine ``source`` in ``style``: the voices named by ``keep`` stay as they are,
    ``strength`` of the other cells are re-composed (1.0 = all of them)."""
    unknown = [k for k in keep if k not in KEEP_WORDS]
    if unknown:
        raise GenerationParameterError(f"Unknown keep option(s): {', '.join(unknown)}. Choose from {', '.join(KEEP_WORDS)}.")
    if not 0.0 < strength <= 1.0:
        raise GenerationParameterError(f"strength must be in (0, 1] (received {strength}).")
    source = source.bars(0, min(source.n_bars, MAX_BARS)).pad_to_bars()
    kept_voices = {T.VOICE_INDEX[v] for word in keep for v in KEEP_WORDS[word]}
    rng = np.random.default_rng(seed)
    keep_mask = rng.random(source.grid.shape) >= strength
    keep_mask[:, sorted(kept_voices)] = True
    rhythm = source if "rhythm" in keep else None
    if rhythm is not None:
        keep_mask[:, T.DRUM_VOICE] = True
    return GenerationRequest(style=style, bars=source.n_bars, time_signature=source.time_signature,
                             tempo=source.tempo, primer=source, keep=keep_mask, rhythm_of=rhythm, seed=seed,
                             **overrides)


def _from_piece(piece: Piece, **fields) -> GenerationRequest:
    params = dict(piece.extra.get("params", {}))
    params.update(style=piece.extra.get("style") or "-".join(piece.labels), bars=piece.n_bars,
                  time_signature=piece.time_signature, tempo=piece.tempo, form="through", key=None)
    params.update(fields)
    known = GenerationRequest.__dataclass_fields__
    return GenerationRequest(**{k: v for k, v in params.items() if k in known})

"""What to compose: ``GenerationRequest``, the one declaration of every composing parameter.

Each field is declared once with ``param(default, help, low=, high=, choices=)``. From that
declaration come ``validate()``, the click options of the CLI (``composer/cli/options.py``)
and the slash-command options of the bot (``cogs/utils/options.py``), so a range, a
default or a list of forms is changed in one place.

A request may start from a piece (``primer``): a remix keeps some of its voices, a
variation re-composes a share of its cells, an extension keeps it whole and adds bars.
Which cells are kept is drawn from the request's seed, like every other random choice, so
a stored request (``params()``) replays the same piece (``from_params()``).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from composer.music import tokens as T
from composer.errors import GenerationParameterError, MozartError
from composer.music.grid import DEFAULT_TIME_SIGNATURE, Piece, frames_per_bar, parse_key, parse_time_signature
from composer.nn.model import MAX_FRAMES_PER_BAR

MAX_BARS = 128
MAX_SEED = 2**31 - 1
MAX_REMIX_BARS = 64  # a remix re-imagines the first bars of a file
EXTEND_BARS = 8  # what the bot's extend button adds
VARIATION_SHARE = 0.25  # share of cells a variation re-composes
MAX_BEST_OF = 8  # candidates one request may compose to keep the best (``best_of``)
# The longest music one request may make: 128 bars at 30 bpm would be 17 minutes, hundreds of MB of
# audio per buffer (stems hold several) and an MP3 over Discord's upload limit. 9.9 minutes of stems
# peaked at 1.19 GiB in the composing process, the bot at 0.49 GiB (benchmarks/abuse.py, 2-core machine).
MAX_MUSIC_SECONDS = 600

# Forms: name -> (sections, what it sounds like). Repeats of A bring the theme back.
FORMS: dict[str, tuple[str, str]] = {
    "AABA": ("AABA", "a theme, its return, a bridge, the theme again"),
    "ABAC": ("ABAC", "theme, contrast, theme, new ending"),
    "rondo": ("ABACA", "the theme keeps coming back"),
    "ABA": ("ABA", "theme, contrast, theme"),
    "AB": ("AB", "a theme and its answer"),
    "through": ("", "no repeats, always moving"),
}

# Metres offered by the interfaces; any n/2, n/4, n/8 or n/16 up to 8 beats is accepted.
TIME_SIGNATURES: dict[str, str] = {
    "4/4": "four beats: marches, most game music",
    "3/4": "three beats: waltzes, minuets",
    "6/8": "two lilting beats: jigs, barcarolles",
    "2/4": "two beats: polkas, quick marches",
}

# What a remix can keep: a word -> the voices it keeps whole.
KEEP_WORDS: dict[str, tuple[str, ...]] = {
    "melody": ("lead",),
    "bass": ("bass",),
    "drums": ("drums",),
    "chords": ("counter", "harmony"),
    "harmony": ("counter", "harmony"),
    "rhythm": (),  # a constraint: same onsets, holds and rests in every pitched voice, new pitches
    "everything": T.VOICES,  # an extension keeps its primer whole
}
# Useful combinations of keep words, offered by the interfaces.
KEEP_PRESETS: dict[str, str] = {
    "melody": "the tune stays, everything else is new",
    "melody,drums": "the tune and its groove stay",
    "melody,bass": "the tune and its bass line stay",
    "bass,drums": "a new tune over the old groove",
    "chords": "a new melody over the old harmony",
    "rhythm": "same rhythm, new notes",
    "": "nothing: only strength decides what stays",
}


def new_seed() -> int:
    """A seed for a request that leaves it open (the generator's, and the bot's rerolls)."""
    return secrets.randbelow(MAX_SEED + 1)


@dataclass(frozen=True)
class Spec:
    """How one parameter may be set: the declaration the interfaces are built from."""

    help: str
    low: float | None = None  # inclusive bounds of a number
    high: float | None = None
    choices: Mapping[str, str] | None = None  # allowed values -> what each means
    suggestions: Mapping[str, str] | None = None  # common values offered; others may be valid
    kind: type = str  # int, float or str: what a command line or a slash command parses

    def check(self, name: str, value: Any) -> None:
        """Raise ``GenerationParameterError`` naming the bad value."""
        if value is None:
            return
        if self.low is not None and not self.low <= value <= self.high:
            raise GenerationParameterError(
                f"{name} must be between {self.low:g} and {self.high:g} (received {value:g}).")
        if self.choices is not None:
            values = value if isinstance(value, tuple) else (value,)
            unknown = [v for v in values if v not in self.choices]
            if unknown:
                raise GenerationParameterError(
                    f"Unknown {name} {', '.join(map(repr, unknown))}. Choose from: {', '.join(self.choices)}.")


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          choices: Mapping[str, str] | None = None, suggestions: Mapping[str, str] | None = None,
          kind: type | None = None) -> Any:
    """A dataclass field carrying its ``Spec``."""
    return field(default=default, metadata={"spec": Spec(help, low, high, choices, suggestions, kind or type(default))})


@dataclass
class GenerationRequest:
    style: str = param("zelda-bach", "A game and a composer, like zelda-bach, or one of them alone")
    bars: int = param(32, "Length in bars", low=1, high=MAX_BARS)
    form: str = param("AABA", "How sections repeat, so the theme comes back",
                      choices={name: text for name, (_, text) in FORMS.items()})
    time_signature: str | None = param(None, "Metre (default: one the style often uses)",
                                       suggestions=TIME_SIGNATURES, kind=str)
    tempo: float | None = param(None, "Quarter notes per minute (default: one of the style's usual tempi)",
                                low=30, high=300, kind=float)
    key: str | None = param(None, "Key, like 'D minor' or 'Bb major' (default: the model's choice)", kind=str)
    blend: float = param(0.5, "0 = all game, 1 = all composer (two-label styles)", low=0.0, high=1.0)
    temperature: float = param(0.9, "Lower is safer, higher is wilder (1 = the model's own odds)",
                               low=0.1, high=2.0)
    top_p: float = param(0.95, "Nucleus sampling: keep the likeliest notes holding this much probability",
                         low=0.05, high=1.0)
    seed: int | None = param(None, "Same seed and options give the same piece", low=0, high=MAX_SEED, kind=int)
    steps: int = param(16, "Infilling passes (Gibbs) for remixes and variations; half as many to mend seams",
                       low=1, high=200)
    variation: float = param(0.3, "Share of a repeated section's cells re-composed (real repeats are rarely exact)",
                             low=0.0, high=1.0)
    # guidance chosen on 450 pieces (selection seeds 1000+ and 2000+) and 300 of each headline blend
    # (3000+), v3.5; tonality, smoothness and consonance on the same 450, v3.3: see docs/EVALUATION.md.
    tonality: float = param(1.0, "Pull towards the key's scale while choosing pitches (0 = off)", low=0.0, high=3.0)
    guidance: float = param(1.5, "Push towards the style (higher is more typical of it; 0 = off, a little faster)",
                            low=0.0, high=3.0)
    smoothness: float = param(1.0, "How closely melodic lines keep the style's own intervals and register "
                                   "(0 = the model's own, wider lines)", low=0.0, high=2.0)
    consonance: float = param(0.5, "How closely voices sounding together keep the style's own intervals "
                                   "(0 = the model's own, more clashes)", low=0.0, high=2.0)
    texture: float = param(1.0, "How closely each bar follows a texture of the style's real music: which voices "
                                "play, how busily (0 = left to the model)", low=0.0, high=2.0)
    loop: bool = param(False, "Make the end lead back into the beginning, so the piece loops in a game")
    keep: tuple[str, ...] = param(("melody",), "What to keep from the piece started from",
                                  choices={w: ", ".join(v) for w, v in KEEP_WORDS.items()}, kind=tuple)
    strength: float = param(0.7, "How much of the rest to re-compose (0.05 = a touch, 1 = all of it)",
                            low=0.05, high=1.0)
    # Not offered by the bot's /compose (it would multiply a shared worker's time); the CLI has it.
    best_of: int = param(1, "Compose this many and keep the one the reward model rates best "
                            "(1 = off; costs that many times the time)", low=1, high=MAX_BEST_OF)
    primer: Piece | None = field(default=None, compare=False)  # the piece started from (remix, variation, extend)

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """Every declared parameter's ``Spec``, in declaration order."""
        return {f.name: f.metadata["spec"] for f in dataclasses.fields(cls) if "spec" in f.metadata}

    @classmethod
    def default(cls, name: str) -> Any:
        return cls.__dataclass_fields__[name].default

    @property
    def meter(self) -> tuple[int, int]:
        """(beats, beat unit); the generator fills an open metre in from the style's habits."""
        return parse_time_signature(self.time_signature or DEFAULT_TIME_SIGNATURE)

    @property
    def music_seconds(self) -> float | None:
        """How long the music lasts: bars x quarter notes per bar / tempo (None while the tempo is open)."""
        if self.tempo is None:
            return None
        beats, unit = self.meter
        return self.bars * beats * 4 / unit * 60 / self.tempo

    @property
    def sections(self) -> str:
        """The form's section letters ("" when through-composed)."""
        return FORMS[self.form][0]

    def validate(self) -> None:
        """Raise ``GenerationParameterError`` for the first parameter out of its declared range."""
        for name, spec in self.specs().items():
            spec.check(name, getattr(self, name))
        try:
            fpb = frames_per_bar(self.meter)
            if self.key is not None:
                parse_key(self.key)
        except MozartError as e:
            raise GenerationParameterError(str(e)) from None
        if fpb > MAX_FRAMES_PER_BAR:
            raise GenerationParameterError(f"Time signature {self.time_signature} has too many beats.")
        check_music_seconds(self.music_seconds, f"{self.bars} bars of {self.meter[0]}/{self.meter[1]} at "
                                                f"{self.tempo:g} bpm" if self.tempo else "")
        if self.sections and self.bars < len(self.sections):
            raise GenerationParameterError(
                f"Form {self.form} needs at least {len(self.sections)} bars (received {self.bars}).")
        if self.primer is not None:
            if self.primer.frames_per_bar != fpb:
                raise GenerationParameterError(f"The piece started from is in {self.primer.time_signature[0]}/"
                                               f"{self.primer.time_signature[1]}, not {self.time_signature}.")
            if self.sections:
                raise GenerationParameterError("A form cannot be combined with a piece to start from; "
                                               "use form 'through'.")

    # -- stored and rebuilt ----------------------------------------------------------------
    def params(self) -> dict:
        """JSON-native parameters: what the database stores to replay the piece (not the primer)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name in self.specs() for value in [getattr(self, name)]}

    @classmethod
    def from_params(cls, params: Mapping[str, Any], primer: Piece | None = None) -> GenerationRequest:
        """The inverse of ``params()``: ``from_params(r.params(), r.primer) == r``.

        Keys that are not parameters (what the bot stores beside them: sound, key found...)
        are ignored; missing ones take their defaults."""
        values = {name: params[name] for name in cls.specs() if name in params}
        if "keep" in values:
            values["keep"] = tuple(values["keep"])
        if isinstance(values.get("time_signature"), (list, tuple)):  # rows stored before it was text
            values["time_signature"] = "/".join(map(str, values["time_signature"]))
        return cls(**values, primer=primer)

    def replace(self, **changes) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    # -- starting from a piece ---------------------------------------------------------------
    def keep_mask(self, frames: int, rng: np.random.Generator) -> np.ndarray | None:
        """(frames, 5) bool, True = a primer cell that stays; None without a primer.

        The voices named by ``keep`` stay whole; every other primer cell stays with
        probability 1 - ``strength``; frames beyond the primer are free."""
        if self.primer is None:
            return None
        n = min(frames, self.primer.n_frames)
        mask = np.zeros((frames, T.N_VOICES), bool)
        mask[:n] = rng.random((n, T.N_VOICES)) >= self.strength
        voices = sorted({T.VOICE_INDEX[v] for word in self.keep for v in KEEP_WORDS[word]})
        mask[:n, voices] = True
        if "rhythm" in self.keep:  # the groove is part of the rhythm
            mask[:n, T.DRUM_VOICE] = True
        return mask

    @property
    def rhythm_of(self) -> Piece | None:
        """The piece whose onsets, holds and rests the pitched voices must follow."""
        return self.primer if "rhythm" in self.keep else None


def check_music_seconds(seconds: float | None, what: str = "This piece") -> None:
    """Raise ``GenerationParameterError`` when ``seconds`` of music are more than ``MAX_MUSIC_SECONDS``."""
    if seconds is not None and seconds > MAX_MUSIC_SECONDS:
        raise GenerationParameterError(
            f"{what} would last {seconds / 60:.1f} minutes; the most I make is {MAX_MUSIC_SECONDS / 60:g} minutes "
            f"of music. Try fewer bars or a faster tempo.")


def section_lengths(bars: int, sections: str) -> list[int]:
    """Bars per section: repeats of A all have A's length; other sections share the rest."""
    n = len(sections)
    base = bars // n
    lengths = [base] * n
    others = [i for i, s in enumerate(sections) if s != "A"] or [n - 1]
    for k in range(bars - base * n):
        lengths[others[k % len(others)]] += 1
    return lengths


def section_letters(request: GenerationRequest) -> list[str] | None:
    """The form letter of every bar (``["A", "A", "B", ...]``), or None when through-composed."""
    if not request.sections:
        return None
    return [label for label, n in zip(request.sections, section_lengths(request.bars, request.sections))
            for _ in range(n)]


# -- requests that start from a piece ----------------------------------------------------
def _from_piece(piece: Piece, base: GenerationRequest, **changes) -> GenerationRequest:
    """``base``'s sampling settings on ``piece``'s shape: same metre, tempo and length."""
    ts = f"{piece.time_signature[0]}/{piece.time_signature[1]}"
    spec = GenerationRequest.specs()["tempo"]
    tempo = min(max(piece.tempo, spec.low), spec.high)  # a file may be slower or faster than we compose
    return base.replace(primer=piece, bars=piece.n_bars, time_signature=ts, tempo=tempo, form="through",
                        key=None, **changes)


def extend_request(piece: Piece, base: GenerationRequest, bars: int = EXTEND_BARS,
                   seed: int | None = None) -> GenerationRequest:
    """Continue ``piece`` by ``bars`` more bars (all of it is kept), with ``base``'s settings."""
    return _from_piece(piece, base, keep=("everything",), seed=seed).replace(
        bars=min(MAX_BARS, piece.n_bars + bars))


def variation_request(piece: Piece, base: GenerationRequest, share: float = VARIATION_SHARE,
                      seed: int | None = None) -> GenerationRequest:
    """``piece`` with ``share`` of its cells re-composed, with ``base``'s settings."""
    return _from_piece(piece, base, keep=(), strength=share, seed=seed)


def remix_request(source: Piece, style: str, keep: tuple[str, ...] = GenerationRequest.default("keep"),
                  strength: float = GenerationRequest.default("strength"), seed: int | None = None,
                  **changes) -> GenerationRequest:
    """Re-imagine ``source`` in ``style``: the voices named by ``keep`` stay as they are,
    ``strength`` of the other cells are re-composed (1.0 = all of them)."""
    return _from_piece(remix_primer(source), GenerationRequest(style=style, **changes), keep=tuple(keep),
                       strength=strength, seed=seed)


def remix_primer(source: Piece) -> Piece:
    """What a remix starts from: the source's first ``MAX_BARS`` bars (fewer if they would last more
    than ``MAX_MUSIC_SECONDS`` at the tempo it is remixed at), padded to whole bars."""
    return source.bars(0, min(source.n_bars, MAX_BARS, _bars_that_fit(source))).pad_to_bars()


def _bars_that_fit(piece: Piece) -> int:
    """How many of ``piece``'s bars last at most ``MAX_MUSIC_SECONDS`` at the tempo a request from it gets."""
    spec = GenerationRequest.specs()["tempo"]
    tempo = min(max(piece.tempo, spec.low), spec.high)
    quarters = piece.frames_per_bar / T.FRAMES_PER_QUARTER
    return max(1, int(MAX_MUSIC_SECONDS * tempo / 60 / quarters))

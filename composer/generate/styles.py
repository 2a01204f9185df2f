"""Style names -> the game and composer labels a checkpoint was trained on.

A style is ``game-composer`` (``zelda-bach``) or a single label (``bach``, ``doom``).
The set of styles is whatever the loaded checkpoint knows; aliases (``zelda`` answered by
the closest free action-RPG soundtrack) are stored in the checkpoint too.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from composer.errors import UnknownStyleError
from composer.music.grid import DEFAULT_TIME_SIGNATURE


@dataclass(frozen=True)
class Style:
    name: str  # as the user wrote it, normalised ("zelda-bach")
    game: str | None  # the trained label (alias resolved: "dink")
    composer: str | None
    game_index: int | None
    composer_index: int | None

    @property
    def is_blend(self) -> bool:
        return self.game is not None and self.composer is not None


DEFAULT_TEMPO = 120.0  # for labels whose checkpoint records none


@dataclass(frozen=True)
class Habits:
    """What a style usually does, from its training pieces: which metres and keys (share of
    pieces) and which tempi (25th, 50th and 75th percentile, quarter notes per minute)."""

    metres: dict[str, float]
    tempo: tuple[float, float, float]
    keys: dict[str, float] = field(default_factory=dict)  # none recorded: the model chooses

    def draw_metre(self, rng: np.random.Generator) -> str:
        return _draw(self.metres, rng)

    def draw_key(self, rng: np.random.Generator) -> str | None:
        return _draw(self.keys, rng) if self.keys else None

    def draw_tempo(self, rng: np.random.Generator) -> float:
        """Uniform between the quartiles: the style's usual pace, not always the same one."""
        low, _, high = self.tempo
        return round(float(rng.uniform(low, high)), 1)


def _draw(shares: dict[str, float], rng: np.random.Generator) -> str:
    names = list(shares)
    p = np.array([shares[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


class StyleCatalog:
    def __init__(self, games: list[str], composers: list[str], aliases: dict[str, str] | None = None,
                 label_info: dict[str, dict] | None = None):
        self.games = list(games)
        self.composers = list(composers)
        self.aliases = {k: v for k, v in (aliases or {}).items() if k not in self.games and v in self.games + self.composers}
        self.label_info = label_info or {}

    @classmethod
    def from_meta(cls, meta) -> StyleCatalog:
        return cls(meta.games, meta.composers, meta.aliases, meta.label_info)

    def _label(self, word: str) -> str:
        return self.aliases.get(word, word)

    def names(self) -> list[str]:
        """Every style name: single labels (aliases included), then game-composer pairs."""
        singles = self.games + sorted(self.aliases) + self.composers
        pairs = [f"{g}-{c}" for g in self.games + sorted(self.aliases) for c in self.composers]
        return singles + pairs

    def resolve(self, name: str) -> Style:
        """``zelda-bach`` -> Style(game="dink", composer="bach", ...); unknown -> UnknownStyleError."""
        text = name.strip().lower().replace(" ", "-").replace("_", "-")
        words = [w for w in text.split("-") if w]
        game = composer = None
        for word in words if 1 <= len(words) <= 2 else []:
            label = self._label(word)
            if label in self.games and game is None:
                game = label
            elif label in self.composers and composer is None:
                composer = label
            else:
                game = composer = None
                break
        if game is None and composer is None:
            raise UnknownStyleError(self.unknown_message(name))
        return Style(
            name="-".join(words),
            game=game,
            composer=composer,
            game_index=self.games.index(game) if game else None,
            composer_index=self.composers.index(composer) if composer else None,
        )

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name.strip().lower(), self.names(), n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        games = ", ".join(self.games + sorted(self.aliases))
        composers = ", ".join(self.composers)
        return (f"Unknown style '{name}'.{hint} Known games: {games}. Known composers: {composers}. "
                f"Combine one of each like 'zelda-bach', or use one alone like 'bach'.")

    def suggest(self, prefix: str, limit: int = 25) -> list[str]:
        """Autocomplete: names starting with (then containing) what was typed, at most ``limit``."""
        text = prefix.strip().lower()
        names = self.names()
        starts = [n for n in names if n.startswith(text)]
        contains = [n for n in names if text in n and n not in starts]
        return (starts + contains)[:limit]

    def habits(self, style: Style, blend: float) -> Habits:
        """The style's metres, keys and tempi: a pair mixes its game's and composer's by ``blend``."""
        weights = {style.game: 1.0 - blend, style.composer: blend} if style.is_blend else \
            {style.game or style.composer: 1.0}
        metres: dict[str, float] = {}
        keys: dict[str, float] = {}
        tempo = np.zeros(3)
        for label, weight in weights.items():
            info = self.label_info.get(label, {})
            for metre, share in (info.get("metres") or {DEFAULT_TIME_SIGNATURE: 1.0}).items():
                metres[metre] = metres.get(metre, 0.0) + weight * share
            for key, share in (info.get("keys") or {}).items():
                keys[key] = keys.get(key, 0.0) + weight * share
            median = info.get("tempo", DEFAULT_TEMPO)
            low, high = info.get("tempo_range", (median, median))
            tempo += weight * np.array([low, median, high])
        return Habits({m: s for m, s in metres.items() if s > 0} or {DEFAULT_TIME_SIGNATURE: 1.0},
                      tuple(float(t) for t in tempo), {k: s for k, s in keys.items() if s > 0})

    def describe(self, label: str) -> str:
        info = self.label_info.get(label, {})
        alias_of = self.aliases.get(label)
        if alias_of:
            return f"{label}: alias of '{alias_of}' ({self.label_info.get(alias_of, {}).get('title', alias_of)})"
        parts = [info.get("title", label)]
        if "pieces" in info:
            parts.append(f"{info['pieces']} pieces")
        if "hours" in info:
            parts.append(f"{info['hours']:.1f} h")
        return f"{label}: " + ", ".join(parts)

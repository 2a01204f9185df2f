"""The ratings export: one JSON line per rated piece, the file every learner reads.

A line holds what regenerates or rebuilds the piece (its request parameters, seed, model
version and the MIDI itself, base64) and its ratings: counts and one value per rater under
a salted hash. No Discord id is ever written; the salt stays with whoever exported, so
two exports with the same salt can be joined per rater and nobody else can reverse them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from composer.corpus.store import atomic_write
from composer.errors import MozartError
from composer.music.grid import Piece
from composer.music.midi_io import stored_piece

FORMAT = "mozart.ratings/1"
RATER_HASH_CHARS = 16  # 64 bits of HMAC-SHA256: unique among any realistic number of raters


class RatingsFileError(MozartError):
    """A ratings file that cannot be read."""


def rater_hash(user_id: int, salt: str) -> str:
    """A person's stable pseudonym in one export (HMAC-SHA256 of the id under ``salt``)."""
    if not salt:
        raise ValueError("a salt is required: without one a Discord id could be recovered by brute force")
    return hmac.new(salt.encode(), str(int(user_id)).encode(), hashlib.sha256).hexdigest()[:RATER_HASH_CHARS]


@dataclass
class RatedRecord:
    """One rated piece as exported."""

    piece_id: int  # the row in the exporting database (not a Discord id)
    kind: str  # compose, remix, reroll, variation, extend, resound
    style: str
    model_version: str
    seed: int
    params: dict
    midi: bytes
    ratings: dict[str, int]  # rater hash -> +1 (👍) or -1 (👎); never the author's own (see author_rating)
    created_at: str = ""  # ISO 8601, UTC
    author_rating: int | None = None  # the author's 👍/👎 of their own piece, kept apart from ``ratings``
    copies: int = 1  # pieces of this very music (copies, changes of sound) whose ratings are merged here
    near_copy: bool = False  # a remix (or built on one) that re-composed little of someone's uploaded file

    @property
    def author_is_rater(self) -> bool:
        """Whether the piece's author rated it (their rating is never among ``ratings``)."""
        return self.author_rating is not None

    @property
    def likes(self) -> int:
        return sum(1 for v in self.ratings.values() if v > 0)

    @property
    def dislikes(self) -> int:
        return sum(1 for v in self.ratings.values() if v < 0)

    @property
    def verdict(self) -> int:
        """+1 liked (more 👍 than 👎), -1 disliked, 0 a tie: the binary label preference tuning uses."""
        return (self.likes > self.dislikes) - (self.likes < self.dislikes)

    def piece(self) -> Piece:
        return stored_piece(self.midi, style=self.style, seed=self.seed, model_version=self.model_version,
                            params=self.params, source=f"rated piece {self.piece_id}")

    def to_json(self) -> dict:
        data = asdict(self)
        data["midi"] = base64.b64encode(self.midi).decode("ascii")
        data["likes"], data["dislikes"] = self.likes, self.dislikes
        data["author_is_rater"] = self.author_is_rater
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: dict) -> RatedRecord:
        if data.get("format") != FORMAT:
            raise RatingsFileError(f"not a Mozart ratings line (format {data.get('format')!r}, expected {FORMAT})")
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["midi"] = base64.b64decode(known.get("midi", ""))
        known["ratings"] = {str(k): int(v) for k, v in known.get("ratings", {}).items()}
        return cls(**known)


def write_records(path: str | Path, records: Iterable[RatedRecord]) -> int:
    """Write ``records`` as JSON lines (atomically: a crash leaves the old file); returns how many."""
    lines = [json.dumps(record.to_json(), ensure_ascii=False) + "\n" for record in records]
    atomic_write(Path(path), "".join(lines))
    return len(lines)


def read_records(path: str | Path) -> list[RatedRecord]:
    """Every record of a ratings file; a damaged line is an error naming its line number."""
    path = Path(path)
    if not path.exists():
        raise RatingsFileError(f"No ratings file at {path}. Make one with: mozart ratings export --out {path}")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(RatedRecord.from_json(json.loads(line)))
        except (ValueError, TypeError, KeyError) as e:
            raise RatingsFileError(f"{path}, line {number}: {e}") from None
    return records


@dataclass
class RatingsSummary:
    """What a ratings file holds: recorded in a checkpoint that learnt from it."""

    file: str
    sha256: str
    pieces: int
    liked: int  # pieces with more 👍 than 👎
    disliked: int
    ratings: int
    versions: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, path: str | Path, records: list[RatedRecord]) -> RatingsSummary:
        path = Path(path)
        return cls(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest(), pieces=len(records),
                   liked=sum(r.verdict > 0 for r in records), disliked=sum(r.verdict < 0 for r in records),
                   ratings=sum(len(r.ratings) for r in records),
                   versions=sorted({r.model_version for r in records}))

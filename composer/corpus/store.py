"""``data/corpus/``: the piece files, the manifest and the builder's bookkeeping.

* ``pieces/<label>/<slug>.mzg`` — one ``Piece.to_bytes()`` per piece;
* ``manifest.jsonl`` — one JSON object per piece, sorted by id (see ``manifest_entry``);
* ``state.json`` — what the builder has done: for each *unit* (a Debian package, a
  music21 corpus file, a user file) its fingerprint and the piece ids it produced, so a
  second build skips it.

Both JSON files are written atomically (temporary file + rename): an interrupted build
keeps everything it finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from composer.music.grid import Piece

STATE_VERSION = 1
_UMASK = os.umask(0o022)
os.umask(_UMASK)
MANIFEST = "manifest.jsonl"
STATE = "state.json"
PIECES = "pieces"


def grid_sha256(piece: Piece) -> str:
    """The content hash: sha256 of the raw ``(frames, 5)`` uint8 grid (metadata left out,
    so one piece encoded twice — say MusicXML and Humdrum — hashes the same)."""
    return hashlib.sha256(piece.grid.tobytes()).hexdigest()


def slugify(text: str) -> str:
    """'01-Simutrans Main Theme' -> '01-simutrans-main-theme' (keeps a-z, 0-9, '.', '_', '-')."""
    slug = re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._")
    return re.sub(r"\.{2,}", ".", slug) or "piece"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder + rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def manifest_entry(piece: Piece, piece_id: str, sha256: str, **source) -> dict:
    """One manifest line. ``source`` holds source/source_type/package/version/path/licence."""
    num, den = piece.time_signature
    return {
        "id": piece_id,
        "title": piece.title,
        "game": piece.game,
        "composer": piece.composer,
        "source": source.get("source", piece.source),
        "source_type": source.get("source_type"),  # "debian" | "music21" | "user"
        "package": source.get("package"),
        "version": source.get("version"),
        "path": source.get("path"),
        "licence": source.get("licence"),
        "time_signature": f"{num}/{den}",
        "tempo": piece.tempo,
        "key": piece.key,
        "frames_per_bar": piece.frames_per_bar,
        "bars": piece.n_bars,
        "frames": piece.n_frames,
        "notes": piece.note_count(),
        "seconds": round(piece.seconds, 3),
        "sha256": sha256,
        "file": f"{PIECES}/{piece_id}.mzg",
    }


def read_manifest(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@dataclass
class Unit:
    """What one source unit produced."""

    fingerprint: str
    kind: str  # "debian" | "music21" | "user" | "foreign"
    label: str
    ids: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # would-be id -> id it duplicates
    errors: list[str] = field(default_factory=list)  # files skipped, with the reason
    info: dict = field(default_factory=dict)  # e.g. package version, licence

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class CorpusStore:
    """The on-disk corpus under ``data_dir/corpus``, loaded into memory for one build."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "corpus"
        self.entries: dict[str, dict] = {e["id"]: e for e in read_manifest(self.root / MANIFEST)}
        self.units: dict[str, Unit] = {}
        state_path = self.root / STATE
        if state_path.exists():
            state = json.loads(state_path.read_text())
            if state.get("format_version") == STATE_VERSION:
                self.units = {k: Unit(**v) for k, v in state["units"].items()}
        self.by_hash = {e["sha256"]: e["id"] for e in self.entries.values()}
        self.dirty = False

    # -- queries -----------------------------------------------------------------------
    def is_done(self, key: str, fingerprint: str | None = None) -> bool:
        """Was the unit processed (with this fingerprint, if given) and are its pieces all there?"""
        unit = self.units.get(key)
        if unit is None or (fingerprint is not None and unit.fingerprint != fingerprint):
            return False
        return all(i in self.entries and (self.root / self.entries[i]["file"]).exists() for i in unit.ids)

    def piece_path(self, piece_id: str) -> Path:
        return self.root / PIECES / f"{piece_id}.mzg"

    # -- changes -----------------------------------------------------------------------
    def drop_unit(self, key: str) -> int:
        """Forget a unit and delete its pieces; returns how many pieces went."""
        unit = self.units.pop(key, None)
        if unit is None:
            return 0
        for piece_id in unit.ids:
            entry = self.entries.pop(piece_id, None)
            if entry is not None:
                self.by_hash.pop(entry["sha256"], None)
                (self.root / entry["file"]).unlink(missing_ok=True)
        self.dirty = True
        return len(unit.ids)

    def _free_id(self, wanted: str) -> str:
        if wanted not in self.entries:
            return wanted
        n = 2
        while f"{wanted}-{n}" in self.entries:
            n += 1
        return f"{wanted}-{n}"

    def add_piece(self, unit: Unit, wanted_id: str, piece: Piece, **source) -> str | None:
        """Store a piece under a free id (``wanted_id`` or ``wanted_id-2``...) unless its grid
        duplicates one already stored; returns the id, or None for a duplicate."""
        sha = grid_sha256(piece)
        if sha in self.by_hash:
            unit.duplicates[wanted_id] = self.by_hash[sha]
            return None
        piece_id = self._free_id(wanted_id)
        piece.extra = {**piece.extra, "id": piece_id, "licence": source.get("licence")}
        atomic_write(self.piece_path(piece_id), piece.to_bytes())
        self.entries[piece_id] = manifest_entry(piece, piece_id, sha, **source)
        self.by_hash[sha] = piece_id
        unit.ids.append(piece_id)
        self.dirty = True
        return piece_id

    def set_unit(self, key: str, unit: Unit) -> None:
        self.units[key] = unit
        self.dirty = True

    def save(self) -> None:
        if not self.dirty and (self.root / MANIFEST).exists():
            return
        lines = "".join(json.dumps(self.entries[i], ensure_ascii=False, sort_keys=False) + "\n" for i in sorted(self.entries))
        atomic_write(self.root / MANIFEST, lines)
        state = {"format_version": STATE_VERSION, "units": {k: self.units[k].to_dict() for k in sorted(self.units)}}
        atomic_write(self.root / STATE, json.dumps(state, indent=1, ensure_ascii=False))
        self.dirty = False

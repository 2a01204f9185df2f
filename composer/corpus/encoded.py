"""``corpus encode`` and its reader: the corpus as flat arrays the trainer can window cheaply.

``data/encoded/{train,valid,test}.npz`` each hold (n = pieces in the split):

* ``grid`` — every piece's grid concatenated, ``(total_frames, 5)`` uint8;
* ``offsets`` — ``(n + 1,)`` int64: piece i is ``grid[offsets[i]:offsets[i + 1]]``;
* ``game`` / ``composer`` — ``(n,)`` int16 index into ``meta.json``'s sorted label lists, -1 when absent;
* ``frames_per_bar`` — ``(n,)`` int16; ``time_signature`` — ``(n, 2)`` int16; ``tempo`` — ``(n,)`` float32;
* ``ids`` — ``(n,)`` piece ids (unicode; no pickle needed).

``meta.json`` holds ``format_version``, ``games``, ``composers``, per-label counts, the
sha256 of the manifest it was made from and the split ids. Windows are cut by the
trainer *inside* one piece (``offsets``), so no window spans two pieces or two splits.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.music import tokens as T
from composer.corpus.split import SPLITS, split_ids
from composer.corpus.stats import label_stats
from composer.corpus.store import MANIFEST, atomic_write, read_manifest
from composer.errors import MozartError
from composer.music.grid import Piece

FORMAT_VERSION = 1
ENCODED = "encoded"
# the arrays of ``<split>.npz``, in the order the module docstring describes them
ARRAYS = ("grid", "offsets", "game", "composer", "frames_per_bar", "time_signature", "tempo", "ids")


@dataclass
class EncodedSplit:
    """One split of the encoded corpus, as loaded from ``<split>.npz``."""

    name: str
    grid: np.ndarray  # (total_frames, 5) uint8 tokens
    offsets: np.ndarray  # (n + 1,) int64
    game: np.ndarray  # (n,) int16, index into games, -1 = none
    composer: np.ndarray  # (n,) int16, index into composers, -1 = none
    frames_per_bar: np.ndarray  # (n,) int16
    time_signature: np.ndarray  # (n, 2) int16
    tempo: np.ndarray  # (n,) float32, quarter notes per minute
    ids: list[str]  # piece ids
    games: list[str]  # all game labels of the corpus (sorted; same in every split)
    composers: list[str]  # all composer labels (sorted)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Frames per piece, ``(n,)`` int64."""
        return np.diff(self.offsets)

    @property
    def n_frames(self) -> int:
        return int(self.offsets[-1])

    def piece_grid(self, i: int) -> np.ndarray:
        """A view of piece i's ``(frames, 5)`` grid."""
        return self.grid[self.offsets[i] : self.offsets[i + 1]]

    def labels(self, i: int) -> tuple[str | None, str | None]:
        """(game, composer) label names of piece i."""
        g, c = int(self.game[i]), int(self.composer[i])
        return (self.games[g] if g >= 0 else None, self.composers[c] if c >= 0 else None)

    def piece(self, i: int) -> Piece:
        """Piece i as a ``Piece`` (grid copied; title/key are in the manifest, not here)."""
        game, composer = self.labels(i)
        ts = (int(self.time_signature[i, 0]), int(self.time_signature[i, 1]))
        return Piece(
            grid=self.piece_grid(i).copy(),
            time_signature=ts,
            tempo=float(self.tempo[i]),
            game=game,
            composer=composer,
            source=f"corpus:{self.ids[i]}",
        )

    @classmethod
    def from_pieces(cls, name: str, pieces: list[Piece], ids: list[str], games: list[str],
                    composers: list[str]) -> EncodedSplit:
        """The split of ``pieces`` (their labels looked up in ``games`` / ``composers``)."""
        lengths = np.array([p.n_frames for p in pieces], np.int64)
        return cls(
            name=name,
            grid=np.concatenate([p.grid for p in pieces]) if pieces else np.zeros((0, T.N_VOICES), np.uint8),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            game=np.array([games.index(p.game) if p.game else -1 for p in pieces], np.int16),
            composer=np.array([composers.index(p.composer) if p.composer else -1 for p in pieces], np.int16),
            frames_per_bar=np.array([p.frames_per_bar for p in pieces], np.int16),
            time_signature=np.array([p.time_signature for p in pieces], np.int16).reshape(-1, 2),
            tempo=np.array([p.tempo for p in pieces], np.float32),
            ids=list(ids),
            games=list(games),
            composers=list(composers),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``<split>.npz`` holds; ``load_split`` reads it back."""
        arrays = {k: getattr(self, k) for k in ARRAYS}
        arrays["ids"] = np.array(self.ids, dtype=str)
        return arrays


def encoded_dir(data_dir: Path) -> Path:
    """The encoded corpus folder: ``data_dir`` itself when it holds ``meta.json``, else ``data_dir/encoded``."""
    data_dir = Path(data_dir)
    return data_dir if (data_dir / "meta.json").exists() else data_dir / ENCODED


def manifest_path(data_dir: Path) -> Path:
    """The corpus manifest the encoded corpus under ``data_dir`` (the data root or ``data/encoded``) is made from."""
    return encoded_dir(data_dir).parent / "corpus" / MANIFEST


def load_meta(data_dir: Path) -> dict:
    """``meta.json`` of the encoded corpus under ``data_dir`` (the data root or ``data/encoded``)."""
    path = encoded_dir(data_dir) / "meta.json"
    if not path.exists():
        raise MozartError(f"No encoded corpus at {path.parent}. Run `python -m composer corpus encode` first.")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise MozartError(
            f"{path} has format_version {meta.get('format_version')}; this Mozart reads {FORMAT_VERSION}. "
            "Run `python -m composer corpus encode --force`."
        )
    return meta


def load_split(data_dir: Path, split: str) -> EncodedSplit:
    """Load ``train``, ``valid`` or ``test`` from ``data_dir/encoded`` (or ``data_dir`` itself)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} (received {split!r})")
    meta = load_meta(data_dir)
    with np.load(encoded_dir(data_dir) / f"{split}.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in ARRAYS}
    return EncodedSplit(
        name=split,
        **{k: arrays[k] for k in ARRAYS if k != "ids"},
        ids=[str(i) for i in arrays["ids"]],
        games=list(meta["games"]),
        composers=list(meta["composers"]),
    )


def _split_of(name: str, entries: list[dict], corpus_root: Path, games: list[str],
              composers: list[str]) -> EncodedSplit:
    """The split of the manifest ``entries``, read from their piece files."""
    pieces = []
    for e in entries:
        piece = Piece.from_bytes((corpus_root / e["file"]).read_bytes())
        if piece.n_frames != e["frames"]:
            raise MozartError(f"{e['file']} does not match the manifest (frames). Rebuild: corpus build --force.")
        pieces.append(piece)
    return EncodedSplit.from_pieces(name, pieces, [e["id"] for e in entries], games, composers)


def encode_corpus(data_dir: Path, force: bool = False) -> tuple[dict, list[str]]:
    """Write ``data_dir/encoded``; returns ``(meta, notes)``. Does nothing (notes say so)
    when the encoded files already match the manifest, unless ``force``."""
    data_dir = Path(data_dir)
    manifest = data_dir / "corpus" / MANIFEST
    if not manifest.exists():
        raise MozartError(f"No corpus manifest at {manifest}. Run `python -m composer corpus build` first.")
    manifest_sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
    out = data_dir / ENCODED
    if not force and (out / "meta.json").exists():
        try:
            old = json.loads((out / "meta.json").read_text())
        except ValueError:
            old = {}
        if (
            old.get("format_version") == FORMAT_VERSION
            and old.get("manifest_sha256") == manifest_sha
            and all((out / f"{s}.npz").exists() for s in SPLITS)
        ):
            return old, ["nothing to do: data/encoded matches the manifest (use --force to rewrite)"]

    entries = read_manifest(manifest)
    if not entries:
        raise MozartError("The corpus manifest is empty. Run `python -m composer corpus build` first.")
    games = sorted({e["game"] for e in entries if e.get("game")})
    composers = sorted({e["composer"] for e in entries if e.get("composer")})
    split, notes = split_ids(entries)
    by_id = {e["id"]: e for e in entries}
    frames = {}
    for name in SPLITS:
        encoded = _split_of(name, [by_id[i] for i in split[name]], data_dir / "corpus", games, composers)
        frames[name] = encoded.n_frames
        buffer = io.BytesIO()
        np.savez(buffer, **encoded.arrays())
        atomic_write(out / f"{name}.npz", buffer.getvalue())
    counts = {kind: {label: s.to_dict() for label, s in labels.items()} for kind, labels in label_stats(entries).items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "games": games,
        "composers": composers,
        "counts": counts,
        "frames": frames,
        "pieces": {name: len(split[name]) for name in SPLITS},
        "manifest_sha256": manifest_sha,
        "split": split,
    }
    atomic_write(out / "meta.json", json.dumps(meta, indent=1))
    return meta, notes

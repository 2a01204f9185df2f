"""``corpus stats``: pieces, bars and hours per label, from the manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from composer.corpus.store import MANIFEST, read_manifest


@dataclass
class LabelStats:
    pieces: int = 0
    bars: int = 0
    frames: int = 0
    seconds: float = 0.0

    def add(self, entry: dict) -> None:
        self.pieces += 1
        self.bars += int(entry["bars"])
        self.frames += int(entry["frames"])
        self.seconds += float(entry["seconds"])

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def to_dict(self) -> dict:
        return {"pieces": self.pieces, "bars": self.bars, "frames": self.frames, "hours": round(self.hours, 3)}


def label_stats(entries: list[dict]) -> dict[str, dict[str, LabelStats]]:
    """{"games": {label: stats}, "composers": {label: stats}}; a piece with both labels
    counts under both."""
    out: dict[str, dict[str, LabelStats]] = {"games": {}, "composers": {}}
    for entry in entries:
        for kind, field in (("games", "game"), ("composers", "composer")):
            label = entry.get(field)
            if label:
                out[kind].setdefault(label, LabelStats()).add(entry)
    return {kind: dict(sorted(labels.items())) for kind, labels in out.items()}


def format_stats(entries: list[dict], remix_inputs: int = 0) -> str:
    by_kind = label_stats(entries)
    lines = [f"{'label':<18}{'pieces':>8}{'bars':>9}{'hours':>8}"]

    def row(name: str, s: LabelStats) -> str:
        return f"{name:<18}{s.pieces:>8}{s.bars:>9}{s.hours:>8.2f}"

    for kind in ("games", "composers"):
        labels = by_kind[kind]
        lines.append(f"{kind} ({len(labels)})")
        total = LabelStats()
        for label, s in labels.items():
            lines.append(row(f"  {label}", s))
            total.pieces, total.bars, total.seconds = total.pieces + s.pieces, total.bars + s.bars, total.seconds + s.seconds
        lines.append(row(f"  total {kind}", total))
    overall = LabelStats()
    for entry in entries:
        overall.add(entry)
    lines.append(row("all pieces", overall))
    if remix_inputs:
        lines.append(f"(plus {remix_inputs} foreign remix inputs in data/remix_inputs/, not training data)")
    return "\n".join(lines)


def count_remix_inputs(data_dir: Path) -> int:
    total = 0
    for index in sorted((Path(data_dir) / "remix_inputs").glob("*/index.jsonl")):
        total += sum(1 for line in index.read_text().splitlines() if line.strip())
    return total


def load_entries(data_dir: Path) -> list[dict]:
    return read_manifest(Path(data_dir) / "corpus" / MANIFEST)


def stats_json(entries: list[dict]) -> str:
    return json.dumps({k: {l: s.to_dict() for l, s in v.items()} for k, v in label_stats(entries).items()}, indent=1)

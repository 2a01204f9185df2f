"""What a model records about each style it learnt, from the corpus manifest: pieces, hours, sources and
licences (for /styles and the model card), and the habits generation draws from (metres, keys, tempi)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from composer.corpus.store import read_manifest
from composer.music.grid import DEFAULT_TIME_SIGNATURE, frames_per_bar, parse_time_signature
from composer.nn.model import MAX_FRAMES_PER_BAR


def label_info_from_manifest(manifest: Path) -> dict:
    """Per label: pieces, hours, source and licence (for /styles and the card), and the
    style's habits that generation draws from: its metres and keys (share of pieces) and its
    tempi (median and quartiles)."""
    info: dict[str, dict] = {}
    tempos: dict[str, list] = {}
    metres: dict[str, Counter] = {}
    keys: dict[str, Counter] = {}
    for row in read_manifest(manifest):
        for kind in ("game", "composer"):
            label = row.get(kind)
            if not label:
                continue
            entry = info.setdefault(label, {"kind": kind, "pieces": 0, "hours": 0.0, "sources": [], "licences": []})
            entry["pieces"] += 1
            entry["hours"] += row["seconds"] / 3600
            tempos.setdefault(label, []).append(float(row["tempo"]))
            metres.setdefault(label, Counter())[row["time_signature"]] += 1
            if row.get("key"):
                keys.setdefault(label, Counter())[row["key"]] += 1
            source = str(row.get("package") or row.get("source", "")).split(":")[0].split("/")[0]
            if source and source not in entry["sources"] and len(entry["sources"]) < 3:
                entry["sources"].append(source)
            licence = row.get("licence")
            if licence and licence not in entry["licences"] and len(entry["licences"]) < 3:
                entry["licences"].append(licence)
    for label, entry in info.items():
        entry["hours"] = round(entry["hours"], 2)
        entry.update(style_habits(tempos[label], metres[label], keys.get(label)))
    return info


MIN_FRAMES_PER_BAR = 6  # 3/8; shorter "bars" (1/8, 2/8) are MIDI files' bogus metres, not a habit


def style_habits(tempos: list[float], metres: Counter, keys: Counter | None = None, min_share: float = 0.03) -> dict:
    """``tempo`` (median), ``tempo_range`` (quartiles), ``metres`` ({"3/4": share, ...}) and
    ``keys`` ({"D minor": share, ...}). Metres and keys of fewer than ``min_share`` of the
    pieces are left out (a style's rarities), as are metres whose bars are too short or too
    long to compose in."""
    metres = Counter({m: n for m, n in metres.items()
                      if MIN_FRAMES_PER_BAR <= frames_per_bar(parse_time_signature(m)) <= MAX_FRAMES_PER_BAR})
    metres = metres or Counter({DEFAULT_TIME_SIGNATURE: 1})
    total = sum(metres.values())
    common = {m: n / total for m, n in metres.most_common() if n / total >= min_share} or {metres.most_common(1)[0][0]: 1.0}
    kept = sum(common.values())
    habits = {"tempo": float(np.median(tempos)),
              "tempo_range": [float(np.percentile(tempos, 25)), float(np.percentile(tempos, 75))],
              "metres": {m: round(share / kept, 3) for m, share in common.items()}}
    if keys:
        total = sum(keys.values())
        usual = {k: n for k, n in keys.most_common() if n / total >= min_share}
        habits["keys"] = {k: round(n / sum(usual.values()), 3) for k, n in usual.items()}
    return habits

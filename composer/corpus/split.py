"""The train/valid/test split: deterministic, by piece (never by window), stratified per label.

Pieces are grouped by their labels (game, composer) and ordered inside each group by a
stable hash of their id (sha256, not Python's salted ``hash()``). A group of n pieces:

* n >= 3: about 10 % to valid and 10 % to test, at least one each, the rest to train;
* n == 2: one train, one valid;
* n == 1: train only — that label cannot be validated (a note says so).

Then every single label with >= 2 pieces and no piece in valid gets one moved there from
train (only matters when pieces carry both a game and a composer label).
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")
VALID_SHARE = 0.10
TEST_SHARE = 0.10


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _labels(entry: dict) -> list[str]:
    return [f"{kind}:{entry[kind]}" for kind in ("game", "composer") if entry.get(kind)]


def split_ids(entries: list[dict]) -> tuple[dict[str, list[str]], list[str]]:
    """``({"train": ids, "valid": ids, "test": ids}, notes)``; every list sorted."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for entry in entries:
        groups.setdefault(tuple(_labels(entry)) or ("unlabelled",), []).append(entry["id"])
    assign: dict[str, str] = {}
    notes = []
    for group, ids in sorted(groups.items()):
        ids = sorted(ids, key=lambda i: (stable_hash(i), i))
        n = len(ids)
        if n >= 3:
            n_valid = max(1, round(n * VALID_SHARE))
            n_test = max(1, round(n * TEST_SHARE))
        elif n == 2:
            n_valid, n_test = 1, 0
        else:
            n_valid, n_test = 0, 0
            notes.append(f"{' + '.join(group)} has only 1 piece: train only, it cannot be validated.")
        for i, piece_id in enumerate(ids):
            assign[piece_id] = "valid" if i < n_valid else "test" if i < n_valid + n_test else "train"

    by_label: dict[str, list[str]] = {}
    for entry in entries:
        for label in _labels(entry):
            by_label.setdefault(label, []).append(entry["id"])
    for label, ids in sorted(by_label.items()):
        if len(ids) >= 2 and not any(assign[i] == "valid" for i in ids):
            train = sorted((i for i in ids if assign[i] == "train"), key=lambda i: (stable_hash(i), i))
            if train:
                assign[train[0]] = "valid"

    split = {name: sorted(i for i, s in assign.items() if s == name) for name in SPLITS}
    return split, notes

"""Shared fixtures: a tiny corpus stored and encoded the way `python -m composer corpus encode`
does it, and a tiny checkpoint trained on it, made in seconds."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from composer.music import tokens as T
from composer.corpus.encoded import ENCODED, encode_corpus
from composer.corpus.store import CorpusStore, Unit
from composer.music.grid import Piece
# the database tests on SQLite and on PostgreSQL (database_url), and a line saying which: tests/pg_server.py
from tests.pg_server import database_url, postgres_server, pytest_terminal_summary  # noqa: F401

GAMES = ["dink", "doom"]
COMPOSERS = ["bach", "mozart"]
PIECES_PER_LABEL = 5  # the split sends one to valid and one to test: 12 train, 4 valid, 4 test pieces
BARS = 8
METER = {"mozart": (3, 4)}  # minuets; every other label is in 4/4
TEMPO = {"dink": 140.0, "doom": 160.0, "bach": 80.0, "mozart": 120.0}


def synthetic_piece(root: int, bars: int, time_signature=(4, 4), drums: bool = True, **labels) -> Piece:
    """A small, learnable piece: a repeating arpeggio over a bass line with a beat."""
    piece = Piece.empty(bars, time_signature, **labels)
    grid, fpb = piece.grid, piece.frames_per_bar
    pattern = [0, 4, 7, 12]
    for f in range(0, len(grid), 2):
        grid[f, 0] = T.onset(root + pattern[(f // 2) % 4])
        grid[f + 1, 0] = T.HOLD
    for f in range(0, len(grid), fpb):
        grid[f, 3] = T.onset(root - 24)
        grid[f + 1 : f + fpb, 3] = T.HOLD
        grid[f, 1] = T.onset(root + 4)
        grid[f + 1 : f + fpb // 2, 1] = T.HOLD
    if drums:
        grid[::4, 4] = T.drum_token("kick")
        grid[2::4, 4] = T.drum_token("hat")
    return piece


def fixture_pieces() -> list[Piece]:
    """``PIECES_PER_LABEL`` pieces of every label, each in its own key (so no two are duplicates)."""
    pieces = []
    for k, label in enumerate(GAMES + COMPOSERS):
        kind = "game" if label in GAMES else "composer"
        for j in range(PIECES_PER_LABEL):
            pieces.append(synthetic_piece(55 + 2 * j + k, BARS, METER.get(label, (4, 4)), drums=kind == "game",
                                          title=f"{label} {j}", tempo=TEMPO[label], **{kind: label}))
    return pieces


def store_pieces(data_dir, pieces: list[Piece]) -> list[str]:
    """Store ``pieces`` in ``data_dir/corpus`` as `corpus build` does for a user folder:
    one unit per label, ids ``<label>/p001``, ``<label>/p002``... numbered across labels."""
    store = CorpusStore(data_dir)
    units: dict[str, Unit] = {}
    ids = []
    for n, piece in enumerate(pieces, 1):
        label = piece.game or piece.composer
        unit = units.setdefault(label, Unit("synthetic", "user", label))
        piece_id = store.add_piece(unit, f"{label}/p{n:03d}", piece, source_type="user", licence="CC0-1.0")
        assert piece_id, f"piece {n} duplicates {unit.duplicates}"
        ids.append(piece_id)
    for label, unit in units.items():
        store.set_unit(f"user:{label}", unit)
    store.save()
    return ids


@pytest.fixture(scope="session")
def encoded_dir(tmp_path_factory):
    """``data/encoded`` of a data root whose corpus holds ``fixture_pieces()``."""
    data_dir = tmp_path_factory.mktemp("data")
    store_pieces(data_dir, fixture_pieces())
    encode_corpus(data_dir)
    return data_dir / ENCODED


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, encoded_dir):
    """A tiny td_bilstm trained for a few steps on the synthetic corpus."""
    from composer.nn.model import ModelConfig
    from composer.nn.train import TrainConfig, train

    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    cfg = TrainConfig(data=str(encoded_dir), window_bars=4, batch_size=8, max_steps=30, steps_per_epoch=15,
                      warmup_steps=5, lr=5e-3, val_max_windows=8, seed=0)
    train(cfg, ModelConfig.tiny(), out, quiet=True)
    return out


TINY_NETWORK = {"embed_dim": 8, "style_dim": 4, "hidden": 16, "lstm_layers": 1}


def write_recipe(path, encoded_dir, steps=6):
    """A two-stage recipe (infiller + draft) of tiny networks trained for ``steps`` steps."""
    import json

    train = {"data": str(encoded_dir), "window_bars": 4, "batch_size": 4, "max_steps": steps, "steps_per_epoch": 2,
             "warmup_steps": 1, "val_max_windows": 2, "patience": 100, "lr": 0.005}
    path.write_text(json.dumps({"name": "tiny", "stages": [
        {"name": "infill", "role": "infill", "train": train, "model": {"arch": "td_bilstm", **TINY_NETWORK}},
        {"name": "draft", "role": "draft", "train": train, "model": {"arch": "td_lstm", **TINY_NETWORK}},
    ]}))
    return path


@pytest.fixture(scope="session")
def tiny_composer(tmp_path_factory, encoded_dir):
    """A tiny v2-style composer (infiller + draft, with its companions) made by the recipe."""
    from composer.nn.recipe import run_recipe

    root = tmp_path_factory.mktemp("composer")
    return run_recipe(write_recipe(root / "tiny.json", encoded_dir, steps=20), root / "run", quiet=True)


@pytest.fixture(scope="session")
def generator(tiny_checkpoint):
    from composer.generate.generator import Generator

    return Generator.load(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def shipped_generator():
    """The model shipped inside the package (skips in a checkout without it)."""
    from composer.nn.checkpoint import DEFAULT_MODEL_DIR
    from composer.generate.generator import Generator

    if not (DEFAULT_MODEL_DIR / "model.safetensors").exists():
        pytest.skip("no shipped model in this checkout")
    return Generator.load(device="cpu")


# Loggers that are not the bot's: the fake Discord itself and its web server's access log.
NOT_THE_BOT = ("fakediscord", "aiohttp.access")


def logged_ids(records, ids) -> list[tuple[str, int]]:
    """(logger, id) for every Discord id in ``ids`` that appears in a log record (message or traceback)."""
    wanted = {str(i) for i in ids}
    found = []
    for record in records:
        if record.name.startswith(NOT_THE_BOT):
            continue
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        for number in re.findall(r"\d+", text):
            if number in wanted:
                found.append((record.name, int(number)))
    return found


@pytest.fixture
async def fake(caplog):
    """A fake Discord (``fakediscord``). Afterwards, every log line the bot wrote at INFO or above (the
    level it runs at) is scanned for every id the fake issued: users, servers, channels, messages."""
    from fakediscord import FakeDiscord

    caplog.set_level(logging.INFO)
    async with FakeDiscord() as server:
        yield server
    leaked = logged_ids(caplog.records, server.issued_ids())
    assert not leaked, f"raw Discord ids in the logs: {leaked}"


# -- the bot against the fake Discord: what every end-to-end test file shares ----------------
OTHER_USER = 555_000_111


def bot_config(tmp_path, tiny_checkpoint, **overrides):
    """The bot's settings for a test: a fake token, a database in ``tmp_path``, the tiny model."""
    from bot import BotConfig

    settings = dict(token="fake-token", database_url=f"sqlite+aiosqlite:///{tmp_path / 'mozart.db'}",
                    checkpoint=str(tiny_checkpoint), device="cpu")
    settings.update(overrides)
    return BotConfig(**settings)


async def wait_rating(bot, piece_id, user_id, expected, timeout=5.0):
    """Poll the database until the user's rating of the piece is ``expected`` (None = none)."""
    from sqlalchemy import select

    import db

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with bot.db() as session:
            value = (await session.execute(select(db.Rating.value).where(
                db.Rating.piece_id == piece_id, db.Rating.user_id == user_id))).scalar_one_or_none()
        if value == expected:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"rating is {value}, expected {expected}")
        await asyncio.sleep(0.05)


async def posted_piece(fake, interaction, timeout=60.0):
    """The piece message, once finished: files posted (after progress edits) and rating prompts added."""
    def finished():
        message = interaction.original
        if message is not None and message.attachments and {"👍", "👎"} <= set(message.reactions):
            return message
        return None

    return await fake.wait_for(finished, timeout, "the posted piece")


async def compose_in(fake, **options):
    """/compose (4 bars of zelda-bach unless ``options`` say otherwise): the interaction, its first answer, the post."""
    interaction = await fake.slash("compose", {"style": "zelda-bach", "bars": 4, **options})
    response = await interaction.wait_response(3)
    return interaction, response, await posted_piece(fake, interaction)

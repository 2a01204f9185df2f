"""The model shipped inside the package: loads with no configuration and knows its styles."""

from __future__ import annotations

import pytest

from composer.checkpoint import DEFAULT_MODEL_DIR
from composer.generator import Generator
from composer.request import GenerationRequest

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / "model.safetensors").exists(),
                                reason="no shipped model in this checkout")


@pytest.fixture(scope="module")
def shipped():
    return Generator.load(device="cpu")


def test_shipped_model_is_small_and_knows_games_and_composers(shipped):
    weights = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.rglob("*") if f.is_file())
    assert weights < 25e6  # both networks, the originality index and configs
    assert shipped.draft is not None and shipped.draft.config.causal  # v2: a left-to-right draft network
    catalog = shipped.catalog
    assert len(catalog.games) >= 6 and len(catalog.composers) >= 4
    # no style is one piece imitated: tiny game labels were folded into "arcade"
    assert min(catalog.label_info[label]["pieces"] for label in catalog.games + catalog.composers) >= 5
    style = catalog.resolve("zelda-bach")
    assert (style.game, style.composer) == ("dink", "bach")
    assert shipped.originality is not None and len(shipped.originality) > 100


def test_shipped_model_composes_zelda_bach(shipped):
    piece = shipped.generate(GenerationRequest(style="zelda-bach", bars=4, seed=7, steps=4))
    assert piece.n_bars == 4
    assert piece.note_count() > 8  # it actually writes music, not silence
    again = shipped.generate(GenerationRequest(style="zelda-bach", bars=4, seed=7, steps=4))
    assert (again.grid == piece.grid).all()

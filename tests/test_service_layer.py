"""Serving sits above the music engine: nothing in ``composer`` imports ``service`` (or the bot's layers)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABOVE_THE_ENGINE = ("service", "cogs", "workers", "bot", "db", "fakediscord", "playground", "mozart_cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_engine_never_imports_serving():
    upward = {f"{path.relative_to(ROOT)}: {name}"
              for path in (ROOT / "composer").rglob("*.py")
              for name in _imports(path) if name.split(".")[0] in ABOVE_THE_ENGINE}
    assert not upward, sorted(upward)

"""The music engine's floors (pyproject.toml's [tool.importlinter]) hold: no import runs back up, serving
sits on the engine and the cogs and workers on serving, the engine reaches nothing of the bot's, and no two
modules import each other (directly or round a loop)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ["composer.cli", "composer.feedback", "composer.evaluate", "composer.generate", "composer.judge",
          "composer.nn", "composer.corpus | composer.render | composer.analysis", "composer.music"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's `lint-imports` on the project in ``root`` (it reads root's pyproject.toml)."""
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
               "sys.exit(lint_imports_command())", "--no-cache"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)})


def test_the_contract_lists_the_floors_top_to_bottom():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")
    assert layers["layers"] == FLOORS
    assert all(floor in {p.name for p in (ROOT / "composer").iterdir()}
               for line in FLOORS for floor in (f.strip().split(".")[1] for f in line.split("|")))


def test_the_floors_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.slow
def test_an_import_that_runs_back_up_fails(tmp_path):
    for package in ("composer", "service", "cogs", "workers"):  # the contracts' root packages
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "default_model"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert lint_imports(tmp_path).returncode == 0  # the copy holds, as the project does
    grid = tmp_path / "composer" / "music" / "grid.py"
    grid.write_text(grid.read_text() + "\nfrom composer.generate.request import GenerationRequest  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1
    assert "composer.music is not allowed to import composer.generate" in result.stdout
    assert "composer.music.grid -> composer.generate.request" in result.stdout


def test_no_module_imports_itself_round_a_loop():
    graph = grimp.build_graph("composer", exclude_type_checking_imports=True)
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                loops.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert loops == []


PACKAGES = ("composer", "service", "cogs", "db", "fakediscord", "playground", "workers", "benchmarks")


def test_every_module_imports():
    """A module that names a module that moved fails here, not when someone first runs its command."""
    import importlib
    import pkgutil

    failed = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if ".migrations" in info.name or info.name.endswith("__main__"):
                continue  # migrations are run by alembic; a __main__ runs its command when imported
            try:
                importlib.import_module(info.name)
            except Exception as e:  # noqa: BLE001  every failure is listed, not only the first
                failed.append(f"{info.name}: {e!r}")
    assert not failed, "\n".join(failed)

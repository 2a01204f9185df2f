"""The corpus sources: one module each, one line each in ``REGISTRY``.

Every source is a ``composer.corpus.sources.base.Source``: it names the labels it can
build (``labels()``, for ``--only``) and imports its units into the store (``build()``),
using the shared bookkeeping of ``composer.corpus.session.BuildSession``. A source made
of files (a music21 collection, a folder) subclasses ``FileSource`` and only lists its
units. Keyword-only constructor parameters are the source's own build options (such as
``from_dir`` or ``palestrina_cap``); ``build_corpus`` hands each source the ones it takes.

This module imports nothing, so the command line can offer the names cheaply; a source
module is imported when a build needs it. Sources are built in the order listed here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.corpus.sources.base import Source

REGISTRY: dict[str, str] = {  # name (--source, unit kind) -> "module:class"
    "debian": "composer.corpus.sources.debian_packages:DebianPackages",
    "tracker": "composer.corpus.sources.tracker:TrackerModules",
    "music21": "composer.corpus.sources.music21_corpus:Music21Corpus",
    "folk": "composer.corpus.sources.folk:FolkTunes",
    "user": "composer.corpus.sources.user_folders:UserFolders",
}

SOURCES = tuple(REGISTRY)


def load_source(name: str) -> type[Source]:
    """The class registered as ``name``."""
    module, _, cls = REGISTRY[name].partition(":")
    return getattr(import_module(module), cls)

"""Evaluation: does the music sustain a theme, sound like its styles, stay original, and
beat the original model? (issue 7)

* ``metrics``     — per-piece musical statistics (muspy where it has them) and the MGEval overlap
* ``structure``   — bar-by-bar self-similarity and the theme-return score
* ``likelihood``  — masked-cell and continuation NLL on held-out music; the n-gram baseline
* ``style``       — window features, the style classifier and the real-vs-generated classifier
* ``report``      — ``python -m composer eval``: generate, measure, write report.md + figures.json
* ``compare``     — ``python -m composer eval compare``: the five architectures, same budget

Submodules are imported on use. The originality index is a checkpoint artefact used while
serving, so it lives in ``composer.originality``.
"""

"""Evaluation: does the music sustain a theme, sound like its styles, stay original, and
beat the original model? (issue 7)

* ``likelihood``  — masked-cell and continuation NLL on held-out music; the n-gram baseline
* ``style``       — window features, the style classifier and the real-vs-generated classifier
* ``plan``        — ``EvalConfig`` and the generated pieces it asks for (styles x forms x seeds)
* ``real``        — ``RealData``: the encoded corpus' splits, cut into excerpts like the generated pieces
* ``sections``    — the report's five sections, each a dict of figures
* ``targets``     — issue 7's thresholds and ``judge_targets``: met, missed or not measured
* ``plots``       — the report's PNGs (and the matplotlib set-up every picture shares)
* ``formatting``  — numbers in text, Markdown tables, JSON-safe values
* ``writer``      — figures.json, the pictures and report.md
* ``report``      — ``evaluate_checkpoint``: load, generate, run the sections, judge, write
* ``versus``      — two reports' figures side by side, per target (the command: ``composer/cli/``)
* ``compare``     — ``python -m composer eval compare``: the five architectures, same budget

Submodules are imported on use. The statistics it reports of a piece (metrics, structure, loop
seams) live in ``composer.analysis``, a floor below, so the floors under this one read them too. The
originality index is a checkpoint artefact used while serving, so it lives in ``composer.nn.originality``.
"""

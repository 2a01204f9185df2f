"""The analysis floor: what a piece's music measures, as pure functions of a ``Piece``.

* ``metrics``   — per-piece musical statistics (muspy where it has them) and the MGEval overlap
* ``structure`` — bar-by-bar self-similarity and the theme-return score
* ``loops``     — loop seams: does the end lead back into the beginning like any bar line

The evaluation reports them; the reward model reads them. Imports music/ only.
"""

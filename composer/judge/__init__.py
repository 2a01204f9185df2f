"""The judges' floor: what a model folder carries to judge its own pieces, for ``best_of``.

features (what the reward model reads of a piece), reward (``RewardModel``: P(👍) of a piece in a
style), critic (``Critic``: the log-odds that a piece is real music). Each is loaded from a model
folder and scores pieces; fitting and training them from ratings and pieces is feedback/'s. Imports
nn/ and the floors below it.
"""

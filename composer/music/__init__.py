"""The music floor: the grid every other floor reads and writes, and its way in and out of files.

tokens (the symbols), grid (the multi-voice piece), reduction (many parts into four voices plus drums),
midi_io and music21_io (files and scores to a grid and back). Imports nothing of Mozart's above it.
"""

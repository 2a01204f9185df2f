"""Serving: the layer between the music engine (``composer``) and the people who ask it for music.

``jobs`` (what a job and its result are, the messages people see while they wait), ``versions``
(the model versions served side by side), ``studio`` (composing in this process: a bounded queue and
workers off the event loop), ``sandbox`` (the killable child processes that compose, render and parse
uploads), ``wire`` (jobs and results as JSON, for the job queue of ``workers``) and ``export`` (``mozart
ratings export``: the bot's ratings as a ratings file). ``cogs``, ``workers``, ``bot.py`` and ``benchmarks``
import this package; nothing in ``composer`` does.
"""

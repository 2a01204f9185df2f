"""Composing on other processes and machines: a job queue (arq on Redis) between the bot and workers.

    MOZART_QUEUE_URL=redis://127.0.0.1:6379/0 python -m workers     # a composing worker
    MOZART_QUEUE_URL=redis://127.0.0.1:6379/0 python bot.py          # the bot queues its jobs there

Without ``MOZART_QUEUE_URL`` the bot composes in its own process (``service.studio.Studio``).
This package sits above ``composer`` and ``db``: the worker stores files in the database.
"""

"""``python -m db upgrade [--url URL] [--sql]`` and friends; see db/cli.py.

Without ``--url`` the database is ``$DATABASE_URL``, the one the bot uses."""

from .cli import db_group

db_group(prog_name='python -m db')

"""``python -m db upgrade [--url URL] [--sql]`` and friends; see db/cli.py."""

from .cli import db_group

db_group(prog_name='python -m db')

"""Every benchmark: `python -m composer bench generate|render` (cli.py) and the scripts that measure the bot."""

"""`python -m composer eval versus OLD NEW`: two reports figures side by side."""

from __future__ import annotations

import json
from pathlib import Path

import click

from composer.evaluate.versus import versus_table


@click.command("versus")
@click.argument("old", type=click.Path(exists=True, file_okay=False))
@click.argument("new", type=click.Path(exists=True, file_okay=False))
@click.option("--names", default="v1,v2", show_default=True, help="Column names for OLD and NEW.")
def versus_command(old, new, names):
    """Print OLD and NEW reports' figures side by side, per target (markdown)."""
    figures = [json.loads((Path(folder) / "figures.json").read_text()) for folder in (old, new)]
    old_name, _, new_name = names.partition(",")
    click.echo(versus_table(*figures, old_name, new_name or "new"))

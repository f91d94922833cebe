"""``icos-intel config``: validate a settings file, or print a commented example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import load

app = typer.Typer(no_args_is_help=True, help="Validate configuration or print a commented example.")


@app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="YAML settings file")]) -> None:
    """Validate FILE (and the ICOS_* environment); one line per problem."""
    settings = load(file)
    source = "embedded simulated continuum" if settings.embedded else f"{len(settings.clusters)} cluster(s)"
    typer.echo(f"{file}: valid ({source}, {len(settings.signals)} signal(s), mode {settings.policy.mode.value})")


@app.command("example")
def config_example() -> None:
    """Print a commented example configuration."""
    from importlib.resources import files

    typer.echo(files("intelligence.settings").joinpath("example-config.yaml").read_text(encoding="utf-8"), nl=False)

"""``icos-intel``: run the service, backtest models, replay decisions (one service, or moves over a continuum),
check configuration.

One module per command. Imports are lazy so that ``config`` and ``backtest`` start fast
(no MLflow, no Kubernetes, no web server imported for them).
"""

from __future__ import annotations

import typer

from api.cli import backtest, config, replay, replay_continuum, run

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="icos-intelligence: forecasts, anomalies and recommendations for the ICOS continuum.",
)
app.command()(run.run)
app.command()(backtest.backtest)
app.command()(replay.replay)
app.command("replay-continuum")(replay_continuum.replay_continuum)
app.add_typer(config.app, name="config")


def main() -> None:
    app()

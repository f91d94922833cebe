"""``icos-intel backtest``: models on your own data, strictly online; optionally logged and registered in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import fail, load
from api.cli.progress import progress_bars


def backtest(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV: timestamp, then value column(s)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV with scores, forecasts and bands")],
    tasks: Annotated[str, typer.Option(help="anomaly,forecast or one of them")] = "anomaly,forecast",
    horizon: Annotated[int, typer.Option(min=0, help="Steps ahead (0 = no forecast columns)")] = 12,
    forecast_start: Annotated[int, typer.Option(min=0, help="First row that needs forecasts")] = 0,
    forecast_every: Annotated[int, typer.Option(min=1, help="Forecast every K rows from --forecast-start")] = 1,
    forecaster: Annotated[str, typer.Option(help="Forecaster kind")] = "seasonal_ar",
    detector: Annotated[str, typer.Option(help="Detector kind")] = "record_ratio",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the accuracy figures as JSON")] = None,
    register: Annotated[
        str | None,
        typer.Option(
            help="Register the models as a new version of this MLflow model (e.g. icos-requests), with the figures"
        ),
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="With --register: give the version this alias (e.g. challenger)")
    ] = None,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(help="Log the backtest as an MLflow run there (with --register: default the embedded store)"),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(help="CSV of labelled anomalies (timestamp[,series]): precision and recall of the alarms"),
    ] = None,
) -> None:
    """Evaluate models on your own data, strictly online (no look-ahead)."""
    from intelligence.evaluation.backtest import BacktestError, BacktestOptions, read_labels, run_backtest

    wanted = {t.strip() for t in tasks.split(",") if t.strip()}
    if not wanted or not wanted <= {"anomaly", "forecast"}:
        raise fail(f"--tasks: expected anomaly, forecast or both, got {tasks!r}")
    options = BacktestOptions(
        horizon=horizon if "forecast" in wanted else 0,
        anomaly="anomaly" in wanted,
        forecast_start=forecast_start,
        forecast_every=forecast_every,
        forecaster=forecaster,
        detector=detector,
    )
    figures: dict[str, object] = {}
    try:
        labelled = read_labels(labels) if labels is not None else None
        with progress_bars() as progress:
            summary = run_backtest(
                input, output, options, json_out=json_out, figures=figures, labels=labelled, progress=progress
            )
    except BacktestError as exc:
        raise fail(f"backtest: {exc}") from None
    typer.echo(summary, err=True)
    if mlflow_uri is not None:
        _log_backtest(mlflow_uri, input, options, figures)
    if register is not None:
        _register(register, alias, mlflow_uri, options, figures)


def _log_backtest(uri: str, input: Path, options: Any, figures: dict[str, Any]) -> None:
    """A run in the experiment of these model kinds: params, and the overall figures as metrics."""
    from dataclasses import asdict

    from models.tracking import log_run

    experiment = f"icos-backtests/{options.forecaster}+{options.detector}"
    params = {**asdict(options), "input": str(input), "step_seconds": figures["step_seconds"]}
    try:
        run_id = log_run(uri, experiment, f"backtest {input.name}", params, dict(figures["overall"]))
    except Exception as exc:  # noqa: BLE001
        raise fail(f"--mlflow-uri {uri}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"logged run {run_id} in experiment {experiment!r}", err=True)


def _register(name: str, alias: str | None, uri: str | None, options: Any, figures: dict[str, Any]) -> None:
    """The backtested models become a version of ``name``, carrying their measured accuracy."""
    from models.tracking import ModelRegistry

    settings = load(None)
    spec = {
        "forecaster": options.forecaster,
        "forecaster_params": {
            "step_seconds": figures["step_seconds"],
            "horizon": max(options.horizon, 1),
            "interval": options.interval,
        },
        "detector": options.detector,
        "detector_params": {},
    }
    metrics = {k: float(v) for k, v in figures["overall"].items() if v == v}
    registry = ModelRegistry(uri or settings.mlflow_uri, f"{settings.mlflow.experiment}-models")
    try:
        version = registry.register(name, spec, metrics, alias=alias)
    except Exception as exc:  # noqa: BLE001 - the figures are printed already; say why registering failed
        raise fail(f"--register {name}: MLflow at {registry.tracking_uri}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"registered {name} version {version.version}{f' as {alias}' if alias else ''}: {metrics}", err=True)

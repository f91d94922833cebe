"""``icos-intel``: run the service, backtest models, replay decisions, check configuration.

Imports are lazy so that ``config`` and ``backtest`` start fast (no MLflow, no
Kubernetes, no web server imported for them).
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.progress import TaskID

    from intelligence.runtime.service import Service
    from intelligence.settings import Settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="icos-intelligence: forecasts, anomalies and recommendations for the ICOS continuum.",
)
config_app = typer.Typer(no_args_is_help=True, help="Validate configuration or print a commented example.")
app.add_typer(config_app, name="config")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _load(config: Path | None, **overrides: object) -> Settings:
    from intelligence.settings import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("uvicorn.access", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file; none = embedded default")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8080; 0 picks a free one)")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Local state directory (default ./.icos-state)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Run the service. With no configuration: the embedded simulated continuum of three clusters."""
    # Ctrl-C and SIGTERM (Kubernetes stopping the pod) stop start-up and warm-up cleanly too, even
    # when the process inherited an ignored SIGINT; uvicorn installs its own handlers while it serves.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    settings = _load(config, **{"api.host": host, "api.port": port, "storage.state_dir": state_dir})
    _setup_logging(log_level)
    import uvicorn

    from api.app import create_app
    from intelligence.runtime.service import StartupError, build_service

    try:
        sock = socket.socket(socket.AF_INET6 if ":" in settings.api.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.api.host, settings.api.port))
        sock.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError as exc:
        raise _fail(f"api: cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror}") from None
    try:
        service = build_service(settings, config_path=config)
    except StartupError as exc:
        sock.close()
        raise _fail(f"cannot start: {exc}") from None
    except KeyboardInterrupt:
        sock.close()
        raise _fail("interrupted while starting; nothing was changed", code=130) from None
    bound_host, bound_port = sock.getsockname()[:2]
    base = f"http://{bound_host if ':' not in bound_host else f'[{bound_host}]'}:{bound_port}"
    if settings.replaying:
        what = f"replay of {settings.replay.path}, {settings.replay.speed:g}x real time"
    elif settings.embedded:
        what = f"the embedded simulated continuum (cloud-1, fog-1, edge-1), {settings.simulation.speed:g}x real time"
    else:
        what = f"{len(settings.clusters)} cluster(s): {', '.join(c.name for c in settings.clusters)}"
    typer.echo(
        f"icos-intelligence: {what}; mode {settings.policy.mode.value}\n"
        f"  forecasts        {base}/v1/forecasts\n"
        f"  anomalies        {base}/v1/anomalies\n"
        f"  recommendations  {base}/v1/recommendations\n"
        f"  health           {base}/healthz\n"
        f"  metrics          {base}/metrics     API docs {base}/docs\n"
        f"  state            {settings.storage.state_dir.resolve()}"
        f"\n  MLflow           {settings.mlflow_uri if settings.mlflow.enabled else 'disabled'}\n"
        "Press Ctrl-C to stop.",
        err=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(settings, service=service), log_level="warning", lifespan="on"))
    try:
        _warm_up(service)
        service.start()
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully, then re-raised Ctrl-C: that is a clean stop
    finally:
        service.stop()
        typer.echo("icos-intelligence stopped; state saved.", err=True)


def _warm_up(service: Service) -> None:
    """The first pull backfills history: show its progress per cluster."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("backfill {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=service.settings.embedded,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(cluster: str, done: int, planned: int) -> None:
            if cluster not in tasks:
                tasks[cluster] = bar.add_task(cluster, total=planned)
            bar.update(tasks[cluster], completed=done, total=planned)

        report = service.warm_up(progress)
    console.print(f"learnt {report.samples} samples of {report.series} series; serving.", style="dim")


@app.command()
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
        raise _fail(f"--tasks: expected anomaly, forecast or both, got {tasks!r}")
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
        summary = run_backtest(input, output, options, json_out=json_out, figures=figures, labels=labelled)
    except BacktestError as exc:
        raise _fail(f"backtest: {exc}") from None
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
        raise _fail(f"--mlflow-uri {uri}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"logged run {run_id} in experiment {experiment!r}", err=True)


def _register(name: str, alias: str | None, uri: str | None, options: Any, figures: dict[str, Any]) -> None:
    """The backtested models become a version of ``name``, carrying their measured accuracy."""
    from models.tracking import ModelRegistry

    settings = _load(None)
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
        raise _fail(f"--register {name}: MLflow at {registry.tracking_uri}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"registered {name} version {version.version}{f' as {alias}' if alias else ''}: {metrics}", err=True)


@app.command()
def replay(
    trace: Annotated[Path, typer.Argument(help="CSV: timestamp, then one requests/s column per Knative service")],
    target_per_replica: Annotated[
        float, typer.Option(min=0.001, help="Requests/s one replica serves at the KPA's target")
    ] = 10.0,
    floor_per_replica: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Requests/s per replica the floor provisions (default 1.2 x the KPA's target: 84% of a replica's "
            "capacity, as in the benchmark)",
        ),
    ] = None,
    cold_start_seconds: Annotated[float, typer.Option(min=0.0, help="Seconds before a new pod serves")] = 30.0,
    horizon: Annotated[int, typer.Option(min=1, help="Steps forecast at each sample")] = 12,
    quantile: Annotated[float, typer.Option(help="Upper quantile of the forecast the floor covers")] = 0.95,
    scale_down_per_hour: Annotated[
        int | None, typer.Option(min=0, help="Floor lowered by at most this per hour (default: the policy's)")
    ] = None,
    scale_down_delay_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="No lowering sooner after a change (default: the policy's)")
    ] = None,
    warmup_days: Annotated[float, typer.Option(min=0.0, help="Days learnt first and not reported")] = 7.0,
    min_scale: Annotated[int, typer.Option(min=0, help="Static min-scale of both arms")] = 1,
    max_scale: Annotated[int, typer.Option(min=1, help="Max-scale of both arms")] = 50,
    interpolation: Annotated[str, typer.Option(help="Load between samples: hold or linear")] = "hold",
    tick_seconds: Annotated[float, typer.Option(min=0.1, help="KPA tick of the simulation")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON")] = None,
) -> None:
    """Replay a trace through forecaster, decider and a simulated Knative KPA, against the reactive KPA alone."""
    import json

    from pydantic import ValidationError
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from collectors.replay import ReplayFormatError, read_wide_csv
    from intelligence.evaluation.kpa import KpaSettings
    from intelligence.evaluation.replay import ReplayError, ReplayOptions, format_report
    from intelligence.evaluation.replay import replay as run_replay
    from intelligence.settings import KnativeScalingPolicy

    try:
        pacing: dict[str, Any] = {
            "scale_down_per_hour": scale_down_per_hour,
            "scale_down_delay_minutes": scale_down_delay_minutes,
        }
        policy = KnativeScalingPolicy(
            target_per_replica=floor_per_replica or 1.2 * target_per_replica,
            quantile=quantile,
            cold_start_seconds=cold_start_seconds,
            min_scale=min_scale,
            max_scale=max_scale,
            **{k: v for k, v in pacing.items() if v is not None},
        )
        kpa = KpaSettings(
            target_per_replica=target_per_replica,
            cold_start_seconds=cold_start_seconds,
            tick_seconds=tick_seconds,
            interpolation=interpolation,  # type: ignore[arg-type]  # checked by KpaSettings
        )
        _, epoch, names, values = read_wide_csv(trace)
    except (ValidationError, ValueError) as exc:  # ReplayFormatError is a ValueError
        what = "replay" if isinstance(exc, ReplayFormatError) else "replay: invalid option"
        raise _fail(f"{what}: {exc}") from None
    options = ReplayOptions(policy=policy, kpa=kpa, horizon=horizon, warmup_days=warmup_days)
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        try:
            report = run_replay(epoch, values, names, options, progress)
        except ReplayError as exc:
            raise _fail(f"replay: {exc}") from None
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_dict(), indent=2, default=str))
        typer.echo(f"written {json_out}", err=True)


@config_app.command("check")
def config_check(file: Annotated[Path, typer.Argument(help="YAML settings file")]) -> None:
    """Validate FILE (and the ICOS_* environment); one line per problem."""
    settings = _load(file)
    source = "embedded simulated continuum" if settings.embedded else f"{len(settings.clusters)} cluster(s)"
    typer.echo(f"{file}: valid ({source}, {len(settings.signals)} signal(s), mode {settings.policy.mode.value})")


@config_app.command("example")
def config_example() -> None:
    """Print a commented example configuration."""
    from importlib.resources import files

    typer.echo(files("intelligence").joinpath("example-config.yaml").read_text(encoding="utf-8"), nl=False)


def main() -> None:
    app()

"""``icos-intel replay``: a trace through forecaster, decider and a simulated Knative KPA, against the KPA alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import fail
from api.cli.progress import progress_bars


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

    from collectors.replay import ReplayFormatError, read_wide_csv
    from intelligence.evaluation.kpa import KpaSettings
    from intelligence.evaluation.replay import ReplayError, ReplayOptions, format_report
    from intelligence.evaluation.replay import replay as run_replay
    from intelligence.runtime.specs import knative_floor_spec
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
        raise fail(f"{what}: {exc}") from None
    options = ReplayOptions(policy=knative_floor_spec(policy), kpa=kpa, horizon=horizon, warmup_days=warmup_days)
    with progress_bars() as progress:
        try:
            report = run_replay(epoch, values, names, options, progress)
        except ReplayError as exc:
            raise fail(f"replay: {exc}") from None
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_dict(), indent=2, default=str))
        typer.echo(f"written {json_out}", err=True)

"""``icos-intel replay``: a trace through forecaster, decider, envelope and a simulated Knative KPA, beside the KPA
alone, a naive floor and an oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import fail
from api.cli.progress import progress_bars


def replay(
    trace: Annotated[
        Path,
        typer.Argument(help="CSV: timestamp, then one column per Knative service (requests/s or concurrency)"),
    ],
    kpa_target: Annotated[
        float,
        typer.Option(
            min=0.001,
            help="The KPA's target per pod, in the unit of the columns (Knative's default: 100 concurrent requests)",
        ),
    ] = 100.0,
    kpa_utilisation: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Target utilisation: the KPA aims at target x this per pod")
    ] = 0.7,
    floor_per_replica: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Load per pod the floor provisions (default: the KPA's own, target x utilisation)"
        ),
    ] = None,
    cold_start_seconds: Annotated[float, typer.Option(min=0.0, help="Seconds before a new pod serves")] = 10.0,
    actuation_seconds: Annotated[
        float, typer.Option(min=0.0, help="Seconds from a sample to its floor written on the cluster")
    ] = 15.0,
    horizon: Annotated[int, typer.Option(min=1, help="Steps forecast at each sample")] = 12,
    quantile: Annotated[float, typer.Option(help="Upper quantile of the forecast the floor covers")] = 0.95,
    warmup_days: Annotated[float, typer.Option(min=0.0, help="Days learnt first and not reported")] = 7.0,
    min_scale: Annotated[int, typer.Option(min=0, help="Static min-scale of every arm (0: scale to zero)")] = 0,
    max_scale: Annotated[int, typer.Option(min=1, help="Max-scale of every arm")] = 50,
    budget_actions: Annotated[
        int | None, typer.Option(min=0, help="Floor changes enacted per hour, all columns together (default: 30)")
    ] = None,
    reversal_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="No opposite change sooner (default: the envelope's 30)")
    ] = None,
    cooldown_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="Between two changes of one column (default: the envelope's 5)")
    ] = None,
    arms: Annotated[
        str, typer.Option(help="Arms beside reactive: predictive, naive, oracle")
    ] = "predictive,naive,oracle",
    interpolation: Annotated[str, typer.Option(help="Load between samples: hold or linear")] = "hold",
    tick_seconds: Annotated[float, typer.Option(min=0.1, help="KPA tick of the simulation")] = 2.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON")] = None,
    floors_out: Annotated[
        Path | None,
        typer.Option(
            help="Write DIR/<column>.csv (timestamp,floor): the predictive arm's min-scale, one row per change"
        ),
    ] = None,
) -> None:
    """Replay a trace through forecaster, decider, envelope and a simulated Knative KPA, beside the KPA alone."""
    import json

    from pydantic import ValidationError

    from collectors.replay import ReplayFormatError, read_wide_csv
    from intelligence.evaluation.kpa import KpaSettings
    from intelligence.evaluation.replay import ReplayError, ReplayOptions, format_report, write_floors
    from intelligence.evaluation.replay import replay as run_replay
    from intelligence.runtime.specs import envelope_spec, knative_floor_spec
    from intelligence.settings import KnativeScalingPolicy, SafetyEnvelope

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    try:
        kpa = KpaSettings(
            target_per_replica=kpa_target * kpa_utilisation,
            target_utilisation=kpa_utilisation,
            cold_start_seconds=cold_start_seconds,
            tick_seconds=tick_seconds,
            interpolation=interpolation,  # type: ignore[arg-type]  # checked by KpaSettings
        )
        policy = KnativeScalingPolicy(
            target_per_replica=floor_per_replica or kpa.target_per_replica,
            quantile=quantile,
            cold_start_seconds=cold_start_seconds + actuation_seconds,
            min_scale=min_scale,
            max_scale=max_scale,
        )
        limits: dict[str, Any] = {
            "budget_actions": budget_actions,
            "reversal_minutes": reversal_minutes,
            "cooldown_minutes": cooldown_minutes,
        }
        envelope = SafetyEnvelope(**{k: v for k, v in limits.items() if v is not None})
        _, epoch, names, values = read_wide_csv(trace)
    except (ValidationError, ValueError) as exc:  # ReplayFormatError is a ValueError
        what = "replay" if isinstance(exc, ReplayFormatError) else "replay: invalid option"
        raise fail(f"{what}: {exc}") from None
    options = ReplayOptions(
        policy=knative_floor_spec(policy),
        envelope=envelope_spec(envelope),
        kpa=kpa,
        horizon=horizon,
        warmup_days=warmup_days,
        actuation_delay_seconds=actuation_seconds,
        arms=("reactive", *chosen),
    )
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
    if floors_out is not None:
        if "predictive" not in report.floors:
            raise fail("--floors-out writes the predictive arm's floors: keep predictive in --arms")
        files = write_floors(floors_out, epoch, report.floors["predictive"], names)
        typer.echo(f"written {len(files)} floor file(s) to {floors_out}", err=True)

"""``icos-intel replay-continuum``: a CPU demand trace over a layout of clusters, moved by a static placement, a
threshold rule, the service's own rescheduling and an oracle, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli.common import fail
from api.cli.progress import progress_bars


def replay_continuum(
    layout: Annotated[
        Path,
        typer.Argument(
            help="YAML: the clusters (name, tier, capacity_cores, labels) and each workload's start and "
            "constraints (cluster, movable, tiers, labels)"
        ),
    ],
    trace: Annotated[
        Path,
        typer.Argument(help="CSV: timestamp, then one column per workload of the layout (CPU demand in cores)"),
    ],
    move_delay_seconds: Annotated[
        float, typer.Option(min=0.0, help="A move's delay (pull, start): it runs on both clusters meanwhile")
    ] = 60.0,
    warmup_days: Annotated[
        float, typer.Option(min=0.0, help="Days learnt first: nothing moves, nothing is reported")
    ] = 1.0,
    horizon_minutes: Annotated[float, typer.Option(min=0.1, help="What the predictive arm's forecasts cover")] = 60.0,
    quantile: Annotated[float | None, typer.Option(help="Upper quantile of each workload's forecast (0.95)")] = None,
    saturation: Annotated[float | None, typer.Option(help="Forecast peak / capacity above it: saturated (0.9)")] = None,
    target_utilisation: Annotated[
        float | None, typer.Option(help="A destination stays below it; a source sheds down to it (0.75)")
    ] = None,
    move_cost: Annotated[float | None, typer.Option(help="Capacity share a move must relieve (0.05)")] = None,
    dwell_minutes: Annotated[
        float | None,
        typer.Option(help="A moved workload stays at least this long; move-backs are counted within it (240)"),
    ] = None,
    max_moves: Annotated[int | None, typer.Option(help="Moves decided at once (2)")] = None,
    budget_actions: Annotated[
        int | None, typer.Option(min=0, help="Moves enacted per hour, all workloads together (the envelope's 30)")
    ] = None,
    cooldown_minutes: Annotated[
        float | None, typer.Option(min=0.0, help="Between two moves of one workload (the envelope's 5)")
    ] = None,
    threshold: Annotated[float, typer.Option(min=0.0, help="The threshold arm's utilisation")] = 0.9,
    threshold_minutes: Annotated[float, typer.Option(min=0.0, help="... held this long before it moves")] = 5.0,
    arms: Annotated[str, typer.Option(help="Arms: static, threshold, predictive, oracle")] = (
        "static,threshold,predictive,oracle"
    ),
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON")] = None,
    moves_out: Annotated[
        Path | None,
        typer.Option(help="Write the predictive arm's moves as CSV: timestamp,workload,from,to (in force from then)"),
    ] = None,
) -> None:
    """Replay a demand trace over a continuum: throttling, saturation and moves of each arm."""
    import json

    from pydantic import ValidationError

    from collectors.replay import ReplayFormatError, read_wide_csv
    from intelligence.decisions.specs import RescheduleSpec
    from intelligence.evaluation.continuum_layout import LayoutError, load_layout
    from intelligence.evaluation.continuum_replay import (
        ContinuumOptions,
        ContinuumReplayError,
        format_report,
        write_moves,
    )
    from intelligence.evaluation.continuum_replay import replay_continuum as run_replay
    from intelligence.runtime.specs import envelope_spec
    from intelligence.settings import ReschedulePolicy, SafetyEnvelope

    chosen = tuple(a.strip() for a in arms.split(",") if a.strip())
    if moves_out is not None and "predictive" not in chosen:
        raise fail("replay-continuum: --moves-out writes the predictive arm's moves: keep predictive in --arms")
    given: dict[str, Any] = {
        "quantile": quantile,
        "saturation": saturation,
        "target_utilisation": target_utilisation,
        "move_cost": move_cost,
        "min_dwell_minutes": dwell_minutes,
        "max_moves_per_decision": max_moves,
    }
    limits: dict[str, Any] = {"budget_actions": budget_actions, "cooldown_minutes": cooldown_minutes}
    try:
        policy = ReschedulePolicy(**{k: v for k, v in given.items() if v is not None})
        envelope = SafetyEnvelope(**{k: v for k, v in limits.items() if v is not None})
    except ValidationError as exc:
        raise fail(f"replay-continuum: invalid option: {exc}") from None
    try:
        continuum = load_layout(layout)
        _, epoch, names, values = read_wide_csv(trace)
    except (LayoutError, ReplayFormatError) as exc:
        raise fail(f"replay-continuum: {exc}") from None
    options = ContinuumOptions(
        reschedule=RescheduleSpec(**policy.model_dump()),
        envelope=envelope_spec(envelope),
        move_delay_seconds=move_delay_seconds,
        horizon_minutes=horizon_minutes,
        warmup_days=warmup_days,
        threshold=threshold,
        threshold_minutes=threshold_minutes,
        arms=chosen,
    )
    with progress_bars() as progress:
        try:
            report = run_replay(epoch, values, names, continuum, options, progress)
        except (ContinuumReplayError, LayoutError) as exc:
            raise fail(f"replay-continuum: {exc}") from None
    typer.echo(format_report(report))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.as_dict(), indent=2, default=lambda v: None))
        typer.echo(f"written {json_out}", err=True)
    if moves_out is not None:
        count = write_moves(moves_out, report)
        typer.echo(f"written {count} move(s) to {moves_out}", err=True)

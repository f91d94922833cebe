"""``icos-intel run``: the service, on its embedded default or on the configured clusters."""

from __future__ import annotations

import gc
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.common import fail, load, setup_logging
from api.cli.progress import progress_bars

if TYPE_CHECKING:
    from intelligence.runtime.service import Service


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
    settings = load(config, **{"api.host": host, "api.port": port, "storage.state_dir": state_dir})
    setup_logging(log_level)
    import uvicorn

    from api.app import create_app
    from intelligence.runtime.wiring import StartupError, build_service

    try:
        sock = listen_socket(settings.api.host, settings.api.port)
    except OSError as exc:
        raise fail(f"api: cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror}") from None
    try:
        service = build_service(settings, config_path=config)
    except StartupError as exc:
        sock.close()
        raise fail(f"cannot start: {exc}") from None
    except KeyboardInterrupt:
        sock.close()
        raise fail("interrupted while starting; nothing was changed", code=130) from None
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
        f"  page             {base}/\n"
        f"  events           {base}/v1/events   (CloudEvents; Accept: text/event-stream)\n"
        f"  health           {base}/healthz     readiness {base}/readyz\n"
        f"  metrics          {base}/metrics     API docs {base}/docs\n"
        f"  state            {settings.storage.state_dir.resolve()}"
        f"\n  MLflow           {settings.mlflow_uri if settings.mlflow.enabled else 'disabled'}\n"
        "Press Ctrl-C to stop.",
        err=True,
    )
    # The app logs each request itself (icos.access: with the caller's name, never a token). An open event stream
    # never ends by itself: on Ctrl-C or SIGTERM, requests still running after 5 s are cancelled.
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, service=service),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    )
    try:
        _warm_up(service)
        settle_for_serving(settings.api.switch_interval_ms)
        service.start()
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully, then re-raised Ctrl-C: that is a clean stop
    finally:
        service.stop()
        typer.echo("icos-intelligence stopped; state saved.", err=True)


def listen_socket(host: str, port: int) -> socket.socket:
    """The listening socket, created with ``IPPROTO_TCP`` so that asyncio sets ``TCP_NODELAY`` on every connection.

    asyncio sets it only on sockets whose ``proto`` is ``IPPROTO_TCP``; an accepted socket inherits the listening
    one's, and ``socket.socket()`` says 0. Without it, Nagle's algorithm meets the client's delayed ACKs and each
    response on a kept-alive connection waits ~40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError:
        sock.close()
        raise
    return sock


def settle_for_serving(switch_interval_ms: float) -> None:
    """Keep requests from waiting behind the process's own housekeeping, once the service is built and warm.

    - What start-up built (models, stores, the settings: long-lived) moves out of the garbage collector's
      reach (``gc.freeze``), so that a full collection later walks only what was made since: a full
      collection over a built service holds the interpreter for 50-100 ms, a stall every request then in
      flight pays.
    - The engine steps in a thread of this process; the interpreter hands over between threads every
      ``switch_interval_ms`` (Python's default 5 ms), which a request arriving during a step pays at each
      hand-over. 1 ms keeps the p99 under 10 ms while the engine steps (docs/api.md#figures).
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(switch_interval_ms / 1000.0)


def _warm_up(service: Service) -> None:
    """The first pull backfills history: show its progress per cluster."""
    with progress_bars("backfill {task.description}", disable=service.settings.embedded) as report:
        result = service.warm_up(report)
    typer.echo(f"learnt {result.samples} samples of {result.series} series; serving.", err=True)

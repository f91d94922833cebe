"""Which models run: each signal's champion from the registry, and challengers in shadow judged on live data.

:meth:`ModelSelection.apply` switches every signal whose champion changed (a challenger
that ran in shadow keeps what it learnt there; otherwise the signal's series restart on
the new model). :meth:`ModelSelection.evaluate` compares, after a window of live samples,
each challenger's one-step error relative to the naive forecast with its champion's over
the same window, and asks the watcher to promote a better one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from intelligence.runtime.champions import ChampionWatcher, registry_name, save_active
from intelligence.runtime.engine import Engine
from intelligence.runtime.model_specs import Champions, model_factory, model_signature, model_spec
from intelligence.settings import Settings
from models.bank import BankAccuracy, ModelBank
from models.kinds import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Counters:
    """What a bank has scored of one signal: (samples, absolute error, naive absolute error)."""

    scored: float
    abs_error: float
    abs_naive: float

    @classmethod
    def of(cls, acc: BankAccuracy) -> _Counters:
        return cls(float(acc.scored), acc.abs_error, acc.abs_naive)

    def __sub__(self, other: _Counters) -> _Counters:
        return _Counters(self.scored - other.scored, self.abs_error - other.abs_error, self.abs_naive - other.abs_naive)


class ModelSelection:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        watcher: ChampionWatcher,
        active: Champions,
        on_signature: Callable[[dict[str, Any]], None],
        tracker: Any | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.watcher = watcher
        self.active = active  # champions in use, per signal: the same dict the bank's model factory reads
        self.challengers: Champions = {}  # run in shadow, per signal
        self.on_signature = on_signature
        self.tracker = tracker
        self._windows: dict[str, tuple[_Counters, _Counters]] = {}

    def apply(self) -> list[str]:
        """Switch every signal whose champion changed in the registry; returns those signals.

        The checkpoint signature follows, and ``champions.json`` keeps the choice for the next start.
        """
        changed = self.watcher.changes(self.active)
        for signal, champion in sorted(changed.items()):
            known = signal in self.active
            self.active[signal] = champion
            if self._adopt_shadow(signal, champion):
                log.info(
                    "signal %s now runs its challenger, version %d, with the state it learnt in shadow",
                    signal,
                    champion["version"],
                )
            elif known or champion["spec"] != model_spec(self.settings, signal, self.engine.step_seconds):
                dropped = self.engine.forget(lambda k, s=signal: k.signal == s)  # type: ignore[misc]
                log.info(
                    "signal %s now runs %s version %d (%s on %s); %d series restart on it",
                    signal,
                    registry_name(signal),
                    champion["version"],
                    champion["spec"].get("detector"),
                    champion["spec"].get("forecaster"),
                    dropped,
                )
        if changed and self.tracker is not None:  # the service's run records which versions ran (and its checkpoints)
            self.tracker.log_metrics(
                {f"champion_version.{s}": float(c["version"]) for s, c in changed.items()}, self.engine.status.steps
            )
        if changed:
            self.on_signature(model_signature(self.settings, self.engine.step_seconds, self.active))
            save_active(self.settings.storage.state_dir, self.active)
        self._sync_challengers()
        return sorted(changed)

    def _adopt_shadow(self, signal: str, champion: dict[str, Any]) -> bool:
        """The new champion is the challenger that ran in shadow: take over its series instead of a cold start."""
        if self.challengers.get(signal, {}).get("spec") != champion["spec"]:
            return False
        if not self.engine.adopt_shadow(ModelSpec.from_dict(champion["spec"]), signal):
            return False
        del self.challengers[signal]
        self.engine.shadow_signals = frozenset(self.challengers)
        self._windows.pop(signal, None)
        return True

    def _sync_challengers(self) -> None:
        """Run the registry's challengers in shadow (a second bank fed the same samples)."""
        wanted = {s: c for s, c in self.watcher.challengers().items() if s in self.active}
        if wanted == self.challengers:
            return
        if self.engine.shadow is None:
            self.engine.shadow = ModelBank(
                model_factory(self.settings, self.engine.step_seconds, self.challengers),
                interval=self.settings.models.interval,
            )
        for signal in set(self.challengers) | set(wanted):
            if self.challengers.get(signal) != wanted.get(signal):
                shadow = self.engine.shadow
                shadow.drop([k for k in shadow.series_keys() if k.signal == signal])
                self._windows.pop(signal, None)
                if signal in wanted:  # the window starts now: the champion's counters so far, the challenger's zero
                    champion = _Counters.of(self.engine.bank.accuracy(signal))
                    self._windows[signal] = (champion, _Counters(0.0, 0.0, 0.0))
                    log.info(
                        "challenger %s version %d runs in shadow", registry_name(signal), wanted[signal]["version"]
                    )
        self.challengers.clear()
        self.challengers.update(wanted)
        self.engine.shadow_signals = frozenset(wanted)

    def evaluate(self) -> list[str]:
        """After a window of live samples, ask to promote each challenger that beat its champion; returns those."""
        shadow, asked = self.engine.shadow, list[str]()
        if shadow is None:
            return asked
        window, margin = self.settings.mlflow.challenger_window_samples, self.settings.mlflow.promotion_margin
        for signal, challenger in sorted(self.challengers.items()):
            now = (_Counters.of(self.engine.bank.accuracy(signal)), _Counters.of(shadow.accuracy(signal)))
            start = self._windows.setdefault(signal, now)
            champ, chall = now[0] - start[0], now[1] - start[1]
            if chall.scored < window or champ.abs_naive <= 0 or chall.abs_naive <= 0:
                continue
            ours, theirs = chall.abs_error / chall.abs_naive, champ.abs_error / champ.abs_naive
            self._windows[signal] = now  # the next window starts here
            log.info(
                "challenger %s version %d over %d live samples: relative MAE %.4f vs champion's %.4f",
                registry_name(signal),
                challenger["version"],
                int(chall.scored),
                ours,
                theirs,
            )
            if ours <= theirs * (1.0 - margin):
                self.watcher.request_promotion(
                    signal,
                    {self.active[signal]["version"]: theirs, challenger["version"]: ours},
                    challenger["version"],
                    margin,
                )
                asked.append(signal)
        return asked

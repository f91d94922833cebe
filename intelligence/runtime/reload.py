"""Hot reload: clusters and signals from an edited configuration file, applied at the next step, no restart.

A file with errors is refused (each problem logged) and the running configuration kept;
changes to other groups are reported as needing a restart.
"""

from __future__ import annotations

import logging
from pathlib import Path

from intelligence.runtime import specs
from intelligence.runtime.engine import Engine
from intelligence.settings import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

RELOADABLE = ("clusters", "signals")


class ConfigReloader:
    def __init__(self, path: Path, settings: Settings, engine: Engine) -> None:
        self.path = path
        self.settings = settings
        self.engine = engine
        try:
            self._mtime: int | None = path.stat().st_mtime_ns
        except OSError:
            self._mtime = None

    def check(self) -> Settings | None:
        """The new settings when the file changed in a reloadable way (applied to the engine), else None."""
        if not self.settings.collection.reload_config:
            return None
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            if self._mtime != -1:
                log.error("configuration %s cannot be read (%s); keeping the running one", self.path, exc)
                self._mtime = -1
            return None
        if mtime == self._mtime:
            return None
        self._mtime = mtime
        try:
            new = load_settings(self.path)
        except ConfigError as exc:
            log.error("configuration reload refused, keeping the running one: %s", exc)
            return None
        if new.embedded != self.settings.embedded:
            log.error("%s: switching between the embedded continuum and real clusters needs a restart", self.path)
            return None
        later = [
            g for g in type(new).model_fields if g not in RELOADABLE and getattr(new, g) != getattr(self.settings, g)
        ]
        if later:
            log.warning("%s: changes to %s take effect at the next restart", self.path, ", ".join(later))
        if all(getattr(new, g) == getattr(self.settings, g) for g in RELOADABLE):
            return None
        self._apply(new)
        self.settings = self.settings.model_copy(update={g: getattr(new, g) for g in RELOADABLE})
        log.info(
            "configuration reloaded from %s: %d cluster(s), %d signal(s)",
            self.path,
            len(new.clusters),
            len(new.signals),
        )
        return self.settings

    def _apply(self, new: Settings) -> None:
        from collectors.prometheus import PrometheusCollector

        collector = self.engine.collector
        if isinstance(collector, PrometheusCollector):
            collector.reconfigure([specs.cluster_target(c) for c in new.clusters], specs.signals(new))
        kept_signals = {s.name for s in new.signals}
        self.engine.forget(lambda k: k.signal not in kept_signals)

"""Model tracking in MLflow; this package is the only code that imports ``mlflow``.

- :mod:`~models.tracking.runs`: the service's run (params, live metrics, checkpoints), delivered from a queue;
- :mod:`~models.tracking.registry`: registered models, versions, aliases, promotion and rollback;
- :mod:`~models.tracking.artifacts`: a finished run's record (backtests) and a checkpoint's download;
- :mod:`~models.tracking.client`: the client, its one-thread import of mlflow and the SQLite store's lock.

mlflow is imported when first used, so importing this package costs nothing.
"""

from models.tracking.artifacts import fetch_checkpoint, log_run
from models.tracking.registry import ModelRegistry, ModelVersionInfo, RegistryError
from models.tracking.runs import MlflowTracker, TrackerHealth

__all__ = [
    "MlflowTracker",
    "ModelRegistry",
    "ModelVersionInfo",
    "RegistryError",
    "TrackerHealth",
    "fetch_checkpoint",
    "log_run",
]

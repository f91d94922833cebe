"""Models: online forecasters and anomaly detectors per series, the model bank, tracking."""

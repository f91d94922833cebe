"""Collectors: pull samples of every series from the clusters of the continuum."""

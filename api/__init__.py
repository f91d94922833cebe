"""The service's interfaces: the HTTP API (FastAPI) and the ``icos-intel`` command line."""

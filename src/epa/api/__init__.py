"""EPA's REST API (FastAPI): the only layer that imports the web framework."""

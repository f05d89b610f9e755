"""The hub's HTTP API (FastAPI, ``/api/v1``): app factory, authentication, problem documents, routes."""

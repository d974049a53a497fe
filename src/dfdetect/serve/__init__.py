"""`dfdetect serve`: an HTTP API and a web page over the scan (see app.py for the endpoints).

    settings  ServeSettings: model, storage, limits, token      store    JobStore: jobs and results (SQL)
    uploads   receiving and checking an upload (ApiError)       jobs     DetectorPool, ScanService (workers)
    app       create_app(settings) -> FastAPI                   static/  the page (no CDN)
"""

from .settings import ServeSettings  # noqa: F401


def create_app(settings: ServeSettings):
    """The FastAPI application (imported on use: the rest of the package does not need FastAPI)."""
    from .app import create_app as _create_app

    return _create_app(settings)

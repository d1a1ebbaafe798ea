"""The latent explorer: ``vaelab serve RUN...`` in the browser.

:func:`prepare_runs` loads runs and precomputes what the panels need,
:func:`create_app` builds the FastAPI application (JSON API + static page), and
:class:`BackgroundServer` runs it in a thread (tests, notebooks)::

    from vaelab.web import BackgroundServer, create_app, prepare_runs

    app = create_app(prepare_runs(["runs/demo"]))
    with BackgroundServer(app) as server:
        print(server.url)
"""

from .app import create_app
from .explorer import ExplorerRun, prepare_runs
from .server import BackgroundServer

__all__ = ["BackgroundServer", "ExplorerRun", "create_app", "prepare_runs"]

"""The controller's HTTP server: the REST API's route table, and the console's pages beside it.

:data:`ROUTES` is the whole API, feature by feature; :func:`make_app` registers exactly that table
(:func:`unico.api.routing.register`) and the OpenAPI document is written from it, so they agree.
The console (``unico.console``, web pages and a websocket) adds its own routes when installed.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from contacts.users import UserStore
from unico.api import admin, agents, calls, complaints, history, kpi
from unico.api.context import CONTROLLER, USERS, app_sessions
from unico.api.openapi import OPENAPI_ROUTE
from unico.api.routing import Route, json_errors, register
from unico.controller import Controller

log = logging.getLogger(__name__)


def _console() -> Callable[..., None] | None:
    """``unico.console.add_routes`` if the console is installed; a console that fails to import
    for another reason fails loudly."""
    try:
        module = importlib.import_module("unico.console")
    except ModuleNotFoundError as exc:
        if exc.name != "unico.console":
            raise
        return None
    add_routes: Callable[..., None] = module.add_routes
    return add_routes


ROUTES: tuple[Route, ...] = (
    *admin.ROUTES,
    *agents.ROUTES,
    *calls.ROUTES,
    *history.ROUTES,
    *complaints.ROUTES,
    *kpi.ROUTES,
    OPENAPI_ROUTE,
)


def make_app(controller: Controller, *, console: bool = True) -> web.Application:
    """The aiohttp application of ``controller``: the API, and the console unless ``console=False``.

    Example::

        runner = web.AppRunner(make_app(controller))
    """
    app = web.Application(middlewares=[json_errors])
    app[CONTROLLER] = controller
    sessions = app_sessions(app)
    if sessions is not None:
        app[USERS] = UserStore(sessions)
    register(app, ROUTES)
    # looked up here, not at import: the console imports this package's modules itself
    add_console_routes = _console() if console else None
    if add_console_routes is not None:

        async def screenpop(agent_id: str, call_id: str) -> dict[str, Any] | None:
            return await agents.screenpop_for(app, agent_id, call_id)

        add_console_routes(app, screenpop=screenpop)
    return app


async def start_site(controller: Controller, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(make_app(controller), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner

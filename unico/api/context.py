"""What the handlers reach through the application: the controller and the stores on its engine.

``make_app`` puts the controller under :data:`CONTROLLER` and, when the controller has a contact
store, a :class:`contacts.users.UserStore` under :data:`USERS`. Tests may hand in a stand-in
controller with only the attributes the routes they call read (``settings``, ``store``, ``acd``,
``config``).
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contacts import ComplaintStore, ContactStore, CustomerStore, deadlines
from contacts.users import UserStore
from unico.acd_service import AcdService
from unico.api.errors import ApiError
from unico.controller import Controller

CONTROLLER = web.AppKey("controller", Controller)
USERS = web.AppKey("users", UserStore)


def controller(request: web.Request) -> Controller:
    return request.app[CONTROLLER]


def acd(request: web.Request) -> AcdService:
    """The ACD, or 503 when this controller runs without Redis."""
    service = request.app[CONTROLLER].acd
    if service is None:
        raise ApiError(503, "the ACD is not running (no Redis configured)")
    return service


def contact_store(request: web.Request) -> ContactStore:
    store: ContactStore | None = getattr(request.app[CONTROLLER], "store", None)
    if store is None:
        raise ApiError(503, "the database is unavailable; try again")
    return store


def app_sessions(app: web.Application) -> async_sessionmaker[AsyncSession] | None:
    """The process's session factory; None when the controller has no (open) contact store."""
    store: ContactStore | None = getattr(app[CONTROLLER], "store", None)
    if store is None:
        return None
    try:
        return store.sessions
    except RuntimeError:  # not opened
        return None


def sessions(request: web.Request) -> async_sessionmaker[AsyncSession]:
    found = app_sessions(request.app)
    if found is None:
        raise ApiError(503, "the database is unavailable; try again")
    return found


def customers(request: web.Request) -> CustomerStore:
    return CustomerStore(sessions(request))


def complaints(request: web.Request) -> ComplaintStore:
    settings = request.app[CONTROLLER].settings
    return ComplaintStore(sessions(request), deadlines=deadlines(settings.complaint_deadlines))

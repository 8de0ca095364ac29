"""The web console: the supervisors' live wallboard and the operator page (issue 5).

Files by role: ``snapshot`` builds the wallboard's numbers and the supervisors' panel (the
"floor") from data passed in (no I/O); ``today`` reads today's counts and the live calls' queue
and caller from the contact records; ``live`` pushes changes to browsers
over a websocket; ``http`` adds the routes; ``static/`` holds the pages (plain HTML, JS and CSS,
served by the controller itself). docs/console.md describes both pages and the socket.

Example::

    from unico.console import add_routes
    add_routes(app)        # in unico.web.make_app, after app[CONTROLLER] is set
"""

from unico.console.http import add_routes
from unico.console.live import LiveHub, Watch
from unico.console.snapshot import (
    AreaStatus,
    CallDetails,
    Floor,
    LineStats,
    QueueCounts,
    Wallboard,
    area_status,
    build_floor,
    build_snapshot,
    next_change,
)
from unico.console.today import TodayCache, call_details, today_counts

__all__ = [
    "AreaStatus",
    "CallDetails",
    "Floor",
    "LineStats",
    "LiveHub",
    "QueueCounts",
    "TodayCache",
    "Wallboard",
    "Watch",
    "add_routes",
    "area_status",
    "build_floor",
    "build_snapshot",
    "call_details",
    "next_change",
    "today_counts",
]

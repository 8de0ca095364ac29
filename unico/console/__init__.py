"""The web console: the supervisors' live wallboard and the operator page (issue 5).

Files by role: ``snapshot`` builds the wallboard's numbers from data passed in (no I/O);
``today`` reads today's counts from the contact records; ``live`` pushes changes to browsers
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
    LineStats,
    QueueCounts,
    Wallboard,
    area_status,
    build_snapshot,
    next_change,
)
from unico.console.today import TodayCache, today_counts

__all__ = [
    "AreaStatus",
    "LineStats",
    "LiveHub",
    "QueueCounts",
    "TodayCache",
    "Wallboard",
    "Watch",
    "add_routes",
    "area_status",
    "build_snapshot",
    "next_change",
    "today_counts",
]

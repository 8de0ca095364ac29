"""The controller's HTTP server moved to :mod:`unico.api`; these names stay for old imports.

Example::

    from unico.web import CONTROLLER, make_app, start_site
"""

from unico.api import CONTROLLER, make_app, start_site

__all__ = ["CONTROLLER", "make_app", "start_site"]

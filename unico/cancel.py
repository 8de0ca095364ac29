"""A cancel that a library below swallowed still ends the task.

A cancel can land inside a library that turns it into an error of its own (SQLAlchemy raises
"can't operate on closed transaction" when it unwinds a session) or loses it (``asyncio.wait_for``
on Python 3.11 when the awaited result arrives at the same moment). Unico's background loops
catch errors to survive a Redis or database blip, so without a check they would run on after
their owner stopped them. ``Task.cancelling()`` still counts the request in both cases.

Example::

    while True:
        try:
            await step()
        except Exception as exc:  # a blip: try again
            log.warning("step failed: %s", exc)
        raise_if_cancelled()
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` if the current task has a cancel request pending."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


__all__ = ["raise_if_cancelled"]

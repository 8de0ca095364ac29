"""The two ways a plan can fail, both ours (the input or the rules), never the solver's crash.

``PlanInputError``: the history, forecast or rules given cannot be read; every problem is listed,
each as ``file:line: message`` for CSV rows or ``history[12].offered: message`` for API JSON, so
an admin fixes them all in one go. ``InfeasiblePlan``: the input is well formed but no plan can
meet it (traffic in closed hours, more operators needed than seats, a requirement no 6-hour shift
inside the opening hours can cover); the message names the queue, day and interval.

Example::

    try:
        result = make_plan(source, setup, request)
    except PlanInputError as exc:
        print("\\n".join(exc.problems))
"""

from __future__ import annotations

from collections.abc import Sequence

#: at most this many problems are spelled out in the message; the rest are counted
SHOWN = 20


class WfmError(Exception):
    """Base of every error the workforce planner raises on purpose."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:SHOWN]
        more = len(self.problems) - len(shown)
        super().__init__("\n".join(shown) + (f"\n... and {more} more" if more > 0 else ""))


class PlanInputError(WfmError, ValueError):
    """The input (CSV, JSON, rules file) is malformed; ``problems`` say where and why."""


class InfeasiblePlan(WfmError):
    """The input is valid but no plan satisfies it; ``problems`` name queue, day and interval."""


__all__ = ["InfeasiblePlan", "PlanInputError", "WfmError"]

"""Workforce planning: forecast, Erlang staffing, 6-hour staggered shifts and named rosters.

Public surface (everything else is internal)::

    from wfm import PlanRequest, PlanSetup, make_plan, read_interval_csv, write_outputs

    history = read_interval_csv(Path("history.csv"), interval_minutes=30, zone=ZoneInfo("Europe/Rome"))
    result = make_plan(history, PlanSetup.from_config(config), PlanRequest(weeks=1))
    write_outputs(result, Path("plan"))       # staffing.csv, shifts.csv, coverage.png, ...

The pieces stand alone too: ``erlang_c_agents`` / ``erlang_a_agents`` for one interval,
``simulate`` to cross-check them, ``seasonal_forecast`` and ``holdout_accuracy``, ``plan_shifts``
(HiGHS MILP), ``make_roster``. Design and formulas: docs/wfm.md.
"""

from wfm.erlang import (
    QueueMetrics,
    erlang_a_agents,
    erlang_a_metrics,
    erlang_b,
    erlang_c,
    erlang_c_agents,
    erlang_c_arrays,
    erlang_c_metrics,
    erlang_c_staff,
    offered_load,
    sqrt_staffing,
)
from wfm.errors import InfeasiblePlan, PlanInputError, WfmError
from wfm.forecast import Accuracy, Forecast, ForecastModel, forecast_from_table, holdout_accuracy, seasonal_forecast
from wfm.history import (
    IntervalRow,
    IntervalTable,
    QueuedCall,
    load_queued_calls,
    read_interval_csv,
    rows_from_json,
    table_from_contacts,
    table_from_rows,
)
from wfm.opening import Area
from wfm.output import chart_png, summary, write_outputs
from wfm.plan import PlanRequest, PlanResult, PlanSetup, make_plan
from wfm.roster import Assignment, OperatorRules, RosterResult, RosterRules, Unfilled, make_roster
from wfm.shifts import QueueShifts, ShiftPlan, ShiftRules, plan_shifts
from wfm.simulation import SimulationResult, simulate
from wfm.staffing import QueueStaffing, StaffingTable, StaffingTargets, staff
from wfm.synthetic import synthetic_history

__all__ = [
    "Accuracy",
    "Area",
    "Assignment",
    "Forecast",
    "ForecastModel",
    "InfeasiblePlan",
    "IntervalRow",
    "IntervalTable",
    "OperatorRules",
    "PlanInputError",
    "PlanRequest",
    "PlanResult",
    "PlanSetup",
    "QueueMetrics",
    "QueueShifts",
    "QueueStaffing",
    "QueuedCall",
    "RosterResult",
    "RosterRules",
    "ShiftPlan",
    "ShiftRules",
    "SimulationResult",
    "StaffingTable",
    "StaffingTargets",
    "Unfilled",
    "WfmError",
    "chart_png",
    "erlang_a_agents",
    "erlang_a_metrics",
    "erlang_b",
    "erlang_c",
    "erlang_c_agents",
    "erlang_c_arrays",
    "erlang_c_metrics",
    "erlang_c_staff",
    "forecast_from_table",
    "holdout_accuracy",
    "load_queued_calls",
    "make_plan",
    "make_roster",
    "offered_load",
    "plan_shifts",
    "read_interval_csv",
    "rows_from_json",
    "seasonal_forecast",
    "simulate",
    "sqrt_staffing",
    "staff",
    "summary",
    "synthetic_history",
    "table_from_contacts",
    "table_from_rows",
    "write_outputs",
]

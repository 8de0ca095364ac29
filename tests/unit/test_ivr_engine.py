"""The IVR state machine on the default dialplan, driven by events, with a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr import engine
from ivr.config import IvrConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
ROME = ZoneInfo("Europe/Rome")
TUESDAY_10 = datetime(2026, 11, 24, 10, 0, tzinfo=ROME)
TUESDAY_22 = datetime(2026, 11, 24, 22, 0, tzinfo=ROME)
CHRISTMAS_10 = datetime(2026, 12, 25, 10, 0, tzinfo=ROME)
EASTER_MONDAY_10 = datetime(2026, 4, 6, 10, 0, tzinfo=ROME)
# Summer time starts on Sunday 2026-03-29: at 06:30 UTC it is 07:30 in Rome the Monday before
# (closed) and 08:30 the Monday after (open).
MONDAY_BEFORE_DST_0630Z = datetime(2026, 3, 23, 6, 30, tzinfo=UTC)
MONDAY_AFTER_DST_0630Z = datetime(2026, 3, 30, 6, 30, tzinfo=UTC)
DST_SUNDAY_10 = datetime(2026, 3, 29, 10, 0, tzinfo=ROME)


@pytest.fixture(scope="module")
def config() -> IvrConfig:
    return load_config(ROOT / "dialplan", ROOT / "skills")


def new_session(config: IvrConfig, when: datetime = TUESDAY_10, dialled: str = "803160") -> engine.Session:
    return engine.Session(config, call_id="c", dialled=dialled, caller="0612345678", clock=lambda: when)


def only(commands: list[engine.Command], kind: type) -> list:
    return [c for c in commands if isinstance(c, kind)]


def finish_prompt(session: engine.Session, commands: list[engine.Command]) -> list[engine.Command]:
    (play,) = only(commands, engine.Play)
    return session.handle(engine.PlaybackFinished(play.playback_id))


def visited(session: engine.Session) -> list[str]:
    return [s.node for s in session.path if s.kind != "input"]


def test_given_new_call_when_started_then_welcome_plays_in_italian(config: IvrConfig) -> None:
    session = new_session(config)
    (play,) = session.start()
    assert isinstance(play, engine.Play)
    assert play.language == "it"
    assert play.media[0].startswith("sound:/unico/default/sounds/it/welcome-")


def test_given_welcome_when_key_pressed_then_it_barges_into_main_menu(config: IvrConfig) -> None:
    session = new_session(config)
    (play,) = session.start()
    commands = session.handle(engine.Dtmf("1"))
    assert engine.StopPlayback(play.playback_id) in commands
    assert session.node_name == "main"


def test_given_main_menu_when_digits_pressed_then_path_records_nodes_and_digits(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("1"))  # info
    session.handle(engine.Dtmf("1"))  # opening hours
    assert session.node_name == "opening_hours"
    assert session.outcome == "contained"
    inputs = [(s.node, s.digits, s.note) for s in session.path if s.kind == "input"]
    assert inputs == [("main", "1", "choice"), ("info", "1", "choice")]
    assert visited(session) == ["welcome", "main", "info", "opening_hours"]


def test_given_menu_when_invalid_digit_then_invalid_prompt_and_menu_replay(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    commands = session.handle(engine.Dtmf("7"))
    (play,) = only(commands, engine.Play)
    assert "invalid_choice" in play.media[0] and "main_menu" in play.media[1]
    assert session.node_name == "main"


def test_given_menu_when_no_input_until_retries_run_out_then_fallback_hangs_up(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, session.start())  # welcome done -> main prompt
    for _ in range(3):  # first try + 2 retries
        commands = finish_prompt(session, commands)
        (timer,) = only(commands, engine.StartTimer)
        assert timer.seconds == 5
        commands = session.handle(engine.TimerExpired(timer.timer_id))
    assert session.node_name == "too_many_attempts"
    commands = finish_prompt(session, commands)
    assert only(commands, engine.Hangup)
    assert session.outcome == "ivr_fallback"
    assert [s.note for s in session.path if s.kind == "input"] == ["timeout"] * 3
    assert session.finished


def test_given_stale_timer_when_it_fires_then_it_is_ignored(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, finish_prompt(session, session.start()))
    (timer,) = only(commands, engine.StartTimer)
    commands = session.handle(engine.Dtmf("1"))
    assert engine.CancelTimer(timer.timer_id) in commands
    assert session.handle(engine.TimerExpired(timer.timer_id)) == []
    assert session.node_name == "info"


def test_given_english_choice_when_pressed_then_prompts_switch_to_english(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    commands = session.handle(engine.Dtmf("9"))
    (play,) = only(commands, engine.Play)
    assert session.language == "en" and play.language == "en"
    assert "/en/main_menu-" in play.media[0]


def _to_tracking(config: IvrConfig) -> engine.Session:
    session = new_session(config)
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("1"))
    session.handle(engine.Dtmf("2"))
    assert session.node_name == "tracking_code"
    return session


def test_given_tracking_code_when_12_digits_then_action_runs_with_code(config: IvrConfig) -> None:
    session = _to_tracking(config)
    commands: list[engine.Command] = []
    for digit in "123456789012":
        commands = session.handle(engine.Dtmf(digit))
    (action,) = only(commands, engine.RunAction)
    assert action.handler == "parcel_tracking" and action.args == {"code": "123456789012"}
    commands = session.handle(engine.ActionDone(action.request_id, "delivered", {"parcel_status": "delivered"}))
    (play,) = only(commands, engine.Play)
    assert "digits:123456789012" in play.media and "parcel_delivered" in play.media[-1]
    assert session.outcome == "contained"


def test_given_tracking_code_when_too_short_and_silence_then_invalid_retry(config: IvrConfig) -> None:
    session = _to_tracking(config)
    session.handle(engine.Dtmf("1"))
    commands = session.handle(engine.Dtmf("2"))
    (timer,) = only(commands, engine.StartTimer)
    assert timer.seconds == 4  # inter-digit timeout
    commands = session.handle(engine.TimerExpired(timer.timer_id))
    (play,) = only(commands, engine.Play)
    assert "tracking_code_invalid" in play.media[0]
    assert [(s.digits, s.note) for s in session.path if s.node == "tracking_code" and s.kind == "input"] == [
        ("12", "invalid")
    ]


def test_given_collect_when_terminator_then_validated_early(config: IvrConfig) -> None:
    session = _to_tracking(config)
    session.handle(engine.Dtmf("5"))
    session.handle(engine.Dtmf("#"))
    assert session.path[-1].digits == "5" and session.path[-1].note == "invalid"


def test_given_action_when_it_fails_then_service_error_branch(config: IvrConfig) -> None:
    session = _to_tracking(config)
    commands: list[engine.Command] = []
    for digit in "000000000000":
        commands = session.handle(engine.Dtmf(digit))
    (action,) = only(commands, engine.RunAction)
    assert session.handle(engine.Dtmf("1")) == []  # keys ignored while the lookup runs
    session.handle(engine.ActionFailed(action.request_id, "timeout"))
    assert session.node_name == "service_error"


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (TUESDAY_10, "queue_general"),
        (TUESDAY_22, "operators_closed"),
        (CHRISTMAS_10, "operators_closed"),
        (EASTER_MONDAY_10, "operators_closed"),
        (MONDAY_BEFORE_DST_0630Z, "operators_closed"),
        (MONDAY_AFTER_DST_0630Z, "queue_general"),
        (DST_SUNDAY_10, "operators_closed"),
    ],
)
def test_given_operator_choice_when_hours_checked_then_open_or_closed(
    config: IvrConfig, when: datetime, expected: str
) -> None:
    session = new_session(config, when)
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("0"))
    assert session.node_name == expected


def test_given_closed_hours_when_callback_chosen_then_outcome_callback(config: IvrConfig) -> None:
    session = new_session(config, TUESDAY_22)
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("0"))
    assert session.node_name == "operators_closed"
    session.handle(engine.Dtmf("3"))
    assert session.node_name == "callback_request"
    assert session.outcome == "callback"


def test_given_closed_hours_when_self_service_or_complaint_chosen_then_menu_leads_there(config: IvrConfig) -> None:
    for digit, target in (("1", "main"), ("2", "complaint_consent")):
        session = new_session(config, CHRISTMAS_10)
        finish_prompt(session, session.start())
        session.handle(engine.Dtmf("0"))
        session.handle(engine.Dtmf(digit))
        assert session.node_name == target


def test_given_open_hours_when_queue_reached_then_caller_handed_to_acd(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    commands = session.handle(engine.Dtmf("0"))
    commands = finish_prompt(session, commands)  # "transferring" prompt
    (enqueue,) = only(commands, engine.Enqueue)
    assert enqueue.queue == "general" and session.phase is engine.Phase.QUEUED
    assert session.handle(engine.Dtmf("1")) == [], "keys are ignored while queued"
    assert session.handle(engine.QueueResult("stale-id", "answered")) == []
    assert session.handle(engine.QueueResult(enqueue.request_id, "answered")) == []
    assert not session.finished and session.outcome == "answered"
    assert session.path[-1].kind == "queue" and session.path[-1].note == "answered"
    assert session.handle(engine.Dtmf("5")) == [], "keys are ignored during the conversation"
    # the operator hangs up first: the caller is asked the survey, which stores its answers
    commands = session.handle(engine.QueueResult(enqueue.request_id, "completed"))
    assert session.node_name == "survey" and only(commands, engine.Play)
    session.handle(engine.Dtmf("4"))
    assert session.node_name == "survey_solved"
    (action,) = only(session.handle(engine.Dtmf("1")), engine.RunAction)
    assert (action.handler, dict(action.args)) == ("record_survey", {"score": "4", "solved": "1"})
    assert session.outcome == "answered", "the survey does not change how the contact ended"


def test_given_queue_without_survey_when_operator_hangs_up_first_then_call_ends(config: IvrConfig) -> None:
    session = new_session(config, dialled="803161")
    finish_prompt(session, session.start())
    commands = session.handle(engine.Dtmf("0"))
    while not only(commands, engine.Enqueue):
        commands = finish_prompt(session, commands)
    (enqueue,) = only(commands, engine.Enqueue)
    session.handle(engine.QueueResult(enqueue.request_id, "answered"))
    (hangup,) = only(session.handle(engine.QueueResult(enqueue.request_id, "completed")), engine.Hangup)
    assert hangup.reason == "operator_ended" and session.outcome == "answered"


@pytest.mark.parametrize("result", ["closed", "full", "unavailable", "timeout"])
def test_given_queue_cannot_serve_then_unavailable_treatment_with_reason_in_path(
    config: IvrConfig, result: str
) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    commands = finish_prompt(session, session.handle(engine.Dtmf("0")))
    (enqueue,) = only(commands, engine.Enqueue)
    commands = session.handle(engine.QueueResult(enqueue.request_id, result))
    assert session.node_name == "operators_unavailable"
    assert session.outcome == "operators_unavailable"
    assert any(step.kind == "queue" and step.note == result for step in session.path)
    assert only(commands, engine.Play)


def test_given_conversation_when_caller_hangs_up_then_outcome_stays_answered(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    (enqueue,) = only(finish_prompt(session, session.handle(engine.Dtmf("0"))), engine.Enqueue)
    session.handle(engine.QueueResult(enqueue.request_id, "answered"))
    session.handle(engine.HungUp())
    assert session.finished and session.outcome == "answered"


def test_given_caller_waiting_in_queue_when_hanging_up_then_abandoned_in_queue(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    finish_prompt(session, session.handle(engine.Dtmf("0")))
    session.handle(engine.HungUp())
    assert session.outcome == "abandoned_queue"


def to_complaint(session: engine.Session, category_key: str = "2") -> list[engine.Command]:
    """From the main menu: 2 complaints, then a category; returns the consent prompt's commands."""
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("2"))
    assert session.node_name == "complaint_category"
    return session.handle(engine.Dtmf(category_key))


def test_given_complaint_when_recorded_then_ticket_opened_and_number_read_back_twice(config: IvrConfig) -> None:
    session = new_session(config)
    commands = to_complaint(session, "2")  # payments and cards
    assert session.vars["complaint_category"] == "payments"
    commands = finish_prompt(session, commands)  # consent
    commands = finish_prompt(session, commands)  # instructions
    (rec,) = only(commands, engine.StartRecording)
    assert rec.beep and rec.terminate_on == "#"
    assert session.handle(engine.Dtmf("5")) == []
    (action,) = only(session.handle(engine.RecordingFinished(rec.name, 4.2)), engine.RunAction)
    assert session.recording == rec.name and session.outcome == "complaint"
    assert (action.handler, dict(action.args)) == ("open_complaint", {"category": "payments", "recording": rec.name})
    (play,) = only(
        session.handle(engine.ActionDone(action.request_id, "opened", {"complaint_number": "418207396"})), engine.Play
    )
    assert "digits:418207396" in play.media and any("complaint_number_is" in m for m in play.media)
    (again,) = only(session.handle(engine.PlaybackFinished(play.playback_id)), engine.Play)
    assert "digits:418207396" in again.media, "the number is said a second time"
    assert session.outcome == "complaint"


def test_given_complaint_desk_down_when_recorded_then_caller_thanked_and_recording_kept(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, finish_prompt(session, to_complaint(session, "1")))
    (rec,) = only(commands, engine.StartRecording)
    (action,) = only(session.handle(engine.RecordingFinished(rec.name, 3.0)), engine.RunAction)
    session.handle(engine.ActionFailed(action.request_id, "timeout"))
    assert session.node_name == "complaint_thanks" and session.recording == rec.name


def test_given_recording_when_too_short_then_back_to_menu_without_recording(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, finish_prompt(session, to_complaint(session)))
    (rec,) = only(commands, engine.StartRecording)
    session.handle(engine.RecordingFinished(rec.name, 0.2))
    assert session.node_name == "complaint_empty" and session.recording is None


def test_given_recording_when_caller_hangs_up_then_message_is_kept(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, finish_prompt(session, to_complaint(session)))
    (rec,) = only(commands, engine.StartRecording)
    session.handle(engine.HungUp())
    assert session.recording == rec.name and session.outcome == "complaint"
    assert session.finished


def test_given_prompt_when_caller_hangs_up_then_abandoned_and_timer_cancelled(config: IvrConfig) -> None:
    session = new_session(config)
    commands = finish_prompt(session, finish_prompt(session, session.start()))
    (timer,) = only(commands, engine.StartTimer)
    assert session.handle(engine.HungUp()) == [engine.CancelTimer(timer.timer_id)]
    assert session.outcome == "abandoned_ivr"
    assert session.handle(engine.Dtmf("1")) == []


def test_given_unknown_number_when_called_then_not_in_service(config: IvrConfig) -> None:
    session = new_session(config, dialled="999")
    session.start()
    assert session.node_name == "not_in_service" and session.outcome == "unknown_number"


def test_given_internal_number_when_evening_then_internal_closed(config: IvrConfig) -> None:
    evening = datetime(2026, 11, 24, 19, 30, tzinfo=ROME)  # open for customers, closed for internal
    session = new_session(config, evening, dialled="803161")
    finish_prompt(session, session.start())
    session.handle(engine.Dtmf("1"))
    assert session.node_name == "internal_closed"


def test_given_sensitive_collect_when_recorded_then_value_masked(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        """
settings: {languages: [it], default_language: it}
numbers: {"100": {name: t, entry: pin}}
prompts: {p: {it: "x"}}
nodes:
  pin: {type: collect, prompt: [p], var: pin, max_length: 4, sensitive: true, next: bye, fallback: bye}
  bye: {type: hangup}
"""
    )
    config = load_config(tmp_path)
    session = engine.Session(config, call_id="c", dialled="100", caller=None, clock=lambda: TUESDAY_10)
    session.start()
    for digit in "1234":
        session.handle(engine.Dtmf(digit))
    assert session.vars["pin"] == "1234"
    assert session.public_vars() == {"pin": engine.MASK}
    assert "1234" not in str(session.path_dicts())


def test_given_loop_without_input_when_run_then_cut_off(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        """
settings: {languages: [it], max_node_visits: 10}
numbers: {"100": {name: t, entry: a}}
nodes:
  a: {type: language, language: it, next: b}
  b: {type: language, language: it, next: a}
"""
    )
    session = engine.Session(load_config(tmp_path), call_id="c", dialled="100", caller=None, clock=lambda: TUESDAY_10)
    commands = session.start()
    assert only(commands, engine.Hangup) and session.outcome == "error"


def test_given_caller_gone_before_the_ivr_started_then_path_step_is_recordable() -> None:
    from contacts.records import parse_step

    config = load_config(ROOT / "dialplan", ROOT / "skills")
    session = engine.Session(config, call_id="c", dialled="803160", caller=None, clock=lambda: TUESDAY_10)

    session.handle(engine.HungUp())

    assert session.phase is engine.Phase.DONE
    for step in session.path_dicts():
        parse_step(step)  # the records layer accepts every step (it refused an empty node)


def test_given_queued_session_when_snapshot_restored_then_it_goes_on_to_the_survey(config: IvrConfig) -> None:
    session = new_session(config)
    finish_prompt(session, session.start())
    (enqueue,) = only(finish_prompt(session, session.handle(engine.Dtmf("0"))), engine.Enqueue)
    session.vars["secret"] = "1234"
    session._sensitive.add("secret")
    session.handle(engine.QueueResult(enqueue.request_id, "answered"))
    saved = session.snapshot()
    again = engine.Session.restore(config, json.loads(json.dumps(saved)), clock=lambda: TUESDAY_10)
    assert again.snapshot() == saved
    assert again.public_vars()["secret"] == engine.MASK and again.path == session.path
    commands = again.handle(engine.QueueResult(enqueue.request_id, "completed"))
    assert again.node_name == "survey" and only(commands, engine.Play)
    assert again.outcome == "answered"
    # ids go on from where the first process stopped: none is handed out twice
    assert only(commands, engine.Play)[0].playback_id == f"c-pb{saved['seq'] + 1}"


@pytest.mark.parametrize("phase", ["prompt", "wait", "action", "done"])
def test_given_session_not_queued_when_restored_then_refused(config: IvrConfig, phase: str) -> None:
    saved = {**new_session(config).snapshot(), "phase": phase, "request": "c-q1", "node": "queue_general"}
    with pytest.raises(ValueError, match="only a queued session"):
        engine.Session.restore(config, saved, clock=lambda: TUESDAY_10)


def test_given_queue_node_removed_by_a_reload_when_restored_then_refused(config: IvrConfig) -> None:
    saved = {**new_session(config).snapshot(), "phase": "queued", "request": "c-q1", "node": "main"}
    with pytest.raises(ValueError, match="not a queue node"):
        engine.Session.restore(config, saved, clock=lambda: TUESDAY_10)

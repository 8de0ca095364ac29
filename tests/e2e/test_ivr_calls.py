"""Real SIP calls (sipp) through the real Asterisk 22 into the controller; the contact records show
exactly what the controller did. Every test ends with the rig's leak check (see conftest.rig)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.e2e.rig import ROOT, Controller, Records, inputs, nodes_visited, unique_caller
from tests.sipp import Call
from unico.pbx.config import instance_dir


def caller_id() -> str:
    """A caller number unique to this test run, so records never mix between tests."""
    return unique_caller("39")


def call(rig: Controller, dialled: str, caller: str) -> Call:
    return Call(dialled, caller=caller, port=rig.settings.sip_port)


async def test_given_main_number_when_keys_sent_as_sip_info_then_exact_menu_path_recorded(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = (
        await call(rig, "803160", caller).pause(800).dtmf("111", mode="info", gap_ms=600).pause(1500).hangup().run()
    )
    assert result.answered and result.local_bye, result.explain()
    record = await records.finished_for(caller)
    assert record.dialled == "803160"
    assert inputs(record) == [("welcome", "1", "skip"), ("main", "1", "choice"), ("info", "1", "choice")]
    assert nodes_visited(record) == ["welcome", "main", "info", "opening_hours"]
    assert record.outcome == "contained"
    assert record.language == "it"
    assert record.started_at < record.ended_at


async def test_given_parcel_in_database_when_code_sent_as_rfc4733_then_status_self_served(
    rig: Controller, records: Records
) -> None:
    caller, code = caller_id(), "123456789012"
    await records.store.upsert_parcel(code, "delivered")
    dialling = call(rig, "803160", caller).pause(800).dtmf("112", mode="rfc2833", gap_ms=500)
    result = await dialling.pause(1500).dtmf(code, mode="rfc2833", gap_ms=300).pause(3000).hangup().run()
    assert result.answered, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [
        ("welcome", "1", "skip"),
        ("main", "1", "choice"),
        ("info", "2", "choice"),
        ("tracking_code", code, "valid"),
    ]
    results = [s["note"] for s in record.ivr_path if s["kind"] == "result"]
    assert results == ["delivered"]
    assert nodes_visited(record)[-2:] == ["tracking_lookup", "parcel_delivered"]
    assert record.outcome == "contained"
    assert record.data == {"parcel_code": code, "parcel_status": "delivered"}


async def test_given_menu_when_caller_stays_silent_then_retries_then_fallback_hangs_up(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7001", caller).expect_bye(30_000).run()
    assert result.answered and result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [("t_menu", None, "timeout")] * 3
    assert nodes_visited(record) == ["t_menu", "t_fallback"]
    assert record.outcome == "ivr_fallback"


async def test_given_menu_when_invalid_digit_then_valid_one_then_choice_taken(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("7").pause(1500).dtmf("1").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [("t_menu", "7", "invalid"), ("t_menu", "1", "choice")]
    assert nodes_visited(record) == ["t_menu", "t_done"]
    assert record.outcome == "contained"


async def test_given_menu_when_only_invalid_digits_then_final_fallback(rig: Controller, records: Records) -> None:
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("784", gap_ms=1200).expect_bye(20_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [("t_menu", "7", "invalid"), ("t_menu", "8", "invalid"), ("t_menu", "4", "invalid")]
    assert nodes_visited(record)[-1] == "t_fallback"
    assert record.outcome == "ivr_fallback"


async def test_given_collect_when_value_fails_pattern_then_retry_then_valid_value_said_back(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    dialling = call(rig, "7002", caller).pause(500).dtmf("126#", gap_ms=300).pause(1500)
    result = await dialling.dtmf("1234#", gap_ms=300).expect_bye(20_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert inputs(record) == [("t_collect", "126", "invalid"), ("t_collect", "1234", "valid")]
    assert nodes_visited(record) == ["t_collect", "t_say", "t_done"]
    assert record.data == {"code": "1234"}


async def test_given_collect_when_too_few_digits_then_timeout_validates_and_falls_back(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7002", caller).pause(500).dtmf("12").pause(3500).dtmf("3").expect_bye(20_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    # "12" then silence: the inter-digit timeout ends the entry, too short; the retry gets "3" alone
    assert inputs(record) == [("t_collect", "12", "invalid"), ("t_collect", "3", "invalid")]
    assert nodes_visited(record)[-1] == "t_fallback"


async def test_given_caller_when_english_chosen_then_call_continues_in_english(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("9").pause(1500).dtmf("1").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert nodes_visited(record) == ["t_menu", "t_english", "t_menu_en", "t_done"]
    assert record.language == "en"
    # the prompts after the switch were the English renderings
    assert "/en/t_short-" in rig.log_text()


async def test_given_prompt_playing_when_caller_hangs_up_then_abandoned_and_nothing_left(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "803160", caller).pause(1500).hangup().run()
    assert result.answered and result.local_bye, result.explain()
    record = await records.finished_for(caller)
    assert nodes_visited(record) == ["welcome"]
    assert record.outcome == "abandoned_ivr"


async def test_given_digit_collection_when_caller_hangs_up_then_abandoned_without_value(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7002", caller).pause(500).dtmf("12").pause(300).hangup().run()
    assert result.local_bye, result.explain()
    record = await records.finished_for(caller)
    assert nodes_visited(record) == ["t_collect"]
    assert record.outcome == "abandoned_ivr"
    assert record.data == {}


def recording_file(rig: Controller, name: str) -> Path:
    return instance_dir(rig.settings) / "spool" / "recording" / f"{name}.wav"


def audio_seconds(path: Path) -> float:
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


async def test_given_recording_when_caller_hangs_up_mid_message_then_message_kept(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7003", caller).pause(1500).play_audio().hangup().run()
    assert result.local_bye, result.explain()
    record = await records.finished_for(caller)
    assert record.outcome == "complaint"
    assert record.recording, record
    path = recording_file(rig, record.recording)
    assert path.is_file(), path
    assert audio_seconds(path) > 2.0
    assert record.data == {"message": record.recording}


async def test_given_recording_when_hash_pressed_then_message_saved_and_call_goes_on(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7003", caller).pause(1500).play_audio().dtmf("#").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert nodes_visited(record) == ["t_record", "t_thanks"]
    assert record.outcome == "complaint"
    assert record.recording and audio_seconds(recording_file(rig, record.recording)) > 2.0


async def test_given_unknown_number_when_called_then_not_in_service_and_hung_up(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "5555", caller).expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    record = await records.finished_for(caller)
    assert record.outcome == "unknown_number"
    assert nodes_visited(record) == ["not_in_service"]


async def test_given_parallel_calls_when_one_waits_then_the_other_is_not_delayed(
    rig: Controller, records: Records
) -> None:
    slow, fast = caller_id(), caller_id()
    silent = call(rig, "7001", slow).expect_bye(30_000).run()
    quick = call(rig, "7001", fast).pause(500).dtmf("1").expect_bye(15_000).run()
    slow_result, fast_result = await asyncio.gather(silent, quick)
    assert slow_result.remote_bye and fast_result.remote_bye
    assert fast_result.elapsed < slow_result.elapsed
    assert (await records.finished_for(fast)).outcome == "contained"
    assert (await records.finished_for(slow)).outcome == "ivr_fallback"


async def test_given_calls_made_when_unico_contacts_json_then_lines_show_path_and_outcome(
    rig: Controller, records: Records
) -> None:
    caller = caller_id()
    result = await call(rig, "7001", caller).pause(500).dtmf("1").expect_bye(15_000).run()
    assert result.remote_bye, result.explain()
    await records.finished_for(caller)
    env = rig.env()
    out = await asyncio.to_thread(
        subprocess.run,
        [str(ROOT / ".venv" / "bin" / "unico"), "contacts", "--json", "--last", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3
    newest = lines[0]
    assert newest["caller"] == caller and newest["dialled"] == "7001"
    assert newest["outcome"] == "contained"
    assert newest["started_at"] and newest["ended_at"]
    assert [(s["node"], s["digits"]) for s in newest["ivr_path"] if s["kind"] == "input"] == [("t_menu", "1")]
    assert [s["node"] for s in newest["ivr_path"] if s["kind"] != "input"] == ["t_menu", "t_done"]

"""Property: whatever a client sends to any route, as any principal, the API answers with JSON
and never fails with a 500 (hypothesis; the bench of ``test_api_support`` runs once, on its own
event loop in a thread, because hypothesis drives synchronous tests)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.test_api_support import Bench, open_bench
from unico.api import ROUTES

T = TypeVar("T")
_FUZZED = [route for route in ROUTES if route.path != "/api/plan"]  # the planner has its own tests
_FIELDS = sorted(
    {
        field.alias or name
        for route in _FUZZED
        for model in (route.body, route.query)
        if model is not None
        for name, field in model.model_fields.items()
    }
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80)
    | st.sampled_from(["ready", "lunch", "general", "op1001", "2026-03-02", "listen", "operator", "closed"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=12,
)
_BODIES = st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=6) | _JSON
_QUERIES = st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8), st.text(max_size=30), max_size=5)
_IDS = st.sampled_from(["op1001", "op1002", "c-1", "0" * 32, "999999999"]) | st.text(min_size=1, max_size=40)


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-fuzz", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture(scope="module")
def fuzz_bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bench, LoopThread]]:
    runner = LoopThread()
    opened = open_bench(Path(tmp_path_factory.mktemp("fuzz")))
    bench = runner.run(opened.__aenter__())
    try:
        yield bench, runner
    finally:
        runner.run(opened.__aexit__(None, None, None))
        runner.close()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(min_value=0, max_value=len(_FUZZED) - 1),
    who=st.sampled_from(["admin", "sup", "op1", None]),
    ident=_IDS,
    body=_BODIES,
    query=_QUERIES,
)
def test_given_any_request_when_sent_then_json_answer_and_never_500(
    fuzz_bench: tuple[Bench, LoopThread], index: int, who: str | None, ident: str, body: Any, query: dict[str, str]
) -> None:
    bench, runner = fuzz_bench
    route = _FUZZED[index]
    path = route.path
    for name in ("agent_id", "call_id", "contact_id", "customer_id", "number", "name"):
        path = path.replace("{" + name + "}", quote(ident, safe=""))
    if query:
        path += "?" + urlencode(query)
    data = json.dumps(body).encode() if route.method == "POST" else None
    status, answer = runner.run(bench.call(route.method, path, as_=who, data=data))
    assert status < 500 or status == 503, (route.method, path, who, body, answer)
    if status >= 400:
        assert isinstance(answer, dict) and isinstance(answer.get("error"), str), answer

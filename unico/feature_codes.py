"""Phone feature codes: an operator dials ``*4x`` on the softphone to log in, pause, be ready.

``extensions.conf`` sends any ``*<digits>`` dialled by an operator endpoint into our app with
``operator,<code>``. The operator is the endpoint the call comes from (``PJSIP/op1001-0000002a``
-> ``op1001``), so the code needs no PIN: the softphone already authenticated with its digest
password. The code is applied like the REST API's action, a short prompt confirms it, and the
call ends.

========  ======================================
``*41``   log in (ready at once if registered)
``*42``   log out
``*43``   ready (also ends wrap-up early)
``*44``   pause: break
``*45``   pause: lunch
``*46``   pause: training
``*47``   pause: meeting
``*48``   pause: back office
========  ======================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from acd.agents import Event, IllegalTransition, Login, Logout, NotReadyReason, Pause, Ready
from ivr.config import IvrConfig
from unico.acd_service import AcdService, UnknownAgent
from unico.ari import (
    AriError,
    AriRest,
    ChannelHangupRequest,
    Outcome,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
    gone_ok,
)

log = logging.getLogger(__name__)

FEATURE_CODES: Final[dict[str, tuple[Callable[[], Event], str]]] = {
    "*41": (Login, "agent_logged_in"),
    "*42": (Logout, "agent_logged_out"),
    "*43": (Ready, "agent_ready"),
    "*44": (lambda: Pause(NotReadyReason.BREAK), "agent_paused"),
    "*45": (lambda: Pause(NotReadyReason.LUNCH), "agent_paused"),
    "*46": (lambda: Pause(NotReadyReason.TRAINING), "agent_paused"),
    "*47": (lambda: Pause(NotReadyReason.MEETING), "agent_paused"),
    "*48": (lambda: Pause(NotReadyReason.BACKOFFICE), "agent_paused"),
}


def operator_of(channel_name: str) -> str | None:
    """``PJSIP/op1001-0000002a`` -> ``op1001``; None for anything else."""
    tech, _, rest = channel_name.partition("/")
    if tech != "PJSIP" or "-" not in rest:
        return None
    return rest.rsplit("-", 1)[0] or None


class FeatureCodeCall:
    """One operator's feature-code call, as a dispatcher actor."""

    def __init__(
        self, *, rest: AriRest, acd: AcdService | None, config: IvrConfig, prompt_base: str, first: StasisStart
    ) -> None:
        self.rest = rest
        self.acd = acd
        self.config = config
        self.prompt_base = prompt_base.rstrip("/")
        self.channel_id = first.channel.id
        self.channel_name = first.channel.name
        self.code = first.args[1] if len(first.args) > 1 else ""
        self.playback = f"{self.channel_id}-fc"

    async def on_event(self, event: object) -> Outcome | None:
        if isinstance(event, StasisStart):
            await self._start()
        elif isinstance(event, PlaybackFinished) and event.playback.id == self.playback:
            with gone_ok():
                await self.rest.hangup(self.channel_id)
        elif isinstance(event, ChannelHangupRequest | StasisEnd):
            return Outcome.FINISHED
        return None

    async def _start(self) -> None:
        prompt = await self._apply()
        try:
            await self.rest.answer(self.channel_id)
            language = "it" if "it" in self.config.prompts[prompt] else next(iter(self.config.prompts[prompt]))
            media = f"sound:{self.prompt_base}/{self.config.prompt_stem(prompt, language)}"
            await self.rest.play(self.channel_id, self.playback, [media], lang=language)
        except AriError as exc:
            log.info("feature code %s: cannot confirm (%s)", self.code, exc)
            with gone_ok():
                await self.rest.hangup(self.channel_id)

    async def _apply(self) -> str:
        agent_id = operator_of(self.channel_name)
        entry = FEATURE_CODES.get(self.code)
        if entry is None or agent_id is None or self.acd is None:
            log.info("feature code %s from %s refused", self.code, self.channel_name)
            return "agent_refused"
        make, prompt = entry
        try:
            agent = await self.acd.agent_event(agent_id, make(), by="feature code")
        except (UnknownAgent, IllegalTransition) as exc:
            log.info("feature code %s from %s refused: %s", self.code, agent_id, exc)
            return "agent_refused"
        log.info("feature code %s: %s is %s", self.code, agent_id, agent.state.value)
        if prompt == "agent_logged_in" and agent.state.value != "ready":
            return "agent_logged_in_not_ready"
        return prompt


__all__ = ["FEATURE_CODES", "FeatureCodeCall", "operator_of"]

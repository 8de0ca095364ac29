"""A minimal Asterisk Manager Interface client: one TCP connection kept open, one action at a time.

The benchmark times "the moment an action is written" against "the INVITE reaches the softphone",
so the action must leave on a connection that is already open and logged in (``asterisk -rx``
would add a process start to every sample). :meth:`Ami.send` returns the time.time() taken right
before the bytes were written, next to the response.

Example::

    ami = await Ami.connect("127.0.0.1", 5038, "unico", secret)
    sent_at, response = await ami.command("queue unpause member PJSIP/op1001 queue bench")
    await ami.close()

Messages are ``Key: Value`` lines ended by an empty line (AMI over TCP, Asterisk 22). With
``Events: off`` at login no events are pushed; anything that is not the awaited response (for
example ``Event: FullyBooted`` after login) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

# Seconds to wait for the connection, the banner or a response (all local, normally < 10 ms).
TIMEOUT = 5.0


class AmiError(Exception):
    """Login refused, an action failed, or the connection closed."""


@dataclass(frozen=True, kw_only=True)
class AmiResponse:
    """One response: its header fields (first value per key) and the ``Output`` lines of a Command."""

    fields: dict[str, str]
    output: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.fields.get("Response", "").lower() in ("success", "follows")


@dataclass
class Ami:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def connect(cls, host: str, port: int, username: str, secret: str) -> Ami:
        """Open the connection, read the banner and log in without events."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        ami = cls(reader, writer)
        banner = await asyncio.wait_for(reader.readline(), TIMEOUT)
        if not banner.startswith(b"Asterisk Call Manager"):
            await ami.close()
            raise AmiError(f"not an AMI banner: {banner[:80]!r}")
        _, response = await ami.send({"Action": "Login", "Username": username, "Secret": secret, "Events": "off"})
        if not response.ok:
            await ami.close()
            raise AmiError(f"AMI login refused: {response.fields.get('Message', response.fields)}")
        return ami

    async def send(self, action: dict[str, str]) -> tuple[float, AmiResponse]:
        """Send one action; return (time.time() right before writing it, its response)."""
        async with self._lock:
            action_id = f"bench-{next(self._ids)}"
            lines = [f"{key}: {value}" for key, value in action.items()]
            data = ("\r\n".join([*lines, f"ActionID: {action_id}"]) + "\r\n\r\n").encode()
            sent_at = time.time()
            self.writer.write(data)
            await self.writer.drain()
            while True:
                response = await asyncio.wait_for(self._read_message(), TIMEOUT)
                if response.fields.get("ActionID") == action_id and "Response" in response.fields:
                    return sent_at, response

    async def command(self, command: str) -> tuple[float, AmiResponse]:
        """Run one CLI command in Asterisk (action ``Command``, write privilege ``command``)."""
        sent_at, response = await self.send({"Action": "Command", "Command": command})
        if not response.ok:
            raise AmiError(f"{command!r}: {response.fields.get('Message', response.fields)}")
        return sent_at, response

    async def close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(TimeoutError, OSError, AmiError):
                await self.send({"Action": "Logoff"})
            self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    async def _read_message(self) -> AmiResponse:
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise AmiError("AMI connection closed") from exc
        fields: dict[str, str] = {}
        output: list[str] = []
        for line in raw.decode(errors="replace").split("\r\n"):
            key, sep, value = line.partition(": ")
            if not sep:
                continue
            if key == "Output":
                output.append(value)
            else:
                fields.setdefault(key, value)
        return AmiResponse(fields=fields, output=tuple(output))

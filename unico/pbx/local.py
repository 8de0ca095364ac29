"""Run Asterisk instances inside the project's Debian root (``chroot``), side by side.

An instance ``<name>`` lives in ``<root>/unico/<name>`` (etc, run, log, spool, db, sounds, cache)
and is started as ``chroot <root> asterisk -C /unico/<name>/etc/asterisk.conf``; ``asterisk -C
... -rx`` reads the same asterisk.conf, so the CLI reaches that instance's control socket. So
``make test`` (instance ``test``) never disturbs ``make run`` (instance ``default``), as long as
their ports differ.

:func:`start` is idempotent: when the instance already runs with exactly the configuration that
:func:`write_config` produces now, it is left alone (calls in progress survive); when anything
differs it is restarted cleanly (``core stop now``), because most of what the settings change
(HTTP/SIP binds, ports, modules) cannot be reloaded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from unico.pbx.config import ari_host_port, conf_in_root, instance_dir, write_config
from unico.pbx.install import PbxError, install, is_installed, progress, require_managed
from unico.settings import Settings

ASTERISK = "/usr/sbin/asterisk"
CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
DIGEST_FILE = "unico-config.sha256"
AUDIO_SUFFIXES = frozenset({".wav", ".wav16", ".gsm", ".ulaw", ".alaw", ".sln", ".sln16", ".g722"})


class PbxNotRunning(PbxError):
    """The instance is not running (or ARI of an external Asterisk does not answer)."""


# --- lifecycle ---------------------------------------------------------------------------------


def start(settings: Settings, timeout: float = 30.0) -> None:
    """Write the config and make sure the instance runs with it; wait until ARI answers."""
    require_managed(settings, "start Asterisk")
    if not is_installed(settings):
        install(settings)
    digest = write_config(settings)
    digest_file = instance_dir(settings) / "run" / DIGEST_FILE
    name = settings.asterisk_instance
    if _pid(settings) is not None:
        running_digest = digest_file.read_text().strip() if digest_file.exists() else ""
        if running_digest == digest:
            progress(f"instance {name!r} already running with this configuration")
            _wait_for_ari(settings, timeout)
            return
        progress(f"instance {name!r} runs an older configuration: restarting it")
        stop(settings)
    _check_ports_free(settings)
    log_dir = instance_dir(settings) / "log"
    startup_log = log_dir / "startup.log"
    progress(
        f"starting Asterisk instance {name!r} (ARI {settings.ari_url}, SIP {settings.sip_bind}:{settings.sip_port})"
    )
    with startup_log.open("wb") as out:
        # Without -f Asterisk daemonises: this process returns once the daemon has forked.
        result = subprocess.run(
            _chroot(settings, ASTERISK, "-C", conf_in_root(settings)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=CHROOT_ENV,
            check=False,
            timeout=timeout,
        )
    if result.returncode != 0:
        raise PbxError(f"asterisk exited with {result.returncode}:\n{_log_tail(settings)}")
    digest_file.write_text(digest + "\n")
    try:
        _wait_for_ari(settings, timeout)
    except PbxError:
        stop(settings)  # never leave a half-working instance behind; the next start retries
        raise
    progress(f"instance {name!r} ready (pid {_pid(settings)})")


def stop(settings: Settings, timeout: float = 15.0) -> None:
    """Stop the instance: ``core stop now`` (hangs up calls), then SIGTERM/SIGKILL. Idempotent."""
    require_managed(settings, "stop Asterisk")
    pid = _pid(settings)
    run_dir = instance_dir(settings) / "run"
    if pid is None:
        (run_dir / DIGEST_FILE).unlink(missing_ok=True)
        return
    progress(f"stopping instance {settings.asterisk_instance!r} (pid {pid})")
    _asterisk_rx(settings, "core stop now", timeout=timeout)
    if not _wait_gone(pid, timeout):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(pid, 5.0):
                break
    (run_dir / DIGEST_FILE).unlink(missing_ok=True)
    (run_dir / "asterisk.pid").unlink(missing_ok=True)


def is_running(settings: Settings) -> bool:
    """The managed instance's process exists; for an external Asterisk, ARI answers."""
    if not settings.asterisk_managed:
        try:
            ari_get(settings, "/asterisk/ping")
        except PbxError:
            return False
        return True
    return _pid(settings) is not None


def status(settings: Settings) -> str:
    """One or two lines: running or not, version, uptime. The CLI exits non-zero if not running
    (use :func:`is_running`, or catch nothing: this never raises for a stopped instance)."""
    if not settings.asterisk_managed:
        try:
            info = ari_get(settings, "/asterisk/info")
        except PbxError as exc:
            return f"not running: external Asterisk at {settings.ari_url} unreachable ({exc})"
        system, status_ = info.get("system", {}), info.get("status", {})
        return (
            f"running: external Asterisk {system.get('version', '?')} at {settings.ari_url}, "
            f"up since {status_.get('startup_time', '?')}"
        )
    name = settings.asterisk_instance
    pid = _pid(settings)
    if pid is None:
        return f"not running: Asterisk instance {name!r} (root {settings.local_asterisk_root})"
    version = _asterisk_rx(settings, "core show version").strip().splitlines()
    uptime = _asterisk_rx(settings, "core show uptime").strip().splitlines()
    first = uptime[0] if uptime else "uptime unknown"
    return (
        f"running: Asterisk instance {name!r}, pid {pid}, ARI {settings.ari_url}, "
        f"SIP {settings.sip_bind}:{settings.sip_port}\n"
        f"{version[0] if version else '?'}; {first.strip()}"
    )


def cli(settings: Settings, command: str, timeout: float = 15.0) -> str:
    """Run one Asterisk CLI command in the instance (``asterisk -rx``) and return its output."""
    require_managed(settings, "use the Asterisk CLI")
    if _pid(settings) is None:
        raise PbxNotRunning(f"Asterisk instance {settings.asterisk_instance!r} is not running")
    result = subprocess.run(
        _chroot(settings, ASTERISK, "-C", conf_in_root(settings), "-rx", command),
        capture_output=True,
        text=True,
        env=CHROOT_ENV,
        check=False,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise PbxError(
            f"asterisk -rx {command!r} failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


def sync_prompts(settings: Settings, src: Path) -> int:
    """Copy audio files under ``src`` into the instance's sounds dir; return how many changed.

    ``src/menu/welcome.wav`` then plays as ``sound:/unico/<name>/sounds/menu/welcome`` (see
    ``settings.prompt_dir_for_asterisk``). Unchanged files (same size and mtime) are skipped;
    each copy is atomic, so Asterisk never plays a half-written file.
    """
    require_managed(settings, "copy prompts into Asterisk")
    src = Path(src)
    if not src.is_dir():
        raise PbxError(f"prompt folder {src} not found")
    dest_root = instance_dir(settings) / "sounds"
    copied = 0
    for path in sorted(src.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        target = dest_root / path.relative_to(src)
        source_stat = path.stat()
        if target.exists():
            target_stat = target.stat()
            if target_stat.st_size == source_stat.st_size and target_stat.st_mtime_ns == source_stat.st_mtime_ns:
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # controllers may sync at once
        shutil.copy2(path, tmp)
        tmp.replace(target)
        copied += 1
    return copied


# --- ARI over plain HTTP (sync; for start-up checks and status only) ----------------------------


def ari_get(settings: Settings, path: str, timeout: float = 3.0) -> Any:
    """``GET <ari_url>/ari<path>`` with the settings' credentials; the decoded JSON body."""
    token = base64.b64encode(f"{settings.ari_user}:{settings.ari_password.get_secret_value()}".encode()).decode()
    request = urllib.request.Request(f"{settings.ari_url}/ari{path}", headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise PbxError(f"ARI {path}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PbxNotRunning(f"ARI {settings.ari_url} unreachable: {reason}") from None
    return json.loads(body) if body else None


#: a daemonised Asterisk writes its pid file a moment after the fork returns; until then (or this
#: long) a missing pid file does not mean it died
PID_FILE_GRACE = 5.0


def _wait_for_ari(settings: Settings, timeout: float) -> None:
    started = time.monotonic()
    deadline = started + timeout
    last = "no answer yet"
    seen = False
    while time.monotonic() < deadline:
        try:
            ari_get(settings, "/asterisk/info", timeout=2.0)
            return
        except PbxNotRunning as exc:
            last = str(exc)
        except PbxError as exc:
            # 404/503 while res_ari is still loading; 401/403: credentials will not fix themselves
            if " 401 " in str(exc) or " 403 " in str(exc):
                raise PbxError(f"{exc}\n{_log_tail(settings)}") from None
            last = str(exc)
        if _pid(settings) is not None:
            seen = True
        elif seen or time.monotonic() - started > PID_FILE_GRACE:
            raise PbxError(
                f"Asterisk instance {settings.asterisk_instance!r} died during start-up:\n{_log_tail(settings)}"
            )
        time.sleep(0.1)
    raise PbxError(f"ARI did not answer within {timeout:.0f} s ({last}):\n{_log_tail(settings)}")


# --- helpers -------------------------------------------------------------------------------------


def _chroot(settings: Settings, *command: str) -> list[str]:
    return ["chroot", str(settings.local_asterisk_root), *command]


def _asterisk_rx(settings: Settings, command: str, timeout: float = 15.0) -> str:
    try:
        return cli(settings, command, timeout=timeout)
    except (PbxError, subprocess.TimeoutExpired):
        return ""


def _pid(settings: Settings) -> int | None:
    """The instance's Asterisk pid, if that process is alive and really is this instance."""
    pid_file = instance_dir(settings) / "run" / "asterisk.pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status_text = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError):
        return None
    if "\nState:\tZ" in status_text:  # a zombie is gone for our purposes
        return None
    if conf_in_root(settings).encode() not in cmdline:
        return None  # the pid was reused by another process
    return pid


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True
        if "\nState:\tZ" in state:
            return True
        time.sleep(0.05)
    return False


def _check_ports_free(settings: Settings) -> None:
    """Refuse to start if another process holds our ports (else ARI could answer from it)."""
    _, ari_port = ari_host_port(settings)
    checks = [
        ("ARI/HTTP", socket.SOCK_STREAM, "127.0.0.1", ari_port),
        ("AMI", socket.SOCK_STREAM, "127.0.0.1", settings.ami_port),
        ("SIP", socket.SOCK_DGRAM, settings.sip_bind, settings.sip_port),
    ]
    for label, kind, host, port in checks:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise PbxError(
                    f"{label} port {host}:{port} is in use by another process ({exc.strerror}); "
                    "another Asterisk instance with the same ports? (see `ss -lntup`)"
                ) from None


def _log_tail(settings: Settings, lines: int = 25) -> str:
    log_dir = instance_dir(settings) / "log"
    parts = []
    for name in ("startup.log", "messages.log", "messages"):
        path = log_dir / name
        if path.is_file() and path.stat().st_size:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(parts) or f"(no log in {log_dir})"

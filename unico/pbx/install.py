"""Install the project's own Asterisk 22: a Debian sid root (debootstrap) used with ``chroot``.

Debian 12 ships no ``asterisk`` package, sid ships 22.x. The root is built once with
``debootstrap --variant=minbase`` and cached as a tarball in ``~/.cache/unico/`` (keyed by the
package list), so a fresh clone unpacks it in seconds. A root is complete only when its marker file
exists (written last, after a rename of the finished tree), so an interrupted install is redone.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from unico.settings import Settings

SUITE = "sid"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-it-wav",
    "asterisk-core-sounds-en-wav",
    "asterisk-moh-opsound-wav",
)
MARKER = ".unico-root-complete"
# Debian's package owns these by the ``asterisk`` user; we run Asterisk as root inside the chroot.
ASTERISK_DIRS = ("etc/asterisk", "var/lib/asterisk", "var/log/asterisk", "var/spool/asterisk")


class PbxError(Exception):
    """The local Asterisk could not be installed, started, stopped or reached."""


def progress(message: str) -> None:
    print(f"[pbx] {message}", flush=True)


def root_key() -> str:
    """Identifies a root by what was asked of debootstrap; a new package list means a new root."""
    spec = f"{SUITE} minbase {' '.join(sorted(PACKAGES))}"
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unico"


def require_managed(settings: Settings, action: str) -> None:
    if not settings.asterisk_managed:
        raise PbxError(
            f"cannot {action}: UNICO_ASTERISK_MANAGED is false, so Asterisk is an existing server "
            f"reached at {settings.ari_url}; manage it there"
        )


def is_installed(settings: Settings) -> bool:
    marker = settings.local_asterisk_root / MARKER
    return marker.is_file() and marker.read_text().strip() == root_key()


def install(settings: Settings) -> None:
    """Make ``settings.local_asterisk_root`` a complete Debian sid root with Asterisk (idempotent)."""
    require_managed(settings, "install Asterisk")
    if os.geteuid() != 0:
        raise PbxError("installing the local Asterisk needs root (debootstrap, chroot)")
    root = settings.local_asterisk_root
    root.parent.mkdir(parents=True, exist_ok=True)
    with _lock(root.parent / f".{root.name}.lock"):
        if is_installed(settings):
            _fix_up(root)  # idempotent: roots made by an older version get today's adjustments
            progress(f"Asterisk root ready at {root}")
            return
        if root.exists():
            progress(f"{root} is incomplete or outdated: removing it")
            _remove_tree(root)
        partial = root.with_name(root.name + ".partial")
        if partial.exists() or partial.is_symlink():
            _remove_tree(partial)
        partial.mkdir(parents=True)
        started = time.monotonic()
        cached = _cached_tarball()
        if cached is not None:
            progress(f"unpacking cached root {cached.name}")
            _run(
                ["tar", *_compress_flag(cached), "-xpf", str(cached), "--numeric-owner", "-C", str(partial)],
                "unpack the cached root",
            )
        else:
            _debootstrap(partial)
            _chown_asterisk_dirs(partial)
            _store_tarball(partial)
        _fix_up(partial)
        partial.rename(root)
        (root / MARKER).write_text(root_key() + "\n")
        progress(f"Asterisk root ready at {root} ({time.monotonic() - started:.0f} s)")


def _debootstrap(target: Path) -> None:
    if shutil.which("debootstrap") is None:
        progress("installing debootstrap with apt-get")
        _run(["apt-get", "update", "-q"], "apt-get update")
        _run(["apt-get", "install", "-y", "-q", "debootstrap"], "install debootstrap")
    log = target.with_name(target.name + ".debootstrap.log")
    progress(f"debootstrap {SUITE} ({', '.join(PACKAGES)}): ~500 MB, about a minute")
    with log.open("wb") as out:
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target), MIRROR],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    _unmount_below(target)  # debootstrap leaves /proc or /sys mounted when it is interrupted
    if result.returncode != 0:
        raise PbxError(f"debootstrap failed (exit {result.returncode}); last lines of {log}:\n" + _tail(log, 20))
    log.unlink(missing_ok=True)


def _chown_asterisk_dirs(root: Path) -> None:
    for rel in ASTERISK_DIRS:
        path = root / rel
        if path.exists():
            _run(["chown", "-R", "root:root", str(path)], f"chown {rel}")


def _fix_up(root: Path) -> None:
    """Adjustments applied to every root, fresh or unpacked from the cache."""
    _chown_asterisk_dirs(root)
    # Debian installs the Italian prompts as sounds/it_IT_m_Carlo with no "it" alias (English gets
    # "en" through alternatives), so language=it would find nothing.
    sounds = root / "usr/share/asterisk/sounds"
    alias = sounds / "it"
    if (sounds / "it_IT_m_Carlo").is_dir() and not alias.exists() and not alias.is_symlink():
        alias.symlink_to("it_IT_m_Carlo")


def _cache_file(suffix: str) -> Path:
    return cache_dir() / f"asterisk-root-{SUITE}-{root_key()}.tar.{suffix}"


def _cached_tarball() -> Path | None:
    for suffix in ("zst", "gz"):
        path = _cache_file(suffix)
        if path.is_file():
            return path
    return None


def _compress_flag(path: Path) -> list[str]:
    return ["--zstd"] if path.name.endswith(".zst") else ["-z"]


def _store_tarball(root: Path) -> None:
    suffix = "zst" if shutil.which("zstd") else "gz"
    final = _cache_file(suffix)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(final.name + f".tmp{os.getpid()}")
    progress(f"caching the root as {final}")
    try:
        _run(
            ["tar", *_compress_flag(final), "-cpf", str(tmp), "--numeric-owner", "-C", str(root), "."], "cache the root"
        )
        tmp.replace(final)  # atomic: a cache file is always a whole tarball
    finally:
        tmp.unlink(missing_ok=True)


def _remove_tree(path: Path) -> None:
    if _processes_in(path):
        raise PbxError(f"processes still run inside {path}; stop the Asterisk instances first")
    _unmount_below(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _unmount_below(path: Path) -> None:
    prefix = str(path.resolve())
    mounts = []
    for line in Path("/proc/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def _processes_in(root: Path) -> list[int]:
    """Pids whose file-system root is ``root`` (an Asterisk started with chroot there)."""
    target = str(root.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == target:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PbxError(
            f"could not {what} (exit {result.returncode}): {(result.stderr or result.stdout).strip()[-2000:]}"
        )


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text.splitlines()[-lines:])

"""The PBX: the project's own Asterisk 22 (Debian sid root run with chroot) or an existing one.

Typical use (``unico asterisk install|start|stop|status|cli``)::

    settings = load_settings()
    install(settings)            # once: debootstrap (or the cached tarball) into .asterisk/root
    start(settings)              # write config, start the instance, wait for ARI
    print(status(settings))
    print(cli(settings, "pjsip show endpoints"))
    sync_prompts(settings, settings.tts_dir)
    stop(settings)

With ``settings.asterisk_managed`` false the Asterisk is someone else's: install/start/stop/cli
refuse with :class:`PbxError` and :func:`status` only pings ARI.
"""

from unico.pbx.config import instance_dir, write_config, write_generated
from unico.pbx.install import PbxError, install, is_installed
from unico.pbx.local import (
    PbxNotRunning,
    ari_get,
    cli,
    is_running,
    start,
    status,
    stop,
    sync_prompts,
)

__all__ = [
    "PbxError",
    "PbxNotRunning",
    "ari_get",
    "cli",
    "install",
    "instance_dir",
    "is_installed",
    "is_running",
    "start",
    "status",
    "stop",
    "sync_prompts",
    "write_config",
    "write_generated",
]

"""One typed settings object, built once at start-up.

Values come from the environment (``UNICO_*``) and from the git-ignored secrets file
``<state_dir>/secrets.env`` that ``unico asterisk install`` (or the first ``unico run``) generates.
A missing or invalid value stops start-up with a message naming the key; secrets print as ``****``.
Every network service binds to loopback unless told otherwise.

Example::

    settings = load_settings()
    print(settings.ari_url, settings.ari_password)   # http://127.0.0.1:8088 **********
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import secrets
import socket
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_KEYS = ("UNICO_ARI_PASSWORD", "UNICO_AMI_SECRET", "UNICO_ADMIN_TOKEN")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the key."""


def project_home() -> Path:
    """The folder holding ``dialplan/``, ``skills/``, ``asterisk-conf/`` (``UNICO_HOME`` or cwd)."""
    return Path(os.environ.get("UNICO_HOME") or Path.cwd()).resolve()


def state_dir_default() -> Path:
    return Path(os.environ.get("UNICO_STATE_DIR") or project_home() / ".unico").resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UNICO_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=project_home)
    state_dir: Path = Field(default_factory=state_dir_default)
    config_dir: Path | None = None

    # Asterisk REST Interface and the Stasis application name used in extensions.conf
    ari_url: str = "http://127.0.0.1:8088"
    ari_user: str = "unico"
    ari_password: SecretStr
    ari_app: str = "unico"
    ari_request_timeout: float = 5.0

    # Asterisk Manager Interface (side channel only)
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "unico"
    ami_secret: SecretStr

    # The local Asterisk the project installs and runs (``unico asterisk ...``).
    asterisk_managed: bool = True
    asterisk_root: Path | None = None
    asterisk_instance: str = "default"
    sip_bind: str = "127.0.0.1"
    sip_port: int = 5060
    #: where the carrier's SIP comes from (comma-separated addresses or CIDR networks): the trunk is
    #: recognised by it and refuses everything else (no password on a trunk, so this is its lock)
    carrier_networks: str = "127.0.0.1/32"
    #: where operators' and supervisors' softphones may register and call from, on top of their
    #: digest password (the agent LAN or VPN in production)
    operator_networks: str = "127.0.0.1/32"
    # Where Asterisk finds our rendered prompts, as a path *inside* its file system.
    asterisk_prompt_dir: str | None = None

    database_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: every ACD key starts with it: controllers sharing agents and queues share the prefix
    redis_prefix: str = "unico:"
    #: this process's name among the controllers sharing Redis (default: host name and ARI app)
    controller_id: str | None = None

    #: one controller commands the ARI app at a time (``unico.lease``): others stand by
    lease: bool = True
    #: seconds a dead holder's lease lasts; a standby takes over within about this long
    lease_ttl: float = Field(default=5.0, ge=3.0, le=60.0)

    web_host: str = "127.0.0.1"
    web_port: int = 8780
    admin_token: SecretStr

    timezone: str = "Europe/Rome"
    log_level: str = "INFO"
    #: stack frames kept per allocation by Python's tracemalloc, 0 = off (a memory diagnosis:
    #: SIGUSR2 then writes a snapshot and logs what grew, ``unico.memtrace``)
    tracemalloc: int = Field(default=0, ge=0, le=50)

    #: complaint deadlines over contacts.complaint_rules.DEFAULT_DEADLINES, as JSON:
    #: UNICO_COMPLAINT_DEADLINES='{"postal": "30 calendar", "mobile": "45 calendar"}'
    complaint_deadlines: dict[str, str] = Field(default_factory=dict)
    #: days kept per personal-data class over contacts.RetentionPolicy, as JSON:
    #: UNICO_RETENTION_DAYS='{"recordings": 30, "contact_details": 365}'
    retention_days: dict[str, int] = Field(default_factory=dict)
    #: where Asterisk stores recordings (purge and erasure delete files there); default: the
    #: managed instance's spool/recording
    recording_spool: Path | None = None
    #: hours between the controller's retention purges (0: only ``unico purge`` by hand)
    purge_every_hours: float = Field(default=6.0, ge=0)

    @field_validator("ari_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("asterisk_instance")
    @classmethod
    def _instance_name(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("only letters, digits, '-' and '_'")
        return value

    @field_validator("carrier_networks", "operator_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        networks = [part.strip() for part in value.split(",") if part.strip()]
        if not networks:
            raise ValueError("at least one address or network, e.g. 10.0.0.0/8")
        for network in networks:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return ",".join(networks)

    @field_validator("complaint_deadlines")
    @classmethod
    def _complaint_deadlines(cls, value: dict[str, str]) -> dict[str, str]:
        from contacts.complaint_rules import deadlines

        deadlines(value)  # ValueError names the bad category or deadline
        return value

    @field_validator("retention_days")
    @classmethod
    def _retention_days(cls, value: dict[str, int]) -> dict[str, int]:
        from contacts.privacy import RetentionPolicy

        RetentionPolicy.from_days(value)
        return value

    @property
    def ari_endpoints_app(self) -> str:
        """The second ARI application on the controller's websocket: it holds the subscriptions
        to the operators' endpoints, for their registration state. Asterisk queues each app's
        events on a queue of its own, and an endpoint subscription also brings every event of
        every channel on the endpoint: on the calls' app, each operator leg's events would be
        queued and sent twice (``Controller.sync_registrations``)."""
        return f"{self.ari_app}-endpoints"

    @property
    def node_id(self) -> str:
        return self.controller_id or f"{socket.gethostname()}-{self.ari_app}"

    @property
    def dialplan_dir(self) -> Path:
        return (self.config_dir or self.home) / "dialplan"

    @property
    def skills_dir(self) -> Path:
        return (self.config_dir or self.home) / "skills"

    @property
    def recordings_dir(self) -> Path:
        return self.home / "recordings"

    @property
    def tts_dir(self) -> Path:
        return self.recordings_dir / "tts"

    @property
    def local_asterisk_root(self) -> Path:
        return self.asterisk_root or self.home / ".asterisk" / "root"

    @property
    def instance_dir_in_root(self) -> str:
        """The instance's own folder as seen inside the chroot (etc, run, spool, log, sounds)."""
        return f"/unico/{self.asterisk_instance}"

    @property
    def prompt_dir_for_asterisk(self) -> str:
        return self.asterisk_prompt_dir or f"{self.instance_dir_in_root}/sounds"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.state_dir / 'unico.db'}"

    @property
    def recording_spool_dir(self) -> Path:
        instance = self.local_asterisk_root / self.instance_dir_in_root.lstrip("/")
        return self.recording_spool or instance / "spool" / "recording"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.env"


def ensure_secrets(state_dir: Path | None = None) -> Path:
    """Create the git-ignored secrets file with fresh random values if it is missing.

    Existing values are kept, so running this again never changes a password. Processes starting
    together (two controllers of one host) take turns on a lock file, and the file is written with
    mode 0600 from its first byte, then renamed into place.
    """
    directory = state_dir or state_dir_default()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "secrets.env"
    with (directory / ".secrets.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing = _read_env_file(path)
        missing = [key for key in SECRET_KEYS if key not in existing]
        if not missing and path.exists():
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
            return path
        lines = [f"{key}={value}" for key, value in existing.items()]
        lines += [f"{key}={secrets.token_urlsafe(24)}" for key in missing]
        tmp = directory / f".secrets.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        tmp.replace(path)
    return path


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def load_settings(*, create_secrets: bool = True) -> Settings:
    """Build the settings from the environment and the secrets file.

    Environment variables win over the secrets file, so an existing Asterisk's credentials can be
    given as ``UNICO_ARI_PASSWORD`` without touching the file.
    """
    state_dir = state_dir_default()
    if create_secrets:
        ensure_secrets(state_dir)
    file_values = {
        key.removeprefix("UNICO_").lower(): value
        for key, value in _read_env_file(state_dir / "secrets.env").items()
        if key.startswith("UNICO_") and key not in os.environ
    }
    try:
        return Settings(**file_values)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"UNICO_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None

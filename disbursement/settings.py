"""Configuration, typed, from the environment mapping that the composition root
(`disbursement.bootstrap`) reads once and hands to `load`.

Every setting has a documented default that makes the embedded mode work on one
machine (SQLite file, jobs in-process). Secrets never have defaults in code: the
embedded mode generates them once into `var/secrets.json` (mode 0600), and
production passes them in the environment.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_DIR = ROOT / "config"
DEFAULT_VAR_DIR = ROOT / "var"

BATCH_SIZE_TRANSFERS = 50_000
DISPATCH_CHUNK_TRANSFERS = 2_000
# Batches whose total is above this need a second, different approver.
SECOND_APPROVAL_ABOVE_CENTIMES = 5_000_000_00
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
# A signed partner message (confirmations, returns): far below the upload cap,
# and enforced before the body is read, so an unsigned giant body costs nothing.
MAX_PARTNER_MESSAGE_BYTES = 8 * 1024 * 1024
API_TOKEN_TTL_SECONDS = 8 * 3600
# partners (issue 3): retries with backoff, dead letters, circuit breaker.
DISPATCH_MAX_ATTEMPTS = 8            # failed attempts before an outbox item is dead
RETRY_BASE_SECONDS = 2.0             # first backoff step; doubles per attempt
RETRY_CAP_SECONDS = 300.0            # no backoff step longer than this
BREAKER_FAILURE_THRESHOLD = 5        # consecutive failures that open a partner's breaker
BREAKER_COOLDOWN_SECONDS = 60.0      # open -> half-open (one probe) after this
IN_DOUBT_AFTER_SECONDS = 60.0        # `sending`/`unknown` this long: ask the partner
# Console (issue 5): an officer is locked out for a while after this many failed logins.
LOGIN_MAX_FAILURES = 5
LOGIN_LOCK_SECONDS = 15 * 60
# The scheduler (issue 10): what runs by itself, how often. 0 turns a periodic job off.
SWEEP_OUTBOX_EVERY_SECONDS = 30      # rebuild lost dispatch jobs from the outbox
QUERY_IN_DOUBT_EVERY_SECONDS = 60    # ask partners about `sending` / `unknown` transfers
COLLECT_FILES_EVERY_SECONDS = 300    # fetch the file partners' status files
EXPIRY_DAILY_AT = "02:00"            # HH:MM, the scheduler machine's local time
# Only one scheduler is active: it holds a lease in Redis that it refreshes every
# third of this; a killed scheduler's lease lapses after this many seconds.
SCHEDULER_LEASE_SECONDS = 15
# An RQ worker heartbeats every (this - 15) seconds; a worker silent for this plus
# 60 seconds is gone from Redis (and from /readyz). RQ's default is 420.
WORKER_TTL_SECONDS = 60


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    config_dir: Path
    var_dir: Path
    batch_size: int = BATCH_SIZE_TRANSFERS
    chunk_size: int = DISPATCH_CHUNK_TRANSFERS
    second_approval_above_centimes: int = SECOND_APPROVAL_ABOVE_CENTIMES
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_partner_message_bytes: int = MAX_PARTNER_MESSAGE_BYTES
    token_ttl_seconds: int = API_TOKEN_TTL_SECONDS
    connector_timeout_seconds: float = 10.0
    data_key: bytes = field(default=b"", repr=False)
    # partner code -> active HMAC keys (two during a rotation)
    partner_keys: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict, repr=False)
    # partner code -> base URL override (simulator ports, production endpoints)
    partner_urls: Mapping[str, str] = field(default_factory=dict)
    # partners (issue 3)
    dispatch_max_attempts: int = DISPATCH_MAX_ATTEMPTS
    retry_base_seconds: float = RETRY_BASE_SECONDS
    retry_cap_seconds: float = RETRY_CAP_SECONDS
    breaker_failure_threshold: int = BREAKER_FAILURE_THRESHOLD
    breaker_cooldown_seconds: float = BREAKER_COOLDOWN_SECONDS
    # A transfer `sending` or `unknown` for longer than this is in doubt: the
    # partner is asked what it knows (well above the connector's timeout, so a
    # call still under way is never asked about).
    in_doubt_after_seconds: float = IN_DOUBT_AFTER_SECONDS
    # --- console (issue 5) ---
    # Signs the officers' session cookie. Empty: the console answers 503 (the API
    # and workers do not need it, so they start without it).
    session_secret: bytes = field(default=b"", repr=False)
    # Secure cookies: browsers accept them on https and on loopback http.
    cookie_secure: bool = True
    login_max_failures: int = LOGIN_MAX_FAILURES
    login_lock_seconds: int = LOGIN_LOCK_SECONDS
    # file exchange (issue 3): partner code -> SFTP secrets and pinned host key
    partner_sftp: Mapping[str, SftpSecrets] = field(default_factory=dict, repr=False)
    # Routing and notification (issue 3): the key withdrawal codes are derived
    # under (HMAC of the transfer reference), and the SMS gateway; no gateway
    # URL means no SMS is sent.
    code_key: bytes = field(default=b"", repr=False)
    sms_gateway_url: str | None = None
    sms_gateway_key: bytes = field(default=b"", repr=False)
    # Observability (issue 5): where gunicorn and RQ worker processes write their
    # metrics (prometheus-client multiprocess mode); None in the embedded mode.
    metrics_dir: Path | None = None
    # The scheduler (issue 10)
    sweep_outbox_every_seconds: int = SWEEP_OUTBOX_EVERY_SECONDS
    query_in_doubt_every_seconds: int = QUERY_IN_DOUBT_EVERY_SECONDS
    collect_files_every_seconds: int = COLLECT_FILES_EVERY_SECONDS
    expiry_daily_at: str = EXPIRY_DAILY_AT
    scheduler_lease_seconds: int = SCHEDULER_LEASE_SECONDS
    worker_ttl_seconds: int = WORKER_TTL_SECONDS

    @property
    def embedded_jobs(self) -> bool:
        return not self.redis_url

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)


@dataclass(frozen=True)
class SftpSecrets:
    """File exchange (issue 3): how we log in to a partner's SFTP server and which
    host key we expect (`<type> <base64>`, as in known_hosts), from
    PARTNER_<CODE>_SFTP_PASSWORD or PARTNER_<CODE>_SFTP_KEY_FILE, and
    PARTNER_<CODE>_SFTP_HOST_KEY."""
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    host_key: str | None = None


SFTP_ENV_SUFFIXES = {"_SFTP_PASSWORD": "password", "_SFTP_KEY_FILE": "key_file",
                     "_SFTP_HOST_KEY": "host_key"}


def _sftp_secrets(env: Mapping[str, str]) -> dict[str, SftpSecrets]:
    found: dict[str, dict[str, str]] = {}
    for name, value in env.items():
        for suffix, attribute in SFTP_ENV_SUFFIXES.items():
            if name.startswith("PARTNER_") and name.endswith(suffix) and value:
                found.setdefault(name[len("PARTNER_"):-len(suffix)], {})[attribute] = value
    return {code: SftpSecrets(**values) for code, values in found.items()}


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return default if raw in (None, "") else int(raw)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    return default if raw in (None, "") else float(raw)


def _daily_time(raw: str) -> str:
    """EXPIRY_DAILY_AT as HH:MM; raises ValueError naming the setting otherwise."""
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(f"EXPIRY_DAILY_AT must be HH:MM, got {raw!r}")
    return f"{int(hours):02d}:{int(minutes):02d}"


GENERATED_SECRETS = ("DISBURSE_DATA_KEY", "DISBURSE_CODE_KEY", "DISBURSE_SESSION_SECRET")


def _local_secrets(var_dir: Path) -> dict[str, str]:
    """Secrets for the embedded mode, generated on first use, kept on disk. A
    file written before a secret existed gains it on the next start."""
    path = var_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in GENERATED_SECRETS if name not in stored]
    if not missing:
        return stored
    var_dir.mkdir(parents=True, exist_ok=True)
    stored.update({name: base64.b64encode(secrets.token_bytes(32)).decode() for name in missing})
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(stored, fh)
    os.replace(temporary, path)
    return stored


def _code_key(env: Mapping[str, str], data_key: bytes) -> bytes:
    """DISBURSE_CODE_KEY when set (production: its own secret, rotated on its
    own); otherwise a key derived from the data key (HKDF), so a deployment
    that predates withdrawal codes keeps working without a default secret."""
    raw = env.get("DISBURSE_CODE_KEY")
    if raw:
        return base64.b64decode(raw)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"disburse withdrawal codes").derive(data_key)


def partner_key_env(code: str) -> str:
    return f"PARTNER_{code.upper()}_HMAC_KEYS"


def load(env: Mapping[str, str]) -> Settings:
    """Typed settings from `env` (the composition root passes the process
    environment; tests pass their own mapping)."""
    env = dict(env)
    var_dir = Path(env.get("DISBURSE_VAR_DIR") or DEFAULT_VAR_DIR)
    config_dir = Path(env.get("DISBURSE_CONFIG_DIR") or DEFAULT_CONFIG_DIR)
    database_url = env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'disburse.db'}"
    if database_url.startswith("sqlite") and any(n not in env for n in GENERATED_SECRETS):
        env = {**_local_secrets(var_dir), **env}
    raw_key = env.get("DISBURSE_DATA_KEY", "")
    if not raw_key:
        raise RuntimeError("DISBURSE_DATA_KEY is not set (base64 of 32 random bytes)")
    partner_keys = {
        name[len("PARTNER_"):-len("_HMAC_KEYS")]: tuple(k.encode() for k in value.split(",") if k)
        for name, value in env.items()
        if name.startswith("PARTNER_") and name.endswith("_HMAC_KEYS")
    }
    partner_urls = {
        name[len("PARTNER_"):-len("_URL")]: value
        for name, value in env.items() if name.startswith("PARTNER_") and name.endswith("_URL")
    }
    return Settings(
        database_url=database_url,
        redis_url=env.get("REDIS_URL") or None,
        config_dir=config_dir,
        var_dir=var_dir,
        batch_size=_int(env, "BATCH_SIZE_TRANSFERS", BATCH_SIZE_TRANSFERS),
        chunk_size=_int(env, "DISPATCH_CHUNK_TRANSFERS", DISPATCH_CHUNK_TRANSFERS),
        second_approval_above_centimes=_int(
            env, "SECOND_APPROVAL_ABOVE_CENTIMES", SECOND_APPROVAL_ABOVE_CENTIMES),
        max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", MAX_UPLOAD_BYTES),
        max_partner_message_bytes=_int(env, "MAX_PARTNER_MESSAGE_BYTES",
                                       MAX_PARTNER_MESSAGE_BYTES),
        token_ttl_seconds=_int(env, "API_TOKEN_TTL_SECONDS", API_TOKEN_TTL_SECONDS),
        data_key=base64.b64decode(raw_key),
        partner_keys=partner_keys,
        partner_urls=partner_urls,
        # partners (issue 3)
        dispatch_max_attempts=_int(env, "DISPATCH_MAX_ATTEMPTS", DISPATCH_MAX_ATTEMPTS),
        retry_base_seconds=_float(env, "RETRY_BASE_SECONDS", RETRY_BASE_SECONDS),
        retry_cap_seconds=_float(env, "RETRY_CAP_SECONDS", RETRY_CAP_SECONDS),
        breaker_failure_threshold=_int(env, "BREAKER_FAILURE_THRESHOLD",
                                       BREAKER_FAILURE_THRESHOLD),
        breaker_cooldown_seconds=_float(env, "BREAKER_COOLDOWN_SECONDS",
                                        BREAKER_COOLDOWN_SECONDS),
        in_doubt_after_seconds=_float(env, "IN_DOUBT_AFTER_SECONDS", IN_DOUBT_AFTER_SECONDS),
        session_secret=base64.b64decode(env.get("DISBURSE_SESSION_SECRET", "")),
        cookie_secure=env.get("DISBURSE_COOKIE_SECURE", "1") not in ("0", "false", "no"),
        login_max_failures=_int(env, "LOGIN_MAX_FAILURES", LOGIN_MAX_FAILURES),
        login_lock_seconds=_int(env, "LOGIN_LOCK_SECONDS", LOGIN_LOCK_SECONDS),
        partner_sftp=_sftp_secrets(env),
        code_key=_code_key(env, base64.b64decode(raw_key)),
        sms_gateway_url=env.get("SMS_GATEWAY_URL") or None,
        sms_gateway_key=env.get("SMS_GATEWAY_KEY", "").encode(),
        metrics_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"]) if env.get("PROMETHEUS_MULTIPROC_DIR")
        else None,
        sweep_outbox_every_seconds=_int(env, "SWEEP_OUTBOX_EVERY_SECONDS",
                                        SWEEP_OUTBOX_EVERY_SECONDS),
        query_in_doubt_every_seconds=_int(env, "QUERY_IN_DOUBT_EVERY_SECONDS",
                                          QUERY_IN_DOUBT_EVERY_SECONDS),
        collect_files_every_seconds=_int(env, "COLLECT_FILES_EVERY_SECONDS",
                                         COLLECT_FILES_EVERY_SECONDS),
        expiry_daily_at=_daily_time(env.get("EXPIRY_DAILY_AT") or EXPIRY_DAILY_AT),
        scheduler_lease_seconds=_int(env, "SCHEDULER_LEASE_SECONDS", SCHEDULER_LEASE_SECONDS),
        worker_ttl_seconds=_int(env, "WORKER_TTL_SECONDS", WORKER_TTL_SECONDS),
    )


def default_metrics_dir(env: Mapping[str, str]) -> Path:
    """Where gunicorn puts the metrics files when PROMETHEUS_MULTIPROC_DIR is unset
    (observability)."""
    return Path(env.get("DISBURSE_VAR_DIR") or DEFAULT_VAR_DIR) / "prometheus"

"""Uploader settings: flags, then ``RVCLOUD_*`` variables, then a TOML file, then defaults.

Every command that talks to the gateway resolves its settings here, so the precedence
and the names are the same everywhere, and ``rvcloud config show`` can print the
effective value of each setting and where it came from (secrets masked).

The file is TOML with flat keys named like the settings below (``endpoint``,
``project``, ``workers``, ``token``, ``id_token_audience``, ``ca``, ``state_dir``,
``settle``, ``timeout``, ``retry_attempts``, ...). It is ``--config FILE``, else ``$RVCLOUD_CONFIG``, else the
first that exists of ``$XDG_CONFIG_HOME/rvcloud/config.toml`` (``~/.config/...``) and
``/etc/rvcloud/config.toml``. Unknown keys are an error, so a typo does not silently
fall back to a default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from rvcloud.cli import retry
from rvcloud.cli.client import EXIT_OK, EXIT_USAGE, Endpoint, UsageError, parse_endpoint
from rvcloud.metadata.archive_path import validate_project

DEFAULT_PROJECT: Final = "routeviews"
DEFAULT_TIMEOUT: Final = 3600.0
DEFAULT_WORKERS: Final = 4
DEFAULT_SETTLE: Final = 30.0
DEFAULT_POLL: Final = 10.0
SYSTEM_CONFIG: Final = "/etc/rvcloud/config.toml"


def _positive_float(text: object) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None
    if value <= 0:
        raise ValueError(f"must be positive: {text!r}")
    return value


def _non_negative_float(text: object) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None
    if value < 0:
        raise ValueError(f"must not be negative: {text!r}")
    return value


def _positive_int(text: object) -> int:
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ValueError(f"not a whole number: {text!r}")
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise ValueError(f"must be positive: {text!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def _project(value: object) -> str:
    return validate_project(_text(value))


def _endpoint(value: object) -> str:
    parse_endpoint(_text(value))  # raises UsageError with a precise message
    return _text(value)


def _path(value: object) -> str:
    return os.path.expanduser(_text(value))


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its name (file key), the flag that sets it, its parser and default."""

    name: str
    flag: str
    parse: Callable[[object], Any]
    default: Any
    help: str
    secret: bool = False

    @property
    def env(self) -> str:
        return f"RVCLOUD_{self.name.upper()}"


def default_state_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "rvcloud")


OPTIONS: Final[tuple[Option, ...]] = (
    Option("endpoint", "-d/--destination", _endpoint, None, "gateway address"),
    Option("project", "--project", _project, DEFAULT_PROJECT, "archive project"),
    Option("workers", "--workers", _positive_int, DEFAULT_WORKERS, "files hashed / uploaded at once"),
    Option("token", "(none: env or file only)", _text, None, "bearer token sent to the gateway", secret=True),
    Option(
        "id_token_audience",
        "(none: env or file only)",
        _text,
        None,
        "send a Google ID token for this audience (the gateway's URL) instead of token; from "
        "GOOGLE_APPLICATION_CREDENTIALS or the metadata server (needs rvcloud[gcp])",
    ),
    Option("ca", "--ca", _path, None, "PEM file of CA certificates for https:// endpoints"),
    Option("state_dir", "--state", _path, None, "hash cache and watch journal (default ~/.cache/rvcloud)"),
    Option(
        "settle", "--settle", _non_negative_float, DEFAULT_SETTLE, "watch: seconds a file must stay unchanged"
    ),
    Option("poll", "--poll-interval", _positive_float, DEFAULT_POLL, "watch: seconds between polling scans"),
    Option(
        "timeout",
        "--timeout",
        _positive_float,
        DEFAULT_TIMEOUT,
        "seconds to wait for one file's upload / DONE",
    ),
    Option("retry_attempts", "--retry-attempts", _positive_int, retry.DEFAULT_ATTEMPTS, "tries per call"),
    Option(
        "retry_initial", "--retry-initial", _positive_float, retry.DEFAULT_INITIAL, "first backoff cap (s)"
    ),
    Option(
        "retry_max_delay", "--retry-max-delay", _positive_float, retry.DEFAULT_MAX_DELAY, "backoff cap (s)"
    ),
    Option("retry_max_time", "--retry-max-time", _positive_float, retry.DEFAULT_MAX_TIME, "retry budget (s)"),
)
_BY_NAME: Final = {o.name: o for o in OPTIONS}


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings and, per setting, where its value came from."""

    values: Mapping[str, Any]
    sources: Mapping[str, str]
    config_file: str | None

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def project(self) -> str:
        return str(self.values["project"])

    @property
    def workers(self) -> int:
        return int(self.values["workers"])

    @property
    def timeout(self) -> float:
        return float(self.values["timeout"])

    @property
    def token(self) -> str | Callable[[], str] | None:
        """What to send as the bearer token: the static ``token``, or -- when
        ``id_token_audience`` is set -- a callable that returns a fresh Google ID token."""
        audience = self.values.get("id_token_audience")
        if audience:
            from rvcloud.cli.credentials import id_token_source

            return id_token_source(str(audience))
        value = self.values["token"]
        return str(value) if value else None

    @property
    def ca(self) -> str | None:
        value = self.values["ca"]
        return str(value) if value else None

    @property
    def state_dir(self) -> str:
        value = self.values["state_dir"]
        return str(value) if value else default_state_dir()

    @property
    def retry_policy(self) -> retry.RetryPolicy:
        return retry.RetryPolicy(
            attempts=int(self.values["retry_attempts"]),
            initial=float(self.values["retry_initial"]),
            max_delay=float(self.values["retry_max_delay"]),
            max_time=float(self.values["retry_max_time"]),
        )

    def endpoint(self) -> Endpoint:
        """The gateway address; a usage error when no flag, variable or file gives one."""
        value = self.values["endpoint"]
        if not value:
            raise UsageError(
                "no gateway address: pass -d/--destination ADDR, set RVCLOUD_ENDPOINT, "
                'or put endpoint = "HOST:PORT" in the config file'
            )
        return parse_endpoint(str(value))


def config_path(explicit: str | None, env: Mapping[str, str]) -> tuple[str | None, bool]:
    """(the config file to read, whether it must exist)."""
    if explicit:
        return os.path.expanduser(explicit), True
    if env.get("RVCLOUD_CONFIG"):
        return os.path.expanduser(env["RVCLOUD_CONFIG"]), True
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    for candidate in (os.path.join(base, "rvcloud", "config.toml"), SYSTEM_CONFIG):
        if os.path.isfile(candidate):
            return candidate, False
    return None, False


def load_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise UsageError(f"cannot read the config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"config file {path}: {e}") from None
    unknown = sorted(set(doc) - set(_BY_NAME))
    if unknown:
        raise UsageError(f"config file {path}: unknown keys {unknown}; known: {sorted(_BY_NAME)}")
    return doc


def resolve(args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``args`` (flags left at None count as absent), ``env``, the file, defaults.

    Raises UsageError for a value that does not parse, naming where it came from.
    """
    env = os.environ if env is None else env
    explicit = getattr(args, "config", None) if args is not None else None
    path, required = config_path(explicit, env)
    file_values: dict[str, Any] = {}
    if path is not None and (required or os.path.exists(path)):
        file_values = load_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        flag_value = getattr(args, opt.name, None) if args is not None else None
        candidates = [
            (flag_value, f"flag {opt.flag}"),
            (env.get(opt.env) or None, f"env {opt.env}"),
            (file_values.get(opt.name), f"file {path}"),
        ]
        for raw, source in candidates:
            if raw is None:
                continue
            try:
                values[opt.name] = opt.parse(raw)
            except (ValueError, UsageError) as e:
                raise UsageError(f"{opt.name} from {source}: {e}") from None
            sources[opt.name] = source
            break
        else:
            values[opt.name] = opt.default
            sources[opt.name] = "default"
    if values.get("token") and values.get("id_token_audience"):
        raise UsageError(
            f"token ({sources['token']}) and id_token_audience ({sources['id_token_audience']}) "
            "both set: use one way to authenticate"
        )
    if values.get("id_token_audience"):
        from rvcloud.cli.credentials import check_installed

        check_installed()
    return Settings(values, sources, path if file_values or required else None)


def mask(value: str) -> str:
    """A secret as its length and last two characters, enough to tell two tokens apart."""
    return "*" * max(len(value) - 2, 3) + value[-2:] if len(value) > 6 else "***"


def show(settings: Settings) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for opt in OPTIONS:
        value = settings.values[opt.name]
        if opt.secret and value:
            value = mask(str(value))
        if opt.name == "state_dir" and not value:
            value = default_state_dir()
        out[opt.name] = {"value": value, "source": settings.sources[opt.name]}
    return out


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (default $RVCLOUD_CONFIG, ~/.config/rvcloud/config.toml, "
        f"{SYSTEM_CONFIG}); flags beat RVCLOUD_* variables beat the file",
    )


CONFIG_EXAMPLES: Final = """\
examples:
  rvcloud config show
  RVCLOUD_ENDPOINT=https://ingest.example.org rvcloud config show --json
  rvcloud config show --config /etc/rvcloud/config.toml

A config file (TOML, flat keys):
  endpoint = "https://ingest.example.org"
  project = "routeviews"
  workers = 8
  token = "..."            # or RVCLOUD_TOKEN; printed masked
  # or, for a gateway with --auth google (e.g. on Cloud Run), instead of token:
  # id_token_audience = "https://ingest-abc123-uc.a.run.app"
  ca = "/etc/rvcloud/ca.pem"
  state_dir = "/var/lib/rvcloud"
  settle = 60
  retry_max_time = 900

Each setting NAME is also the variable RVCLOUD_NAME (upper case), e.g. RVCLOUD_WORKERS.
"""


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",), help="show: print the effective settings")
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object: name → {value, source}")


def run_config(args: argparse.Namespace) -> int:
    try:
        settings = resolve(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    shown = show(settings)
    if args.json:
        print(json.dumps({"config_file": settings.config_file, "settings": shown}, indent=1))
        return EXIT_OK
    print(f"# config file: {settings.config_file or '(none)'}")
    width = max(len(name) for name in shown)
    for name, item in shown.items():
        value = "(unset)" if item["value"] is None else json.dumps(item["value"])
        print(f"{name:<{width}} = {value:<40} # {item['source']}")
    return EXIT_OK

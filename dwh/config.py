"""Read and validate dwh.cfg.

Every value that ends up inside SQL is checked against a strict pattern here, so a
config file can't inject SQL; sql_literal() quotes it once more for good measure.
A problem is reported as one line naming the section and key (ConfigError, exit 2).
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dwh.local.server import ServerSettings

EXIT_CONFIG_ERROR = 2
PASSWORD_ENV = "SPARKIFY_DB_PASSWORD"
TARGETS = ("local", "redshift")
JSON_AUTO = ("auto", "auto ignorecase")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^'\\\x00-\x1f\x7f]*)?")
_UNSAFE_PATH = re.compile(r"['\\\x00-\x1f\x7f]")
_IAM_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/\-]{1,512}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,252}[A-Za-z0-9])?")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_ENDPOINT_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?")


class ConfigError(Exception):
    """A missing or malformed configuration value; the message names file, section and key."""


@dataclass(frozen=True)
class Sources:
    """Where COPY reads from: s3:// prefixes, or local folders on the local warehouse."""

    log_data: str
    log_jsonpath: str
    song_data: str
    region: str | None = None
    iam_role: str | None = None
    s3_endpoint_url: str | None = None
    max_error: int = 0
    accept_inv_chars: str | None = None


@dataclass(frozen=True)
class Connection:
    """psycopg2 connection parameters for Redshift."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    sslmode: str = "require"
    connect_timeout: int = 10


@dataclass(frozen=True)
class Settings:
    path: Path
    target: str
    sources: Sources
    redshift: Connection | None = None
    local: ServerSettings | None = None


def sql_literal(value: str) -> str:
    """Quote a validated value as a SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class _Reader:
    """configparser access that turns every problem into a ConfigError naming the key."""

    def __init__(self, path: Path):
        self.path = path
        self.parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
        try:
            with open(path, encoding="utf-8") as handle:
                self.parser.read_file(handle)
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: not found; copy dwh.cfg.example to {path.name} and edit it"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
        except configparser.Error as exc:
            first_line = str(exc).splitlines()[0]
            raise ConfigError(f"{path}: not a valid config file: {first_line}") from None

    def fail(self, section: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path.name}: [{section}] {key} {problem}")

    def get(self, section: str, key: str, default: str | None = None) -> str:
        if not self.parser.has_section(section):
            if default is not None:
                return default
            raise ConfigError(f"{self.path.name}: section [{section}] is missing (needed for {key})")
        value = self.parser.get(section, key, fallback=None)
        if value is None:
            if default is not None:
                return default
            raise self.fail(section, key, "is missing")
        return value.strip().strip('"').strip("'").strip()

    def required(self, section: str, key: str) -> str:
        value = self.get(section, key)
        if not value:
            raise self.fail(section, key, "is empty")
        return value

    def matching(self, section: str, key: str, pattern: re.Pattern, what: str, value=None) -> str:
        value = self.required(section, key) if value is None else value
        if not pattern.fullmatch(value):
            raise self.fail(section, key, f"must look like {what}, got {value!r}")
        return value

    def number(self, section: str, key: str, default: str, low: int, high: int) -> int:
        value = self.get(section, key, default=default) or default
        if not value.isdigit() or not low <= int(value) <= high:
            raise self.fail(section, key, f"must be a whole number from {low} to {high}, got {value!r}")
        return int(value)

    def port(self, section: str, key: str) -> int:
        value = self.required(section, key)
        if not value.isdigit() or not 1 <= int(value) <= 65535:
            raise self.fail(section, key, f"must be a port number from 1 to 65535, got {value!r}")
        return int(value)


def load_settings(path: str | os.PathLike = "dwh.cfg") -> Settings:
    """Read dwh.cfg and return validated settings for the configured target."""
    path = Path(path)
    cfg = _Reader(path)
    target = cfg.required("WAREHOUSE", "TARGET").lower()
    if target not in TARGETS:
        raise cfg.fail("WAREHOUSE", "TARGET", f"must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "redshift":
        return _redshift_settings(cfg, path)
    return _local_settings(cfg, path)


def _redshift_settings(cfg: _Reader, path: Path) -> Settings:
    password = cfg.get("CLUSTER", "DB_PASSWORD", default="") or os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise cfg.fail("CLUSTER", "DB_PASSWORD", f"is empty (set it, or export {PASSWORD_ENV})")
    connection = Connection(
        host=cfg.matching("CLUSTER", "HOST", _HOSTNAME, "a cluster endpoint host name"),
        port=cfg.port("CLUSTER", "DB_PORT"),
        dbname=cfg.matching("CLUSTER", "DB_NAME", _IDENTIFIER, "a lower-case database name"),
        user=cfg.matching("CLUSTER", "DB_USER", _IDENTIFIER, "a lower-case user name"),
        password=password,
        sslmode=_ssl_mode(cfg),
        connect_timeout=cfg.number("CLUSTER", "CONNECT_TIMEOUT", "10", 1, 300),
    )
    s3_uri = "s3://bucket/prefix"
    jsonpath = cfg.required("S3", "LOG_JSONPATH")
    if jsonpath.lower() not in JSON_AUTO:
        cfg.matching("S3", "LOG_JSONPATH", _S3_URI, f"{s3_uri} or 'auto'", jsonpath)
    sources = Sources(
        log_data=cfg.matching("S3", "LOG_DATA", _S3_URI, s3_uri),
        log_jsonpath=jsonpath,
        song_data=cfg.matching("S3", "SONG_DATA", _S3_URI, s3_uri),
        region=cfg.matching("S3", "REGION", _REGION, "an AWS region such as us-west-2"),
        iam_role=cfg.matching(
            "IAM_ROLE", "ARN", _IAM_ROLE_ARN, "arn:aws:iam::<12-digit account>:role/<name>"
        ),
        **_load_options(cfg),
    )
    return Settings(path=path, target="redshift", sources=sources, redshift=connection)


def _local_source(cfg: _Reader, key: str, base: Path) -> str:
    """A local warehouse source: an s3:// prefix, or a path resolved against dwh.cfg's folder."""
    value = cfg.required("LOCAL", key)
    if value.startswith("s3://"):
        return cfg.matching("LOCAL", key, _S3_URI, "s3://bucket/prefix", value)
    if key == "LOG_JSONPATH" and value.lower() in JSON_AUTO:
        return value
    if _UNSAFE_PATH.search(value):
        raise cfg.fail("LOCAL", key, f"must be a folder path or s3:// prefix without quotes, backslashes or control characters, got {value!r}")
    return str((base / value).resolve()) if not os.path.isabs(value) else value


def _local_settings(cfg: _Reader, path: Path) -> Settings:
    base = path.resolve().parent
    host = cfg.required("LOCAL", "HOST")
    if host not in LOOPBACK_HOSTS:
        raise cfg.fail("LOCAL", "HOST", f"must be a loopback address ({', '.join(LOOPBACK_HOSTS)}): the local warehouse is never exposed to the network, got {host!r}")
    data_dir = cfg.required("LOCAL", "DATA_DIR")
    server = ServerSettings(
        data_dir=(base / data_dir).resolve(),
        host=host,
        port=cfg.port("LOCAL", "PORT"),
        user=cfg.matching("LOCAL", "DB_USER", _IDENTIFIER, "a lower-case user name"),
        dbname=cfg.matching("LOCAL", "DB_NAME", _IDENTIFIER, "a lower-case database name"),
    )
    region = cfg.get("S3", "REGION", default="")
    endpoint = cfg.get("LOCAL", "S3_ENDPOINT_URL", default="")
    sources = Sources(
        log_data=_local_source(cfg, "LOG_DATA", base),
        log_jsonpath=_local_source(cfg, "LOG_JSONPATH", base),
        song_data=_local_source(cfg, "SONG_DATA", base),
        region=cfg.matching("S3", "REGION", _REGION, "an AWS region such as us-west-2", region) if region else None,
        s3_endpoint_url=cfg.matching("LOCAL", "S3_ENDPOINT_URL", _ENDPOINT_URL, "http(s)://host:port", endpoint) if endpoint else None,
        **_load_options(cfg),
    )
    return Settings(path=path, target="local", sources=sources, local=server)


def _ssl_mode(cfg: _Reader) -> str:
    mode = cfg.get("CLUSTER", "SSLMODE", default="require") or "require"
    if mode not in SSL_MODES:
        raise cfg.fail("CLUSTER", "SSLMODE", f"must be one of {', '.join(SSL_MODES)}, got {mode!r}")
    return mode


def _load_options(cfg: _Reader) -> dict:
    """[LOAD]: COPY options shared by both warehouses (optional section; defaults are strict)."""
    accept = cfg.get("LOAD", "ACCEPTINVCHARS", default="")
    if accept and (len(accept) != 1 or not accept.isascii() or accept in "'\\" or not accept.isprintable()):
        raise cfg.fail("LOAD", "ACCEPTINVCHARS", f"must be empty or one printable ASCII character, got {accept!r}")
    return {
        "max_error": cfg.number("LOAD", "MAXERROR", "0", 0, 100000),
        "accept_inv_chars": accept or None,
    }

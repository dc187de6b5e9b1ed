"""Read and validate dwh.cfg.

Every value that ends up inside SQL is checked against a strict pattern here, so a
config file can't inject SQL; sql_literal() quotes it once more for good measure.
A problem is reported as one line naming the section and key (ConfigError, exit 2).
"""

from __future__ import annotations

import configparser
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("dwh")

PASSWORD_ENV = "SPARKIFY_DB_PASSWORD"
S3_READ_TIMEOUT = 20  # [LOCAL] S3_READ_TIMEOUT when empty: seconds S3 may stay silent on one request
PROGRESS_SECONDS = 5.0  # [LOCAL] PROGRESS_SECONDS when empty: seconds between progress lines in a log
COPY_CONVERTERS = ("auto", "native", "exact")  # [LOCAL] COPY_CONVERTER
TARGETS = ("local", "redshift")
JSON_AUTO = ("auto", "auto ignorecase")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_S3_URI = re.compile(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^'\\\x00-\x1f\x7f]*)?")
_UNSAFE_PATH = re.compile(r"['\\\x00-\x1f\x7f]")
_IAM_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/\-]{1,512}")
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,252}[A-Za-z0-9])?")
IDENTIFIER_PATTERN = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_ENDPOINT_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~/\-]*)?")
AUTH_METHODS = ("password", "iam")
IAM_LOGINS = ("identity", "db_user")
_REGION = f"(?P<region>{REGION_PATTERN.pattern})"
#: Endpoint host names as AWS issues them: cluster-id.random.region.redshift.amazonaws.com and
#: workgroup.account-id.region.redshift-serverless.amazonaws.com (.com.cn in China).
_CLUSTER_HOST = re.compile(
    r"(?P<name>[a-z][a-z0-9-]{0,62})\.[a-z0-9]+\." + _REGION + r"\.redshift\.amazonaws\.com(\.cn)?"
)
_WORKGROUP_HOST = re.compile(
    r"(?P<name>[a-z0-9-]{3,64})\.\d{12}\." + _REGION + r"\.redshift-serverless\.amazonaws\.com(\.cn)?"
)
CLUSTER_IDENTIFIER_PATTERN = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")
WORKGROUP_PATTERN = re.compile(r"[a-z0-9-]{3,64}")
_PROFILE = re.compile(r"[A-Za-z0-9_.@+=,\-]{1,128}")


class ConfigError(Exception):
    """A missing or malformed configuration value; the message names file, section and key."""


@dataclass(frozen=True)
class Sources:
    """Where COPY reads from: s3:// prefixes, or local folders on the local warehouse."""

    log_data: str
    log_jsonpath: str
    song_data: str
    region: str | None = None
    #: The songs COPY's region when its files (or manifest) are elsewhere than the events'.
    song_region: str | None = None
    iam_role: str | None = None
    s3_endpoint_url: str | None = None
    max_error: int = 0
    accept_inv_chars: str | None = None
    song_manifest: str | None = None
    s3_anonymous: bool = False
    s3_read_timeout: int = S3_READ_TIMEOUT


@dataclass(frozen=True)
class IamLogin:
    """Where to ask AWS for temporary database credentials ([CLUSTER] AUTH = iam).

    ``serverless`` picks Redshift Serverless's GetCredentials for workgroup ``name``; otherwise
    ``name`` is a cluster identifier, and ``db_user`` (IAM_LOGIN = db_user) picks
    GetClusterCredentials for that user over GetClusterCredentialsWithIAM.
    """

    serverless: bool
    name: str
    region: str
    db_user: str | None = None
    auto_create: bool = False
    profile: str | None = None

    @property
    def what(self) -> str:
        return f"{'workgroup' if self.serverless else 'cluster'} {self.name} in {self.region}"


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
    #: Set when [CLUSTER] AUTH = iam: user and password then come from AWS at each connection.
    iam: IamLogin | None = None

    @property
    def description(self) -> str:
        """The warehouse as messages name it (never the password)."""
        return f"Redshift at {self.host}:{self.port}/{self.dbname}"


@dataclass(frozen=True)
class ServerSettings:
    """Where the embedded local warehouse server lives and how clients reach it ([LOCAL])."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 54329
    user: str = "sparkify"
    dbname: str = "sparkify"
    #: How the COPY emulation runs: worker processes (None: one per core for loads over 8 MB),
    #: the conversion path (dwh.local.native.fast_path) and the seconds between progress lines in a log.
    copy_workers: int | None = None
    copy_converter: str = "auto"
    progress_seconds: float = PROGRESS_SECONDS
    #: As root on Linux: how the server runs as `nobody` (auto, sandbox, nobody) and where the plain
    #: `nobody` method copies the binaries (dwh.local.server.linux_root). Not dwh.cfg keys.
    root_method: str = "auto"
    install_cache: Path | None = None

    @property
    def description(self) -> str:
        """The warehouse as messages name it."""
        return f"local PostgreSQL at {self.host}:{self.port}/{self.dbname}"


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


def _parse_problem(exc: configparser.Error) -> str:
    """configparser's complaint in a few words (its own message runs over several lines)."""
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"[{exc.section}] {exc.option.upper()} is set twice (line {exc.lineno})"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"section [{exc.section}] appears twice (line {exc.lineno})"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno} comes before any [SECTION] header"
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        return f"cannot parse line {lines} (expected KEY = value)"
    return str(exc).splitlines()[0]


class ConfigReader:
    """dwh.cfg through configparser; every problem is a ConfigError naming the file, section and key.

    Shared by load_settings() (create_tables.py, etl.py) and iac_setup.py, so they all read a value
    alike: inline ';'/'#' comments dropped, surrounding quotes stripped, and no interpolation: a
    '%' (in a password, say) is taken as written.
    """

    def __init__(self, path: Path):
        self.path = path
        self.parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
        try:
            with open(path, encoding="utf-8") as handle:
                self.parser.read_file(handle)
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: not found; copy dwh.cfg.example to {path.name} and edit it (config file not found)"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: cannot be read (not UTF-8 text)") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
        except configparser.Error as exc:
            raise ConfigError(f"{path}: not a valid config file: {_parse_problem(exc)}") from None

    def fail(self, section: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path.name}: [{section}] {key} {problem}")

    def exposed_secrets(self) -> str | None:
        """A warning when the file holds a password or AWS keys and other users may read it (POSIX)."""
        if os.name != "posix":
            return None
        held = [f"[{s}] {k}" for s, k in SECRET_KEYS if self.get(s, k, default="")]
        mode = self.path.stat().st_mode & 0o777
        if not held or not mode & 0o077:
            return None
        return (
            f"{self.path} holds {' and '.join(held)} and other users may read it (mode {mode:o}): "
            f"run chmod 600 {self.path}"
        )

    def get(self, section: str, key: str, default: str | None = None) -> str:
        """The value without comment and quotes; ``default`` (when given) if the key is absent."""
        if not self.parser.has_section(section):
            if default is not None:
                return default
            raise ConfigError(
                f"{self.path.name}: section [{section}] is missing (needed for {key}; see dwh.cfg.example)"
            )
        value = self.parser.get(section, key, fallback=None)
        if value is None:
            if default is not None:
                return default
            raise self.fail(section, key, "is missing (see dwh.cfg.example)")
        return value.strip().strip('"').strip("'").strip()

    def required(self, section: str, key: str) -> str:
        value = self.get(section, key)
        if not value:
            raise self.fail(section, key, "is empty")
        return value

    def matching(
        self, section: str, key: str, pattern: re.Pattern, what: str, value=None, *, must: str = "look like"
    ) -> str:
        value = self.required(section, key) if value is None else value
        if not pattern.fullmatch(value):
            raise self.fail(section, key, f"must {must} {what}, got {value!r}")
        return value

    def optional(self, section: str, key: str, pattern: re.Pattern, what: str) -> str | None:
        """A key that may be absent or empty (None); when set, it must match ``pattern``."""
        value = self.get(section, key, default="")
        return self.matching(section, key, pattern, what, value) if value else None

    def choice(self, section: str, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        """One of ``choices``, in any case, as written there; ``default``, if given, when absent or empty."""
        value = self.required(section, key) if default is None else self.get(section, key, default="") or default
        if value.lower() not in choices:
            raise self.fail(section, key, f"must be {' or '.join(choices)}, got {value!r}")
        return value.lower()

    def integer(
        self, section: str, key: str, minimum: int = 1, maximum: int | None = None, default: int | None = None
    ) -> int:
        """A whole number from ``minimum`` (to ``maximum``); ``default``, if given, when absent or empty."""
        value = self.required(section, key) if default is None else self.get(section, key, default="")
        if not value and default is not None:
            return default
        if not re.fullmatch(r"\d+", value) or int(value) < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.fail(section, key, f"must be {kind}, got {value!r}")
        if maximum is not None and int(value) > maximum:
            raise self.fail(section, key, f"must be at most {maximum}, got {value!r}")
        return int(value)

    def port(self, section: str, key: str) -> int:
        return self.integer(section, key, minimum=1, maximum=65535)


# The keys whose values are secrets: the file that holds one must be readable by its owner only.
SECRET_KEYS = (("CLUSTER", "DB_PASSWORD"), ("AWS", "KEY"), ("AWS", "SECRET"))


def load_settings(path: str | os.PathLike = "dwh.cfg") -> Settings:
    """Read dwh.cfg and return validated settings for the configured target."""
    path = Path(path)
    cfg = ConfigReader(path)
    exposed = cfg.exposed_secrets()
    if exposed:
        log.warning("%s", exposed)
    target = cfg.choice("WAREHOUSE", "TARGET", TARGETS)
    if target == "redshift":
        return _redshift_settings(cfg, path)
    return _local_settings(cfg, path)


def db_password(cfg: ConfigReader) -> tuple[str, str]:
    """The warehouse password, [CLUSTER] DB_PASSWORD or else $SPARKIFY_DB_PASSWORD, and which it was."""
    password = cfg.get("CLUSTER", "DB_PASSWORD", default="")
    if password:
        return password, "[CLUSTER] DB_PASSWORD"
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise cfg.fail("CLUSTER", "DB_PASSWORD", f"is empty and {PASSWORD_ENV} is not set: set one of them")
    return password, f"{PASSWORD_ENV} (because [CLUSTER] DB_PASSWORD is empty)"


def boolean(cfg: ConfigReader, section: str, key: str, default: bool = False) -> bool:
    """true/false (also yes/no, on/off, 1/0: configparser's own); ``default`` when absent or empty."""
    value = cfg.get(section, key, default="").lower()
    if not value:
        return default
    if value not in configparser.ConfigParser.BOOLEAN_STATES:
        raise cfg.fail(section, key, f"must be true or false, got {value!r}")
    return configparser.ConfigParser.BOOLEAN_STATES[value]


def auth_method(cfg: ConfigReader) -> str:
    """[CLUSTER] AUTH: password (the default) or iam."""
    return cfg.choice("CLUSTER", "AUTH", AUTH_METHODS, default=AUTH_METHODS[0])


def _iam_login(cfg: ConfigReader, host: str) -> IamLogin:
    """[CLUSTER] AUTH = iam: the cluster or workgroup to ask, from CLUSTER_IDENTIFIER / WORKGROUP or HOST.

    The endpoint host names the cluster (or workgroup) and its region; a custom domain name does
    not, so CLUSTER_IDENTIFIER or WORKGROUP (and [AWS] REGION) say it instead.
    """
    cluster = cfg.get("CLUSTER", "CLUSTER_IDENTIFIER", default="").lower()
    workgroup = cfg.get("CLUSTER", "WORKGROUP", default="").lower()
    if cluster and workgroup:
        raise cfg.fail("CLUSTER", "WORKGROUP", "and CLUSTER_IDENTIFIER are both set: set the one you connect to")
    parsed = _CLUSTER_HOST.fullmatch(host.lower()) or _WORKGROUP_HOST.fullmatch(host.lower())
    if cluster:
        serverless = False
        name = cfg.matching(
            "CLUSTER", "CLUSTER_IDENTIFIER", CLUSTER_IDENTIFIER_PATTERN, "a cluster identifier", cluster, must="be"
        )
    elif workgroup:
        serverless = True
        name = cfg.matching(
            "CLUSTER", "WORKGROUP", WORKGROUP_PATTERN, "3-64 lowercase letters, digits or hyphens", workgroup, must="be"
        )
    elif parsed:
        serverless, name = parsed.re is _WORKGROUP_HOST, parsed.group("name")
    else:
        raise cfg.fail(
            "CLUSTER",
            "HOST",
            f"{host!r} is not a Redshift endpoint name, so AUTH = iam cannot tell which cluster to ask: "
            "set [CLUSTER] CLUSTER_IDENTIFIER (or WORKGROUP for Serverless)",
        )
    if parsed:
        region = parsed.group("region")
    else:
        region = cfg.matching("AWS", "REGION", REGION_PATTERN, "an AWS region such as us-west-2 (HOST names none)")
    login = cfg.choice("CLUSTER", "IAM_LOGIN", IAM_LOGINS, default=IAM_LOGINS[0])
    if login == "db_user" and serverless:
        raise cfg.fail(
            "CLUSTER",
            "IAM_LOGIN",
            "= db_user needs a provisioned cluster: Redshift Serverless issues credentials only for your "
            "IAM identity (set IAM_LOGIN = identity)",
        )
    auto_create = boolean(cfg, "CLUSTER", "IAM_AUTO_CREATE")
    if auto_create and login != "db_user":
        raise cfg.fail("CLUSTER", "IAM_AUTO_CREATE", "applies only with IAM_LOGIN = db_user")
    return IamLogin(
        serverless=serverless,
        name=name,
        region=region,
        db_user=cfg.matching("CLUSTER", "DB_USER", IDENTIFIER_PATTERN, "a lower-case user name")
        if login == "db_user"
        else None,
        auto_create=auto_create,
        profile=cfg.optional("AWS", "PROFILE", _PROFILE, "a profile name"),
    )


def _redshift_settings(cfg: ConfigReader, path: Path) -> Settings:
    host = cfg.matching("CLUSTER", "HOST", _HOSTNAME, "a cluster endpoint host name")
    iam = _iam_login(cfg, host) if auth_method(cfg) == "iam" else None
    password = "" if iam else db_password(cfg)[0]
    connection = Connection(
        host=host,
        port=cfg.port("CLUSTER", "DB_PORT"),
        dbname=cfg.matching("CLUSTER", "DB_NAME", IDENTIFIER_PATTERN, "a lower-case database name"),
        # With AUTH = iam the user comes from AWS with the password (IAM:name, or DB_USER for db_user).
        user=(iam.db_user or "")
        if iam
        else cfg.matching("CLUSTER", "DB_USER", IDENTIFIER_PATTERN, "a lower-case user name"),
        password=password,
        sslmode=cfg.choice("CLUSTER", "SSLMODE", SSL_MODES, default="require"),
        connect_timeout=cfg.integer("CLUSTER", "CONNECT_TIMEOUT", minimum=1, maximum=300, default=10),
        iam=iam,
    )
    s3_uri = "s3://bucket/prefix"
    jsonpath = cfg.required("S3", "LOG_JSONPATH")
    if jsonpath.lower() not in JSON_AUTO:
        cfg.matching("S3", "LOG_JSONPATH", _S3_URI, f"{s3_uri} or 'auto'", jsonpath)
    sources = Sources(
        log_data=cfg.matching("S3", "LOG_DATA", _S3_URI, s3_uri),
        log_jsonpath=jsonpath,
        song_data=cfg.matching("S3", "SONG_DATA", _S3_URI, s3_uri),
        song_manifest=cfg.optional("S3", "SONG_MANIFEST", _S3_URI, s3_uri),
        region=cfg.matching("S3", "REGION", REGION_PATTERN, "an AWS region such as us-west-2"),
        song_region=cfg.optional("S3", "SONG_REGION", REGION_PATTERN, "an AWS region such as eu-west-1"),
        iam_role=cfg.matching("IAM_ROLE", "ARN", _IAM_ROLE_ARN, "arn:aws:iam::<12-digit account>:role/<name>"),
        **_load_options(cfg),
    )
    return Settings(path=path, target="redshift", sources=sources, redshift=connection)


def _local_source(cfg: ConfigReader, key: str, base: Path) -> str:
    """A local warehouse source: an s3:// prefix, or a path resolved against dwh.cfg's folder."""
    value = cfg.required("LOCAL", key)
    if value.startswith("s3://"):
        return cfg.matching("LOCAL", key, _S3_URI, "s3://bucket/prefix", value)
    if key == "LOG_JSONPATH" and value.lower() in JSON_AUTO:
        return value
    path = sql_safe_path(value, base)
    if path is None:
        raise cfg.fail(
            "LOCAL",
            key,
            f"must be a folder path or s3:// prefix without quotes, backslashes or control characters, got {value!r}",
        )
    return path


def sql_safe_path(value: str, base: Path, windows: bool = os.name == "nt") -> str | None:
    """A local path as COPY's FROM names it: absolute, with forward slashes; None if it cannot be quoted safely.

    Windows writes paths with backslashes and accepts forward slashes, so there they become forward
    slashes before the check; elsewhere a backslash is refused, like a quote or a control character.
    """
    text = value.replace("\\", "/") if windows else value
    if _UNSAFE_PATH.search(text):
        return None
    resolved = text if os.path.isabs(text) else str((base / text).resolve())
    return Path(resolved).as_posix()


def load_server_settings(path: str | os.PathLike = "dwh.cfg") -> ServerSettings:
    """Only the local warehouse server's keys of [LOCAL], whatever the TARGET."""
    path = Path(path)
    return _server_settings(ConfigReader(path), path.resolve().parent)


def _server_settings(cfg: ConfigReader, base: Path) -> ServerSettings:
    host = cfg.required("LOCAL", "HOST")
    if host not in LOOPBACK_HOSTS:
        raise cfg.fail(
            "LOCAL",
            "HOST",
            f"must be a loopback address ({', '.join(LOOPBACK_HOSTS)}): "
            f"the local warehouse is never exposed to the network, got {host!r}",
        )
    data_dir = cfg.required("LOCAL", "DATA_DIR")
    return ServerSettings(
        data_dir=(base / data_dir).resolve(),
        host=host,
        port=cfg.port("LOCAL", "PORT"),
        user=cfg.matching("LOCAL", "DB_USER", IDENTIFIER_PATTERN, "a lower-case user name"),
        dbname=cfg.matching("LOCAL", "DB_NAME", IDENTIFIER_PATTERN, "a lower-case database name"),
        copy_workers=_optional(cfg, "LOCAL", "COPY_WORKERS", lambda: cfg.integer("LOCAL", "COPY_WORKERS", 0, 64)),
        copy_converter=cfg.choice("LOCAL", "COPY_CONVERTER", COPY_CONVERTERS, default="auto"),
        progress_seconds=float(
            cfg.integer("LOCAL", "PROGRESS_SECONDS", minimum=0, maximum=3600, default=int(PROGRESS_SECONDS))
        ),
    )


def _local_settings(cfg: ConfigReader, path: Path) -> Settings:
    base = path.resolve().parent
    server = _server_settings(cfg, base)
    sources = Sources(
        log_data=_local_source(cfg, "LOG_DATA", base),
        log_jsonpath=_local_source(cfg, "LOG_JSONPATH", base),
        song_data=_local_source(cfg, "SONG_DATA", base),
        song_manifest=_optional(cfg, "LOCAL", "SONG_MANIFEST", lambda: _local_source(cfg, "SONG_MANIFEST", base)),
        region=cfg.optional("S3", "REGION", REGION_PATTERN, "an AWS region such as us-west-2"),
        song_region=cfg.optional("S3", "SONG_REGION", REGION_PATTERN, "an AWS region such as eu-west-1"),
        s3_endpoint_url=cfg.optional("LOCAL", "S3_ENDPOINT_URL", _ENDPOINT_URL, "http(s)://host:port"),
        s3_anonymous=boolean(cfg, "LOCAL", "S3_ANONYMOUS"),
        s3_read_timeout=cfg.integer("LOCAL", "S3_READ_TIMEOUT", minimum=1, maximum=3600, default=S3_READ_TIMEOUT),
        **_load_options(cfg),
    )
    return Settings(path=path, target="local", sources=sources, local=server)


def _load_options(cfg: ConfigReader) -> dict:
    """[LOAD]: COPY options shared by both warehouses (optional section; defaults are strict)."""
    accept = cfg.get("LOAD", "ACCEPTINVCHARS", default="")
    if accept and (len(accept) != 1 or not accept.isascii() or accept in "'\\" or not accept.isprintable()):
        raise cfg.fail("LOAD", "ACCEPTINVCHARS", f"must be empty or one printable ASCII character, got {accept!r}")
    return {
        "max_error": cfg.integer("LOAD", "MAXERROR", minimum=0, maximum=100000, default=0),
        "accept_inv_chars": accept or None,
    }


def _optional(cfg: ConfigReader, section: str, key: str, validated):
    """An optional key: None when absent or empty, else its validated value."""
    return validated() if cfg.get(section, key, default="") else None

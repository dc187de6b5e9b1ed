#!/usr/bin/env python3
"""Stand up, inspect and tear down the Sparkify Redshift warehouse, safely.

    python iac_setup.py create  [--serverless] [--open-to-world] [--set-target]
    python iac_setup.py status  [--serverless]
    python iac_setup.py delete  [--serverless] [--yes] [--final-snapshot] [--keep-role]

``create`` makes (or reuses) an IAM role that Redshift assumes to read S3 (AWS-managed
AmazonS3ReadOnlyAccess and nothing else), a Redshift cluster -- or, with ``--serverless``, a
Redshift Serverless namespace and workgroup --, waits until it is available, opens the
database port to your own public IPv4 address only (or to ``[DWH] ALLOWED_CIDR``), and writes
``[CLUSTER] HOST`` and ``[IAM_ROLE] ARN`` back into dwh.cfg without touching anything else in
the file. ``status`` tells what exists and what it costs. ``delete`` removes all of it again.
Every command is idempotent: rerun it after an interruption and it finishes the job.

Exit codes: 0 done, 1 AWS refused or something is in the way, 2 bad configuration or usage,
130 interrupted. See docs/iac.md for the walk-through, the costs and the IAM policy the caller
needs.
"""
from __future__ import annotations

import argparse
import configparser
import dataclasses
import ipaddress
import json
import math
import os
import re
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import boto3
import botocore.exceptions
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, WaiterError

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

DEFAULT_CONFIG = Path(__file__).resolve().with_name("dwh.cfg")
PASSWORD_ENV = "SPARKIFY_DB_PASSWORD"

#: Tags put on everything iac_setup.py creates. A cluster, namespace or workgroup without
#: MANAGED_BY is never reused nor deleted: it belongs to somebody else.
MANAGED_BY = ("managed-by", "iac_setup.py")
PROJECT = ("project", "sparkify")

S3_READ_POLICY = "AmazonS3ReadOnlyAccess"
#: redshift-serverless.amazonaws.com is trusted too, so that one role serves both the cluster
#: and the Serverless path (Serverless namespaces assume roles through either principal).
TRUSTED_SERVICES = ("redshift.amazonaws.com", "redshift-serverless.amazonaws.com")
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": list(TRUSTED_SERVICES)},
            "Action": "sts:AssumeRole",
        }
    ],
}

#: Cluster states from which Redshift does not recover by waiting.
FAILED_CLUSTER_STATES = frozenset({"hardware-failure", "storage-full"})

CLUSTER_POLL_SECONDS = 30
SERVERLESS_POLL_SECONDS = 15
DEFAULT_TIMEOUT_MINUTES = 30.0
PUBLIC_IP_URL = "https://checkip.amazonaws.com"

#: Approximate on-demand prices in USD per node-hour, us-east-1 (N. Virginia; us-west-2 lists
#: the same prices), compute only: RA3 managed storage (~$0.024/GB-month) and snapshots are
#: billed on top. Sources: https://aws.amazon.com/redshift/pricing/ ("start small at $0.25 per
#: hour"), and public write-ups quoting that page in 2025-2026 (ra3.4xlarge $3.26/hour, May
#: 2026; ra3.large $0.649/hour in eu-central-1, which is ~1.2x us-east-1). Checked 2026-11.
#: Other regions cost more or less; treat these as the order of magnitude, not a quote.
NODE_PRICE_USD_PER_HOUR = {
    "dc2.large": 0.25,
    "dc2.8xlarge": 4.80,
    "ra3.large": 0.543,
    "ra3.xlplus": 1.086,
    "ra3.4xlarge": 3.26,
    "ra3.16xlarge": 13.04,
}
#: Redshift Serverless, us-east-1, USD per RPU-hour, billed per second with a 60-second minimum
#: while queries run, nothing while idle (storage aside). Same sources, checked 2026-11.
SERVERLESS_USD_PER_RPU_HOUR = 0.375

ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedFault",
     "UnauthorizedAccess", "DependentServiceAccessDenied", "DependentServiceAccessDeniedFault"}
)
QUOTA_CODES = frozenset(
    {"ClusterQuotaExceeded", "NumberOfNodesQuotaExceeded", "NumberOfNodesPerClusterLimitExceeded",
     "LimitExceeded", "LimitExceededFault", "ServiceQuotaExceededException",
     "RulesPerSecurityGroupLimitExceeded", "SecurityGroupLimitExceeded", "TagLimitExceededFault",
     "QuotaExceededException"}
)
CAPACITY_CODES = frozenset({"InsufficientClusterCapacity", "InsufficientCapacityException"})
BAD_CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
     "ExpiredToken", "ExpiredTokenException", "AuthFailure", "InvalidAccessKeyId",
     "InvalidSignatureException"}
)


# --------------------------------------------------------------------------------------------
# Errors and output
# --------------------------------------------------------------------------------------------

class ConfigError(Exception):
    """dwh.cfg is missing something or holds a malformed value (exit code 2)."""


class UsageError(Exception):
    """The command cannot run as asked, e.g. delete without --yes and nobody to ask (exit 2)."""


class IacError(Exception):
    """AWS state is in the way: a foreign resource, a failed cluster, a timeout (exit code 1)."""


class Console:
    """Progress on stdout, warnings and errors on stderr, secrets never shown."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", PASSWORD_ENV):
            self.add_secret(os.environ.get(var))

    def add_secret(self, value: str | None) -> None:
        if value and len(value) >= 4:
            self._secrets.add(value)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "********")
        return text

    def info(self, message: str = "") -> None:
        print(self.redact(message), flush=True)

    def warn(self, message: str) -> None:
        print(self.redact(f"WARNING: {message}"), file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        print(self.redact(f"error: {message}"), file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AwsSettings:
    region: str
    profile: str | None
    key: str | None
    secret: str | None


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    identifier: str
    cluster_type: str
    num_nodes: int
    node_type: str


@dataclasses.dataclass(frozen=True)
class ServerlessSpec:
    namespace: str
    workgroup: str
    base_rpu: int


@dataclasses.dataclass(frozen=True)
class DbSpec:
    name: str
    user: str
    port: int


class Config:
    """dwh.cfg, read exactly as dwh/config.py reads it (create_tables.py, etl.py).

    Same parser settings (inline ';'/'#' comments, configparser's default '%' interpolation)
    and the same quote stripping, so the password the warehouse is created with is the one the
    other scripts connect with. Each getter validates only what its command needs: a broken
    CIDR or a missing password never stops ``status`` or ``delete``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.label = path.name
        if not path.is_file():
            raise ConfigError(
                f"{path}: file not found; copy dwh.cfg.example to {path.name} and fill it in"
            )
        parser = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
        try:
            parser.read(path, encoding="utf-8")
        except configparser.DuplicateOptionError as exc:
            raise ConfigError(f"{self.label}: [{exc.section}] {exc.option.upper()} is set twice "
                              f"(line {exc.lineno})") from None
        except configparser.DuplicateSectionError as exc:
            raise ConfigError(f"{self.label}: section [{exc.section}] appears twice "
                              f"(line {exc.lineno})") from None
        except configparser.MissingSectionHeaderError as exc:
            raise ConfigError(f"{self.label}: line {exc.lineno} comes before any [SECTION] "
                              "header") from None
        except configparser.ParsingError as exc:
            lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
            raise ConfigError(f"{self.label}: cannot parse line {lines} "
                              "(expected KEY = value)") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{self.label}: not UTF-8 text") from None
        self.parser = parser

    # -- raw access -----------------------------------------------------------------------
    def error(self, section: str, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.label}: [{section}] {key} {problem}")

    def get(self, section: str, key: str, *, required: bool = True, default: str = "") -> str:
        if not self.parser.has_section(section):
            if required:
                raise ConfigError(f"{self.label}: section [{section}] is missing "
                                  "(see dwh.cfg.example)")
            return default
        if not self.parser.has_option(section, key):
            if required:
                raise self.error(section, key, "is missing (see dwh.cfg.example)")
            return default
        try:
            value = self.parser.get(section, key)
        except configparser.InterpolationError:
            # the message would quote the value, which may be a secret
            raise self.error(section, key, "has a '%' that is not written as '%%'") from None
        value = value.strip().strip('"').strip("'").strip()
        if not value and required:
            raise self.error(section, key, "is empty")
        return value or default

    def get_int(self, section: str, key: str, *, minimum: int = 1, maximum: int | None = None,
                required: bool = True, default: int | None = None) -> int:
        raw = self.get(section, key, required=required and default is None)
        if not raw:
            assert default is not None
            return default
        if not re.fullmatch(r"\d+", raw) or int(raw) < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(section, key, f"must be {kind}, got {raw!r}")
        if maximum is not None and int(raw) > maximum:
            raise self.error(section, key, f"must be at most {maximum}, got {raw!r}")
        return int(raw)

    # -- typed sections -------------------------------------------------------------------
    def aws(self) -> AwsSettings:
        region = self.get("AWS", "REGION")
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
            raise self.error("AWS", "REGION", f"must be an AWS region such as us-west-2, "
                                              f"got {region!r}")
        profile = self.get("AWS", "PROFILE", required=False) or None
        key = self.get("AWS", "KEY", required=False) or None
        secret = self.get("AWS", "SECRET", required=False) or None
        if bool(key) != bool(secret):
            missing = "SECRET" if key else "KEY"
            raise self.error("AWS", missing, "is empty but its partner is set: set both KEY "
                                             "and SECRET, or neither (preferred)")
        if key and profile:
            raise self.error("AWS", "PROFILE", "and KEY/SECRET are both set: use one of them")
        return AwsSettings(region=region, profile=profile, key=key, secret=secret)

    def role_name(self) -> str:
        name = self.get("DWH", "IAM_ROLE_NAME")
        if not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
            raise self.error("DWH", "IAM_ROLE_NAME", "must be 1-64 letters, digits or "
                                                     f"+=,.@_- characters, got {name!r}")
        return name

    def cluster_identifier(self) -> str:
        ident = self.get("DWH", "CLUSTER_IDENTIFIER").lower()
        if not (re.fullmatch(r"[a-z][a-z0-9-]{0,62}", ident) and "--" not in ident
                and not ident.endswith("-")):
            raise self.error("DWH", "CLUSTER_IDENTIFIER",
                             "must be 1-63 lowercase letters, digits or hyphens, start with a "
                             f"letter, without '--' or a trailing '-', got {ident!r}")
        return ident

    def cluster(self) -> ClusterSpec:
        ident = self.cluster_identifier()
        ctype = self.get("DWH", "CLUSTER_TYPE")
        if ctype not in ("single-node", "multi-node"):
            raise self.error("DWH", "CLUSTER_TYPE",
                             f"must be single-node or multi-node, got {ctype!r}")
        nodes = self.get_int("DWH", "NUM_NODES")
        if ctype == "single-node" and nodes != 1:
            raise self.error("DWH", "NUM_NODES", f"must be 1 for a single-node cluster, got "
                                                 f"{nodes} (or set CLUSTER_TYPE = multi-node)")
        if ctype == "multi-node" and nodes < 2:
            raise self.error("DWH", "NUM_NODES", f"must be at least 2 for a multi-node cluster, "
                                                 f"got {nodes}")
        node_type = self.get("DWH", "NODE_TYPE")
        if not re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+", node_type):
            raise self.error("DWH", "NODE_TYPE", f"must look like ra3.large, got {node_type!r}")
        return ClusterSpec(ident, ctype, nodes, node_type)

    def serverless(self) -> ServerlessSpec:
        names = {}
        for key in ("SERVERLESS_NAMESPACE", "SERVERLESS_WORKGROUP"):
            value = self.get("DWH", key)
            if not re.fullmatch(r"[a-z0-9-]{3,64}", value):
                raise self.error("DWH", key, "must be 3-64 lowercase letters, digits or "
                                             f"hyphens, got {value!r}")
            names[key] = value
        rpu = self.get_int("DWH", "SERVERLESS_BASE_RPU", minimum=4, maximum=1024, default=8)
        return ServerlessSpec(names["SERVERLESS_NAMESPACE"], names["SERVERLESS_WORKGROUP"], rpu)

    def db(self, *, serverless: bool, node_type: str = "") -> DbSpec:
        # What Redshift accepts and dwh/config.py accepts too.
        name = self.get("CLUSTER", "DB_NAME")
        if not re.fullmatch(r"[a-z][a-z0-9_$]{0,62}", name):
            raise self.error("CLUSTER", "DB_NAME", "must be 1-63 lowercase letters, digits, _ "
                                                   f"or $, starting with a letter, got {name!r}")
        user = self.get("CLUSTER", "DB_USER")
        if not re.fullmatch(r"[a-z][a-z0-9_$]{0,62}", user) or user == "public":
            raise self.error("CLUSTER", "DB_USER", "must be 1-63 lowercase letters, digits, _ "
                                                   f"or $, starting with a letter, got {user!r}")
        port = self.get_int("CLUSTER", "DB_PORT")
        if serverless or node_type.startswith("ra3."):
            if not (5431 <= port <= 5455 or 8191 <= port <= 8215):
                what = "Redshift Serverless" if serverless else "RA3 clusters"
                raise self.error("CLUSTER", "DB_PORT", f"must be within 5431-5455 or 8191-8215 "
                                                       f"for {what}, got {port}")
        elif not 1150 <= port <= 65535:
            raise self.error("CLUSTER", "DB_PORT", f"must be within 1150-65535, got {port}")
        return DbSpec(name, user, port)

    def password(self) -> str:
        password = self.get("CLUSTER", "DB_PASSWORD", required=False)
        source = "[CLUSTER] DB_PASSWORD"
        if not password:
            password = os.environ.get(PASSWORD_ENV, "")
            source = f"{PASSWORD_ENV} (because [CLUSTER] DB_PASSWORD is empty)"
        if not password:
            raise self.error("CLUSTER", "DB_PASSWORD", f"is empty and {PASSWORD_ENV} is not set: "
                                                       "the admin password comes from one of them")
        problems = []
        if not 8 <= len(password) <= 64:
            problems.append("8-64 characters")
        if not (re.search(r"[A-Z]", password) and re.search(r"[a-z]", password)
                and re.search(r"\d", password)):
            problems.append("an upper-case letter, a lower-case letter and a digit")
        if any(ch in "'\"\\/@ " or not 33 <= ord(ch) <= 126 for ch in password):
            problems.append("printable ASCII without ' \" \\ / @ or spaces")
        if problems:
            # Never echo the password itself.
            raise ConfigError(f"{self.label}: {source} does not meet Redshift's password rules; "
                              f"it needs {', '.join(problems)}")
        return password

    def allowed_cidr(self) -> str:
        raw = self.get("DWH", "ALLOWED_CIDR", required=False)
        if not raw:
            return ""
        try:
            network = ipaddress.ip_network(raw, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise self.error("DWH", "ALLOWED_CIDR", f"must be an IPv4 CIDR such as "
                                                        f"203.0.113.7/32, got {raw!r}") from None
            raise self.error("DWH", "ALLOWED_CIDR", f"has host bits set: {raw!r} is not a network "
                                                    "address (did you mean .../32?)") from None
        if network.version != 4:
            raise self.error("DWH", "ALLOWED_CIDR", f"must be an IPv4 CIDR, got {raw!r}")
        if network.prefixlen == 0:
            raise self.error("DWH", "ALLOWED_CIDR", "is 0.0.0.0/0, which opens the warehouse to "
                                                    "the whole internet; leave it empty (your own "
                                                    "IP) or use `create --open-to-world` if you "
                                                    "really mean it")
        return str(network)


# --------------------------------------------------------------------------------------------
# dwh.cfg write-back: a line-based edit that keeps comments, order and spacing
# --------------------------------------------------------------------------------------------

_SECTION_RE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_KEY_RE = re.compile(r"^(?P<key>[^\s;#=:\[][^=:]*?)\s*[=:]")


def update_cfg_text(text: str, updates: dict[tuple[str, str], str]) -> str:
    """Return ``text`` with ``updates[(SECTION, KEY)] = value`` applied.

    Only the lines of those keys change (their continuation lines are dropped); a missing key
    is added after the last entry of its section, a missing section at the end of the file.
    Comments, blank lines, key spelling, order and line endings are kept.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    ends_with_newline = text.endswith(("\n", "\r"))
    pending = {(s, k.lower()): (k, v) for (s, k), v in updates.items()}
    for _, value in pending.values():
        if "\n" in value or "\r" in value:
            raise ValueError("config values must be single-line")

    out: list[str] = []
    section: str | None = None
    last_entry: dict[str, int] = {}  # section -> index in out after which to insert
    in_value_of_replaced = False
    for line in lines:
        header = _SECTION_RE.match(line)
        if header:
            section = header.group("name").strip()
            last_entry[section] = len(out)
            out.append(line)
            in_value_of_replaced = False
            continue
        stripped = line.strip()
        is_comment = stripped.startswith((";", "#"))
        if line[:1].isspace() and stripped and not is_comment:
            # continuation of the previous value
            if not in_value_of_replaced:
                out.append(line)
                if section is not None:
                    last_entry[section] = len(out) - 1
            continue
        in_value_of_replaced = False
        match = _KEY_RE.match(line) if (section and stripped and not is_comment) else None
        if match:
            target = (section, match.group("key").strip().lower())
            if target in pending:
                _, value = pending.pop(target)
                spelled = match.group("key").strip()
                comment = re.search(r"\s[;#].*$", line[match.end():])  # inline comment: keep
                suffix = comment.group(0) if comment else ""
                line = (f"{spelled} = {value}" if value else f"{spelled} =") + suffix
                in_value_of_replaced = True
            out.append(line)
            last_entry[section] = len(out) - 1
            continue
        out.append(line)

    # keys whose section exists but which were absent: insert after the section's last entry
    for (sec, lower), (key, value) in list(pending.items()):
        if sec in last_entry:
            at = last_entry[sec] + 1
            out.insert(at, f"{key} = {value}" if value else f"{key} =")
            for other, index in last_entry.items():
                if index >= at:
                    last_entry[other] = index + 1
            last_entry[sec] = at
            del pending[(sec, lower)]
    missing_sections: dict[str, list[str]] = {}
    for (sec, _), (key, value) in pending.items():
        missing_sections.setdefault(sec, []).append(f"{key} = {value}" if value else f"{key} =")
    for sec, entries in missing_sections.items():
        if out and out[-1].strip():
            out.append("")
        out.append(f"[{sec}]")
        out.extend(entries)
    result = newline.join(out)
    if ends_with_newline or missing_sections or not text:
        result += newline
    return result


def write_cfg_values(path: Path, updates: dict[tuple[str, str], str]) -> bool:
    """Apply ``updates`` to the file at ``path`` atomically, keeping its mode. True if changed."""
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    new_text = update_cfg_text(text, updates)
    if new_text == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(new_text)
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    return True


# --------------------------------------------------------------------------------------------
# Network helpers
# --------------------------------------------------------------------------------------------

def detect_public_ip(timeout: float = 5.0) -> str | None:
    """The caller's public IPv4 address as AWS sees it, or None if it cannot be found."""
    try:
        with urllib.request.urlopen(PUBLIC_IP_URL, timeout=timeout) as response:  # noqa: S310
            text = response.read(64).decode("ascii", "replace").strip()
        return str(ipaddress.IPv4Address(text))
    except (OSError, ValueError):
        return None


def resolve_cidr(cfg: Config, open_to_world: bool, public_ip: Callable[[], str | None],
                 console: Console) -> str:
    """The CIDR allowed to reach the warehouse port: the flag, ALLOWED_CIDR, or our IP /32."""
    if open_to_world:
        console.warn("--open-to-world: the warehouse port will accept connections from ANY "
                      "address on the internet (0.0.0.0/0); only the password protects it. "
                      "Run `python iac_setup.py delete` as soon as you are done.")
        return "0.0.0.0/0"
    configured = cfg.allowed_cidr()
    if configured:
        return configured
    address = public_ip()
    if not address:
        raise ConfigError(f"{cfg.label}: [DWH] ALLOWED_CIDR is empty and your public IPv4 "
                          f"address could not be determined ({PUBLIC_IP_URL} did not answer); "
                          "set ALLOWED_CIDR, e.g. 203.0.113.7/32")
    return f"{address}/32"


# --------------------------------------------------------------------------------------------
# AWS session and clients
# --------------------------------------------------------------------------------------------

class Aws:
    """One boto3 session and its clients. Tests pass their own (moto, Stubber)."""

    CLIENT_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5},
                               connect_timeout=10, read_timeout=60)

    def __init__(self, session: boto3.session.Session):
        self.session = session
        self._clients: dict[str, object] = {}

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=self.CLIENT_CONFIG)
        return self._clients[service]

    def services(self) -> Iterable:
        return self._clients.values()


_MODEL_LOADER = None


def _botocore_session() -> botocore.session.Session:
    """A fresh botocore session that shares one (read-only) API model loader.

    Parsing the service models is the slow part of making clients; sharing the loader makes a
    second main() in the same process (the tests) cheap. Credentials and config stay per session.
    """
    global _MODEL_LOADER
    session = botocore.session.Session()
    if _MODEL_LOADER is None:
        _MODEL_LOADER = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _MODEL_LOADER)
    return session


def _dedupe_search_paths() -> None:
    # boto3.Session appends its data folder to the loader's search path on every construction.
    if _MODEL_LOADER is not None:
        _MODEL_LOADER.search_paths[:] = list(dict.fromkeys(_MODEL_LOADER.search_paths))


def make_session(settings: AwsSettings, profile_override: str | None,
                 region_override: str | None, console: Console) -> boto3.session.Session:
    region = region_override or settings.region
    profile = profile_override or settings.profile
    if settings.key and not profile_override:
        console.warn("using the access keys in dwh.cfg [AWS] KEY/SECRET: long-lived keys in a "
                     "file are easy to leak; prefer a named profile or AWS SSO (leave KEY and "
                     "SECRET empty and set PROFILE or --profile)")
        session = boto3.session.Session(aws_access_key_id=settings.key,
                                        aws_secret_access_key=settings.secret,
                                        region_name=region, botocore_session=_botocore_session())
    else:
        session = boto3.session.Session(profile_name=profile, region_name=region,
                                        botocore_session=_botocore_session())
        if profile and profile not in session.available_profiles:
            raise profile_error(profile)  # now, rather than at the first AWS call
    _dedupe_search_paths()
    return session


def profile_error(profile: str | None) -> ConfigError:
    return ConfigError(f"AWS profile {profile!r} (from --profile, [AWS] PROFILE or AWS_PROFILE) "
                       "is not defined; see `aws configure list-profiles`")


def iam_action_for(operation: str, aws: Aws | None) -> str:
    """'iam:CreateRole' for 'CreateRole': the IAM action behind an API operation."""
    clients = list(aws.services()) if aws else []
    for client in clients:
        model = client.meta.service_model
        if operation in model.operation_names:
            return f"{model.signing_name}:{operation}"
    session = botocore.session.get_session()
    for service in ("iam", "redshift", "ec2", "redshift-serverless"):
        model = session.get_service_model(service)
        if operation in model.operation_names:
            return f"{model.signing_name}:{operation}"
    return operation


def describe_client_error(exc: ClientError, aws: Aws | None) -> str:
    """One line that says what AWS refused and what to do about it."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = re.sub(r"\s*Encoded authorization failure message:.*", "",
                     str(error.get("Message", "")), flags=re.S)
    message = " ".join(message.split())[:400]
    operation = exc.operation_name
    if code in ACCESS_DENIED_CODES:
        match = re.search(r"not authorized to perform:?\s*([\w-]+:[\w*]+)", message)
        action = match.group(1) if match else iam_action_for(operation, aws)
        return (f"access denied: your AWS identity may not call {action} ({operation}); grant it "
                f"(see 'Minimal IAM policy' in docs/iac.md). AWS said: {message}")
    if code in QUOTA_CODES:
        return (f"quota exceeded in {operation} ({code}): {message} -- delete unused resources "
                "or request an increase in the Service Quotas console")
    if code in CAPACITY_CODES:
        return (f"AWS has no capacity for this request right now ({code} in {operation}): "
                f"{message} -- retry later or choose another [DWH] NODE_TYPE")
    if code in BAD_CREDENTIAL_CODES:
        return (f"AWS rejected your credentials ({code} in {operation}): {message} -- check "
                "--profile / [AWS] PROFILE, run `aws sso login` if you use SSO")
    return f"AWS refused {operation} ({code}): {message}"


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def tags_dict(tags: list[dict] | None) -> dict[str, str]:
    """Tags as a dict, from Redshift's Key/Value or Serverless' key/value form."""
    result = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        result[key] = tag.get("Value", tag.get("value", ""))
    return result


def is_managed(tags: list[dict] | None) -> bool:
    return tags_dict(tags).get(MANAGED_BY[0]) == MANAGED_BY[1]


# --------------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------------

def wait_until(check: Callable[[], tuple[bool, str]], *, what: str, timeout_s: float,
               delay_s: float, sleep: Callable[[float], None], console: Console,
               on_timeout: str) -> str:
    """Call ``check`` every ``delay_s`` seconds until it says done; IacError after timeout_s.

    ``check`` returns (done, state) and raises IacError for states that will never get done.
    Time is counted in attempts, not read from a clock, so a fake ``sleep`` makes tests instant.
    """
    attempts = max(1, math.ceil(timeout_s / delay_s)) + 1
    state = "unknown"
    for attempt in range(attempts):
        done, state = check()
        if done:
            return state
        elapsed = attempt * delay_s
        console.info(f"  ... {what}: {state} ({int(elapsed // 60)}m{int(elapsed % 60):02d}s)")
        if attempt + 1 < attempts:
            sleep(delay_s)
    minutes = f"{timeout_s / 60:g}"
    raise IacError(f"timed out after {minutes} min waiting for {what} (still {state}); "
                   f"{on_timeout}")


def cluster_state_check(redshift, identifier: str, waiter_name: str,
                        *, fail_on_failed_state: bool = True) -> Callable[[], tuple[bool, str]]:
    """A ``check`` for wait_until built on a boto3 waiter run one attempt at a time.

    One attempt per call (WaiterConfig MaxAttempts=1) lets us print progress between
    attempts, spot failed states at once instead of waiting out the timeout, and sleep with
    an injectable function.
    """
    waiter = redshift.get_waiter(waiter_name)
    target = "available" if waiter_name == "cluster_available" else "deleted"

    def check() -> tuple[bool, str]:
        try:
            waiter.wait(ClusterIdentifier=identifier, WaiterConfig={"Delay": 1, "MaxAttempts": 1})
            return True, target
        except WaiterError as exc:
            response = exc.last_response or {}
            error = response.get("Error")
            if error and error.get("Code") != "ClusterNotFound":
                raise ClientError(response, "DescribeClusters") from None
            clusters = response.get("Clusters") or []
            state = clusters[0].get("ClusterStatus", "unknown") if clusters else "not visible yet"
            if target == "available" and cluster_state_problem(identifier, state):
                if fail_on_failed_state:
                    raise IacError(cluster_state_problem(identifier, state)) from None
                return True, state  # settled, if not well: good enough to delete
            return False, state

    return check


def cluster_state_problem(identifier: str, state: str) -> str | None:
    """Why a cluster in ``state`` will never become available, or None."""
    if state in FAILED_CLUSTER_STATES or state.startswith("incompatible-"):
        return (f"cluster {identifier} is in the failed state '{state}' and will not become "
                "available; look at its events in the Redshift console, then run "
                "`python iac_setup.py delete` and create it again")
    if state in ("deleting", "final-snapshot"):
        return (f"cluster {identifier} is being deleted ({state}); wait until "
                "`python iac_setup.py status` shows it gone, then run create again")
    if state == "paused":
        return (f"cluster {identifier} is paused; resume it (aws redshift resume-cluster "
                f"--cluster-identifier {identifier}) and run create again")
    return None


# --------------------------------------------------------------------------------------------
# IAM role
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class RoleInfo:
    name: str
    arn: str
    trusted_services: list[str]
    attached: list[dict]
    inline: list[str]
    problems: list[str]

    @property
    def partition(self) -> str:
        return self.arn.split(":")[1]

    @property
    def s3_policy_arn(self) -> str:
        return f"arn:{self.partition}:iam::aws:policy/{S3_READ_POLICY}"

    @property
    def has_s3_policy(self) -> bool:
        return any(p["PolicyArn"] == self.s3_policy_arn for p in self.attached)


def _trust_problems(document) -> tuple[list[str], list[str]]:
    """(services trusted, problems) of a role trust policy; only our two services pass."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    services: list[str] = []
    problems: list[str] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, dict) or set(principal) - {"Service"}:
            problems.append(f"its trust policy lets {json.dumps(principal)} assume it")
            continue
        listed = principal.get("Service", [])
        listed = [listed] if isinstance(listed, str) else list(listed)
        foreign = [s for s in listed if s not in TRUSTED_SERVICES]
        if foreign:
            problems.append(f"its trust policy trusts {', '.join(foreign)}")
        services.extend(s for s in listed if s in TRUSTED_SERVICES)
    if "redshift.amazonaws.com" not in services:
        problems.append("its trust policy does not trust redshift.amazonaws.com")
    return services, problems


def inspect_role(iam, name: str) -> RoleInfo | None:
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    services, problems = _trust_problems(role.get("AssumeRolePolicyDocument", {}))
    attached = [p for page in iam.get_paginator("list_attached_role_policies")
                .paginate(RoleName=name) for p in page["AttachedPolicies"]]
    inline = [p for page in iam.get_paginator("list_role_policies").paginate(RoleName=name)
              for p in page["PolicyNames"]]
    info = RoleInfo(name, role["Arn"], services, attached, inline, problems)
    others = [p["PolicyName"] for p in attached if p["PolicyArn"] != info.s3_policy_arn]
    if others:
        problems.append(f"it has other policies attached ({', '.join(others)})")
    if inline:
        problems.append(f"it has inline policies ({', '.join(inline)})")
    return info


def foreign_role_error(info: RoleInfo, doing: str) -> IacError:
    return IacError(f"IAM role {info.name} exists but is not the role iac_setup.py manages: "
                    f"{'; '.join(info.problems)}. Refusing to {doing} it: set another "
                    "[DWH] IAM_ROLE_NAME, or fix or delete that role yourself")


def ensure_role(iam, name: str, console: Console) -> str:
    """The ARN of a role Redshift can assume with S3 read-only access, created if needed."""
    info = inspect_role(iam, name)
    if info is None:
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Lets Amazon Redshift read S3 for the Sparkify COPY (iac_setup.py)",
            Tags=[{"Key": MANAGED_BY[0], "Value": MANAGED_BY[1]},
                  {"Key": PROJECT[0], "Value": PROJECT[1]}],
        )["Role"]
        partition = role["Arn"].split(":")[1]
        iam.attach_role_policy(RoleName=name,
                               PolicyArn=f"arn:{partition}:iam::aws:policy/{S3_READ_POLICY}")
        console.info(f"IAM role {name}: created, with {S3_READ_POLICY} attached")
        return role["Arn"]
    if info.problems:
        raise foreign_role_error(info, "use")
    if not info.has_s3_policy:
        iam.attach_role_policy(RoleName=name, PolicyArn=info.s3_policy_arn)
        console.info(f"IAM role {name}: exists; attached {S3_READ_POLICY}")
    else:
        console.info(f"IAM role {name}: exists, reused")
    return info.arn


def delete_role(iam, info: RoleInfo, console: Console) -> None:
    for policy in info.attached:
        iam.detach_role_policy(RoleName=info.name, PolicyArn=policy["PolicyArn"])
    try:
        iam.delete_role(RoleName=info.name)
    except ClientError as exc:
        if error_code(exc) != "NoSuchEntity":
            raise
    console.info(f"IAM role {info.name}: deleted")


# --------------------------------------------------------------------------------------------
# Security-group ingress
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Rule:
    group_id: str
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str
    description: str

    def label(self) -> str:
        ports = (f"{self.from_port}" if self.from_port == self.to_port
                 else f"{self.from_port}-{self.to_port}")
        proto = "all traffic" if self.protocol == "-1" else f"{self.protocol} {ports}"
        return f"{proto} from {self.cidr} on {self.group_id}"

    def covers(self, port: int) -> bool:
        return self.protocol == "-1" or (
            self.protocol == "tcp" and (self.from_port or 0) <= port <= (self.to_port or 0))


def rule_marker(kind: str, name: str) -> str:
    """The description that marks an ingress rule as added by iac_setup.py for one warehouse."""
    return f"iac_setup.py {kind} {name}"


def _rules_of(group: dict) -> list[Rule]:
    rules = []
    for perm in group.get("IpPermissions", []):
        for ip_range in perm.get("IpRanges", []):
            rules.append(Rule(group["GroupId"], perm.get("IpProtocol", ""), perm.get("FromPort"),
                              perm.get("ToPort"), ip_range.get("CidrIp", ""),
                              ip_range.get("Description", "")))
    return rules


def all_ingress_rules(ec2, group_ids: list[str] | None = None) -> list[Rule]:
    kwargs = {"GroupIds": group_ids} if group_ids else {}
    paginator = ec2.get_paginator("describe_security_groups")
    return [rule for page in paginator.paginate(**kwargs) for group in page["SecurityGroups"]
            for rule in _rules_of(group)]


def marked_rules(ec2, marker: str) -> list[Rule]:
    return [rule for rule in all_ingress_rules(ec2) if rule.description == marker]


def revoke(ec2, rule: Rule) -> None:
    permission = {"IpProtocol": rule.protocol, "IpRanges": [{"CidrIp": rule.cidr}]}
    if rule.protocol != "-1":
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    try:
        ec2.revoke_security_group_ingress(GroupId=rule.group_id, IpPermissions=[permission])
    except ClientError as exc:
        if error_code(exc) not in ("InvalidPermission.NotFound", "InvalidGroup.NotFound"):
            raise


def ensure_ingress(ec2, group_id: str, port: int, cidr: str, marker: str,
                   console: Console) -> None:
    """Allow tcp ``port`` from ``cidr`` on ``group_id``; drop our rules for an old address."""
    ours = marked_rules(ec2, marker)
    wanted = Rule(group_id, "tcp", port, port, cidr, marker)
    for rule in ours:
        if rule != wanted:
            revoke(ec2, rule)
            console.info(f"ingress: removed the earlier rule {rule.label()}")
    if wanted in ours:
        console.info(f"ingress: {wanted.label()} already open")
        return
    existing = [r for r in all_ingress_rules(ec2, [group_id]) if r.cidr == cidr and r.covers(port)]
    if existing:
        console.info(f"ingress: already allowed by {existing[0].label()} (a rule iac_setup.py "
                     "did not add; it will leave it alone)")
        return
    try:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "IpRanges": [{"CidrIp": cidr, "Description": marker}],
        }])
    except ClientError as exc:
        if error_code(exc) != "InvalidPermission.Duplicate":
            raise
    console.info(f"ingress: opened {wanted.label()}")


def default_security_group(ec2, region: str) -> str:
    """The 'default' security group of the region's default VPC."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise IacError(f"there is no default VPC in {region}; create one with "
                       f"`aws ec2 create-default-vpc --region {region}` and run create again")
    groups = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
        {"Name": "group-name", "Values": ["default"]},
    ])["SecurityGroups"]
    if not groups:
        raise IacError(f"the default VPC {vpcs[0]['VpcId']} has no 'default' security group")
    return groups[0]["GroupId"]


# --------------------------------------------------------------------------------------------
# Provisioned cluster
# --------------------------------------------------------------------------------------------

def find_cluster(redshift, identifier: str) -> dict | None:
    try:
        return redshift.describe_clusters(ClusterIdentifier=identifier)["Clusters"][0]
    except ClientError as exc:
        if error_code(exc) == "ClusterNotFound":
            return None
        raise


def cluster_group_ids(cluster: dict) -> list[str]:
    return [g["VpcSecurityGroupId"] for g in cluster.get("VpcSecurityGroups", [])
            if g.get("Status", "active") in ("active", "adding")]


def cluster_cost_per_hour(node_type: str, nodes: int) -> float | None:
    price = NODE_PRICE_USD_PER_HOUR.get(node_type)
    return None if price is None else price * nodes


def describe_cluster_cost(node_type: str, nodes: int) -> str:
    total = cluster_cost_per_hour(node_type, nodes)
    if total is None:
        return (f"{nodes} x {node_type}: no price on file; see "
                "https://aws.amazon.com/redshift/pricing/")
    return (f"about ${total:.2f}/hour (${total * 24:.0f}/day) while it exists: {nodes} x "
            f"{node_type} at ~${NODE_PRICE_USD_PER_HOUR[node_type]}/node-hour "
            "(approximate us-east-1 on-demand compute price; storage extra)")


def not_managed_cluster_error(identifier: str, doing: str) -> IacError:
    return IacError(
        f"a cluster named {identifier} already exists but was not created by iac_setup.py (no "
        f"tag {MANAGED_BY[0]}={MANAGED_BY[1]}); refusing to {doing} it. Set another [DWH] "
        f"CLUSTER_IDENTIFIER, or adopt it with `aws redshift create-tags --resource-name "
        f"<cluster ARN> --tags Key={MANAGED_BY[0]},Value={MANAGED_BY[1]}`")


@dataclasses.dataclass
class Context:
    args: argparse.Namespace
    cfg: Config
    aws: Aws
    console: Console
    sleep: Callable[[float], None]
    public_ip: Callable[[], str | None]

    @property
    def timeout_s(self) -> float:
        return self.args.timeout * 60


def create_cluster(ctx: Context, role_arn: str, spec: ClusterSpec, db: DbSpec,
                   password: str) -> dict:
    """Create the cluster, or reuse ours; return it once available."""
    redshift = ctx.aws.client("redshift")
    cluster = find_cluster(redshift, spec.identifier)
    if cluster is None:
        group_id = default_security_group(ctx.aws.client("ec2"), ctx.aws.region)
        params = dict(
            ClusterIdentifier=spec.identifier, ClusterType=spec.cluster_type,
            NodeType=spec.node_type, DBName=db.name, MasterUsername=db.user,
            MasterUserPassword=password, Port=db.port, IamRoles=[role_arn],
            VpcSecurityGroupIds=[group_id], PubliclyAccessible=True, Encrypted=True,
            Tags=[{"Key": MANAGED_BY[0], "Value": MANAGED_BY[1]},
                  {"Key": PROJECT[0], "Value": PROJECT[1]}],
        )
        if spec.cluster_type == "multi-node":
            params["NumberOfNodes"] = spec.num_nodes
        redshift.create_cluster(**params)
        ctx.console.info(f"cluster {spec.identifier}: creating {spec.num_nodes} x "
                         f"{spec.node_type} (usually 5-15 minutes); billing starts now, "
                         f"{describe_cluster_cost(spec.node_type, spec.num_nodes)}")
    else:
        if not is_managed(cluster.get("Tags")):
            raise not_managed_cluster_error(spec.identifier, "use")
        problem = cluster_state_problem(spec.identifier, cluster["ClusterStatus"])
        if problem:
            raise IacError(problem)
        ctx.console.info(f"cluster {spec.identifier}: exists ({cluster['ClusterStatus']}), "
                         "reused")
        if (cluster.get("NodeType"), cluster.get("NumberOfNodes")) != (spec.node_type,
                                                                       spec.num_nodes):
            ctx.console.warn(f"cluster {spec.identifier} has {cluster.get('NumberOfNodes')} x "
                             f"{cluster.get('NodeType')} but dwh.cfg asks for {spec.num_nodes} x "
                             f"{spec.node_type}; delete and create it again to change that")
    wait_until(cluster_state_check(redshift, spec.identifier, "cluster_available"),
               what=f"cluster {spec.identifier}", timeout_s=ctx.timeout_s,
               delay_s=CLUSTER_POLL_SECONDS, sleep=ctx.sleep, console=ctx.console,
               on_timeout="run `python iac_setup.py create` again to keep waiting")
    cluster = find_cluster(redshift, spec.identifier)
    if cluster is None:
        raise IacError(f"cluster {spec.identifier} disappeared while we waited for it")
    attached = [r.get("IamRoleArn") for r in cluster.get("IamRoles", [])]
    if role_arn not in attached:
        redshift.modify_cluster_iam_roles(ClusterIdentifier=spec.identifier,
                                          AddIamRoles=[role_arn])
        ctx.console.info(f"cluster {spec.identifier}: attached IAM role {role_arn}")
    ctx.console.info(f"cluster {spec.identifier}: available at "
                     f"{cluster['Endpoint']['Address']}:{cluster['Endpoint']['Port']}")
    return cluster


def delete_cluster(ctx: Context, cluster: dict, final_snapshot: bool) -> None:
    redshift = ctx.aws.client("redshift")
    identifier = cluster["ClusterIdentifier"]
    state = cluster["ClusterStatus"]
    if state in ("creating", "modifying", "rebooting", "resizing", "renaming"):
        ctx.console.info(f"cluster {identifier}: {state}; waiting until it can be deleted")
        wait_until(cluster_state_check(redshift, identifier, "cluster_available",
                                       fail_on_failed_state=False),
                   what=f"cluster {identifier}", timeout_s=ctx.timeout_s,
                   delay_s=CLUSTER_POLL_SECONDS, sleep=ctx.sleep, console=ctx.console,
                   on_timeout="run `python iac_setup.py delete` again")
        refreshed = find_cluster(redshift, identifier)
        state = refreshed["ClusterStatus"] if refreshed else "deleting"
    if state not in ("deleting", "final-snapshot"):
        params: dict = {"ClusterIdentifier": identifier}
        if final_snapshot:
            snapshot = f"{identifier}-final-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
            params.update(SkipFinalClusterSnapshot=False, FinalClusterSnapshotIdentifier=snapshot)
            ctx.console.info(f"cluster {identifier}: deleting, keeping final snapshot {snapshot} "
                             "(snapshot storage is billed until you delete it)")
        else:
            params["SkipFinalClusterSnapshot"] = True
            ctx.console.info(f"cluster {identifier}: deleting (no final snapshot)")
        try:
            redshift.delete_cluster(**params)
        except ClientError as exc:
            if error_code(exc) != "ClusterNotFound":
                raise
    wait_until(cluster_state_check(redshift, identifier, "cluster_deleted"),
               what=f"deletion of cluster {identifier}", timeout_s=ctx.timeout_s,
               delay_s=CLUSTER_POLL_SECONDS, sleep=ctx.sleep, console=ctx.console,
               on_timeout="run `python iac_setup.py delete` again to keep waiting")
    ctx.console.info(f"cluster {identifier}: deleted")


# --------------------------------------------------------------------------------------------
# Redshift Serverless
# --------------------------------------------------------------------------------------------

def get_namespace(serverless, name: str) -> dict | None:
    try:
        return serverless.get_namespace(namespaceName=name)["namespace"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def get_workgroup(serverless, name: str) -> dict | None:
    try:
        return serverless.get_workgroup(workgroupName=name)["workgroup"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def serverless_managed(serverless, arn: str) -> bool:
    return is_managed(serverless.list_tags_for_resource(resourceArn=arn).get("tags"))


def not_managed_serverless_error(kind: str, name: str, key: str, doing: str) -> IacError:
    return IacError(f"a Redshift Serverless {kind} named {name} already exists but was not "
                    f"created by iac_setup.py (no tag {MANAGED_BY[0]}={MANAGED_BY[1]}); "
                    f"refusing to {doing} it. Set another [DWH] {key}, or tag it to adopt it")


def _role_arns(namespace: dict) -> list[str]:
    # GetNamespace lists roles as strings, sometimes as "IamRole(applyStatus=..., iamRoleArn=arn)".
    arns = []
    for entry in namespace.get("iamRoles", []):
        match = re.search(r"arn:[^,)\s]+", str(entry))
        if match:
            arns.append(match.group(0))
    return arns


def serverless_cost(base_rpu: int) -> str:
    per_hour = base_rpu * SERVERLESS_USD_PER_RPU_HOUR
    return (f"about ${per_hour:.2f} per hour of query time at the base {base_rpu} RPU "
            f"(~${SERVERLESS_USD_PER_RPU_HOUR}/RPU-hour, approximate us-east-1 price, per second "
            "with a 60 s minimum per query); nothing while idle except storage")


def _namespace_check(serverless, name: str, want_gone: bool = False):
    def check() -> tuple[bool, str]:
        namespace = get_namespace(serverless, name)
        if namespace is None:
            return want_gone, "gone"
        state = namespace.get("status", "unknown")
        if not want_gone and state == "DELETING":
            raise IacError(f"Redshift Serverless namespace {name} is being deleted; wait until "
                           "`python iac_setup.py status --serverless` shows it gone, then "
                           "run create again")
        return (not want_gone and state == "AVAILABLE"), state
    return check


def _workgroup_check(serverless, name: str, want_gone: bool = False):
    def check() -> tuple[bool, str]:
        workgroup = get_workgroup(serverless, name)
        if workgroup is None:
            return want_gone, "gone"
        state = workgroup.get("status", "unknown")
        if not want_gone and state == "DELETING":
            raise IacError(f"Redshift Serverless workgroup {name} is being deleted; wait until "
                           "`python iac_setup.py status --serverless` shows it gone, then "
                           "run create again")
        return (not want_gone and state == "AVAILABLE"), state
    return check


def create_serverless(ctx: Context, role_arn: str, spec: ServerlessSpec, db: DbSpec,
                      password: str) -> dict:
    """Create the namespace and workgroup, or reuse ours; return the workgroup once AVAILABLE."""
    serverless = ctx.aws.client("redshift-serverless")
    tags = [{"key": MANAGED_BY[0], "value": MANAGED_BY[1]},
            {"key": PROJECT[0], "value": PROJECT[1]}]
    wait = dict(timeout_s=ctx.timeout_s, delay_s=SERVERLESS_POLL_SECONDS, sleep=ctx.sleep,
                console=ctx.console,
                on_timeout="run `python iac_setup.py create --serverless` again to keep waiting")

    namespace = get_namespace(serverless, spec.namespace)
    if namespace is None:
        serverless.create_namespace(
            namespaceName=spec.namespace, adminUsername=db.user, adminUserPassword=password,
            dbName=db.name, defaultIamRoleArn=role_arn, iamRoles=[role_arn], tags=tags)
        ctx.console.info(f"namespace {spec.namespace}: created")
    else:
        if not serverless_managed(serverless, namespace["namespaceArn"]):
            raise not_managed_serverless_error("namespace", spec.namespace,
                                               "SERVERLESS_NAMESPACE", "use")
        ctx.console.info(f"namespace {spec.namespace}: exists ({namespace.get('status')}), reused")
    wait_until(_namespace_check(serverless, spec.namespace),
               what=f"namespace {spec.namespace}", **wait)
    if namespace is not None and role_arn not in _role_arns(namespace):
        serverless.update_namespace(namespaceName=spec.namespace, defaultIamRoleArn=role_arn,
                                    iamRoles=sorted(set(_role_arns(namespace)) | {role_arn}))
        ctx.console.info(f"namespace {spec.namespace}: attached IAM role {role_arn}")
        wait_until(_namespace_check(serverless, spec.namespace),
                   what=f"namespace {spec.namespace}", **wait)

    workgroup = get_workgroup(serverless, spec.workgroup)
    if workgroup is None:
        group_id = default_security_group(ctx.aws.client("ec2"), ctx.aws.region)
        serverless.create_workgroup(
            workgroupName=spec.workgroup, namespaceName=spec.namespace,
            baseCapacity=spec.base_rpu, publiclyAccessible=True, port=db.port,
            securityGroupIds=[group_id], tags=tags)
        ctx.console.info(f"workgroup {spec.workgroup}: creating with base capacity "
                         f"{spec.base_rpu} RPU (usually a few minutes); "
                         f"{serverless_cost(spec.base_rpu)}")
    else:
        if not serverless_managed(serverless, workgroup["workgroupArn"]):
            raise not_managed_serverless_error("workgroup", spec.workgroup,
                                               "SERVERLESS_WORKGROUP", "use")
        if workgroup.get("namespaceName") != spec.namespace:
            raise IacError(f"workgroup {spec.workgroup} belongs to namespace "
                           f"{workgroup.get('namespaceName')}, not {spec.namespace}; fix [DWH] "
                           "SERVERLESS_NAMESPACE or SERVERLESS_WORKGROUP")
        ctx.console.info(f"workgroup {spec.workgroup}: exists ({workgroup.get('status')}), reused")
    wait_until(_workgroup_check(serverless, spec.workgroup),
               what=f"workgroup {spec.workgroup}", **wait)
    workgroup = get_workgroup(serverless, spec.workgroup)
    if workgroup is None:
        raise IacError(f"workgroup {spec.workgroup} disappeared while we waited for it")
    if not workgroup.get("publiclyAccessible", False):
        ctx.console.warn(f"workgroup {spec.workgroup} is not publicly accessible, so it cannot "
                         "be reached from outside its VPC: aws redshift-serverless "
                         f"update-workgroup --workgroup-name {spec.workgroup} "
                         "--publicly-accessible")
    endpoint = workgroup.get("endpoint") or {}
    ctx.console.info(f"workgroup {spec.workgroup}: AVAILABLE at {endpoint.get('address')}:"
                     f"{endpoint.get('port', workgroup.get('port'))}")
    return workgroup


def delete_serverless(ctx: Context, workgroup: dict | None, namespace: dict | None,
                      spec: ServerlessSpec, final_snapshot: bool) -> None:
    serverless = ctx.aws.client("redshift-serverless")
    wait = dict(timeout_s=ctx.timeout_s, delay_s=SERVERLESS_POLL_SECONDS, sleep=ctx.sleep,
                console=ctx.console,
                on_timeout="run `python iac_setup.py delete --serverless` again to keep waiting")
    if workgroup is not None:
        if workgroup.get("status") != "DELETING":
            serverless.delete_workgroup(workgroupName=spec.workgroup)
        ctx.console.info(f"workgroup {spec.workgroup}: deleting")
        wait_until(_workgroup_check(serverless, spec.workgroup, want_gone=True),
                   what=f"deletion of workgroup {spec.workgroup}", **wait)
        ctx.console.info(f"workgroup {spec.workgroup}: deleted")
    if namespace is not None:
        if namespace.get("status") != "DELETING":
            params = {"namespaceName": spec.namespace}
            if final_snapshot:
                snapshot = f"{spec.namespace}-final-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
                params["finalSnapshotName"] = snapshot
                ctx.console.info(f"namespace {spec.namespace}: keeping final snapshot {snapshot} "
                                 "(snapshot storage is billed until you delete it)")
            serverless.delete_namespace(**params)
        ctx.console.info(f"namespace {spec.namespace}: deleting")
        wait_until(_namespace_check(serverless, spec.namespace, want_gone=True),
                   what=f"deletion of namespace {spec.namespace}", **wait)
        ctx.console.info(f"namespace {spec.namespace}: deleted")


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def cmd_create(ctx: Context) -> int:
    cfg, console, aws = ctx.cfg, ctx.console, ctx.aws
    # 1. Validate everything the command needs before touching AWS.
    role_name = cfg.role_name()
    if ctx.args.serverless:
        spec = cfg.serverless()
        db = cfg.db(serverless=True)
    else:
        spec = cfg.cluster()
        db = cfg.db(serverless=False, node_type=spec.node_type)
        if spec.node_type.startswith("dc2."):
            console.warn(f"{spec.node_type}: DC2 node types are being retired by AWS (announced "
                         "April 2025) and new DC2 clusters are not offered everywhere; ra3.large "
                         "is the smallest current node type")
    password = cfg.password()
    console.add_secret(password)
    cidr = resolve_cidr(cfg, ctx.args.open_to_world, ctx.public_ip, console)

    # 2. The role Redshift assumes to read S3.
    role_arn = ensure_role(aws.client("iam"), role_name, console)

    # 3. The warehouse, waited for until it is available.
    if ctx.args.serverless:
        workgroup = create_serverless(ctx, role_arn, spec, db, password)
        endpoint = workgroup.get("endpoint") or {}
        host = endpoint.get("address")
        port = int(endpoint.get("port") or workgroup.get("port") or db.port)
        group_ids = list(workgroup.get("securityGroupIds") or [])
        marker = rule_marker("workgroup", spec.workgroup)
        what = f"workgroup {spec.workgroup}"
        cost = serverless_cost(spec.base_rpu)
    else:
        cluster = create_cluster(ctx, role_arn, spec, db, password)
        host = cluster["Endpoint"]["Address"]
        port = int(cluster["Endpoint"]["Port"])
        group_ids = cluster_group_ids(cluster)
        marker = rule_marker("cluster", spec.identifier)
        what = f"cluster {spec.identifier}"
        cost = describe_cluster_cost(cluster.get("NodeType", spec.node_type),
                                     int(cluster.get("NumberOfNodes") or spec.num_nodes))
    if not host:
        raise IacError(f"{what} has no endpoint address yet; run create again in a minute")

    # 4. Let the caller (and nobody else) reach the port.
    if not group_ids:
        raise IacError(f"{what} has no VPC security group to open port {port} on")
    ensure_ingress(aws.client("ec2"), group_ids[0], port, cidr, marker, console)

    # 5. Write HOST and ARN (and TARGET if asked) back into dwh.cfg, comments and all.
    updates = {("CLUSTER", "HOST"): host, ("IAM_ROLE", "ARN"): role_arn}
    if ctx.args.set_target:
        updates[("WAREHOUSE", "TARGET")] = "redshift"
    changed = write_cfg_values(cfg.path, updates)
    console.info(f"{cfg.label}: {'updated' if changed else 'already up to date:'} "
                 f"[CLUSTER] HOST = {host}, [IAM_ROLE] ARN = {role_arn}"
                 + (", [WAREHOUSE] TARGET = redshift" if ctx.args.set_target else ""))

    # 6. What next, and what it costs.
    target = Config(cfg.path).get("WAREHOUSE", "TARGET", required=False)
    console.info("")
    console.info(f"Ready: {what} in {aws.region}, {cost}.")
    step = 1
    if target != "redshift":
        console.info(f"  {step}. set [WAREHOUSE] TARGET = redshift in {cfg.label} "
                     "(or rerun create with --set-target)")
        step += 1
    config_arg = ("" if Path(ctx.args.config).resolve() == DEFAULT_CONFIG
                  else f" --config {ctx.args.config}")
    console.info(f"  {step}. python create_tables.py{config_arg}")
    console.info(f"  {step + 1}. python etl.py{config_arg}")
    flags = (" --serverless" if ctx.args.serverless else "") + config_arg
    console.info(f"When you are done: python iac_setup.py delete{flags}  (check with "
                 f"`python iac_setup.py status{flags}`)")
    return 0


def _cfg_line(cfg: Config, host: str | None, arn: str | None) -> str:
    current_host = cfg.get("CLUSTER", "HOST", required=False)
    current_arn = cfg.get("IAM_ROLE", "ARN", required=False)
    target = cfg.get("WAREHOUSE", "TARGET", required=False) or "(unset)"

    def state(current: str, actual: str | None) -> str:
        if actual is None:
            return "stale (points at nothing)" if current else "empty"
        return "up to date" if current == actual else "differs (run create to update)"

    return (f"[CLUSTER] HOST {state(current_host, host)}; [IAM_ROLE] ARN "
            f"{state(current_arn, arn)}; [WAREHOUSE] TARGET = {target}")


def _print_rules(console: Console, rules: list[Rule], marker: str) -> None:
    if not rules:
        console.info("  Ingress    no rule open to the warehouse port")
    for rule in rules:
        owner = "added by iac_setup.py" if rule.description == marker else "not iac_setup.py's"
        console.info(f"  Ingress    {rule.label()} ({owner})")
        if rule.cidr == "0.0.0.0/0":
            console.warn(f"{rule.label()} lets the whole internet reach the warehouse port")


def _status_role(ctx: Context) -> RoleInfo | None:
    role_name = ctx.cfg.role_name()
    info = inspect_role(ctx.aws.client("iam"), role_name)
    if info is None:
        ctx.console.info(f"  IAM role   {role_name}: not found")
    elif info.problems:
        ctx.console.info(f"  IAM role   {role_name}: exists but NOT iac_setup.py's: "
                         f"{'; '.join(info.problems)}")
    else:
        policy = S3_READ_POLICY if info.has_s3_policy else "no policy attached yet"
        ctx.console.info(f"  IAM role   {info.arn} (trusts {', '.join(info.trusted_services)}; "
                         f"{policy})")
    return info


def _status_cluster(ctx: Context) -> tuple[str | None, list[str], str]:
    """Print the cluster lines; return (endpoint host, security groups, rule marker)."""
    console = ctx.console
    identifier = ctx.cfg.cluster_identifier()
    marker = rule_marker("cluster", identifier)
    cluster = find_cluster(ctx.aws.client("redshift"), identifier)
    if cluster is None:
        console.info(f"  Cluster    {identifier}: not found (costs nothing)")
        return None, [], marker
    state = cluster["ClusterStatus"]
    owner = "" if is_managed(cluster.get("Tags")) else " (NOT created by iac_setup.py)"
    console.info(f"  Cluster    {identifier}: {state}{owner}")
    problem = cluster_state_problem(identifier, state)
    if problem and state != "paused":
        console.warn(problem)
    endpoint = cluster.get("Endpoint") or {}
    host = endpoint.get("Address")
    console.info(f"  Endpoint   {host}:{endpoint.get('Port')}" if host
                 else "  Endpoint   not assigned yet")
    nodes, node_type = int(cluster.get("NumberOfNodes") or 1), cluster.get("NodeType", "?")
    console.info(f"  Nodes      {nodes} x {node_type}")
    console.info("  Cost       paused: compute is not billed, storage still is" if state == "paused"
                 else f"  Cost       {describe_cluster_cost(node_type, nodes)}")
    return host, cluster_group_ids(cluster), marker


def _status_serverless(ctx: Context) -> tuple[str | None, list[str], str]:
    """Print the namespace and workgroup lines; return (host, security groups, rule marker)."""
    console = ctx.console
    spec = ctx.cfg.serverless()
    marker = rule_marker("workgroup", spec.workgroup)
    serverless = ctx.aws.client("redshift-serverless")
    namespace = get_namespace(serverless, spec.namespace)
    workgroup = get_workgroup(serverless, spec.workgroup)
    console.info(f"  Namespace  {spec.namespace}: "
                 + (namespace.get("status", "?") if namespace else "not found"))
    if workgroup is None:
        console.info(f"  Workgroup  {spec.workgroup}: not found")
        console.info("  Cost       nothing for compute"
                     + ("; the namespace's storage is still billed" if namespace else ""))
        return None, [], marker
    endpoint = workgroup.get("endpoint") or {}
    access = "publicly accessible" if workgroup.get("publiclyAccessible") else "VPC only"
    console.info(f"  Workgroup  {spec.workgroup}: {workgroup.get('status')}, base capacity "
                 f"{workgroup.get('baseCapacity')} RPU, {access}")
    console.info(f"  Endpoint   {endpoint.get('address')}:"
                 f"{endpoint.get('port', workgroup.get('port'))}")
    rpu = int(workgroup.get("baseCapacity") or spec.base_rpu)
    console.info(f"  Cost       {serverless_cost(rpu)}")
    return endpoint.get("address"), list(workgroup.get("securityGroupIds") or []), marker


def cmd_status(ctx: Context) -> int:
    cfg, console = ctx.cfg, ctx.console
    mode = "Redshift Serverless" if ctx.args.serverless else "provisioned cluster"
    console.info(f"Sparkify warehouse, {mode}, region {ctx.aws.region} ({cfg.path})")
    role = _status_role(ctx)
    if ctx.args.serverless:
        host, group_ids, marker = _status_serverless(ctx)
    else:
        host, group_ids, marker = _status_cluster(ctx)

    ec2 = ctx.aws.client("ec2")
    port = _port_of(ctx)
    rules = [r for r in all_ingress_rules(ec2, group_ids)
             if r.description == marker or r.covers(port)] if group_ids else []
    rules += [r for r in marked_rules(ec2, marker) if r not in rules]  # left behind elsewhere
    _print_rules(console, rules, marker)
    console.info(f"  {cfg.label:<10} {_cfg_line(cfg, host, role.arn if role else None)}")
    console.info("  (the provisioned cluster is shown without --serverless)" if ctx.args.serverless
                 else "  (Redshift Serverless resources are shown with --serverless)")
    return 0


def _port_of(ctx: Context) -> int:
    try:
        return ctx.cfg.get_int("CLUSTER", "DB_PORT")
    except ConfigError:
        return 5439


def confirm(console: Console, plan: list[str], assume_yes: bool) -> bool:
    console.info("This will delete:")
    for line in plan:
        console.info(f"  - {line}")
    if assume_yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("refusing to delete without --yes: standard input is not a terminal, "
                         "so nobody can confirm")
    print("Type 'yes' to delete all of the above: ", end="", flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer != "yes":
        console.info("Not confirmed; nothing was deleted.")
        return False
    return True


@dataclasses.dataclass
class Teardown:
    """What ``delete`` found for one deployment kind, and how to remove it."""

    items: list[str]            # what will be deleted, for the confirmation
    marker: str                 # description of our ingress rules
    host: str | None            # its endpoint, to clear from dwh.cfg
    absent: str                 # "no cluster X", for the nothing-to-delete message
    remove: Callable[[], None]  # deletes the warehouse itself


def _snapshot_note(final_snapshot: bool) -> str:
    return "(final snapshot kept)" if final_snapshot else "(no final snapshot)"


def _find_cluster_teardown(ctx: Context) -> Teardown:
    identifier = ctx.cfg.cluster_identifier()
    cluster = find_cluster(ctx.aws.client("redshift"), identifier)
    if cluster and not is_managed(cluster.get("Tags")):
        raise not_managed_cluster_error(identifier, "delete")
    items = []
    if cluster:
        items.append(f"Redshift cluster {identifier} ({cluster['ClusterStatus']}, "
                     f"{cluster.get('NumberOfNodes')} x {cluster.get('NodeType')}) and all its "
                     f"data {_snapshot_note(ctx.args.final_snapshot)}")

    def remove() -> None:
        if cluster:
            delete_cluster(ctx, cluster, ctx.args.final_snapshot)

    return Teardown(items, rule_marker("cluster", identifier),
                    ((cluster or {}).get("Endpoint") or {}).get("Address"),
                    f"no cluster {identifier}", remove)


def _find_serverless_teardown(ctx: Context) -> Teardown:
    spec = ctx.cfg.serverless()
    serverless = ctx.aws.client("redshift-serverless")
    workgroup = get_workgroup(serverless, spec.workgroup)
    namespace = get_namespace(serverless, spec.namespace)
    if workgroup and not serverless_managed(serverless, workgroup["workgroupArn"]):
        raise not_managed_serverless_error("workgroup", spec.workgroup, "SERVERLESS_WORKGROUP",
                                           "delete")
    if namespace and not serverless_managed(serverless, namespace["namespaceArn"]):
        raise not_managed_serverless_error("namespace", spec.namespace, "SERVERLESS_NAMESPACE",
                                           "delete")
    items = []
    if workgroup:
        items.append(f"Redshift Serverless workgroup {spec.workgroup} ({workgroup.get('status')})")
    if namespace:
        items.append(f"Redshift Serverless namespace {spec.namespace} and all its data "
                     f"{_snapshot_note(ctx.args.final_snapshot)}")

    def remove() -> None:
        delete_serverless(ctx, workgroup, namespace, spec, ctx.args.final_snapshot)

    return Teardown(items, rule_marker("workgroup", spec.workgroup),
                    ((workgroup or {}).get("endpoint") or {}).get("address"),
                    f"no workgroup {spec.workgroup}, no namespace {spec.namespace}", remove)


def cmd_delete(ctx: Context) -> int:
    cfg, console, aws = ctx.cfg, ctx.console, ctx.aws
    role_name = cfg.role_name()
    iam, ec2 = aws.client("iam"), aws.client("ec2")

    # 1. Find what is there, refusing to touch what is not ours.
    found = _find_serverless_teardown(ctx) if ctx.args.serverless else _find_cluster_teardown(ctx)
    rules = marked_rules(ec2, found.marker)
    role = None if ctx.args.keep_role else inspect_role(iam, role_name)
    our_role = role if role is not None and not role.problems else None
    plan = ([f"ingress rule {rule.label()}" for rule in rules] + found.items
            + ([f"IAM role {role_name} (and its {S3_READ_POLICY} attachment)"] if our_role else []))
    if not plan:
        if role is not None:
            raise foreign_role_error(role, "delete")
        other = ("the provisioned cluster: run delete without --serverless"
                 if ctx.args.serverless else "Redshift Serverless: run delete --serverless")
        console.info(f"Nothing to delete in {aws.region}: {found.absent}, no ingress rule marked "
                     f"'{found.marker}'"
                     + ("" if ctx.args.keep_role else f", no IAM role {role_name}")
                     + f". (For {other}.)")
        return 0

    # 2. Ask.
    if not confirm(console, plan, ctx.args.yes):
        return 1

    # 3. Close the door, remove the warehouse, then the role.
    for rule in rules:
        revoke(ec2, rule)
        console.info(f"ingress: removed {rule.label()}")
    found.remove()
    if our_role:
        delete_role(iam, our_role, console)

    # 4. Clear the dwh.cfg values that now point at nothing.
    updates = {}
    if found.host and cfg.get("CLUSTER", "HOST", required=False) == found.host:
        updates[("CLUSTER", "HOST")] = ""
    if our_role and cfg.get("IAM_ROLE", "ARN", required=False) == our_role.arn:
        updates[("IAM_ROLE", "ARN")] = ""
    if updates and write_cfg_values(cfg.path, updates):
        console.info(f"{cfg.label}: cleared " + ", ".join(f"[{s}] {k}" for s, k in updates))
    if cfg.get("WAREHOUSE", "TARGET", required=False) == "redshift":
        console.info(f"{cfg.label}: [WAREHOUSE] TARGET is still 'redshift'; set it back to "
                     "'local' to keep working without AWS")
    if role is not None and our_role is None:
        raise foreign_role_error(role, "delete")
    console.info("Done: nothing created by iac_setup.py is left running"
                 + (" (the final snapshot is still stored and billed)."
                    if ctx.args.final_snapshot else "."))
    return 0


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=str(DEFAULT_CONFIG), metavar="PATH",
                        help="the configuration file (default: dwh.cfg next to this script)")
    common.add_argument("--profile", metavar="NAME",
                        help="AWS named profile (overrides [AWS] PROFILE; AWS_PROFILE works too)")
    common.add_argument("--region", metavar="NAME", help="AWS region (overrides [AWS] REGION)")
    common.add_argument("--serverless", action="store_true",
                        help="work on the Redshift Serverless namespace and workgroup named in "
                             "[DWH] instead of the provisioned cluster")

    parser = argparse.ArgumentParser(
        prog="iac_setup.py",
        description="Stand up, inspect and tear down the Sparkify Redshift warehouse "
                    "(a provisioned cluster, or Redshift Serverless with --serverless).",
        epilog="Exit codes: 0 done, 1 AWS refused or something is in the way, 2 bad dwh.cfg "
               "or usage, 130 interrupted. Walk-through, costs and the IAM policy you need: "
               "docs/iac.md.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    create = commands.add_parser(
        "create", parents=[common], help="create or finish creating the warehouse",
        description="Create (or reuse) the IAM role, the cluster or Serverless workgroup, wait "
                    "until it is available, open its port to your IP, and write [CLUSTER] HOST "
                    "and [IAM_ROLE] ARN into dwh.cfg. Safe to rerun.")
    create.add_argument("--open-to-world", action="store_true",
                        help="allow connections from 0.0.0.0/0 instead of your own IP "
                             "(not recommended; prints a warning)")
    create.add_argument("--set-target", action="store_true",
                        help="also set [WAREHOUSE] TARGET = redshift in dwh.cfg")
    create.add_argument("--timeout", type=_positive_minutes, default=DEFAULT_TIMEOUT_MINUTES,
                        metavar="MINUTES", help="how long to wait for the warehouse "
                                                f"(default {DEFAULT_TIMEOUT_MINUTES:g})")

    commands.add_parser(
        "status", parents=[common], help="show what exists and what it costs",
        description="Show the IAM role, the cluster (or with --serverless the namespace and "
                    "workgroup), its state, endpoint, size, ingress rules and approximate cost.")

    delete = commands.add_parser(
        "delete", parents=[common], help="delete everything create made",
        description="Remove the ingress rule, the cluster (or Serverless workgroup and "
                    "namespace) and the IAM role. Asks for confirmation unless --yes.")
    delete.add_argument("-y", "--yes", action="store_true",
                        help="do not ask for confirmation (required when stdin is not a terminal)")
    delete.add_argument("--final-snapshot", action="store_true",
                        help="keep a final snapshot (billed until you delete it)")
    delete.add_argument("--keep-role", action="store_true",
                        help="keep the IAM role (e.g. when the other deployment kind uses it)")
    delete.add_argument("--timeout", type=_positive_minutes, default=DEFAULT_TIMEOUT_MINUTES,
                        metavar="MINUTES", help="how long to wait for the deletion "
                                                f"(default {DEFAULT_TIMEOUT_MINUTES:g})")
    return parser


COMMANDS = {"create": cmd_create, "status": cmd_status, "delete": cmd_delete}


def main(argv: list[str] | None = None, *, aws: Aws | None = None,
         sleep: Callable[[float], None] | None = None,
         public_ip: Callable[[], str | None] | None = None) -> int:
    """Run one command. ``aws``, ``sleep`` and ``public_ip`` are for tests."""
    args = build_parser().parse_args(argv)
    if not hasattr(args, "timeout"):
        args.timeout = DEFAULT_TIMEOUT_MINUTES
    console = Console()
    try:
        cfg = Config(Path(args.config))
        settings = cfg.aws()
        console.add_secret(settings.key)
        console.add_secret(settings.secret)
        console.add_secret(cfg.get("CLUSTER", "DB_PASSWORD", required=False))
        if aws is None:
            aws = Aws(make_session(settings, args.profile, args.region, console))
        ctx = Context(args=args, cfg=cfg, aws=aws, console=console,
                      sleep=sleep or time.sleep, public_ip=public_ip or detect_public_ip)
        return COMMANDS[args.command](ctx)
    except (ConfigError, UsageError) as exc:
        console.error(str(exc))
        return 2
    except IacError as exc:
        console.error(str(exc))
        return 1
    except ClientError as exc:
        console.error(describe_client_error(exc, aws))
        return 1
    except (botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.CredentialRetrievalError):
        console.error("no usable AWS credentials: run `aws configure` or `aws sso login`, pass "
                      "--profile or set [AWS] PROFILE, or export AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY")
        return 1
    except (botocore.exceptions.SSOError, botocore.exceptions.TokenRetrievalError):
        console.error("your AWS SSO session is missing or expired: run `aws sso login"
                      + (f" --profile {args.profile}" if args.profile else "") + "` and retry")
        return 1
    except (botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError) as exc:
        console.error(f"cannot reach AWS ({exc}); check your network and [AWS] REGION")
        return 1
    except botocore.exceptions.ProfileNotFound as exc:
        console.error(str(profile_error(exc.kwargs.get("profile"))))
        return 2
    except botocore.exceptions.BotoCoreError as exc:
        console.error(f"AWS SDK error: {exc}")
        return 1
    except KeyboardInterrupt:
        console.error("interrupted; run the same command again to finish (it is idempotent)")
        return 130


if __name__ == "__main__":
    sys.exit(main())

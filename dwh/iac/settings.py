"""dwh.cfg as iac_setup.py needs it: [AWS], [DWH] and [CLUSTER], validated.

Read with dwh.config's ConfigReader, exactly as create_tables.py and etl.py read it, so the
password the warehouse is created with is the one those scripts connect with. Each getter
validates only what its command needs: a broken CIDR or a missing password never stops
``status`` or ``delete``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from dwh.config import IDENTIFIER_PATTERN, REGION_PATTERN, ConfigError, ConfigReader, db_password

_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
_CLUSTER_IDENTIFIER = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)")
_NODE_TYPE = re.compile(r"[a-z0-9]+\.[a-z0-9]+")
_SERVERLESS_NAME = re.compile(r"[a-z0-9-]{3,64}")
#: What Redshift accepts and dwh/config.py accepts too: an IDENTIFIER_PATTERN match that starts with a letter;
#: the admin user may not be called 'public'.
_DB_NAME = re.compile(r"(?=[a-z])" + IDENTIFIER_PATTERN.pattern)
_DB_USER = re.compile(r"(?!public\Z)" + _DB_NAME.pattern)
_DB_NAME_RULE = "1-63 lowercase letters, digits, _ or $, starting with a letter"

CLUSTER_TYPES = ("single-node", "multi-node")
#: Regions where Serverless base capacity may exceed 512 RPUs (Compute capacity for Amazon Redshift
#: Serverless, https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-capacity.html).
EXTENDED_RPU_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1")
DEFAULT_PORT = 5439


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


def base_capacity_problem(rpu: int, region: str) -> str:
    """Why AWS would refuse this Serverless base capacity in this region, or '' if it accepts it.

    AWS accepts 4, 8 to 512 in steps of 8, and 512 to 1024 in steps of 32 in EXTENDED_RPU_REGIONS only.
    """
    allowed = "4, a multiple of 8 from 8 to 512, or a multiple of 32 from 512 to 1024"
    extended = ", ".join(EXTENDED_RPU_REGIONS)
    if rpu == 4 or (8 <= rpu <= 512 and rpu % 8 == 0):
        return ""
    if 512 < rpu <= 1024 and rpu % 32 == 0:
        if region in EXTENDED_RPU_REGIONS:
            return ""
        return (
            f"must be 4 or a multiple of 8 from 8 to 512 in {region}, got {rpu} "
            f"(above 512 RPUs, in multiples of 32 up to 1024, only in {extended})"
        )
    return f"must be {allowed} (above 512 only in {extended}), got {rpu}"


class IacConfig(ConfigReader):
    """dwh.cfg with typed getters for the sections iac_setup.py reads."""

    def region(self) -> str:
        return self.matching("AWS", "REGION", REGION_PATTERN, "an AWS region such as us-west-2", must="be")

    def aws(self) -> AwsSettings:
        region = self.region()
        profile = self.get("AWS", "PROFILE", default="") or None
        key = self.get("AWS", "KEY", default="") or None
        secret = self.get("AWS", "SECRET", default="") or None
        if bool(key) != bool(secret):
            missing = "SECRET" if key else "KEY"
            raise self.fail(
                "AWS", missing, "is empty but its partner is set: set both KEY and SECRET, or neither (preferred)"
            )
        if key and profile:
            raise self.fail("AWS", "PROFILE", "and KEY/SECRET are both set: use one of them")
        return AwsSettings(region=region, profile=profile, key=key, secret=secret)

    def role_name(self) -> str:
        return self.matching(
            "DWH", "IAM_ROLE_NAME", _ROLE_NAME, "1-64 letters, digits or +=,.@_- characters", must="be"
        )

    def cluster_identifier(self) -> str:
        return self.matching(
            "DWH",
            "CLUSTER_IDENTIFIER",
            _CLUSTER_IDENTIFIER,
            "1-63 lowercase letters, digits or hyphens, start with a letter, without '--' or a trailing '-'",
            self.required("DWH", "CLUSTER_IDENTIFIER").lower(),
            must="be",
        )

    def cluster(self) -> ClusterSpec:
        ident = self.cluster_identifier()
        ctype = self.choice("DWH", "CLUSTER_TYPE", CLUSTER_TYPES)
        nodes = self.integer("DWH", "NUM_NODES")
        if ctype == "single-node" and nodes != 1:
            raise self.fail(
                "DWH",
                "NUM_NODES",
                f"must be 1 for a single-node cluster, got {nodes} (or set CLUSTER_TYPE = multi-node)",
            )
        if ctype == "multi-node" and nodes < 2:
            raise self.fail("DWH", "NUM_NODES", f"must be at least 2 for a multi-node cluster, got {nodes}")
        node_type = self.matching("DWH", "NODE_TYPE", _NODE_TYPE, "ra3.large")
        return ClusterSpec(ident, ctype, nodes, node_type)

    def serverless(self) -> ServerlessSpec:
        namespace, workgroup = (
            self.matching("DWH", key, _SERVERLESS_NAME, "3-64 lowercase letters, digits or hyphens", must="be")
            for key in ("SERVERLESS_NAMESPACE", "SERVERLESS_WORKGROUP")
        )
        rpu = self.integer("DWH", "SERVERLESS_BASE_RPU", minimum=4, maximum=1024, default=8)
        problem = base_capacity_problem(rpu, self.region())
        if problem:
            raise self.fail("DWH", "SERVERLESS_BASE_RPU", problem)
        return ServerlessSpec(namespace, workgroup, rpu)

    def db(self, *, serverless: bool, node_type: str = "") -> DbSpec:
        name = self.matching("CLUSTER", "DB_NAME", _DB_NAME, _DB_NAME_RULE, must="be")
        user = self.matching("CLUSTER", "DB_USER", _DB_USER, _DB_NAME_RULE, must="be")
        port = self.integer("CLUSTER", "DB_PORT")
        if serverless or node_type.startswith("ra3."):
            if not (5431 <= port <= 5455 or 8191 <= port <= 8215):
                what = "Redshift Serverless" if serverless else "RA3 clusters"
                raise self.fail("CLUSTER", "DB_PORT", f"must be within 5431-5455 or 8191-8215 for {what}, got {port}")
        elif not 1150 <= port <= 65535:
            raise self.fail("CLUSTER", "DB_PORT", f"must be within 1150-65535, got {port}")
        return DbSpec(name, user, port)

    def db_port_or_default(self) -> int:
        """[CLUSTER] DB_PORT if it is a number, else 5439: for status, which validates nothing."""
        try:
            return self.integer("CLUSTER", "DB_PORT")
        except ConfigError:
            return DEFAULT_PORT

    def password(self) -> str:
        """The admin password, if it meets Redshift's rules (the error never shows it)."""
        password, source = db_password(self)
        problems = []
        if not 8 <= len(password) <= 64:
            problems.append("8-64 characters")
        if not (re.search(r"[A-Z]", password) and re.search(r"[a-z]", password) and re.search(r"\d", password)):
            problems.append("an upper-case letter, a lower-case letter and a digit")
        if any(ch in "'\"\\/@ " or not 33 <= ord(ch) <= 126 for ch in password):
            problems.append("printable ASCII without ' \" \\ / @ or spaces")
        if problems:
            raise ConfigError(
                f"{self.path.name}: {source} does not meet Redshift's password rules; it needs {', '.join(problems)}"
            )
        return password

    def allowed_cidr(self) -> str:
        raw = self.get("DWH", "ALLOWED_CIDR", default="")
        if not raw:
            return ""
        try:
            network = ipaddress.ip_network(raw, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(raw, strict=False)
            except ValueError:
                raise self.fail(
                    "DWH", "ALLOWED_CIDR", f"must be an IPv4 CIDR such as 203.0.113.7/32, got {raw!r}"
                ) from None
            raise self.fail(
                "DWH", "ALLOWED_CIDR", f"has host bits set: {raw!r} is not a network address (did you mean .../32?)"
            ) from None
        if network.version != 4:
            raise self.fail("DWH", "ALLOWED_CIDR", f"must be an IPv4 CIDR, got {raw!r}")
        if network.prefixlen == 0:
            raise self.fail(
                "DWH",
                "ALLOWED_CIDR",
                "is 0.0.0.0/0, which opens the warehouse to "
                "the whole internet; leave it empty (your own "
                "IP) or use `create --open-to-world` if you "
                "really mean it",
            )
        return str(network)

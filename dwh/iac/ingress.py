"""Who may reach the warehouse port: the caller's public IPv4 /32 (or [DWH] ALLOWED_CIDR, or with
--open-to-world anyone) as one rule on its security group, described with rule_marker()."""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.request
from collections.abc import Callable

from botocore.exceptions import ClientError

from dwh.config import ConfigError
from dwh.iac.console import Console
from dwh.iac.errors import IacError, error_code
from dwh.iac.settings import IacConfig

PUBLIC_IP_URL = "https://checkip.amazonaws.com"


def detect_public_ip(timeout: float = 5.0) -> str | None:
    """The caller's public IPv4 address as AWS sees it, or None if it cannot be found."""
    try:
        with urllib.request.urlopen(PUBLIC_IP_URL, timeout=timeout) as response:
            text = response.read(64).decode("ascii", "replace").strip()
        return str(ipaddress.IPv4Address(text))
    except (OSError, ValueError):
        return None


def resolve_cidr(cfg: IacConfig, open_to_world: bool, public_ip: Callable[[], str | None], console: Console) -> str:
    """The CIDR allowed to reach the warehouse port: the flag, ALLOWED_CIDR, or our IP /32."""
    if open_to_world:
        console.warn(
            "--open-to-world: the warehouse port will accept connections from ANY "
            "address on the internet (0.0.0.0/0); only the password protects it. "
            "Run `python iac_setup.py delete` as soon as you are done."
        )
        return "0.0.0.0/0"
    configured = cfg.allowed_cidr()
    if configured:
        return configured
    address = public_ip()
    if not address:
        raise ConfigError(
            f"{cfg.path.name}: [DWH] ALLOWED_CIDR is empty and your public IPv4 "
            f"address could not be determined ({PUBLIC_IP_URL} did not answer); "
            "set ALLOWED_CIDR, e.g. 203.0.113.7/32"
        )
    return f"{address}/32"


@dataclasses.dataclass(frozen=True)
class Rule:
    group_id: str
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str
    description: str

    def label(self) -> str:
        ports = f"{self.from_port}" if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        proto = "all traffic" if self.protocol == "-1" else f"{self.protocol} {ports}"
        return f"{proto} from {self.cidr} on {self.group_id}"

    def covers(self, port: int) -> bool:
        return self.protocol == "-1" or (
            self.protocol == "tcp" and (self.from_port or 0) <= port <= (self.to_port or 0)
        )


def _rules_of(group: dict) -> list[Rule]:
    rules = []
    for perm in group.get("IpPermissions", []):
        for ip_range in perm.get("IpRanges", []):
            rules.append(
                Rule(
                    group["GroupId"],
                    perm.get("IpProtocol", ""),
                    perm.get("FromPort"),
                    perm.get("ToPort"),
                    ip_range.get("CidrIp", ""),
                    ip_range.get("Description", ""),
                )
            )
    return rules


def all_ingress_rules(ec2, group_ids: list[str] | None = None) -> list[Rule]:
    kwargs = {"GroupIds": group_ids} if group_ids else {}
    paginator = ec2.get_paginator("describe_security_groups")
    return [
        rule for page in paginator.paginate(**kwargs) for group in page["SecurityGroups"] for rule in _rules_of(group)
    ]


def marked_rules(ec2, marker: str) -> list[Rule]:
    return [rule for rule in all_ingress_rules(ec2) if rule.description == marker]


def revoke(ec2, rule: Rule) -> None:
    permission: dict[str, object] = {"IpProtocol": rule.protocol, "IpRanges": [{"CidrIp": rule.cidr}]}
    if rule.protocol != "-1":
        permission.update(FromPort=rule.from_port, ToPort=rule.to_port)
    try:
        ec2.revoke_security_group_ingress(GroupId=rule.group_id, IpPermissions=[permission])
    except ClientError as exc:
        if error_code(exc) not in ("InvalidPermission.NotFound", "InvalidGroup.NotFound"):
            raise


def ensure_ingress(ec2, group_id: str, port: int, cidr: str, marker: str, console: Console) -> None:
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
        console.info(
            f"ingress: already allowed by {existing[0].label()} (a rule iac_setup.py "
            "did not add; it will leave it alone)"
        )
        return
    try:
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": port,
                    "ToPort": port,
                    "IpRanges": [{"CidrIp": cidr, "Description": marker}],
                }
            ],
        )
    except ClientError as exc:
        if error_code(exc) != "InvalidPermission.Duplicate":
            raise
    console.info(f"ingress: opened {wanted.label()}")


def default_security_group(ec2, region: str) -> str:
    """The 'default' security group of the region's default VPC."""
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise IacError(
            f"there is no default VPC in {region}; create one with "
            f"`aws ec2 create-default-vpc --region {region}` and run create again"
        )
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    if not groups:
        raise IacError(f"the default VPC {vpcs[0]['VpcId']} has no 'default' security group")
    return groups[0]["GroupId"]


def show_rules(ec2, group_ids: list[str], port: int, marker: str, console: Console) -> None:
    """The status lines for the rules open to ``port``, ours (also left behind elsewhere) or not."""
    rules = (
        [r for r in all_ingress_rules(ec2, group_ids) if r.description == marker or r.covers(port)] if group_ids else []
    )
    rules += [r for r in marked_rules(ec2, marker) if r not in rules]  # left behind elsewhere
    if not rules:
        console.info("  Ingress    no rule open to the warehouse port")
    for rule in rules:
        owner = "added by iac_setup.py" if rule.description == marker else "not iac_setup.py's"
        console.info(f"  Ingress    {rule.label()} ({owner})")
        if rule.cidr == "0.0.0.0/0":
            console.warn(f"{rule.label()} lets the whole internet reach the warehouse port")

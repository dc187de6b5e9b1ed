"""The IAM role Redshift assumes to read S3: trusted by Redshift only, AWS-managed
AmazonS3ReadOnlyAccess attached and nothing else. A role with any more is not ours."""

from __future__ import annotations

import dataclasses
import json
import urllib.parse

from botocore.exceptions import ClientError

from dwh.iac.console import Console
from dwh.iac.errors import IacError, error_code
from dwh.iac.ownership import our_tags

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
        return s3_policy_arn(self.partition)

    @property
    def has_s3_policy(self) -> bool:
        return any(p["PolicyArn"] == self.s3_policy_arn for p in self.attached)


def s3_policy_arn(partition: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{S3_READ_POLICY}"


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
    """The role named ``name`` and what makes it not ours (RoleInfo.problems), or None."""
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    services, problems = _trust_problems(role.get("AssumeRolePolicyDocument", {}))
    attached = [
        p
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        for p in page["AttachedPolicies"]
    ]
    inline = [
        p for page in iam.get_paginator("list_role_policies").paginate(RoleName=name) for p in page["PolicyNames"]
    ]
    info = RoleInfo(name, role["Arn"], services, attached, inline, problems)
    others = [p["PolicyName"] for p in attached if p["PolicyArn"] != info.s3_policy_arn]
    if others:
        problems.append(f"it has other policies attached ({', '.join(others)})")
    if inline:
        problems.append(f"it has inline policies ({', '.join(inline)})")
    return info


def foreign_role_error(info: RoleInfo, doing: str) -> IacError:
    return IacError(
        f"IAM role {info.name} exists but is not the role iac_setup.py manages: "
        f"{'; '.join(info.problems)}. Refusing to {doing} it: set another "
        "[DWH] IAM_ROLE_NAME, or fix or delete that role yourself"
    )


def ensure_role(iam, name: str, console: Console) -> str:
    """The ARN of a role Redshift can assume with S3 read-only access, created if needed."""
    info = inspect_role(iam, name)
    if info is None:
        role = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Lets Amazon Redshift read S3 for the Sparkify COPY (iac_setup.py)",
            Tags=our_tags(),
        )["Role"]
        partition = role["Arn"].split(":")[1]
        iam.attach_role_policy(RoleName=name, PolicyArn=s3_policy_arn(partition))
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


def show_role(iam, name: str, console: Console) -> RoleInfo | None:
    """The status line for the role; returns what inspect_role found."""
    info = inspect_role(iam, name)
    if info is None:
        console.info(f"  IAM role   {name}: not found")
    elif info.problems:
        console.info(f"  IAM role   {name}: exists but NOT iac_setup.py's: {'; '.join(info.problems)}")
    else:
        policy = S3_READ_POLICY if info.has_s3_policy else "no policy attached yet"
        console.info(f"  IAM role   {info.arn} (trusts {', '.join(info.trusted_services)}; {policy})")
    return info

"""``create --auth iam``: dwh.cfg set to log in with temporary credentials, and the IAM statement that allows it.

What create writes: on a provisioned cluster ``IAM_LOGIN = db_user``, so the scripts log in as
the admin user create made ([CLUSTER] DB_USER), exactly as with a password, through
GetClusterCredentials; on Serverless ``IAM_LOGIN = identity`` (GetCredentials issues credentials
for the caller's own IAM identity only). The statement is printed, never attached: granting
permissions to the caller is the account administrator's call.
"""

from __future__ import annotations

import json

from dwh.iac.console import Console
from dwh.iac.settings import DbSpec


def login_keys(auth: str, serverless: bool) -> dict[tuple[str, str], str]:
    """The [CLUSTER] keys ``create --auth`` writes into dwh.cfg."""
    if auth != "iam":
        return {("CLUSTER", "AUTH"): auth}
    return {("CLUSTER", "AUTH"): "iam", ("CLUSTER", "IAM_LOGIN"): "identity" if serverless else "db_user"}


def login_statement(*, region: str, account: str, name: str, db: DbSpec, workgroup_arn: str | None = None) -> dict:
    """The least-privilege IAM statement the caller needs to get the credentials create set up.

    A cluster: redshift:GetClusterCredentials on the admin user's dbuser ARN and the database's
    dbname ARN. Serverless: redshift-serverless:GetCredentials on the workgroup's ARN.
    """
    if workgroup_arn:
        return {
            "Sid": "SparkifyDatabaseLogin",
            "Effect": "Allow",
            "Action": "redshift-serverless:GetCredentials",
            "Resource": workgroup_arn,
        }
    prefix = f"arn:aws:redshift:{region}:{account}"
    return {
        "Sid": "SparkifyDatabaseLogin",
        "Effect": "Allow",
        "Action": "redshift:GetClusterCredentials",
        "Resource": [f"{prefix}:dbuser:{name}/{db.user}", f"{prefix}:dbname:{name}/{db.name}"],
    }


def show_login_statement(console: Console, statement: dict) -> None:
    console.info(
        "AUTH = iam: no database password is stored; your AWS identity needs this IAM statement "
        "(see docs/iac.md, Connecting with IAM):"
    )
    for line in json.dumps(statement, indent=2).splitlines():
        console.info(f"  {line}")

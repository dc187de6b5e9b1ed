"""Temporary Redshift database credentials from the caller's IAM identity ([CLUSTER] AUTH = iam).

No database password is stored anywhere: before each connection, AWS issues a user name and a
password valid for DURATION_SECONDS (900, the API's minimum and default):

* a provisioned cluster: GetClusterCredentialsWithIAM, whose database user is the caller's IAM
  identity (``IAM:name``, ``IAMR:role``); or, with ``IAM_LOGIN = db_user``, GetClusterCredentials
  for ``[CLUSTER] DB_USER`` (needed to log in as an existing user such as the admin user);
* Redshift Serverless: GetCredentials for the workgroup (identity only: it takes no user name).

A process keeps what AWS issued per warehouse and asks again when fewer than REFRESH_MARGIN
seconds are left (or AWS's NextRefreshTime has passed), so each new connection or retry logs in
with a live password however long the run. The password is "temporary authorization to log in"
(API reference): it matters at login, not for a session already open. The credentials are never
logged or put into an error message. boto3 is imported here, on the IAM path only.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dwh.config import ConfigError, Connection, IamLogin
from dwh.errors import WarehouseError

DURATION_SECONDS = 900
REFRESH_MARGIN = 300
_DENIED = ("AccessDenied", "AccessDeniedException", "AccessDeniedFault", "UnauthorizedOperation")
_NOT_FOUND = ("ClusterNotFound", "ClusterNotFoundFault", "ResourceNotFoundException")
_REJECTED = ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "ExpiredToken")


@dataclass
class _Issued:
    user: str
    password: str = field(repr=False)
    refresh_at: float


class IamCredentials:
    """The temporary user and password for one warehouse, asked of AWS again when near expiry.

    Calling it returns psycopg2's ``user`` and ``password`` keywords. ``clock`` is for tests, and
    so is reaching ``client`` (made on first use), which they wrap in botocore's Stubber.
    """

    def __init__(self, login: IamLogin, dbname: str, clock: Callable[[], float] = time.time):
        self.login = login
        self.dbname = dbname
        self.clock = clock
        self.calls = 0
        self._client: Any = None
        self._issued: _Issued | None = None
        self._lock = threading.Lock()

    @property
    def action(self) -> str:
        """The IAM action this warehouse's credentials need."""
        if self.login.serverless:
            return "redshift-serverless:GetCredentials"
        return "redshift:GetClusterCredentials" if self.login.db_user else "redshift:GetClusterCredentialsWithIAM"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            import botocore.exceptions

            try:
                session = boto3.session.Session(profile_name=self.login.profile, region_name=self.login.region)
            except botocore.exceptions.ProfileNotFound as exc:
                raise ConfigError(
                    f"the AWS profile {exc.kwargs.get('profile')!r} ([AWS] PROFILE or AWS_PROFILE) is not in your "
                    "AWS config (aws configure list-profiles shows them)"
                ) from None
            self._client = session.client("redshift-serverless" if self.login.serverless else "redshift")
        return self._client

    def __call__(self) -> dict[str, str]:
        with self._lock:
            if self._issued is None or self.clock() >= self._issued.refresh_at:
                self._issued = self._ask()
            return {"user": self._issued.user, "password": self._issued.password}

    def _ask(self) -> _Issued:
        import botocore.exceptions

        try:
            answer = self._request()
        except botocore.exceptions.ClientError as exc:
            raise self._refused(exc) from None
        except botocore.exceptions.NoCredentialsError:
            raise WarehouseError(
                f"AUTH = iam needs AWS credentials to ask for database credentials ({self.action}) and none "
                "were found: run aws configure or aws sso login, or set AWS_PROFILE or [AWS] PROFILE"
            ) from None
        except (botocore.exceptions.TokenRetrievalError, botocore.exceptions.SSOError):
            raise WarehouseError(
                "your AWS SSO session has expired or is missing: run aws sso login (AUTH = iam)"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise WarehouseError(
                f"cannot get database credentials for {self.login.what} ({self.action}): {exc.__class__.__name__}"
            ) from None
        self.calls += 1
        user, password, expiration, next_refresh = answer
        refresh_at = expiration.timestamp() - REFRESH_MARGIN
        if next_refresh is not None:
            refresh_at = min(refresh_at, next_refresh.timestamp())
        return _Issued(user, password, refresh_at)

    def _request(self) -> tuple[str, str, Any, Any]:
        """(user, password, expiration, next refresh time or None) from the API this warehouse needs."""
        if self.login.serverless:
            got = self.client.get_credentials(
                workgroupName=self.login.name, dbName=self.dbname, durationSeconds=DURATION_SECONDS
            )
            return got["dbUser"], got["dbPassword"], got["expiration"], got.get("nextRefreshTime")
        if self.login.db_user:
            got = self.client.get_cluster_credentials(
                ClusterIdentifier=self.login.name,
                DbUser=self.login.db_user,
                DbName=self.dbname,
                DurationSeconds=DURATION_SECONDS,
                AutoCreate=self.login.auto_create,
            )
            return got["DbUser"], got["DbPassword"], got["Expiration"], None
        got = self.client.get_cluster_credentials_with_iam(
            ClusterIdentifier=self.login.name, DbName=self.dbname, DurationSeconds=DURATION_SECONDS
        )
        return got["DbUser"], got["DbPassword"], got["Expiration"], got.get("NextRefreshTime")

    def _refused(self, exc: Any) -> WarehouseError:
        """One line for an AWS refusal, naming the action and the warehouse (never a credential)."""
        code = exc.response.get("Error", {}).get("Code", "error")
        what = self.login.what
        if code in _DENIED:
            resource = "workgroup" if self.login.serverless else "dbuser" if self.login.db_user else "dbname"
            return WarehouseError(
                f"access denied: your AWS identity may not call {self.action} on {what} ({code}); "
                f"allow it on the {resource} resource in your IAM policy (see docs/iac.md, AUTH = iam)"
            )
        if code in _NOT_FOUND:
            keys = "WORKGROUP" if self.login.serverless else "CLUSTER_IDENTIFIER"
            return WarehouseError(
                f"{what} was not found ({code}): check [CLUSTER] HOST (or {keys}) and the region "
                "(python iac_setup.py status)"
            )
        if code in _REJECTED:
            return WarehouseError(
                f"AWS rejected your credentials ({code}) when asking for database credentials ({self.action}): "
                "renew them (aws sso login, aws configure)"
            )
        return WarehouseError(f"cannot get database credentials for {what} ({self.action}): AWS answered {code}")


@functools.cache
def credentials_for(connection: Connection) -> IamCredentials:
    """The process's credentials for this warehouse (one per [CLUSTER] setting, reused while valid)."""
    if connection.iam is None:
        raise ValueError("credentials_for() needs [CLUSTER] AUTH = iam")
    return IamCredentials(connection.iam, connection.dbname)

"""What can go wrong, said in one line: iac_setup's own errors, what AWS refused (and which IAM
permission that takes), and the exit code of each."""

from __future__ import annotations

import re

import botocore.exceptions
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from dwh.cli import EXIT_FAILURE, EXIT_USAGE
from dwh.config import ConfigError

#: What dwh.cli.exit_code prints on Ctrl-C (exit 130).
INTERRUPTED = "interrupted; run the same command again to finish (it is idempotent)"


class UsageError(Exception):
    """The command cannot run as asked, e.g. delete without --yes and nobody to ask (exit 2)."""


class IacError(Exception):
    """AWS state is in the way: a foreign resource, a failed cluster, a timeout (exit code 1)."""


ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AccessDeniedFault",
        "UnauthorizedAccess",
        "DependentServiceAccessDenied",
        "DependentServiceAccessDeniedFault",
    }
)
QUOTA_CODES = frozenset(
    {
        "ClusterQuotaExceeded",
        "NumberOfNodesQuotaExceeded",
        "NumberOfNodesPerClusterLimitExceeded",
        "LimitExceeded",
        "LimitExceededFault",
        "ServiceQuotaExceededException",
        "RulesPerSecurityGroupLimitExceeded",
        "SecurityGroupLimitExceeded",
        "TagLimitExceededFault",
        "QuotaExceededException",
    }
)
CAPACITY_CODES = frozenset({"InsufficientClusterCapacity", "InsufficientCapacityException"})
BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "InvalidAccessKeyId",
        "InvalidSignatureException",
    }
)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def profile_error(profile: str | None) -> ConfigError:
    return ConfigError(
        f"AWS profile {profile!r} (from --profile, [AWS] PROFILE or AWS_PROFILE) "
        "is not defined; see `aws configure list-profiles`"
    )


def iam_action_for(operation: str, aws) -> str:
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


def describe_client_error(exc: ClientError, aws) -> str:
    """One line that says what AWS refused and what to do about it."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = re.sub(r"\s*Encoded authorization failure message:.*", "", str(error.get("Message", "")), flags=re.S)
    message = " ".join(message.split())[:400]
    operation = exc.operation_name
    if code in ACCESS_DENIED_CODES:
        match = re.search(r"not authorized to perform:?\s*([\w-]+:[\w*]+)", message)
        action = match.group(1) if match else iam_action_for(operation, aws)
        return (
            f"access denied: your AWS identity may not call {action} ({operation}); grant it "
            f"(see 'Minimal IAM policy' in docs/iac.md). AWS said: {message}"
        )
    if code in QUOTA_CODES:
        return (
            f"quota exceeded in {operation} ({code}): {message} -- delete unused resources "
            "or request an increase in the Service Quotas console"
        )
    if code in CAPACITY_CODES:
        return (
            f"AWS has no capacity for this request right now ({code} in {operation}): "
            f"{message} -- retry later or choose another [DWH] NODE_TYPE"
        )
    if code in BAD_CREDENTIAL_CODES:
        return (
            f"AWS rejected your credentials ({code} in {operation}): {message} -- check "
            "--profile / [AWS] PROFILE, run `aws sso login` if you use SSO"
        )
    return f"AWS refused {operation} ({code}): {message}"


def explain(exc: BaseException, aws, profile: str | None) -> tuple[int, str] | None:
    """The exit code and one line for what iac_setup.py raises; None for anything else (a bug).

    ``aws`` (the session's clients, if made yet) names the IAM action an AccessDenied needs;
    ``profile`` (--profile) goes into the `aws sso login` hint. The caller masks secrets.
    """
    if isinstance(exc, (ConfigError, UsageError)):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, IacError):
        return EXIT_FAILURE, str(exc)
    if isinstance(exc, ClientError):
        return EXIT_FAILURE, describe_client_error(exc, aws)
    if isinstance(
        exc,
        (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.CredentialRetrievalError,
        ),
    ):
        return (
            EXIT_FAILURE,
            "no usable AWS credentials: run `aws configure` or `aws sso login`, pass "
            "--profile or set [AWS] PROFILE, or export AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, (botocore.exceptions.SSOError, botocore.exceptions.TokenRetrievalError)):
        return (
            EXIT_FAILURE,
            "your AWS SSO session is missing or expired: run `aws sso login"
            + (f" --profile {profile}" if profile else "")
            + "` and retry",
        )
    if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
        return EXIT_FAILURE, f"cannot reach AWS ({exc}); check your network and [AWS] REGION"
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return EXIT_USAGE, str(profile_error(exc.kwargs.get("profile")))
    if isinstance(exc, BotoCoreError):
        return EXIT_FAILURE, f"AWS SDK error: {exc}"
    return None

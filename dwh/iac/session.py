"""The boto3 session iac_setup.py works with, and its clients (tests hand in their own)."""

from __future__ import annotations

from collections.abc import Iterable

import boto3
import botocore.session
from botocore.config import Config as BotoConfig

from dwh.iac.console import Console
from dwh.iac.errors import profile_error
from dwh.iac.settings import AwsSettings


class Aws:
    """One boto3 session and its clients. Tests pass their own (moto, Stubber)."""

    CLIENT_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)

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


def make_session(
    settings: AwsSettings, profile_override: str | None, region_override: str | None, console: Console
) -> boto3.session.Session:
    """A session for --profile / --region, else dwh.cfg's [AWS] (keys there draw a warning)."""
    region = region_override or settings.region
    profile = profile_override or settings.profile
    if settings.key and not profile_override:
        console.warn(
            "using the access keys in dwh.cfg [AWS] KEY/SECRET: long-lived keys in a "
            "file are easy to leak; prefer a named profile or AWS SSO (leave KEY and "
            "SECRET empty and set PROFILE or --profile)"
        )
        session = boto3.session.Session(
            aws_access_key_id=settings.key,
            aws_secret_access_key=settings.secret,
            region_name=region,
            botocore_session=_botocore_session(),
        )
    else:
        session = boto3.session.Session(profile_name=profile, region_name=region, botocore_session=_botocore_session())
        if profile and profile not in session.available_profiles:
            raise profile_error(profile)  # now, rather than at the first AWS call
    _dedupe_search_paths()
    return session

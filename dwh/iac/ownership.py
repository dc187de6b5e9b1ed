"""How iac_setup.py marks what it creates, so that it reuses and deletes nothing else.

The IAM role, cluster, namespace and workgroup carry the MANAGED_BY tag; an ingress rule carries
rule_marker() as its description. A resource without the mark belongs to somebody else.
"""

from __future__ import annotations

MANAGED_BY = ("managed-by", "iac_setup.py")
PROJECT = ("project", "sparkify")


def our_tags(key: str = "Key", value: str = "Value") -> list[dict]:
    """The tags for a new resource: IAM and Redshift spell them Key/Value, Serverless key/value."""
    return [{key: name, value: text} for name, text in (MANAGED_BY, PROJECT)]


def tags_dict(tags: list[dict] | None) -> dict[str, str]:
    """Tags as a dict, from Redshift's Key/Value or Serverless' key/value form."""
    result: dict[str, str] = {}
    for tag in tags or []:
        key = tag.get("Key", tag.get("key"))
        if key is not None:
            result[key] = tag.get("Value", tag.get("value", ""))
    return result


def is_managed(tags: list[dict] | None) -> bool:
    return tags_dict(tags).get(MANAGED_BY[0]) == MANAGED_BY[1]


def rule_marker(kind: str, name: str) -> str:
    """The description that marks an ingress rule as added by iac_setup.py for one warehouse."""
    return f"iac_setup.py {kind} {name}"

"""dwh.cfg's [CLUSTER] HOST and [IAM_ROLE] ARN (and, if asked, TARGET and the login keys), written
back by create, cleared by delete and checked by status: a line-based edit that keeps comments,
order, spacing and the file's mode."""

from __future__ import annotations

import os
import re
from pathlib import Path

from dwh.iac.console import Console
from dwh.iac.settings import IacConfig

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
        if match and section:
            target = (section, match.group("key").strip().lower())
            if target in pending:
                _, value = pending.pop(target)
                spelled = match.group("key").strip()
                comment = re.search(r"\s[;#].*$", line[match.end() :])  # inline comment: keep
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
    """Apply ``updates`` to the file at ``path`` atomically, readable by its owner only (it may hold
    a password). True if changed."""
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    new_text = update_cfg_text(text, updates)
    if new_text == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8", newline="") as handle:
        handle.write(new_text)
    os.chmod(tmp, 0o600)  # also where the platform left other bits
    os.replace(tmp, path)
    return True


def record_endpoint(
    cfg: IacConfig,
    host: str,
    role_arn: str,
    set_target: bool,
    console: Console,
    login: dict[tuple[str, str], str] | None = None,
) -> None:
    """Write HOST and ARN (and TARGET = redshift, and the ``login`` keys, if asked) into dwh.cfg, comments and all."""
    updates = {("CLUSTER", "HOST"): host, ("IAM_ROLE", "ARN"): role_arn}
    if set_target:
        updates[("WAREHOUSE", "TARGET")] = "redshift"
    updates.update(login or {})
    changed = write_cfg_values(cfg.path, updates)
    console.info(
        f"{cfg.path.name}: {'updated' if changed else 'already up to date:'} "
        f"[CLUSTER] HOST = {host}, [IAM_ROLE] ARN = {role_arn}"
        + (", [WAREHOUSE] TARGET = redshift" if set_target else "")
        + "".join(f", [{section}] {key} = {value}" for (section, key), value in (login or {}).items())
    )


def clear_endpoint(cfg: IacConfig, host: str | None, role_arn: str | None, console: Console) -> None:
    """Empty HOST and ARN where they still name the deleted warehouse and role."""
    updates = {}
    if host and cfg.get("CLUSTER", "HOST", default="") == host:
        updates[("CLUSTER", "HOST")] = ""
    if role_arn and cfg.get("IAM_ROLE", "ARN", default="") == role_arn:
        updates[("IAM_ROLE", "ARN")] = ""
    if updates and write_cfg_values(cfg.path, updates):
        console.info(f"{cfg.path.name}: cleared " + ", ".join(f"[{s}] {k}" for s, k in updates))
    if cfg.get("WAREHOUSE", "TARGET", default="") == "redshift":
        console.info(
            f"{cfg.path.name}: [WAREHOUSE] TARGET is still 'redshift'; set it back to "
            "'local' to keep working without AWS"
        )


def state_line(cfg: IacConfig, host: str | None, arn: str | None) -> str:
    """Whether HOST and ARN match the warehouse and role that exist (None: nothing exists)."""
    current_host = cfg.get("CLUSTER", "HOST", default="")
    current_arn = cfg.get("IAM_ROLE", "ARN", default="")
    target = cfg.get("WAREHOUSE", "TARGET", default="") or "(unset)"

    def state(current: str, actual: str | None) -> str:
        if actual is None:
            return "stale (points at nothing)" if current else "empty"
        return "up to date" if current == actual else "differs (run create to update)"

    return (
        f"[CLUSTER] HOST {state(current_host, host)}; [IAM_ROLE] ARN "
        f"{state(current_arn, arn)}; [WAREHOUSE] TARGET = {target}"
    )

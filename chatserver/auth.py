"""Staff accounts, password hashing (argon2id) and sessions.

Passwords are hashed with argon2id at OWASP's minimum (m=19 MiB, t=2, p=1) or more.
Login answers a wrong name and a wrong password alike, and takes as long for both.

An account lives on after it is made: it can be disabled (and enabled again), get a new
password, a new display name, skills or trainee flag. Disabling it or resetting its password
revokes every session of it at once: the account's ``session_gen`` goes up, and a session
made under an older one is dead on its next use (:func:`chatserver.login.member_for_session`);
a ``sessions_revoked`` event closes its open staff sockets on every process.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chatserver.events import event
from chatserver.store import Store, new_id

HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_DUMMY_HASH = HASHER.hash("not a password of anyone")


class Role(StrEnum):
    COUNSELLOR = "counsellor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class StaffMember:
    staff_id: str
    username: str
    role: Role
    display_name: str
    skills: tuple[str, ...] = ()
    trainee: bool = False
    disabled: bool = False

    @classmethod
    def from_account(cls, data: dict[str, str]) -> StaffMember:
        return cls(
            staff_id=data["id"],
            username=data["username"],
            role=Role(data["role"]),
            display_name=data["display_name"],
            skills=tuple(s for s in data.get("skills", "").split(",") if s),
            trainee=data.get("trainee") == "1",
            disabled=data.get("disabled") == "1",
        )

    @property
    def chats(self) -> bool:
        """Counsellors and supervisors hold conversations; admins do not."""
        return self.role in (Role.COUNSELLOR, Role.SUPERVISOR)

    @property
    def supervises(self) -> bool:
        return self.role is Role.SUPERVISOR

    @property
    def reads_statistics(self) -> bool:
        return self.role in (Role.SUPERVISOR, Role.ADMIN)

    @property
    def administers(self) -> bool:
        """Manages staff accounts and reads the audit log."""
        return self.role is Role.ADMIN


def public_account(account: dict[str, str]) -> dict[str, Any]:
    """An account as admins see it (API and command line): never its password hash or
    TOTP secret."""
    return {
        **{k: account.get(k, "") for k in ("id", "username", "role", "display_name", "skills")},
        "trainee": account.get("trainee", "0"),
        "disabled": account.get("disabled") == "1",
    }


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountExists(Exception):
    pass


class NoSuchAccount(Exception):
    """No account has that staff id (or username)."""


def check_password(password: str) -> None:
    if len(password) < 10:
        raise ValueError("password: at least 10 characters")


def check_display_name(display_name: str) -> None:
    if not display_name.strip() or len(display_name) > 64:
        raise ValueError("display_name: 1-64 characters, not only spaces")


def check_skills(skills: tuple[str, ...], topic_ids: Iterable[str]) -> None:
    """Skills are topic ids of the running configuration (what a visitor can pick)."""
    unknown = sorted(set(skills) - set(topic_ids))
    if unknown:
        raise ValueError(f"skills: unknown topic ids {', '.join(unknown)}")


async def add_staff(
    store: Store,
    username: str,
    password: str,
    role: Role,
    display_name: str,
    skills: tuple[str, ...] = (),
    trainee: bool = False,
) -> StaffMember:
    if (
        not 2 <= len(username) <= 64
        or not username.replace("_", "").replace(".", "").replace("-", "").isalnum()
    ):
        raise ValueError("username: 2-64 letters, digits, '_', '.', '-'")
    check_password(password)
    check_display_name(display_name)
    hashed = await asyncio.to_thread(HASHER.hash, password)
    member = StaffMember(new_id(), username, role, display_name, skills, trainee)
    created = await store.create_account(
        {
            "id": member.staff_id,
            "username": username,
            "role": role.value,
            "display_name": display_name,
            "password": hashed,
            "skills": ",".join(skills),
            "trainee": "1" if trainee else "0",
            "disabled": "0",
            "session_gen": "0",
        }
    )
    if not created:
        raise AccountExists(username)
    return member


async def _revoke_sessions(store: Store, staff_id: str) -> None:
    """Tell every process to close this account's staff sockets (its sessions are dead
    already: the caller raised ``session_gen`` first)."""
    await store.publish(event("sessions_revoked", s=staff_id))


async def set_disabled(store: Store, staff_id: str, disabled: bool) -> StaffMember:
    """Disable an account (no login, every session revoked, its sockets closed) or enable
    it again (it logs in anew: old sessions stay dead)."""
    account = await store.change_account(
        staff_id, {"disabled": "1" if disabled else "0"}, revoke_sessions=disabled
    )
    if account is None:
        raise NoSuchAccount(staff_id)
    if disabled:
        await _revoke_sessions(store, staff_id)
    return StaffMember.from_account(account)


async def reset_password(store: Store, staff_id: str, password: str) -> StaffMember:
    """Give an account a new password (the rules of :func:`add_staff`); revokes every
    session of it."""
    check_password(password)
    if await store.account_by_id(staff_id) is None:
        raise NoSuchAccount(staff_id)
    hashed = await asyncio.to_thread(HASHER.hash, password)
    account = await store.change_account(staff_id, {"password": hashed}, revoke_sessions=True)
    if account is None:
        raise NoSuchAccount(staff_id)
    await _revoke_sessions(store, staff_id)
    return StaffMember.from_account(account)


async def update_profile(
    store: Store,
    staff_id: str,
    topic_ids: Iterable[str],
    *,
    display_name: str | None = None,
    skills: tuple[str, ...] | None = None,
    trainee: bool | None = None,
) -> StaffMember:
    """Change the display name, skills (topic ids) or trainee flag; None leaves one as it
    is. A counsellor on shift is assigned by the new values from the next assignment on."""
    fields: dict[str, str] = {}
    if display_name is not None:
        check_display_name(display_name)
        fields["display_name"] = display_name
    if skills is not None:
        check_skills(skills, topic_ids)
        fields["skills"] = ",".join(skills)
    if trainee is not None:
        fields["trainee"] = "1" if trainee else "0"
    if not fields:
        raise ValueError("nothing to change")
    account = await store.change_account(staff_id, fields, revoke_sessions=False)
    if account is None:
        raise NoSuchAccount(staff_id)
    live = {"display_name": "name", "skills": "skills", "trainee": "trainee"}
    await store.refresh_staff_state(staff_id, {live[k]: v for k, v in fields.items()})
    return StaffMember.from_account(account)


async def verify_login(
    store: Store, username: str, password: str
) -> tuple[StaffMember, dict[str, str]] | None:
    account = await store.account(username) if len(username) <= 64 else None
    hashed = account["password"] if account else _DUMMY_HASH
    try:
        await asyncio.to_thread(HASHER.verify, hashed, password)
    except (VerificationError, InvalidHashError):
        return None
    if account is None:
        return None
    return StaffMember.from_account(account), account


async def enable_totp(store: Store, username: str) -> str:
    """Give an account a new TOTP secret; returns it (shown once, for the authenticator)."""
    if await store.account(username) is None:
        raise ValueError(f"no account named {username!r}")
    secret = pyotp.random_base32()
    await store.update_account(username, {"totp_secret": secret})
    return secret


def totp_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="youthchat")


def totp_ok(secret: str, code: str) -> bool:
    return pyotp.TOTP(secret).verify(code.strip(), valid_window=1)


def new_session_token() -> str:
    return secrets.token_urlsafe(32)

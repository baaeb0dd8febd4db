"""Staff accounts, password hashing (argon2id) and sessions.

Passwords are hashed with argon2id at OWASP's minimum (m=19 MiB, t=2, p=1) or more.
Login answers a wrong name and a wrong password alike, and takes as long for both.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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

    @classmethod
    def from_account(cls, data: dict[str, str]) -> StaffMember:
        return cls(
            staff_id=data["id"],
            username=data["username"],
            role=Role(data["role"]),
            display_name=data["display_name"],
            skills=tuple(s for s in data.get("skills", "").split(",") if s),
            trainee=data.get("trainee") == "1",
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


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountExists(Exception):
    pass


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
    if len(password) < 10:
        raise ValueError("password: at least 10 characters")
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
        }
    )
    if not created:
        raise AccountExists(username)
    return member


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

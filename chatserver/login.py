"""Staff login and logout over HTTP, and authentication of staff requests.

Login answers a wrong name and a wrong password alike. Failed logins are counted per
username and per hashed address for 15 minutes; over the limit the answer is the same 401
(per name: it does not reveal whether the account exists) or 429 (per address). A disabled
account gets 403 ``account_disabled`` only with its right password (so that says nothing to
someone guessing); a wrong one gets the same 401 as ever.

A session is live while its key lasts, its account exists and is not disabled, and the
account's ``session_gen`` is the one the session was made under (disabling the account or
resetting its password raises it).
"""

from __future__ import annotations

import time

import structlog
from aiohttp import web

from chatserver.addresses import client_address
from chatserver.appkeys import ADDRESSES, SETTINGS, STORE
from chatserver.auth import (
    StaffMember,
    new_session_token,
    session_hash,
    totp_ok,
    verify_login,
)
from chatserver.events import event
from chatserver.security import csrf_ok

log = structlog.get_logger("chatserver.login")

#: ``__Host-``: Secure, Path=/, no Domain: only ever sent back to this exact origin over
#: HTTPS (browsers treat http://localhost and 127.0.0.1 as secure too).
SESSION_COOKIE = "__Host-chat_session"
NO_STORE = {"Cache-Control": "no-store"}
FAILURE_WINDOW = 15 * 60
WRONG = {"error": "unauthorised", "message": "wrong username or password"}


def _json(body: dict[str, str], status: int) -> web.Response:
    return web.json_response(body, status=status, headers=NO_STORE)


async def _failures(request: web.Request, name_key: str, addr_key: str) -> tuple[int, int]:
    r = request.app[STORE].r
    keys = request.app[STORE].keys
    by_name, by_addr = await r.mget(keys.login_failures(name_key), keys.login_failures(addr_key))
    return int(by_name or 0), int(by_addr or 0)


async def _count_failure(request: web.Request, *whos: str) -> None:
    store = request.app[STORE]
    pipe = store.r.pipeline(transaction=False)
    for who in whos:
        pipe.incr(store.keys.login_failures(who))
        pipe.expire(store.keys.login_failures(who), FAILURE_WINDOW)
    await pipe.execute()


async def login(request: web.Request) -> web.Response:
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        return _json({"error": "forbidden", "message": "cross-site request refused"}, 403)
    try:
        body = await request.json()
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _json({"error": "invalid", "message": "username and password are required"}, 400)
    settings = request.app[SETTINGS]
    limits = settings.limits
    address = await request.app[ADDRESSES].hash(
        client_address(request, settings.server.trust_forwarded_for)
    )
    name_key, addr_key = f"name:{username.casefold()[:64]}", f"addr:{address}"
    by_name, by_addr = await _failures(request, name_key, addr_key)
    if by_addr >= limits.login_failures_per_address:
        log.warning("login_throttled")
        return _json(
            {"error": "rate_limited", "message": "too many attempts; wait 15 minutes"}, 429
        )
    store = request.app[STORE]
    found = await verify_login(store, username, password)
    if found is None or by_name >= limits.login_failures:
        await _count_failure(request, name_key, addr_key)
        log.info("login_failed")
        return _json(WRONG, 401)
    member, account = found
    if member.disabled:
        log.info("login_refused_disabled", staff_id=member.staff_id)
        return _json(
            {"error": "account_disabled", "message": "this account is disabled; ask an admin"},
            403,
        )
    refusal = await _second_factor(request, member, account, body.get("otp"))
    if refusal is not None:
        await _count_failure(request, name_key, addr_key)
        return refusal
    token = new_session_token()
    auth = settings.auth
    await store.create_session(
        session_hash(token),
        member.staff_id,
        int(auth.session_idle_minutes * 60),
        time.time(),
        account.get("session_gen", "0"),
    )
    log.info("login", staff_id=member.staff_id)
    response = web.json_response(
        {
            "token": token,
            "staff_id": member.staff_id,
            "role": member.role.value,
            "display_name": member.display_name,
        },
        headers=NO_STORE,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=True,
        path="/",
        max_age=int(auth.session_absolute_hours * 3600),
    )
    return response


async def _second_factor(
    request: web.Request, member: StaffMember, account: dict[str, str], otp: object
) -> web.Response | None:
    """None when the TOTP second factor is satisfied (or not needed for this role)."""
    secret = account.get("totp_secret")
    required = member.role.value in request.app[SETTINGS].auth.totp_roles
    if not secret:
        if not required:
            return None
        log.warning("login_without_totp_refused", staff_id=member.staff_id)
        return _json(
            {
                "error": "totp_not_set_up",
                "message": "this role needs a second factor: "
                "ask an admin to run 'chatserver staff totp USERNAME'",
            },
            403,
        )
    if not isinstance(otp, str) or not otp.strip():
        return _json(
            {"error": "otp_required", "message": "enter the code from your authenticator app"}, 401
        )
    store = request.app[STORE]
    fresh = totp_ok(secret, otp) and await store.r.set(
        store.keys.login_failures(f"otp-used:{member.staff_id}:{otp.strip()}"), "1", nx=True, ex=120
    )
    if not fresh:  # wrong, or already used once (no replay within its window)
        log.info("login_failed_otp", staff_id=member.staff_id)
        return _json({"error": "otp_invalid", "message": "that code is not right"}, 401)
    return None


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE)


async def authenticate(request: web.Request) -> StaffMember | None:
    token = request_token(request)
    if token is None or len(token) > 200:
        return None
    return await member_for_session(request.app, session_hash(token))


async def member_for_session(
    app: web.Application, token_hash: str, *, refresh: bool = True
) -> StaffMember | None:
    """The staff member of a live session, or None. ``refresh`` (a real user action)
    restarts the idle timeout; a periodic check reads without refreshing. A session of a
    disabled account, or made before its sessions were revoked, is deleted: None."""
    store = app[STORE]
    auth = app[SETTINGS].auth
    now = time.time()
    absolute = auth.session_absolute_hours * 3600
    if refresh:
        found = await store.touch_session(
            token_hash, int(auth.session_idle_minutes * 60), absolute, now
        )
    else:
        found = await store.session_staff(token_hash, absolute, now)
    if found is None:
        return None
    staff_id, generation = found
    account = await store.account_by_id(staff_id)
    if account is None:
        return None
    if account.get("disabled") == "1" or account.get("session_gen", "0") != generation:
        await store.delete_session(token_hash)
        return None
    return StaffMember.from_account(account)


async def logout(request: web.Request) -> web.Response:
    """End the session, and close every socket opened with it, on every process."""
    if not csrf_ok(request):
        return _json({"error": "forbidden", "message": "cross-site request refused"}, 403)
    token = request_token(request)
    if token is not None:
        hashed = session_hash(token)
        await request.app[STORE].delete_session(hashed)
        await request.app[STORE].publish(event("logout", session=hashed))
    response = web.json_response({"status": "logged out"}, headers=NO_STORE)
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response

// Log in, log out and the authenticated staff socket, shared by the counsellor console and the
// supervisor dashboard.
//
// POST /api/login sets an HttpOnly session cookie; the browser sends it with the WebSocket
// upgrade of /ws/staff. We never store the token ourselves. sessionStorage only remembers THAT
// someone is logged in (name and role, for a reload), so that a reload tries the socket at once
// instead of showing the login form.
//
// A staff socket that closes with 4401, or that never opened at all after a login or a reload
// (the server refuses the upgrade with HTTP 401, which the browser reports as 1006), sends the
// user back to the login form.

import { HttpError, postJSON } from "./api.js";
import { $ } from "./dom.js";

const STAFF_KEY = "chat.staff";

function remembered() {
  try {
    return JSON.parse(sessionStorage.getItem(STAFF_KEY));
  } catch {
    return null;
  }
}

function remember(user) {
  try {
    if (user) sessionStorage.setItem(STAFF_KEY, JSON.stringify(user));
    else sessionStorage.removeItem(STAFF_KEY);
  } catch {
    // storage disabled: the user logs in again after a reload
  }
}

/**
 * @param {object} o
 *   socket: ChatSocket("/ws/staff")
 *   t: translator
 *   onShowApp(user): the app view becomes visible (user = {display_name, role, staff_id})
 *   onLogout(): reset the page state (conversations, watches)
 *   beforeLogout(): last frames to send while the socket is still open
 * Expects in the page: #login-view, #login-form, #username, #password, #login-error,
 * #app-view, #logout, #me, #conn.
 */
export function setupStaffSession({ socket, t, onShowApp, onLogout, beforeLogout }) {
  const loginView = $("#login-view");
  const appView = $("#app-view");
  const form = $("#login-form");
  const username = $("#username");
  const password = $("#password");
  const otpRow = $("#otp-row");
  const otp = $("#otp");
  const loginError = $("#login-error");
  const logoutButton = $("#logout");
  const me = $("#me");
  const conn = $("#conn");
  let openedSinceLogin = false;
  let user = remembered();

  function showLogin(message = "") {
    socket.stop();
    remember(null);
    user = null;
    appView.hidden = true;
    logoutButton.hidden = true;
    me.textContent = "";
    conn.hidden = true;
    loginView.hidden = false;
    loginError.textContent = message;
    password.value = "";
    onLogout();
    (username.value ? password : username).focus();
  }

  function showApp() {
    loginView.hidden = true;
    appView.hidden = false;
    logoutButton.hidden = false;
    conn.hidden = false;
    me.textContent = t("signed_in_as", { name: user.display_name || "" });
    openedSinceLogin = false;
    onShowApp(user);
    socket.connect();
  }

  socket.on("open", () => {
    openedSinceLogin = true;
  });

  socket.on("state", (state) => {
    conn.textContent = state === "open" ? t("conn_open") : t("conn_down");
    conn.dataset.state = state === "open" ? "open" : "down";
  });

  socket.on("close", ({ code }) => {
    if (code === 4401) showLogin(t("session_expired"));
    else if (!openedSinceLogin) showLogin(user ? t("session_expired") : t("login_error"));
  });

  socket.on("welcome", (f) => {
    user = { ...(user || {}), staff_id: f.staff_id, role: f.role, display_name: f.display_name };
    remember(user);
    me.textContent = t("signed_in_as", { name: user.display_name || "" });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    loginError.textContent = "";
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const body = { username: username.value.trim(), password: password.value };
      if (!otpRow.hidden) body.otp = otp.value.trim();
      const data = await postJSON("/api/login", body);
      user = { staff_id: data.staff_id, role: data.role, display_name: data.display_name };
      remember(user);
      password.value = "";
      otp.value = "";
      otpRow.hidden = true;
      showApp();
    } catch (error) {
      // Supervisors and admins log in with a second factor: the server asks for it.
      const code = error instanceof HttpError ? error.body?.error : null;
      if (code === "otp_required" || code === "otp_invalid") {
        otpRow.hidden = false;
        otp.value = "";
        loginError.textContent = t(code);
        otp.focus();
        return;
      }
      loginError.textContent =
        code === "totp_not_set_up"
          ? t("totp_not_set_up")
          : error instanceof HttpError && error.status === 401
            ? t("login_failed")
            : t("login_error");
      password.focus();
    } finally {
      submit.disabled = false;
    }
  });

  logoutButton.addEventListener("click", async () => {
    try {
      beforeLogout?.();
    } catch {
      // logging out must always work
    }
    socket.stop();
    try {
      await postJSON("/api/logout", {});
    } catch {
      // the session ends on the server anyway when it expires
    }
    showLogin("");
  });

  if (user) showApp();
  else {
    appView.hidden = true;
    logoutButton.hidden = true;
    conn.hidden = true;
    loginView.hidden = false;
  }

  return { currentUser: () => user };
}

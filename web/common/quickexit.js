// Quick exit ("Snel weg"): the visitor's way out when someone walks in.
//
// Loaded as the FIRST module of the visitor page, with no imports of its own, so that it works
// even when every other script fails. Three ways in:
//   * any element with [data-quick-exit] (the sticky "Snel weg" button), clicked;
//   * the Shift key pressed three times within one second (as GOV.UK's "Exit this page";
//     deliberately not Escape, which people press by accident); any other key resets the count;
//   * the page being restored from the back/forward cache (pageshow with event.persisted):
//     nothing of a chat may ever be shown again from a cached copy.
// What it does: hide the page at once (class + the `hidden` attribute on <body>, which works even
// without our CSS), clear sessionStorage (the resume token lives there), run the registered
// cleanups (the visitor page closes its socket), remove the page content, then
// location.replace(), so that Back does not return to the chat.

const DEFAULT_EXIT_URL = "https://www.google.com/search?q=weer";
const PRESSES_NEEDED = 3;
const PRESS_WINDOW_MS = 1000;

let exitUrl = DEFAULT_EXIT_URL;
const cleanups = [];
let shiftPresses = [];

/** Use the helpline's own exit URL (from /api/public-config). Only http(s) URLs are accepted. */
export function setQuickExitUrl(url) {
  if (typeof url === "string" && /^https?:\/\//i.test(url)) exitUrl = url;
}

/** Register something to do on exit (e.g. close the socket). Must be quick and synchronous. */
export function onQuickExit(fn) {
  cleanups.push(fn);
}

/** Hide and forget everything, without leaving the page. */
export function hideAndForget() {
  document.documentElement.classList.add("quick-exit-active");
  if (document.body) document.body.hidden = true;
  try {
    sessionStorage.clear();
  } catch {
    // storage may be disabled; nothing to clear then
  }
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // a failing cleanup must never stop the exit
    }
  }
  if (document.body) document.body.replaceChildren();
  document.title = "…";
}

/** Leave now. */
export function quickExit() {
  hideAndForget();
  location.replace(exitUrl);
}

document.addEventListener(
  "keydown",
  (event) => {
    if (event.key !== "Shift") {
      shiftPresses = [];
      return;
    }
    if (event.repeat) return;
    const now = performance.now();
    shiftPresses = shiftPresses.filter((t) => now - t < PRESS_WINDOW_MS);
    shiftPresses.push(now);
    if (shiftPresses.length >= PRESSES_NEEDED) quickExit();
  },
  true,
);

document.addEventListener(
  "click",
  (event) => {
    const target = event.target instanceof Element ? event.target.closest("[data-quick-exit]") : null;
    if (!target) return;
    event.preventDefault();
    quickExit();
  },
  true,
);

window.addEventListener("pageshow", (event) => {
  if (event.persisted) quickExit();
});

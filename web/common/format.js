// Formatting of times and durations, in the page's language.

const LOCALES = { nl: "nl-NL", en: "en-GB" };

function locale(lang) {
  return LOCALES[lang] || LOCALES.nl;
}

/** "14:05" for a server `ts` (Unix seconds, float). */
export function formatClock(ts, lang) {
  return new Intl.DateTimeFormat(locale(lang), { hour: "2-digit", minute: "2-digit" }).format(
    new Date(ts * 1000),
  );
}

/** "dinsdag 25 november om 14:00" / "Tuesday 25 November at 14:00" for an ISO 8601 string. */
export function formatDateTime(iso, lang) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(locale(lang), {
    weekday: "long",
    day: "numeric",
    month: "long",
    hour: "2-digit",
    minute: "2-digit",
  }).format(date);
}

/** "25 november 2026" for a Date. */
export function formatDate(date, lang) {
  return new Intl.DateTimeFormat(locale(lang), { dateStyle: "long" }).format(date);
}

/** Elapsed time as "4:05" or "1:02:03" (dashboards). */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return `${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** Whole minutes for a waiting-time estimate, never less than 1. */
export function etaMinutes(seconds) {
  return Math.max(1, Math.round(seconds / 60));
}

/** Server timestamp now, in seconds (for local count-ups). */
export function nowSeconds() {
  return Date.now() / 1000;
}

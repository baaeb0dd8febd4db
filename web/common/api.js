// Small fetch helpers for the server's JSON API (same origin only).
//
// Every POST carries `X-Requested-With: chat`: the server requires this custom header on
// cookie-authenticated requests as a CSRF defence (a cross-site form cannot set it).

export class HttpError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** GET a JSON document; throws HttpError on a non-2xx answer. */
export async function getJSON(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  const body = await readJson(response);
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

/** POST a JSON body; throws HttpError on a non-2xx answer, returns the decoded answer. */
export async function postJSON(url, data = {}) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-Requested-With": "chat",
    },
    body: JSON.stringify(data),
  });
  const body = await readJson(response);
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}

// Talking to voxd: every request carries the token the user entered (if
// any) as a bearer token; a 401 asks for it. Server-sent events are read
// from fetch() streams, since EventSource cannot send a header.

const KEY = "voxd.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let askToken = () => {};

/** Calls `ask` whenever voxd answers 401. */
export function onUnauthorized(ask) {
  askToken = ask;
}

export function token() {
  return localStorage.getItem(KEY) || "";
}

export function setToken(value) {
  if (value) localStorage.setItem(KEY, value.trim());
  else localStorage.removeItem(KEY);
}

/** fetch(path) with the token; throws ApiError with voxd's message. */
export async function request(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", `Bearer ${token()}`);
  const response = await fetch(path, { ...options, headers });
  if (response.ok) return response;
  if (response.status === 401) askToken();
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = (body.error && (body.error.message || body.error)) || message;
  } catch {
    // not JSON: keep the status line
  }
  throw new ApiError(response.status, message);
}

/** POSTs `body` as JSON; the parsed reply. */
export async function post(path, body, options = {}) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    ...options,
  });
  return response.json();
}

/** One of voxd's commands (`/v1/voxd/{command}`), as on the socket. */
export function command(name, args = {}) {
  return post(`/v1/voxd/${name}`, args);
}

/** The server-sent events of a response: `{event, data}` as they come. */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

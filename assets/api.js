// The one way the UI talks to the server: JSON envelopes in and out, the
// session cookie, the CSRF header on every call, and the chosen workspace.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

let workspaceId = null;
let onUnauthorized = () => {};

export function configure(options) {
  if (options.onUnauthorized) onUnauthorized = options.onUnauthorized;
}

/** Calls that act in a workspace send it as `X-Workspace`. */
export function setWorkspace(id) {
  workspaceId = id;
}

/**
 * options: body (sent as JSON), headers, workspace (default true),
 * signOutOn401 (default true: a 401 means the session is gone).
 */
export async function request(method, path, options = {}) {
  const headers = {
    Accept: 'application/json',
    // Cookie-signed writes need it (CSRF defence); harmless on reads.
    'X-Requested-With': 'tokenward',
    ...(options.headers || {}),
  };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(options.body);
  }
  if (options.workspace !== false && workspaceId) headers['X-Workspace'] = workspaceId;

  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  if (response.status === 204) return { data: null, meta: null };
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok && json && json.success) return { data: json.data, meta: json.meta || null };

  const error = new ApiError(
    response.status,
    (json && json.error) || 'unexpected',
    (json && json.message) || `The server answered with status ${response.status}.`,
    json && json.details,
  );
  // `handled`: the app has gone back to sign-in, so screens need not show it.
  error.handled = response.status === 401 && options.signOutOn401 !== false && onUnauthorized(error) === true;
  throw error;
}

export const api = {
  get: (path, options) => request('GET', path, options),
  post: (path, body, options = {}) => request('POST', path, { ...options, body }),
  patch: (path, body, options = {}) => request('PATCH', path, { ...options, body }),
  put: (path, body, options = {}) => request('PUT', path, { ...options, body }),
  del: (path, options) => request('DELETE', path, options),
};

/** Every item of a paged list, 100 at a time. */
export async function listAll(path) {
  const items = [];
  const join = path.includes('?') ? '&' : '?';
  for (let page = 1; page < 1000; page += 1) {
    const { data, meta } = await api.get(`${path}${join}page=${page}&per_page=100`);
    items.push(...data);
    if (!meta || page * meta.per_page >= meta.total || data.length === 0) break;
  }
  return items;
}

export const enc = encodeURIComponent;

// Forward-auth routes: the rules a reverse proxy asks tokenward about, and
// a "Try a request" box that shows which rule wins and the proxy's answer.
// Members holding routes:read see them; editing needs routes.

import { ApiError, api, enc, listAll } from '../api.js';
import { h, nextId, replace } from '../dom.js';
import {
  alertBox, badge, busy, clearErrors, field, loading, pageHeader, scopeChips, showErrors, toast,
} from '../ui.js';

const ACCESS = [
  ['scopes', 'Needs scopes'],
  ['public', 'Public'],
  ['deny', 'Deny'],
];
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/**
 * GET or PUT /routes with the ETag: the shared client does not return
 * headers. Same conventions: the workspace, the CSRF header, JSON errors.
 */
async function rulesRequest(workspaceId, method, body, etag) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'tokenward', 'X-Workspace': workspaceId };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (etag) headers['If-Match'] = etag;
  let response;
  try {
    response = await fetch('/api/v1/routes', init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (response.ok && json && json.success) return { document: json.data, etag: response.headers.get('ETag') };
  throw new ApiError(response.status, (json && json.error) || 'unexpected',
    (json && json.message) || `The server answered with status ${response.status}.`, json && json.details);
}

/** Which of routes / routes:read the signed-in member holds here. */
async function access(ctx) {
  if (ctx.state.isWorkspaceAdmin) return { read: true, write: true };
  const members = await listAll(`/workspaces/${enc(ctx.state.workspaceId)}/members`);
  const me = members.find((m) => m.account.id === ctx.state.me.account.id);
  const scopes = me ? me.scopes : [];
  const write = scopes.includes('routes');
  return { read: write || scopes.includes('routes:read'), write };
}

export async function render(ctx) {
  const header = pageHeader('Routes', [
    'Which requests your reverse proxy lets through to your API: each rule maps a method and path to the scopes a token needs. ',
    'Order does not matter: the most specific rule wins.',
  ]);
  replace(ctx.section, header, loading());
  const can = await access(ctx);
  if (!ctx.live()) return;
  if (!can.read) {
    replace(ctx.section, header, alertBox('info', 'Seeing the forward-auth rules needs the routes:read permission. Ask a workspace admin for it.', 'routes-no-access'));
    return;
  }
  const editor = h('div', { class: 'routes-editor' }, loading());
  const tryBox = h('div', {});
  replace(ctx.section, header, endpoints(ctx), editor, tryBox);
  let current = await rulesRequest(ctx.state.workspaceId, 'GET');
  if (!ctx.live()) return;

  const draw = (notice) => {
    replace(editor, rulesForm(ctx, current, can.write, notice, {
      saved(next) {
        current = next;
        draw(null);
        toast('Rules saved.');
      },
      async stale() {
        current = await rulesRequest(ctx.state.workspaceId, 'GET');
        if (!ctx.live()) return;
        draw(alertBox('warning', 'Someone changed the rules after you opened this page. Their version is shown now: make your change again and save.', 'routes-stale'));
        editor.scrollIntoView({ block: 'start' });
      },
    }));
  };
  draw(null);
  replace(tryBox, tryForm(ctx));
}

/** Where to point the proxy: this workspace's endpoints. */
function endpoints(ctx) {
  const base = `${location.origin}/api/v1/authz/${ctx.state.workspaceId}`;
  const rows = [
    ['nginx auth_request', `${base}/auth-request`],
    ['Caddy, Traefik forward_auth', `${base}/forward-auth`],
    ['Envoy ext_authz', `${base}/ext-authz`],
  ];
  return h('details', { class: 'card routes-endpoints', 'data-testid': 'routes-endpoints' },
    h('summary', {}, 'Point your proxy at this workspace'),
    h('dl', { class: 'routes-endpoint-list' },
      rows.map(([label, url]) => [h('dt', {}, label), h('dd', {}, h('code', {}, url))])),
    h('p', { class: 'field-hint' }, 'docs/forward-auth.md has tested nginx and Caddy recipes, and ones for Traefik and Envoy.'));
}

function rulesForm(ctx, current, editable, notice, on) {
  const doc = current.document;
  const fallback = h('select', { id: 'routes-default', name: 'default', disabled: !editable },
    h('option', { value: 'deny' }, 'Deny (403 no_matching_rule)'),
    h('option', { value: 'authenticated' }, 'Any valid token of this workspace'));
  fallback.value = doc.default;
  const preflight = h('input', { type: 'checkbox', id: 'routes-cors', name: 'cors_preflight', checked: doc.cors_preflight, disabled: !editable, 'aria-describedby': 'routes-cors-hint' });
  const cache = h('input', { type: 'number', id: 'routes-cache', name: 'cache_seconds', class: 'input-short', min: '0', max: '86400', step: '1', inputmode: 'numeric', value: String(doc.cache_seconds), disabled: !editable });

  const body = h('tbody', {});
  const rows = [];
  const renumber = () => rows.forEach((row, index) => row.number(index));
  const addRow = (rule, focus) => {
    const row = ruleRow(rule, editable, () => {
      rows.splice(rows.indexOf(row), 1);
      row.element.remove();
      renumber();
      empty.hidden = rows.length > 0;
    });
    rows.push(row);
    body.append(row.element);
    renumber();
    empty.hidden = true;
    if (focus) row.focus();
  };
  const empty = h('tr', { class: 'routes-empty', 'data-testid': 'routes-empty' },
    h('td', { colspan: '6' }, editable ? 'No rules yet: nothing passes while the default is deny. Add the first rule.' : 'No rules yet.'));
  body.append(empty);
  doc.rules.forEach((rule) => addRow(rule, false));

  const table = h('table', { class: 'routes-table', 'data-testid': 'routes-table' },
    h('caption', { class: 'sr-only' }, 'Forward-auth rules'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'ID'),
      h('th', { scope: 'col' }, 'Host'),
      h('th', { scope: 'col' }, 'Methods'),
      h('th', { scope: 'col' }, 'Path'),
      h('th', { scope: 'col' }, 'Access'),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
    body);

  const add = editable ? h('button', { type: 'button', class: 'btn', 'data-testid': 'routes-add', onclick: () => addRow(null, true) }, 'Add rule') : null;
  const save = editable ? h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'routes-save' }, 'Save rules') : null;
  const form = h('form', { class: 'form', id: 'routes-form', novalidate: true, 'data-etag': current.etag || '' },
    h('div', { class: 'form-alert' }),
    notice,
    editable ? null : alertBox('info', 'You can read these rules; changing them needs the routes permission.', 'routes-read-only'),
    h('section', { class: 'card settings-section', 'aria-labelledby': 'routes-settings-title' },
      h('h2', { id: 'routes-settings-title' }, 'When no rule matches'),
      h('div', { class: 'inline-row' },
        field({ label: 'Default', control: fallback, name: 'default', hint: 'Deny is the safe choice: only what a rule allows passes.' }),
        field({ label: 'Cache allowed answers (seconds)', control: cache, name: 'cache_seconds', hint: '0 sends Cache-Control: no-store. Never longer than the token lives.' })),
      h('div', { class: 'field check-field', 'data-field': 'cors_preflight' },
        h('div', { class: 'check-line' }, preflight, h('label', { for: preflight.id }, 'Let CORS preflights through')),
        h('p', { class: 'field-hint', id: 'routes-cors-hint' }, 'OPTIONS requests with Origin and Access-Control-Request-Method, and no token, pass without one.'),
        h('p', { class: 'field-error', 'data-error-for': 'cors_preflight', hidden: true }))),
    h('section', { class: 'routes-rules', 'aria-labelledby': 'routes-rules-title' },
      h('div', { class: 'routes-rules-head' },
        h('h2', { id: 'routes-rules-title' }, 'Rules'),
        add),
      h('p', { class: 'field-hint' }, [
        'Paths are segments: ', h('code', {}, '*'), ' is exactly one segment, ', h('code', {}, '**'),
        ' (last only) any number. A rule for a host comes first; then literal before ', h('code', {}, '*'),
        ' before ', h('code', {}, '**'), '; then a named method before any method. GET covers HEAD.',
      ]),
      h('div', { class: 'routes-table-wrap' }, table),
      h('p', { class: 'field-error', 'data-error-for': 'rules', hidden: true })),
    editable ? h('div', { class: 'form-actions' }, save) : null);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!editable) return;
    clearErrors(form);
    const cacheValue = Number(cache.value);
    const document = {
      default: fallback.value,
      cors_preflight: preflight.checked,
      cache_seconds: Number.isInteger(cacheValue) ? cacheValue : cache.value,
      rules: rows.map((row) => row.value()),
    };
    await busy(save, 'Saving…', async () => {
      try {
        const next = await rulesRequest(ctx.state.workspaceId, 'PUT', document, current.etag);
        if (ctx.live()) on.saved(next);
      } catch (err) {
        if (err.status === 412) {
          await on.stale();
          return;
        }
        showErrors(form, err);
      }
    });
  });
  return form;
}

/** One editable rule; `number(i)` names its error slots `rules[i].…`. */
function ruleRow(rule, editable, remove) {
  const r = rule || { id: '', methods: ['GET'], path: '/', scopes: [] };
  const kind = r.public ? 'public' : r.deny ? 'deny' : 'scopes';
  const input = (key, value, placeholder) => h('input', {
    type: 'text', value, placeholder, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none',
    disabled: !editable, 'data-rule-field': key,
  });
  const id = input('id', r.id, 'contacts-read');
  const host = input('host', r.host || '', 'any host');
  const methods = input('methods', (r.methods || ['*']).join(' '), 'GET POST, or *');
  const path = input('path', r.path, '/contacts/**');
  const accessSelect = h('select', { disabled: !editable, 'data-rule-field': 'access' },
    ACCESS.map(([value, label]) => h('option', { value }, label)));
  accessSelect.value = kind;
  const scopes = input('scopes', (r.scopes || []).join(' '), 'contacts:read');
  const showScopes = () => {
    scopes.hidden = accessSelect.value !== 'scopes';
  };
  accessSelect.addEventListener('change', showScopes);
  showScopes();

  const cells = [];
  const cell = (key, ...controls) => {
    const error = h('p', { class: 'field-error', hidden: true });
    const td = h('td', { 'data-cell': key }, controls, error);
    cells.push({ key, td, error, controls });
    return td;
  };
  const rowError = h('p', { class: 'field-error', hidden: true });
  const removeButton = editable ? h('button', {
    type: 'button', class: 'btn btn-sm btn-danger-outline', 'data-testid': 'routes-remove', onclick: remove,
  }, 'Remove') : null;
  const element = h('tr', { class: 'routes-row', 'data-testid': 'routes-row' },
    cell('id', id), cell('host', host), cell('methods', methods), cell('path', path),
    cell('scopes', accessSelect, scopes),
    h('td', { class: 'routes-row-actions' }, removeButton, rowError));
  element.dataset.ruleId = r.id;

  return {
    element,
    focus: () => id.focus(),
    number(index) {
      const n = index + 1;
      const prefix = `rules[${index}]`;
      rowError.dataset.errorFor = prefix;
      element.dataset.field = prefix;
      for (const { key, td, error, controls } of cells) {
        td.dataset.field = `${prefix}.${key}`;
        error.dataset.errorFor = `${prefix}.${key}`;
        const errorId = nextId('rule-error');
        error.id = errorId;
        for (const control of controls) control.setAttribute('aria-describedby', errorId);
      }
      // The public/deny choice reports on the access cell too.
      for (const extra of ['public', 'deny']) {
        let slot = element.querySelector(`[data-extra="${extra}"]`);
        if (!slot) {
          slot = h('p', { class: 'field-error', hidden: true, 'data-extra': extra });
          element.querySelector('[data-cell=scopes]').append(slot);
        }
        slot.dataset.errorFor = `${prefix}.${extra}`;
      }
      id.setAttribute('aria-label', `Rule ${n}: ID`);
      host.setAttribute('aria-label', `Rule ${n}: host (optional)`);
      methods.setAttribute('aria-label', `Rule ${n}: methods`);
      path.setAttribute('aria-label', `Rule ${n}: path pattern`);
      accessSelect.setAttribute('aria-label', `Rule ${n}: access`);
      scopes.setAttribute('aria-label', `Rule ${n}: scopes`);
      if (removeButton) removeButton.setAttribute('aria-label', `Remove rule ${n}`);
    },
    value() {
      const out = { id: id.value.trim() };
      if (host.value.trim()) out.host = host.value.trim();
      const listed = methods.value.split(/[\s,]+/).filter(Boolean).map((m) => m.toUpperCase());
      out.methods = listed.length ? listed : ['*'];
      out.path = path.value.trim();
      if (accessSelect.value === 'public') out.public = true;
      else if (accessSelect.value === 'deny') out.deny = true;
      else out.scopes = scopes.value.split(/[\s,]+/).filter(Boolean);
      return out;
    },
  };
}

/** Method + path (+ host, token) → which rule wins, and the proxy's answer. */
function tryForm(ctx) {
  const method = h('select', { id: 'try-method', name: 'method' }, METHODS.map((m) => h('option', { value: m }, m)));
  const uri = h('input', { type: 'text', id: 'try-uri', name: 'uri', required: true, placeholder: '/contacts/42', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none' });
  const host = h('input', { type: 'text', id: 'try-host', name: 'host', placeholder: 'api.example.com', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none' });
  const token = h('input', { type: 'password', id: 'try-token', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'tw_…' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'try-submit' }, 'Try it');
  const result = h('div', { class: 'try-result', 'aria-live': 'polite', 'data-testid': 'try-result' });
  const form = h('form', { class: 'form card', id: 'try-form', novalidate: true },
    h('h2', {}, 'Try a request'),
    h('p', { class: 'field-hint' }, 'Runs the saved rules on a request, as a proxy would ask: nothing is recorded and no limit is counted. Save your changes first.'),
    h('div', { class: 'form-alert' }),
    h('div', { class: 'inline-row' },
      h('div', { class: 'try-method' }, field({ label: 'Method', control: method, name: 'method' })),
      field({ label: 'Path', control: uri, name: 'uri', hint: 'As the client sends it, query included.' }),
      field({ label: 'Host', control: host, name: 'host', optional: true }),
      field({ label: 'Token', control: token, name: 'token', optional: true, hint: 'Sent to this server only; not kept.' })),
    h('div', { class: 'form-actions' }, submit),
    result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!uri.value.trim()) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { uri: 'is required, such as /contacts/42' } });
      return;
    }
    const body = { method: method.value, uri: uri.value.trim() };
    if (host.value.trim()) body.host = host.value.trim();
    if (token.value.trim()) body.token = token.value.trim();
    await busy(submit, 'Trying…', async () => {
      try {
        const { data } = await api.post(`/authz/${enc(ctx.state.workspaceId)}/explain`, body);
        replace(result, explanation(data));
      } catch (err) {
        replace(result);
        showErrors(form, err);
      }
    });
  });
  return form;
}

function explanation(data) {
  const allowed = data.decision === 'allow';
  const rows = [
    ['Decision', h('span', { class: 'try-decision' },
      badge(allowed ? 'Allowed' : 'Refused', allowed ? 'success' : 'danger', 'try-decision'),
      ` HTTP ${data.status} · `, h('code', { 'data-testid': 'try-code' }, data.code))],
    ['Winning rule', data.rule
      ? h('code', { 'data-testid': 'try-rule' }, data.rule)
      : h('span', { class: 'muted', 'data-testid': 'try-rule' }, 'none: the default decided')],
    ['Canonical path', data.canonical_path !== null
      ? h('code', {}, data.canonical_path)
      : h('span', { class: 'muted' }, 'none: the path is refused')],
    ['Scopes needed', data.required_scopes.length ? scopeChips(data.required_scopes) : h('span', { class: 'muted' }, 'none')],
  ];
  const headers = Object.entries(data.headers).map(([name, value]) => `${name}: ${value}`).join('\n');
  return [
    h('dl', { class: 'try-facts' }, rows.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value)])),
    h('h3', { class: 'try-headers-title' }, 'Headers of the answer'),
    h('pre', { class: 'code-block', 'data-testid': 'try-headers' }, headers || '(none)'),
  ];
}

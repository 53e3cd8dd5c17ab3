// The permission grid shared by tokens and member grants: one row per
// resource (catalog scopes, domains, the built-ins), columns Full and Read.
// Full is scope `x`, Read is `x:read`; Full includes Read.

import { api, enc, listAll } from './api.js';
import { h } from './dom.js';

const BUILT_INS = [
  { resource: 'tokens', description: 'Create, edit, reset and delete API tokens' },
  { resource: 'domains', description: 'Add and delete domains, and use every domain' },
  { resource: 'verify', description: 'Check tokens of this workspace with POST /tokens/verify' },
  { resource: 'routes', description: 'Read and replace the forward-auth rules' },
  { resource: 'audit', description: 'Read the audit log' },
];

/** The scope a verifier token holds, and nothing else. */
export const VERIFIER_SCOPES = ['verify:read'];

/**
 * Whether a token can serve as a verifier: it holds the built-in `verify`
 * (full or read). The list and the token pages mark such tokens.
 */
export function isVerifier(scopes) {
  return (scopes || []).some((scope) => parseScope(scope).resource === 'verify');
}

/** Splits `contacts:read` into {resource: 'contacts', level: 'read'}. */
export function parseScope(scope) {
  return scope.endsWith(':read')
    ? { resource: scope.slice(0, -5), level: 'read' }
    : { resource: scope, level: 'full' };
}

/** Whether `grants` (null = everything, as for admins) cover resource at level. */
export function holds(grants, resource, level) {
  if (grants === null) return true;
  return grants.some((grant) => {
    const g = parseScope(grant);
    const levelOk = g.level === 'full' || level === 'read';
    if (!levelOk) return false;
    return g.resource === resource || (g.resource === 'domains' && resource.startsWith('domain:'));
  });
}

/**
 * Everything a grid needs for the current workspace: the catalog, the
 * domains (when the caller may list them) and the caller's own grants.
 */
export async function loadResources(state) {
  const ws = enc(state.workspaceId);
  const catalogPromise = listAll(`/workspaces/${ws}/scopes`);
  const domainsPromise = listAll('/domains').catch((err) => {
    if (err.status === 403) return [];
    throw err;
  });
  let grants = null;
  if (!state.isWorkspaceAdmin) {
    const members = await listAll(`/workspaces/${ws}/members`);
    const me = members.find((m) => m.account.id === state.me.account.id);
    grants = me ? me.scopes : [];
  }
  const [catalog, domains] = await Promise.all([catalogPromise, domainsPromise]);
  return { catalog, domains, grants };
}

/**
 * The grid. `selected` is a list of scopes to start from; `limitTo` (grants
 * or null) disables what the caller cannot hand out. Returns the element and
 * a `value()` that reads the chosen scopes back.
 */
export function permissionGrid({ resources, selected = [], limitTo = null, caption = 'Permissions' }) {
  const chosen = new Map(selected.map((s) => {
    const p = parseScope(s);
    return [p.resource, p.level];
  }));
  const groups = [
    ['Workspace APIs', resources.catalog.map((c) => ({ resource: c.name, description: c.description })),
      'No workspace scopes yet. A workspace admin adds them under Scopes.'],
    ['Domains', resources.domains.map((d) => ({ resource: `domain:${d.name}`, description: `Use ${d.name}` })),
      'No domains yet.'],
    ['tokenward', BUILT_INS, null],
  ];
  const known = new Set(groups.flatMap(([, rows]) => rows.map((r) => r.resource)));
  const others = [...chosen.keys()].filter((r) => !known.has(r)).map((resource) => ({ resource, description: 'No longer in the catalog' }));
  if (others.length) groups.push(['Other', others, null]);

  const rows = [];
  const tbody = h('tbody');
  for (const [title, items, empty] of groups) {
    tbody.append(h('tr', { class: 'group-row' }, h('th', { colspan: '3', scope: 'colgroup' }, title)));
    if (items.length === 0 && empty) {
      tbody.append(h('tr', { class: 'empty-row' }, h('td', { colspan: '3' }, empty)));
    }
    for (const item of items) rows.push(gridRow(tbody, item, chosen.get(item.resource), limitTo));
  }
  const table = h('table', { class: 'perm-grid', 'data-testid': 'permission-grid' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Resource'),
      h('th', { scope: 'col', class: 'level-col' }, 'Full'),
      h('th', { scope: 'col', class: 'level-col' }, 'Read'))),
    tbody);
  return {
    element: h('div', { class: 'perm-grid-wrap' }, table),
    value: () => rows.map((row) => row.value()).filter(Boolean),
    focus: () => {
      const first = table.querySelector('input:not(:disabled)');
      if (first) first.focus();
    },
  };
}

function checkbox(resource, level, checked, disabled) {
  const label = level === 'full' ? `Full access to ${resource}` : `Read access to ${resource}`;
  const input = h('input', {
    type: 'checkbox', 'data-scope': resource, 'data-level': level,
    'data-testid': `perm-${level}-${resource}`, checked: checked || false, disabled: disabled || false,
  });
  return { input, cell: h('td', { class: 'level-col' }, h('label', { class: 'check-cell' }, input, h('span', { class: 'sr-only' }, label))) };
}

function gridRow(tbody, item, level, limitTo) {
  const canFull = holds(limitTo, item.resource, 'full');
  const canRead = holds(limitTo, item.resource, 'read');
  const full = checkbox(item.resource, 'full', level === 'full', !canFull);
  const read = checkbox(item.resource, 'read', level === 'full' || level === 'read', !canRead);
  const sync = () => {
    if (full.input.checked) {
      read.input.checked = true;
      read.input.disabled = true;
    } else {
      read.input.disabled = !canRead;
    }
  };
  full.input.addEventListener('change', sync);
  sync();
  const lacking = !canFull && !canRead;
  tbody.append(h('tr', { 'data-resource': item.resource, class: lacking ? 'row-disabled' : null },
    h('th', { scope: 'row' },
      h('span', { class: 'resource-name' }, item.resource),
      item.description ? h('span', { class: 'resource-desc' }, item.description) : null,
      lacking ? h('span', { class: 'resource-desc' }, 'You do not hold this permission.') : null),
    full.cell, read.cell));
  return {
    value: () => {
      if (full.input.checked) return item.resource;
      if (read.input.checked) return `${item.resource}:read`;
      return null;
    },
  };
}

/** Loads one token (for the edit screen). */
export async function loadToken(id) {
  return (await api.get(`/tokens/${enc(id)}`)).data;
}

// The audit log: who changed what, from where, newest first, as sentences
// that link to the token or member they name. Filters live in the URL, so
// a filtered view can be linked and reloaded.

import { api, enc } from '../api.js';
import { h, replace } from '../dom.js';
import { exact, rfc3339, timeEl } from '../format.js';
import { loadToken } from '../permissions.js';
import { alertBox, clearErrors, emptyState, errorMessage, field, loading, pageHeader, showErrors } from '../ui.js';

const PER_PAGE = 20;

/**
 * Every action the server records (`ACTIONS` in src/core/audit.rs), with a
 * label for the filter, grouped as the filter shows them. Instance actions
 * have no workspace: only the instance admin reads them, under Instance.
 */
const ACTION_GROUPS = [
  ['workspace', 'API tokens', [
    ['token.create', 'Token created'],
    ['token.update', 'Token edited'],
    ['token.reset', 'Token reset'],
    ['token.revoke', 'Token revoked'],
  ]],
  ['workspace', 'Domains', [
    ['domain.create', 'Domain added'],
    ['domain.delete', 'Domain deleted'],
  ]],
  ['workspace', 'Members and scopes', [
    ['member.add', 'Member added'],
    ['member.update', 'Member changed'],
    ['member.remove', 'Member removed'],
    ['scope.put', 'Scope saved'],
    ['scope.delete', 'Scope deleted'],
  ]],
  ['workspace', 'Workspace', [
    ['workspace.create', 'Workspace created'],
    ['workspace.update', 'Workspace changed'],
    ['routes.update', 'Forward-auth rules replaced'],
  ]],
  ['instance', 'Accounts', [
    ['account.create', 'Account created'],
    ['account.password', 'Password changed'],
    ['account.disable', 'Account disabled'],
    ['account.enable', 'Account enabled'],
    ['account.delete', 'Account deleted'],
  ]],
  ['instance', 'Sign-in', [
    ['session.create', 'Signed in'],
    ['session.fail', 'Sign-in failed'],
    ['session.revoke', 'Signed out'],
  ]],
  ['instance', 'Instance', [
    ['settings.update', 'Settings changed'],
    ['sweeper.purge', 'Expired items purged'],
  ]],
];

const LABELS = new Map(ACTION_GROUPS.flatMap(([, , actions]) => actions));

/** What the URL asks for; anything malformed is left out. */
function readFilters(ctx) {
  const q = ctx.query;
  const text = (key) => (q.get(key) || '').trim();
  const date = (key) => (parseDay(text(key)) ? text(key) : '');
  return {
    scope: ctx.state.isInstanceAdmin && q.get('scope') === 'instance' ? 'instance' : 'workspace',
    action: text('action'),
    actor: text('actor'),
    target: text('target'),
    since: date('since'),
    until: date('until'),
    page: Math.max(1, Number.parseInt(q.get('page') || '1', 10) || 1),
  };
}

/** `/audit?…` for `filters`, leaving out what is empty or the default. */
function href(filters) {
  const params = new URLSearchParams();
  if (filters.scope === 'instance') params.set('scope', 'instance');
  for (const key of ['action', 'actor', 'target', 'since', 'until']) {
    if (filters[key]) params.set(key, filters[key]);
  }
  if (filters.page > 1) params.set('page', String(filters.page));
  const query = params.toString();
  return query ? `/audit?${query}` : '/audit';
}

/** "2026-03-25" as that day's local midnight, or null. */
function parseDay(text) {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return null;
  const [year, month, day] = match.slice(1).map(Number);
  const date = new Date(year, month - 1, day);
  return date.getFullYear() === year && date.getMonth() === month - 1 && date.getDate() === day ? date : null;
}

/** The API query: dates cover whole days in the reader's time zone. */
function apiQuery(filters) {
  const params = new URLSearchParams({ page: String(filters.page), per_page: String(PER_PAGE) });
  if (filters.scope === 'instance') params.set('scope', 'instance');
  for (const key of ['action', 'actor', 'target']) {
    if (filters[key]) params.set(key, filters[key]);
  }
  if (filters.since) params.set('since', rfc3339(parseDay(filters.since)));
  if (filters.until) {
    const end = parseDay(filters.until);
    end.setDate(end.getDate() + 1);
    params.set('until', rfc3339(new Date(end.getTime() - 1000)));
  }
  return `/audit?${params}`;
}

function filtered(filters) {
  return Boolean(filters.action || filters.actor || filters.target || filters.since || filters.until);
}

export async function render(ctx) {
  const filters = readFilters(ctx);
  const scopeSwitch = ctx.state.isInstanceAdmin ? h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show entries of' },
    [['workspace', 'This workspace'], ['instance', 'Instance']].map(([key, label]) => h('a', {
      href: href({ ...filters, scope: key, action: '', page: 1 }), 'data-link': true, class: 'segment',
      'aria-current': key === filters.scope ? 'true' : null, 'data-testid': `audit-scope-${key}`,
    }, label))) : null;
  const { box, form } = filterForm(ctx, filters);
  const body = h('div', { class: 'list-body', 'data-testid': 'audit-body' }, loading());
  replace(ctx.section,
    pageHeader('Audit log', filters.scope === 'instance'
      ? 'Changes to the instance: sign-ups, sign-ins and failed sign-ins, passwords and settings. Newest first.'
      : 'Every change in this workspace: who made it, when and from which address. Newest first.'),
    scopeSwitch ? h('div', { class: 'toolbar' }, scopeSwitch) : null,
    box,
    body);

  let result;
  try {
    result = await api.get(apiQuery(filters));
  } catch (err) {
    if (!ctx.live() || err.handled) return;
    if (err.status === 422) {
      form.closest('details').open = true;
      showErrors(form, err);
      replace(body);
    } else if (err.status === 403) {
      replace(body, alertBox('info', filters.scope === 'instance'
        ? 'Only the instance admin can read instance entries.'
        : 'Only workspace admins, and members granted Read on audit, can read this workspace’s audit log.', 'audit-forbidden'));
    } else {
      replace(body, alertBox('error', errorMessage(err), 'view-error'));
    }
    return;
  }
  const { data, meta } = result;
  if (data.length === 0 && filters.page > 1 && meta.total > 0) {
    ctx.navigate(href({ ...filters, page: 1 }), { replace: true, focus: false });
    return;
  }
  const names = await tokenNames(data);
  if (!ctx.live()) return;
  replace(body,
    data.length === 0 ? empty(filters) : h('ol', { class: 'item-list audit-list', 'aria-label': 'Audit log entries, newest first', 'data-testid': 'audit-list' },
      data.map((entry) => entryRow(entry, names, filters))),
    pager(filters, meta));
}

/* ---------- filters ---------- */

function filterForm(ctx, filters) {
  const action = h('select', { id: 'audit-action', name: 'action' },
    h('option', { value: '' }, 'Any action'),
    ACTION_GROUPS.filter(([scope]) => scope === filters.scope).map(([, label, actions]) =>
      h('optgroup', { label }, actions.map(([value, text]) => h('option', { value }, text)))));
  if (filters.action && !action.querySelector(`option[value="${CSS.escape(filters.action)}"]`)) {
    action.append(h('option', { value: filters.action }, LABELS.get(filters.action) || filters.action));
  }
  action.value = filters.action;
  const text = (id, name, value) => h('input', {
    type: 'text', id, name, value, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none',
  });
  const actor = text('audit-actor', 'actor', filters.actor);
  const target = text('audit-target', 'target', filters.target);
  const since = h('input', { type: 'date', id: 'audit-since', name: 'since', value: filters.since });
  const until = h('input', { type: 'date', id: 'audit-until', name: 'until', value: filters.until });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'audit-apply', 'data-testid': 'audit-apply' }, 'Apply filters');
  const clear = filtered(filters)
    ? h('a', { href: href({ scope: filters.scope, page: 1 }), class: 'btn', 'data-link': true, 'data-testid': 'audit-clear' }, 'Clear filters')
    : null;
  const form = h('form', { class: 'form audit-filters', role: 'search', 'aria-label': 'Filter the audit log', novalidate: true, 'data-testid': 'audit-filters' },
    h('div', { class: 'form-alert' }),
    h('div', { class: 'filter-grid' },
      field({ label: 'Action', control: action, name: 'action' }),
      field({ label: 'Actor ID', control: actor, name: 'actor' }),
      field({ label: 'Target ID', control: target, name: 'target' }),
      field({ label: 'From', control: since, name: 'since' }),
      field({ label: 'To', control: until, name: 'until' })),
    h('p', { class: 'field-hint' }, 'The actor is the account or token that made a change; the target is what it changed. An entry’s Details link to every entry about the same target or by the same actor.'),
    h('div', { class: 'form-actions' }, submit, clear));
  const active = ['action', 'actor', 'target', 'since', 'until'].filter((key) => filters[key]).length;
  // Open on wide screens and whenever a filter is set; on a phone it
  // waits to be asked for, so the entries come first.
  const open = active > 0 || window.matchMedia('(min-width: 801px)').matches;
  const box = h('details', { class: 'card audit-filter-box', open, 'data-testid': 'audit-filter-box' },
    h('summary', {}, 'Filters', active ? h('span', { class: 'badge badge-info' }, `${active} active`) : null),
    form);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (since.value && until.value && since.value > until.value) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { until: 'must be on or after the From day' } });
      return;
    }
    await ctx.navigate(href({
      scope: filters.scope,
      action: action.value,
      actor: actor.value.trim(),
      target: target.value.trim(),
      since: since.value,
      until: until.value,
      page: 1,
    }), { focus: false });
    // The screen was drawn again: keep the reader where they were.
    const again = document.getElementById('audit-apply');
    if (again) {
      again.closest('details').open = true;
      again.focus();
    }
  });
  return { box, form };
}

/* ---------- the list ---------- */

function empty(filters) {
  if (filtered(filters)) {
    return emptyState('No entries match these filters', 'Try a wider date range or another action.',
      h('a', { href: href({ scope: filters.scope, page: 1 }), class: 'btn', 'data-link': true }, 'Clear filters'));
  }
  return emptyState('No entries yet', filters.scope === 'instance'
    ? 'Sign-ups, sign-ins and settings changes appear here.'
    : 'Changes to tokens, domains, members and scopes appear here.');
}

function pager(filters, meta) {
  if (!meta || meta.total === 0) return null;
  const noun = meta.total === 1 ? 'entry' : 'entries';
  if (meta.total <= meta.per_page) {
    return h('p', { class: 'list-summary', 'data-testid': 'list-summary', role: 'status' }, `${meta.total} ${noun}`);
  }
  const first = (meta.page - 1) * meta.per_page + 1;
  const last = Math.min(meta.total, meta.page * meta.per_page);
  const prev = meta.page > 1
    ? h('a', { href: href({ ...filters, page: meta.page - 1 }), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-prev' }, 'Previous')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Previous');
  const next = last < meta.total
    ? h('a', { href: href({ ...filters, page: meta.page + 1 }), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-next' }, 'Next')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Next');
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('p', { class: 'list-summary', 'data-testid': 'list-summary', role: 'status' }, `${first}–${last} of ${meta.total} ${noun}`),
    h('div', { class: 'pager-buttons' }, prev, next));
}

/**
 * Names of the tokens that acted on this page: from the entries that name
 * them, else from the token itself. A token that is gone, or that the
 * reader may not see, stays "a token".
 */
async function tokenNames(entries) {
  const names = new Map();
  for (const entry of entries) {
    if (entry.target.kind === 'token' && entry.target.id && entry.target.name) names.set(entry.target.id, entry.target.name);
  }
  const missing = new Set(entries
    .filter((entry) => entry.actor.kind === 'token' && entry.actor.token_id && !names.has(entry.actor.token_id))
    .map((entry) => entry.actor.token_id));
  await Promise.all([...missing].map(async (id) => {
    try {
      names.set(id, (await loadToken(id)).name);
    } catch {
      // Purged, or not readable with the reader's grants.
    }
  }));
  return names;
}

function entryRow(entry, names, filters) {
  return h('li', { class: 'item audit-entry', 'data-testid': 'audit-entry', 'data-action': entry.action, 'data-entry-id': entry.id },
    h('div', { class: 'item-main' },
      h('p', { class: 'audit-sentence', 'data-testid': 'audit-sentence' }, sentence(entry, names)),
      h('div', { class: 'item-meta' },
        timeEl(entry.at),
        h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'),
        h('span', { class: entry.action === 'session.fail' ? 'audit-action warn-text' : 'audit-action' },
          LABELS.get(entry.action) || entry.action)),
      detailsBlock(entry, filters)));
}

const ACTOR_KINDS = { session: 'session', token: 'API token', cli: 'command line', system: 'the sweeper' };

/** The raw facts behind a sentence, and filters built from them. */
function detailsBlock(entry, filters) {
  const rows = [
    ['Action', h('code', {}, entry.action)],
    ['Actor', [ACTOR_KINDS[entry.actor.kind] || entry.actor.kind, entry.actor.account_id ? [' · account ', h('code', {}, entry.actor.account_id)] : null,
      entry.actor.token_id ? [' · token ', h('code', {}, entry.actor.token_id)] : null]],
    ['Address', entry.ip || 'none'],
    ['Target', [entry.target.kind, entry.target.id ? [' ', h('code', {}, entry.target.id)] : null]],
  ];
  for (const [key, value] of Object.entries(entry.details || {})) {
    const term = key.replace(/_/g, ' ');
    rows.push([term.charAt(0).toUpperCase() + term.slice(1), detailValue(value)]);
  }
  const accountOrToken = entry.actor.token_id || entry.actor.account_id;
  const links = [
    entry.target.id && entry.target.id !== filters.target
      ? h('a', { href: href({ scope: filters.scope, target: entry.target.id, page: 1 }), 'data-link': true }, `Every entry about this ${entry.target.kind}`)
      : null,
    accountOrToken && accountOrToken !== filters.actor
      ? h('a', { href: href({ scope: filters.scope, actor: accountOrToken, page: 1 }), 'data-link': true }, `Every change by this ${entry.actor.token_id ? 'token' : 'account'}`)
      : null,
  ].filter(Boolean);
  return h('details', { class: 'audit-details' },
    h('summary', {}, 'Details'),
    h('dl', {}, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    links.length ? h('p', { class: 'audit-details-links' }, links) : null);
}

function detailValue(value) {
  if (value === null || value === undefined || value === '') return h('span', { class: 'muted' }, 'none');
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(value)) {
    return h('time', { datetime: value, title: value }, exact(value));
  }
  if (typeof value === 'object') return h('code', {}, JSON.stringify(value));
  return h('code', {}, String(value));
}

/* ---------- sentences ---------- */

function tokenLink(id, name, hint) {
  const code = hint ? h('code', { class: 'audit-hint' }, hint) : null;
  const label = name ? [name, code ? [' (', code, ')'] : null] : code || 'a token';
  return id
    ? h('a', { href: `/tokens/${enc(id)}/permissions`, 'data-link': true, 'data-testid': 'audit-token-link' }, label)
    : h('span', {}, label);
}

function memberLink(target) {
  const name = target.name || 'a former member';
  return target.id
    ? h('a', { href: `/members/${enc(target.id)}`, 'data-link': true, 'data-testid': 'audit-member-link' }, name)
    : name;
}

function strong(text) {
  return h('strong', {}, text || 'unnamed');
}

/** A space-separated scope list as code, or "no grants". */
function scopeList(scopes) {
  return scopes ? h('code', { class: 'audit-scopes' }, scopes) : 'no grants';
}

function plural(n, noun) {
  return `${n} ${n === 1 ? noun.replace(/s$/, '') : noun}`;
}

function roleText(role) {
  return role === 'admin' ? 'an admin' : 'a member';
}

/** Who made the change, as the start of a sentence. */
function actorPhrase(entry, names) {
  const actor = entry.actor;
  switch (actor.kind) {
    case 'session':
      if (actor.email) return actor.email;
      return actor.account_id ? 'a deleted account' : 'someone not signed in';
    case 'token': {
      const name = names.get(actor.token_id);
      return ['the token ', name ? tokenLink(actor.token_id, name, null) : 'unknown', ` (acting for ${actor.email || 'a deleted account'})`];
    }
    case 'cli':
      return 'the command line';
    case 'system':
      return 'the sweeper';
    default:
      return 'someone';
  }
}

/** Whether the actor is the account the entry is about. */
function bySelf(entry) {
  return entry.actor.kind === 'session' && entry.actor.account_id && entry.actor.account_id === entry.target.id;
}

/**
 * One sentence per action: `who` is the actor's phrase, `from` " from
 * <address>" or "", `d` the details.
 */
const SENTENCES = {
  'account.create': (e, who, from, d) => {
    const admin = d.instance_admin ? ', the first account and so the instance admin' : '';
    return e.actor.kind === 'session' && (!e.actor.account_id || bySelf(e))
      ? [e.target.name, ' signed up', from, admin]
      : [who, ' created the account ', e.target.name, from, admin];
  },
  'account.password': (e, who, from, d) => {
    const ended = d.sessions_ended ? `; ${plural(d.sessions_ended, 'other sessions')} ended` : '';
    return bySelf(e)
      ? [who, ' changed their password', from, ended]
      : [who, ' set a new password for ', e.target.name, from, ended];
  },
  'account.disable': (e, who, from) => [who, ' disabled the account ', e.target.name, from],
  'account.enable': (e, who, from) => [who, ' enabled the account ', e.target.name, from],
  'account.delete': (e, who, from) => [who, ' deleted the account ', e.target.name, from],
  'session.create': (e, who, from) => (bySelf(e) || !e.actor.account_id
    ? [e.target.name || who, ' signed in', from]
    : [who, ' signed in as ', e.target.name, from]),
  'session.fail': (e, who, from) => (e.target.id
    ? ['a sign-in to ', e.target.name, ' failed', from]
    : ['a sign-in to an unknown account failed', from]),
  'session.revoke': (e, who, from) => (bySelf(e)
    ? [who, ' signed out', from]
    : [who, ' ended a session of ', e.target.name, from]),
  'workspace.create': (e, who, from) => [who, ' created the workspace ', strong(e.target.name), from],
  'workspace.update': (e, who, from, d) => {
    if (d.name) {
      return [who, ' renamed the workspace to ', strong(d.name), from,
        d.token_prefix ? ['; its token prefix is ', h('code', {}, d.token_prefix)] : ''];
    }
    if (d.token_prefix) return [who, ' set the token prefix of ', strong(e.target.name), ' to ', h('code', {}, d.token_prefix), from];
    return [who, ' changed the workspace ', strong(e.target.name), from];
  },
  'member.add': (e, who, from, d) => [who, ' added ', memberLink(e.target), ' as ', roleText(d.role),
    d.role === 'admin' ? '' : [' with ', scopeList(d.scopes)], from],
  'member.update': (e, who, from, d) => {
    const member = memberLink(e.target);
    if ('role' in d && 'scopes' in d) {
      return [who, ' made ', member, ' ', roleText(d.role), d.role === 'admin' ? '' : [' with ', scopeList(d.scopes)], from];
    }
    if ('role' in d) return [who, ' made ', member, ' ', roleText(d.role), from];
    if ('scopes' in d) return [who, ' set the grants of ', member, ' to ', scopeList(d.scopes), from];
    return [who, ' changed ', member, from];
  },
  'member.remove': (e, who, from) => (bySelf(e)
    ? [who, ' left the workspace', from]
    : [who, ' removed ', memberLink(e.target), ' from the workspace', from]),
  'scope.put': (e, who, from, d) => [who, ' saved the scope ', h('code', {}, e.target.name),
    d.description ? [' (“', d.description, '”)'] : '', from],
  'scope.delete': (e, who, from) => [who, ' deleted the scope ', h('code', {}, e.target.name), from],
  'settings.update': (e, who, from) => [who, ' changed the instance settings', from],
  'token.create': (e, who, from, d) => [who, ' created ', tokenLink(e.target.id, e.target.name, d.hint), from],
  'token.update': (e, who, from, d) => {
    const token = tokenLink(e.target.id, e.target.name, d.hint);
    // The address goes last, after a comma: "from a to b from …" would blur.
    const after = from ? [',', from] : '';
    const scopes = 'scopes' in d ? [' from ', scopeList(d.old_scopes), ' to ', scopeList(d.scopes)] : null;
    if ('old_name' in d && scopes) return [who, ' renamed ', strong(d.old_name), ' to ', token, ' and changed its scopes', scopes, after];
    if ('old_name' in d) return [who, ' renamed ', strong(d.old_name), ' to ', token, from];
    if (scopes) return [who, ' changed the scopes of ', token, scopes, after];
    return [who, ' edited ', token, from];
  },
  'token.reset': (e, who, from, d) => [who, ' reset ', tokenLink(e.target.id, e.target.name, d.hint), from,
    d.replaced_by ? ['; the new token is ', tokenLink(d.replaced_by, null, d.new_hint)] : ''],
  'token.revoke': (e, who, from, d) => [who, ' revoked ', tokenLink(e.target.id, e.target.name, d.hint), from],
  'domain.create': (e, who, from, d) => [who, ' added the domain ', strong(e.target.name),
    d.token_id ? [' and its token ', tokenLink(d.token_id, d.token_name, d.token_hint)] : '', from],
  'domain.delete': (e, who, from) => [who, ' deleted the domain ', strong(e.target.name), from],
  'routes.update': (e, who, from) => [who, ' replaced the forward-auth rules', from],
  'sweeper.purge': (e, who, from, d) => {
    const counts = Object.entries(d).filter(([, n]) => typeof n === 'number' && n > 0).map(([key, n]) => plural(n, key.replace(/_/g, ' ')));
    if (counts.length === 0) return [who, ' ran and purged nothing'];
    const list = counts.length === 1 ? counts[0] : `${counts.slice(0, -1).join(', ')} and ${counts[counts.length - 1]}`;
    return [who, ' purged ', list];
  },
};

/** An action this page does not know yet: still who, what and to what. */
function fallback(e, who, from) {
  const name = e.target.name || e.target.id;
  return [who, ' made a change (', h('code', {}, e.action), ')', name ? [' to ', e.target.kind, ' ', strong(name)] : '', from];
}

/** The entry as one sentence, its first letter a capital. */
function sentence(entry, names) {
  const who = actorPhrase(entry, names);
  const from = entry.ip ? ` from ${entry.ip}` : '';
  const details = entry.details && typeof entry.details === 'object' ? entry.details : {};
  const parts = (SENTENCES[entry.action] || fallback)(entry, who, from, details).flat(Infinity);
  const first = parts.findIndex((part) => part !== '' && part !== null && part !== undefined);
  if (first >= 0 && typeof parts[first] === 'string' && /^(the|a|someone) /.test(parts[first])) {
    parts[first] = parts[first].charAt(0).toUpperCase() + parts[first].slice(1);
  }
  return parts;
}

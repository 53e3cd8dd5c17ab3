// API Tokens: the list with its filter and pages, and each token's menu
// (copy ID, edit permissions, reset, delete).

import { api, enc } from '../api.js';
import { h, replace } from '../dom.js';
import { duration, exact, relative, timeEl } from '../format.js';
import { isVerifier } from '../permissions.js';
import {
  alertBox, badge, confirmAction, copyText, emptyState, errorMessage, loading,
  pageHeader, revealSecret, rowMenu, scopeChips, toast, verifierBadge, verifyExample,
} from '../ui.js';

const FILTERS = [
  ['active', 'Active'],
  ['expired', 'Expired'],
  ['revoked', 'Revoked'],
  ['all', 'All'],
];
const PER_PAGE = 20;

const STATE_BADGE = { active: 'success', expired: 'neutral', revoked: 'danger' };

export async function render(ctx) {
  const filter = FILTERS.some(([key]) => key === ctx.query.get('state')) ? ctx.query.get('state') : 'active';
  const page = Math.max(1, Number.parseInt(ctx.query.get('page') || '1', 10) || 1);

  const create = h('a', { href: '/tokens/new', class: 'btn btn-primary', 'data-link': true, 'data-testid': 'create-token' }, 'Create token');
  const filterBar = h('div', { class: 'segmented', role: 'group', 'aria-label': 'Show tokens' },
    FILTERS.map(([key, label]) => h('a', {
      href: key === 'active' ? '/tokens' : `/tokens?state=${key}`, 'data-link': true, class: 'segment',
      'aria-current': key === filter ? 'true' : null, 'data-testid': `filter-${key}`,
    }, label)));
  const body = h('div', { class: 'list-body' }, loading());
  replace(ctx.section,
    pageHeader('API Tokens',
      'Tokens let integrations call your APIs. Each one has its own permissions and expiry, and can be reset or revoked at any time.',
      create),
    h('div', { class: 'toolbar' }, filterBar),
    body);

  const { data, meta } = await api.get(`/tokens?state=${filter}&page=${page}&per_page=${PER_PAGE}`);
  if (!ctx.live()) return;
  if (data.length === 0 && page > 1 && meta.total > 0) {
    ctx.navigate(`/tokens?state=${filter}`, { replace: true, focus: false });
    return;
  }
  replace(body, data.length === 0 ? empty(filter) : tokenList(ctx, data), pager(filter, meta));
}

function empty(filter) {
  if (filter === 'active' || filter === 'all') {
    return emptyState('No tokens yet', 'Create one to give an integration access.',
      h('a', { href: '/tokens/new', class: 'btn btn-primary', 'data-link': true }, 'Create token'));
  }
  return emptyState(`No ${filter} tokens`, filter === 'expired'
    ? 'Expired tokens stay listed for a while after they expire, then they are deleted.'
    : 'Deleted tokens stay listed for a while after they are revoked, then they are deleted.');
}

function pager(filter, meta) {
  if (!meta || meta.total <= meta.per_page) {
    return meta && meta.total ? h('p', { class: 'list-summary', 'data-testid': 'list-summary' }, `${meta.total} ${meta.total === 1 ? 'token' : 'tokens'}`) : null;
  }
  const first = (meta.page - 1) * meta.per_page + 1;
  const last = Math.min(meta.total, meta.page * meta.per_page);
  const href = (p) => `/tokens?state=${filter}&page=${p}`;
  const prev = meta.page > 1
    ? h('a', { href: href(meta.page - 1), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-prev' }, 'Previous')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Previous');
  const next = last < meta.total
    ? h('a', { href: href(meta.page + 1), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-next' }, 'Next')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Next');
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('p', { class: 'list-summary', 'data-testid': 'list-summary' }, `${first}–${last} of ${meta.total} tokens`),
    h('div', { class: 'pager-buttons' }, prev, next));
}

function tokenList(ctx, tokens) {
  return h('ul', { class: 'item-list', 'data-testid': 'token-list' }, tokens.map((t) => tokenRow(ctx, t)));
}

function expiryText(token) {
  if (token.state === 'revoked') return null;
  if (!token.expires_at) return [h('span', { class: 'warn-text' }, 'Never expires')];
  const past = Date.parse(token.expires_at) <= Date.now();
  return [
    `${past ? 'Expired' : 'Expires'} ${relative(token.expires_at)}`,
    h('span', { class: 'exact' }, ` (${exact(token.expires_at)})`),
  ];
}

function lastUsedText(token) {
  if (!token.last_used_at) return ['Never used'];
  return ['Last used ', timeEl(token.last_used_at), token.last_used_ip ? ` from ${token.last_used_ip}` : ''];
}

function tokenRow(ctx, token) {
  const active = token.state === 'active';
  const replaced = Boolean(token.replaced_by);
  const badges = [];
  if (isVerifier(token.scopes)) badges.push(verifierBadge());
  badges.push(badge(token.state.charAt(0).toUpperCase() + token.state.slice(1), STATE_BADGE[token.state], 'token-state'));
  if (replaced && active) badges.push(badge('Replaced', 'warning'));
  const menu = rowMenu(`Actions for ${token.name}`, [
    { label: 'Copy token ID', testid: 'copy-id', action: () => copyId(token) },
    { label: 'Edit permissions', testid: 'edit', disabled: !active, hint: active ? null : 'Inactive',
      action: () => ctx.navigate(`/tokens/${token.id}/permissions`) },
    { label: 'Reset token', testid: 'reset', disabled: !active || replaced, hint: replaced ? 'Already reset' : (active ? null : 'Inactive'),
      action: () => resetToken(ctx, token) },
    'separator',
    { label: 'Delete token', testid: 'delete', danger: true, disabled: token.state === 'revoked',
      action: () => deleteToken(ctx, token) },
  ]);
  return h('li', { class: `item token-row state-${token.state}`, 'data-testid': 'token-row', 'data-token-id': token.id, 'data-token-name': token.name },
    h('div', { class: 'item-main' },
      h('div', { class: 'item-title' },
        h('span', { class: 'token-name', 'data-testid': 'token-name' }, token.name), badges),
      h('div', { class: 'item-meta' },
        h('code', { class: 'hint', 'data-testid': 'token-hint', title: 'The start and end of the token' }, token.token_hint),
        h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'),
        h('span', {}, 'Created by ', h('span', { class: 'creator' }, token.created_by.email), ' ', timeEl(token.created_at))),
      h('div', { class: 'item-scopes', 'data-testid': 'token-scopes' }, scopeChips(token.scopes)),
      h('div', { class: 'item-meta' },
        token.revoked_at
          ? h('span', { 'data-testid': 'token-expiry' }, 'Revoked ', timeEl(token.revoked_at))
          : h('span', { 'data-testid': 'token-expiry' }, expiryText(token)),
        h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'),
        h('span', { 'data-testid': 'token-last-used' }, lastUsedText(token)))),
    h('div', { class: 'item-actions' }, menu));
}

async function copyId(token) {
  const ok = await copyText(token.id);
  toast(ok ? 'Token ID copied to the clipboard.' : `Could not copy. The token ID is ${token.id}.`, ok ? 'success' : 'error');
}

async function resetToken(ctx, token) {
  const settings = ctx.state.settings;
  const grace = settings ? settings.reset_grace_seconds : 43200;
  const graceText = grace === 0
    ? 'The old token stops working at once.'
    : `The old token keeps working for ${duration(grace)}, so you have time to update every app that uses it. Then it expires.`;
  const result = await confirmAction({
    title: `Reset ${token.name}?`,
    body: [
      h('p', {}, 'A new token with the same permissions replaces this one, and its secret is shown once.'),
      h('p', { 'data-testid': 'reset-grace' }, h('strong', {}, graceText)),
    ],
    confirmLabel: 'Reset token',
    action: async () => (await api.post(`/tokens/${enc(token.id)}/reset`, undefined)).data,
  });
  if (!result || result === true) return;
  await refreshList(ctx);
  const graceEnd = grace === 0 ? null : new Date(Date.now() + grace * 1000).toISOString();
  await revealSecret({
    title: 'Your token was reset',
    intro: `${result.name} replaces ${token.name}. Use this secret from now on.`,
    secret: result.token,
    example: isVerifier(result.scopes) ? verifyExample : null,
    notes: [graceEnd
      ? `The old token keeps working until ${exact(graceEnd)} (${duration(grace)}).`
      : 'The old token has stopped working.'],
  });
  focusHeading();
}

function focusHeading() {
  const heading = document.querySelector('main h1');
  if (heading) heading.focus({ preventScroll: true });
}

async function deleteToken(ctx, token) {
  const done = await confirmAction({
    title: `Delete ${token.name}?`,
    body: [
      h('p', {}, 'The token is revoked at once: the very next request that uses it fails. This cannot be undone.'),
      h('p', { class: 'muted' }, `Token ${token.token_hint}, created by ${token.created_by.email}.`),
    ],
    confirmLabel: 'Delete token',
    danger: true,
    action: () => api.del(`/tokens/${enc(token.id)}`),
  });
  if (!done) return;
  toast(`${token.name} was deleted.`);
  await refreshList(ctx);
  focusHeading();
}

async function refreshList(ctx) {
  try {
    await ctx.navigate(location.pathname + location.search, { focus: false });
  } catch (err) {
    if (!err.handled) ctx.section.append(alertBox('error', errorMessage(err)));
  }
}

// Accounts (the instance admin): everyone who can sign in to this server,
// searched by email and paged; disable or enable an account, or delete it,
// each after a confirmation.

import { api, enc } from '../api.js';
import { h, replace } from '../dom.js';
import { timeEl } from '../format.js';
import {
  alertBox, badge, confirmAction, emptyState, errorMessage, loading, pageHeader, rowMenu, toast,
} from '../ui.js';

const PER_PAGE = 20;

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "no active tokens", "1 active token", "3 active tokens". */
function tokenCount(n) {
  return n === 0 ? 'no active tokens' : plural(n, 'active token');
}

function listPath(q, page) {
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (page > 1) params.set('page', String(page));
  const query = params.toString();
  return query ? `/accounts?${query}` : '/accounts';
}

export async function render(ctx) {
  if (!ctx.state.isInstanceAdmin) {
    replace(ctx.section, pageHeader('Accounts'),
      alertBox('info', 'Only the instance admin can manage accounts.'));
    return;
  }
  const q = (ctx.query.get('q') || '').trim();
  const page = Math.max(1, Number.parseInt(ctx.query.get('page') || '1', 10) || 1);

  const search = h('input', {
    type: 'search', id: 'account-search', name: 'q', value: q, autocomplete: 'off',
    spellcheck: 'false', autocapitalize: 'none', placeholder: 'name@example.com',
  });
  const form = h('form', { class: 'search-form', role: 'search', 'aria-label': 'Accounts', 'data-testid': 'account-search-form' },
    h('label', { for: search.id, class: 'field-label' }, 'Search by email'),
    h('div', { class: 'search-row' },
      search,
      h('button', { type: 'submit', class: 'btn', 'data-testid': 'account-search-submit' }, 'Search'),
      q ? h('a', { href: '/accounts', class: 'btn', 'data-link': true, 'data-testid': 'account-search-clear' }, 'Clear') : null));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    ctx.navigate(listPath(search.value.trim(), 1), { focus: false });
  });
  const summary = h('p', { class: 'list-summary', role: 'status', 'data-testid': 'list-summary' });
  const body = h('div', { class: 'list-body' }, loading());
  replace(ctx.section,
    pageHeader('Accounts',
      'Everyone who can sign in to this server. Disabling an account ends its sessions and stops its tokens at once, in every workspace; enabling it brings the tokens back.'),
    form, summary, body);
  if (q) search.focus();

  const { data, meta } = await api.get(`/accounts?q=${enc(q)}&page=${page}&per_page=${PER_PAGE}`, { workspace: false });
  if (!ctx.live()) return;
  if (data.length === 0 && page > 1 && meta.total > 0) {
    ctx.navigate(listPath(q, 1), { replace: true, focus: false });
    return;
  }
  summary.textContent = summaryText(q, meta, data.length);
  if (data.length === 0) {
    replace(body, emptyState(q ? 'No matching accounts' : 'No accounts', q ? `No email contains “${q}”.` : null));
    return;
  }
  const refresh = () => reload(ctx);
  replace(body,
    h('ul', { class: 'item-list', 'data-testid': 'account-list' }, data.map((a) => accountRow(ctx, a, refresh))),
    pager(q, meta));
}

function summaryText(q, meta, shown) {
  const what = q ? `${plural(meta.total, 'account')} matching “${q}”` : plural(meta.total, 'account');
  if (meta.total <= meta.per_page) return what;
  const first = (meta.page - 1) * meta.per_page + 1;
  return `${first}–${first + shown - 1} of ${what}`;
}

function pager(q, meta) {
  if (meta.total <= meta.per_page) return null;
  const last = Math.min(meta.total, meta.page * meta.per_page);
  const prev = meta.page > 1
    ? h('a', { href: listPath(q, meta.page - 1), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-prev' }, 'Previous')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Previous');
  const next = last < meta.total
    ? h('a', { href: listPath(q, meta.page + 1), class: 'btn btn-sm', 'data-link': true, 'data-testid': 'page-next' }, 'Next')
    : h('span', { class: 'btn btn-sm', 'aria-disabled': 'true' }, 'Next');
  return h('nav', { class: 'pager', 'aria-label': 'Pages' }, h('div', { class: 'pager-buttons' }, prev, next));
}

function accountRow(ctx, account, refresh) {
  const you = account.id === ctx.state.me.account.id;
  const badges = [];
  if (account.instance_admin) badges.push(badge('Instance admin', 'info'));
  badges.push(account.disabled
    ? badge('Disabled', 'danger', 'account-state')
    : badge('Active', 'success', 'account-state'));
  if (you) badges.push(badge('You', 'neutral'));
  // Your own account is not offered: disabling it would sign you out at
  // once, and the server keeps the last instance admin anyway.
  const self = you ? { disabled: true, hint: 'You' } : {};
  const menu = rowMenu(`Actions for ${account.email}`, [
    account.disabled
      ? { label: 'Enable account', testid: 'enable', action: () => setDisabled(account, false, refresh) }
      : { label: 'Disable account', testid: 'disable', ...self, action: () => setDisabled(account, true, refresh) },
    'separator',
    { label: 'Delete account', testid: 'delete', danger: true, ...self, action: () => deleteAccount(account, refresh) },
  ]);
  const sep = () => h('span', { class: 'sep', 'aria-hidden': 'true' }, '·');
  return h('li', { class: `item account-row${account.disabled ? ' state-disabled' : ''}`, 'data-testid': 'account-row', 'data-email': account.email },
    h('div', { class: 'item-main' },
      h('div', { class: 'item-title' }, h('span', { class: 'token-name' }, account.email), badges),
      h('div', { class: 'item-meta' },
        h('span', {}, 'Joined ', timeEl(account.created_at)),
        sep(),
        h('span', { 'data-testid': 'account-workspaces' }, plural(account.workspaces, 'workspace')),
        sep(),
        h('span', { 'data-testid': 'account-tokens' }, plural(account.active_tokens, 'active token')),
        account.disabled_at ? [sep(), h('span', { 'data-testid': 'account-disabled-at' }, 'Disabled ', timeEl(account.disabled_at))] : null)),
    h('div', { class: 'item-actions' }, menu));
}

async function setDisabled(account, disabled, refresh) {
  const tokens = tokenCount(account.active_tokens);
  const done = await confirmAction(disabled
    ? {
      title: `Disable ${account.email}?`,
      body: [
        h('p', {}, 'Their sessions end at once and they cannot sign in. Their tokens stop working at once too: a verification answers DISABLED.'),
        h('p', { class: 'muted' }, `They have ${tokens}. Enabling the account again brings the tokens back; they sign in again themselves.`),
      ],
      confirmLabel: 'Disable account',
      danger: true,
      action: () => api.patch(`/accounts/${enc(account.id)}`, { disabled: true }, { workspace: false }),
    }
    : {
      title: `Enable ${account.email}?`,
      body: [h('p', {}, account.active_tokens === 0
        ? 'They can sign in again.'
        : `They can sign in again, and their tokens work again (${tokens}).`)],
      confirmLabel: 'Enable account',
      action: () => api.patch(`/accounts/${enc(account.id)}`, { disabled: false }, { workspace: false }),
    });
  if (!done) return;
  toast(disabled ? `${account.email} was disabled.` : `${account.email} was enabled.`);
  await refresh();
}

async function deleteAccount(account, refresh) {
  const done = await confirmAction({
    title: `Delete ${account.email}?`,
    body: [
      h('p', {}, h('strong', {}, 'This cannot be undone. '),
        `They leave their ${plural(account.workspaces, 'workspace')} and every token they made is deleted`,
        ({ 0: '.', 1: ': the active one stops working at once.' })[account.active_tokens]
          || `: the ${account.active_tokens} active ones stop working at once.`),
      h('p', {}, 'A workspace no one else is in is deleted with its tokens, domains and scopes.'),
      h('p', { class: 'muted' }, 'To lock someone out for now, disable the account instead.'),
    ],
    confirmLabel: 'Delete account',
    danger: true,
    action: () => api.del(`/accounts/${enc(account.id)}`, { workspace: false }),
  });
  if (!done) return;
  toast(`${account.email} was deleted.`);
  await refresh();
}

async function reload(ctx) {
  try {
    await ctx.navigate(location.pathname + location.search, { focus: false });
  } catch (err) {
    if (!err.handled) ctx.section.append(alertBox('error', errorMessage(err)));
  }
  const heading = document.querySelector('main h1');
  if (heading && !document.querySelector('dialog')) heading.focus({ preventScroll: true });
}

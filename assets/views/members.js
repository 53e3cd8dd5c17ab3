// Members of the workspace: everyone can see who is in it; admins add
// people (who have signed up), change roles and grants, and remove them.

import { api, enc, listAll } from '../api.js';
import { h, replace } from '../dom.js';
import { loadResources, permissionGrid } from '../permissions.js';
import {
  alertBox, badge, busy, clearErrors, confirmAction, emptyState, field, loading,
  pageHeader, rowMenu, scopeChips, showErrors, toast,
} from '../ui.js';

export async function render(ctx) {
  const admin = ctx.state.isWorkspaceAdmin;
  const add = admin ? h('a', { href: '/members/new', class: 'btn btn-primary', 'data-link': true, 'data-testid': 'add-member' }, 'Add member') : null;
  const body = h('div', { class: 'list-body' }, loading());
  replace(ctx.section,
    pageHeader('Members', 'People in this workspace. Admins hold every permission; members hold the grants listed, and their tokens can never hold more.', add),
    body);

  const refresh = async () => {
    const members = await listAll(`/workspaces/${enc(ctx.state.workspaceId)}/members`);
    if (!ctx.live()) return;
    replace(body, members.length === 0
      ? emptyState('No members', null)
      : h('ul', { class: 'item-list', 'data-testid': 'member-list' }, members.map((m) => memberRow(ctx, m, admin, refresh))));
  };
  await refresh();
}

function memberRow(ctx, member, admin, refresh) {
  const you = member.account.id === ctx.state.me.account.id;
  const actions = admin ? rowMenu(`Actions for ${member.account.email}`, [
    { label: 'Edit role and permissions', testid: 'edit', action: () => ctx.navigate(`/members/${member.account.id}`) },
    'separator',
    { label: you ? 'Leave workspace' : 'Remove from workspace', testid: 'remove', danger: true, action: () => removeMember(ctx, member, you, refresh) },
  ]) : null;
  return h('li', { class: 'item', 'data-testid': 'member-row', 'data-email': member.account.email },
    h('div', { class: 'item-main' },
      h('div', { class: 'item-title' },
        h('span', { class: 'token-name' }, member.account.email),
        badge(member.role === 'admin' ? 'Admin' : 'Member', member.role === 'admin' ? 'info' : 'neutral'),
        you ? badge('You', 'neutral') : null),
      h('div', { class: 'item-scopes' }, member.role === 'admin'
        ? h('span', { class: 'muted' }, 'Every permission')
        : scopeChips(member.scopes))),
    actions ? h('div', { class: 'item-actions' }, actions) : null);
}

async function removeMember(ctx, member, you, refresh) {
  const done = await confirmAction({
    title: you ? 'Leave this workspace?' : `Remove ${member.account.email}?`,
    body: [
      h('p', {}, `${you ? 'Your' : 'Their'} tokens in this workspace stop working at once.`),
    ],
    confirmLabel: you ? 'Leave workspace' : 'Remove member',
    danger: true,
    action: () => api.del(`/workspaces/${enc(ctx.state.workspaceId)}/members/${enc(member.account.id)}`),
  });
  if (!done) return;
  toast(you ? 'You left the workspace.' : `${member.account.email} was removed.`);
  if (you) {
    await ctx.reloadMe();
    ctx.navigate('/tokens');
    return;
  }
  await refresh();
}

/** /members/new and /members/{account_id}. */
export async function renderForm(ctx) {
  const [accountId] = ctx.params;
  const editing = Boolean(accountId);
  const title = editing ? 'Edit member' : 'Add member';
  const crumb = h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
    h('a', { href: '/members', 'data-link': true }, 'Members'), h('span', { 'aria-hidden': 'true' }, ' / '), h('span', { 'aria-current': 'page' }, title));
  replace(ctx.section, crumb, pageHeader(title), loading());
  if (!ctx.state.isWorkspaceAdmin) {
    replace(ctx.section, crumb, pageHeader(title), alertBox('info', 'Only workspace admins can add or change members.'));
    return;
  }
  const ws = enc(ctx.state.workspaceId);
  const [resources, members] = await Promise.all([loadResources(ctx.state), listAll(`/workspaces/${ws}/members`)]);
  if (!ctx.live()) return;
  const member = editing ? members.find((m) => m.account.id === accountId) : null;
  if (editing && !member) {
    replace(ctx.section, crumb, pageHeader(title), alertBox('error', 'This person is not a member of this workspace.'));
    return;
  }

  const email = h('input', { type: 'email', id: 'member-email', name: 'email', required: true, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', value: member ? member.account.email : '', readonly: editing });
  const role = h('select', { id: 'member-role', name: 'role' },
    h('option', { value: 'member' }, 'Member — holds the permissions below'),
    h('option', { value: 'admin' }, 'Admin — holds every permission and manages the workspace'));
  role.value = member ? member.role : 'member';
  const grid = permissionGrid({ resources, selected: member ? member.scopes : [], caption: 'Grants' });
  const gridSet = h('fieldset', { class: 'fieldset', 'data-field': 'scopes' },
    h('legend', {}, 'Permissions'),
    h('p', { class: 'field-hint' }, 'What this member may use, and so the most their tokens can hold. Full includes Read.'),
    grid.element,
    h('p', { class: 'field-error', 'data-error-for': 'scopes', hidden: true }));
  const syncRole = () => {
    gridSet.hidden = role.value === 'admin';
  };
  role.addEventListener('change', syncRole);
  syncRole();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'member-submit' }, editing ? 'Save member' : 'Add member');
  const form = h('form', { class: 'form form-wide', id: 'member-form', novalidate: true },
    h('div', { class: 'form-alert' }),
    field({ label: 'Email', control: email, name: 'email', hint: editing ? null : 'The person must have an account on this server already.' }),
    field({ label: 'Role', control: role, name: 'role' }),
    gridSet,
    h('div', { class: 'form-actions' }, submit, h('a', { href: '/members', class: 'btn', 'data-link': true }, 'Cancel')));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!email.value.trim()) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { email: 'is required' } });
      return;
    }
    const body = { role: role.value, scopes: role.value === 'admin' ? [] : grid.value() };
    const ok = await busy(submit, 'Saving…', async () => {
      try {
        if (editing) await api.patch(`/workspaces/${ws}/members/${enc(accountId)}`, body);
        else await api.post(`/workspaces/${ws}/members`, { email: email.value.trim(), ...body });
        return true;
      } catch (err) {
        showErrors(form, err);
        return false;
      }
    });
    if (!ok) return;
    toast(editing ? `${email.value.trim()} was saved.` : `${email.value.trim()} was added.`);
    if (editing && accountId === ctx.state.me.account.id) await ctx.reloadMe();
    ctx.navigate('/members');
  });

  replace(ctx.section, crumb, pageHeader(title), form);
  (editing ? role : email).focus();
}

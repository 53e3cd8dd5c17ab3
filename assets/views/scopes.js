// The workspace's scope catalog: the APIs its tokens can be given. Members
// read it; admins add, describe and remove scopes.

import { api, enc, listAll } from '../api.js';
import { h, replace } from '../dom.js';
import {
  alertBox, busy, clearErrors, confirmAction, emptyState, errorMessage, field, loading,
  pageHeader, showErrors, toast,
} from '../ui.js';

export async function render(ctx) {
  const admin = ctx.state.isWorkspaceAdmin;
  const body = h('div', { class: 'list-body' }, loading());
  const parts = [pageHeader('Scopes', [
    'The APIs that tokens in this workspace can be given. A token with ', h('code', {}, 'contacts'),
    ' has full access to contacts; with ', h('code', {}, 'contacts:read'), ' it can only read them.',
  ])];
  if (admin) parts.push(addForm(ctx, () => refresh()));
  else parts.push(alertBox('info', 'Only workspace admins can change the scope catalog.'));
  parts.push(body);
  replace(ctx.section, ...parts);

  async function refresh() {
    const entries = await listAll(`/workspaces/${enc(ctx.state.workspaceId)}/scopes`);
    if (!ctx.live()) return;
    replace(body, entries.length === 0
      ? emptyState('No scopes yet', admin ? 'Add the first API your tokens should reach, such as contacts.' : 'A workspace admin adds them.')
      : h('ul', { class: 'item-list', 'data-testid': 'scope-list' }, entries.map((e) => scopeRow(ctx, e, admin, refresh))));
  }
  await refresh();
}

function addForm(ctx, refresh) {
  const name = h('input', { type: 'text', id: 'scope-name', name: 'name', required: true, placeholder: 'contacts', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', pattern: '[a-z][a-z0-9-]{0,63}' });
  const description = h('input', { type: 'text', id: 'scope-description', name: 'description', maxlength: '500', placeholder: 'Read and write contacts', autocomplete: 'off' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'scope-submit' }, 'Add scope');
  const form = h('form', { class: 'form inline-form card', id: 'scope-form', novalidate: true },
    h('div', { class: 'form-alert' }),
    h('div', { class: 'inline-row' },
      field({ label: 'Name', control: name, name: 'name', hint: 'Lower-case letters, digits and dashes, such as knowledge-base.' }),
      field({ label: 'Description', control: description, name: 'description', optional: true }),
      h('div', { class: 'inline-submit' }, submit)));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = name.value.trim();
    if (!/^[a-z][a-z0-9-]{0,63}$/.test(value)) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { name: 'must start with a lower-case letter, then lower-case letters, digits or dashes (at most 64)' } });
      return;
    }
    const ok = await busy(submit, 'Adding…', async () => {
      try {
        await api.put(`/workspaces/${enc(ctx.state.workspaceId)}/scopes/${enc(value)}`, { description: description.value.trim() });
        return true;
      } catch (err) {
        showErrors(form, err);
        return false;
      }
    });
    if (!ok) return;
    toast(`Scope ${value} saved.`);
    name.value = '';
    description.value = '';
    await refresh();
    name.focus();
  });
  return form;
}

function scopeRow(ctx, entry, admin, refresh) {
  const row = h('li', { class: 'item', 'data-testid': 'scope-row', 'data-scope': entry.name });
  const show = () => {
    const actions = admin ? h('div', { class: 'item-actions button-row' },
      h('button', { type: 'button', class: 'btn btn-sm', onclick: edit, 'aria-label': `Edit ${entry.name}` }, 'Edit'),
      h('button', { type: 'button', class: 'btn btn-sm btn-danger-outline', onclick: remove, 'aria-label': `Delete ${entry.name}` }, 'Delete')) : null;
    replace(row,
      h('div', { class: 'item-main' },
        h('div', { class: 'item-title' }, h('code', { class: 'scope-name' }, entry.name)),
        h('div', { class: 'item-meta' }, entry.description || h('span', { class: 'muted' }, 'No description'))),
      actions);
  };
  const edit = () => {
    const input = h('input', { type: 'text', id: `scope-edit-${entry.name}`, maxlength: '500', value: entry.description });
    const save = h('button', { type: 'submit', class: 'btn btn-primary btn-sm' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'btn btn-sm', onclick: show }, 'Cancel');
    const form = h('form', { class: 'form inline-edit', novalidate: true },
      h('div', { class: 'form-alert' }),
      field({ label: `Description of ${entry.name}`, control: input, name: 'description' }),
      h('div', { class: 'button-row' }, save, cancel));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const ok = await busy(save, 'Saving…', async () => {
        try {
          const { data } = await api.put(`/workspaces/${enc(ctx.state.workspaceId)}/scopes/${enc(entry.name)}`, { description: input.value.trim() });
          entry.description = data.description;
          return true;
        } catch (err) {
          showErrors(form, err);
          return false;
        }
      });
      if (ok) {
        show();
        toast(`Scope ${entry.name} saved.`);
      }
    });
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') show();
    });
    replace(row, h('div', { class: 'item-main' }, form));
    input.focus();
  };
  const remove = async () => {
    const done = await confirmAction({
      title: `Delete the scope ${entry.name}?`,
      body: [
        h('p', {}, `${entry.name} and ${entry.name}:read are removed from every token and member grant. Tokens left with no permission are revoked at once.`),
        h('p', {}, 'This cannot be undone.'),
      ],
      confirmLabel: 'Delete scope',
      danger: true,
      action: () => api.del(`/workspaces/${enc(ctx.state.workspaceId)}/scopes/${enc(entry.name)}`),
    });
    if (!done) return;
    toast(`Scope ${entry.name} deleted.`);
    try {
      await refresh();
    } catch (err) {
      row.append(alertBox('error', errorMessage(err)));
    }
  };
  show();
  return row;
}

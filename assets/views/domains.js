// Domains: adding one creates its token (shown once); the list shows how
// many active tokens can use each domain.

import { api, enc, listAll } from '../api.js';
import { h, replace } from '../dom.js';
import { exact, timeEl } from '../format.js';
import {
  busy, clearErrors, confirmAction, emptyState, field, loading, pageHeader,
  revealSecret, rowMenu, showErrors, toast,
} from '../ui.js';

export async function render(ctx) {
  const input = h('input', { type: 'text', id: 'domain-name', name: 'name', required: true, placeholder: 'example.com', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', inputmode: 'url' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'domain-submit' }, 'Add domain');
  const form = h('form', { class: 'form inline-form card', id: 'domain-form', novalidate: true },
    h('div', { class: 'form-alert' }),
    h('div', { class: 'inline-row' },
      field({ label: 'Domain name', control: input, name: 'name', hint: 'A host name such as example.com or mail.example.com.' }),
      h('div', { class: 'inline-submit' }, submit)));
  const body = h('div', { class: 'list-body' }, loading());
  replace(ctx.section,
    pageHeader('Domains', [
      'Adding a domain creates a token for it, holding ', h('code', {}, 'domain:<name>'),
      '. The last token with full access to a domain cannot be deleted: reset it instead.',
    ]),
    form, body);

  const refresh = async () => {
    const domains = await listAll('/domains');
    if (!ctx.live()) return;
    replace(body, domains.length === 0
      ? emptyState('No domains yet', 'Add one to get a token that can use it.')
      : h('ul', { class: 'item-list', 'data-testid': 'domain-list' }, domains.map((d) => domainRow(d, refresh))));
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!input.value.trim()) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { name: 'is required' } });
      return;
    }
    const created = await busy(submit, 'Adding…', async () => {
      try {
        return (await api.post('/domains', { name: input.value.trim() })).data;
      } catch (err) {
        showErrors(form, err);
        return null;
      }
    });
    if (!created) return;
    input.value = '';
    await refresh();
    await revealSecret({
      title: `${created.domain.name} was added`,
      intro: `Its token, ${created.token.name}, holds domain:${created.domain.name}${created.token.expires_at ? ` and expires on ${exact(created.token.expires_at)}` : ' and never expires'}.`,
      secret: created.token.token,
    });
    input.focus();
  });

  await refresh();
}

function domainRow(domain, refresh) {
  const count = domain.active_tokens;
  const menu = rowMenu(`Actions for ${domain.name}`, [
    { label: 'Delete domain', testid: 'delete', danger: true, action: () => deleteDomain(domain, refresh) },
  ]);
  return h('li', { class: 'item', 'data-testid': 'domain-row', 'data-domain': domain.name },
    h('div', { class: 'item-main' },
      h('div', { class: 'item-title' }, h('span', { class: 'token-name' }, domain.name)),
      h('div', { class: 'item-meta' },
        h('span', { 'data-testid': 'domain-tokens' }, `${count} active ${count === 1 ? 'token' : 'tokens'}`),
        h('span', { class: 'sep', 'aria-hidden': 'true' }, '·'),
        h('span', {}, 'Added ', timeEl(domain.created_at)))),
    h('div', { class: 'item-actions' }, menu));
}

async function deleteDomain(domain, refresh) {
  const done = await confirmAction({
    title: `Delete ${domain.name}?`,
    body: [
      h('p', {}, `domain:${domain.name} is removed from every token and member. Tokens left with no permission are revoked at once.`),
      h('p', {}, 'This cannot be undone.'),
    ],
    confirmLabel: 'Delete domain',
    danger: true,
    action: () => api.del(`/domains/${enc(domain.id)}`),
  });
  if (!done) return;
  toast(`${domain.name} was deleted.`);
  await refresh();
}

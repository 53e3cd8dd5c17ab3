// Create a token (kind, name, permissions, expiry) and edit a token's
// permissions. The secret of a new token is shown once, then forgotten.
// A token is either an integration token (the permissions chosen in the
// grid) or a verifier token for one of the team's services (`verify:read`
// and nothing else).

import { api, enc } from '../api.js';
import { h, replace } from '../dom.js';
import { duration, exact, rfc3339 } from '../format.js';
import {
  VERIFIER_SCOPES, holds, isVerifier, loadResources, loadToken, permissionGrid,
} from '../permissions.js';
import {
  alertBox, busy, clearErrors, field, loading, pageHeader, revealSecret, showErrors, toast,
  verifierBadge, verifyExample,
} from '../ui.js';

const PRESETS = [
  ['1h', '1 hour', 3600],
  ['4h', '4 hours', 4 * 3600],
  ['1d', '1 day', 86400],
  ['7d', '7 days', 7 * 86400],
  ['30d', '30 days', 30 * 86400],
];

/** Server detail keys that belong to the expiry group or the grid. */
const ALIASES = { expires_in: 'expiry', expires_at: 'expiry', never_expires: 'expiry' };

function breadcrumb(current) {
  return h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
    h('a', { href: '/tokens', 'data-link': true }, 'API Tokens'),
    h('span', { 'aria-hidden': 'true' }, ' / '),
    h('span', { 'aria-current': 'page' }, current));
}

function fieldset(legend, hint, name, ...content) {
  return h('fieldset', { class: 'fieldset', 'data-field': name },
    h('legend', {}, legend),
    hint ? h('p', { class: 'field-hint' }, hint) : null,
    ...content,
    h('p', { class: 'field-error', 'data-error-for': name, hidden: true, role: 'alert' }));
}

/** The expiry choices; `value()` gives the create body's expiry fields. */
function expiryPicker(settings) {
  const max = settings.max_ttl_seconds;
  let defaultKey = PRESETS.find(([, , s]) => s === settings.default_ttl_seconds)?.[0];
  if (!defaultKey) defaultKey = PRESETS.find(([, , s]) => s <= max && s === 4 * 3600)?.[0] || PRESETS.find(([, , s]) => s <= max)?.[0] || 'date';

  const today = new Date();
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  const dateInput = h('input', {
    type: 'date', id: 'token-expiry-date', min: iso(today),
    max: iso(new Date(Date.now() + max * 1000)), 'aria-describedby': 'token-expiry-date-hint',
  });
  const dateRow = h('div', { class: 'date-row', hidden: true },
    h('label', { for: 'token-expiry-date', class: 'field-label' }, 'Expiry date'),
    dateInput,
    h('p', { class: 'field-hint', id: 'token-expiry-date-hint' }, `The token expires at the end of that day, your time. At most ${duration(max)} from now.`));
  const warning = alertBox('warning', [
    h('strong', {}, 'This token never expires. '),
    'If it leaks, it works until someone deletes it. Prefer an expiry, and reset tokens on a schedule.',
  ], 'no-expiry-warning');
  warning.hidden = true;
  const summary = h('p', { class: 'expiry-summary', 'data-testid': 'expiry-summary', 'aria-live': 'polite' });

  const options = PRESETS.map(([key, label, seconds]) => ({ key, label, seconds, disabled: seconds > max }));
  options.push({ key: 'date', label: 'Custom date' });
  if (settings.allow_no_expiry) options.push({ key: 'never', label: 'No expiration' });

  const radios = options.map((o) => {
    const id = `expiry-${o.key}`;
    const input = h('input', { type: 'radio', name: 'expiry', id, value: o.key, checked: o.key === defaultKey, disabled: o.disabled || false });
    return h('div', { class: o.disabled ? 'radio disabled' : 'radio' },
      input,
      h('label', { for: id }, o.label, o.key === defaultKey ? h('span', { class: 'muted' }, ' (default)') : null,
        o.disabled ? h('span', { class: 'muted' }, ' — longer than this server allows') : null));
  });
  const group = h('div', { class: 'radio-group', role: 'radiogroup', 'aria-label': 'Expiration' }, radios);

  const chosen = () => group.querySelector('input[name="expiry"]:checked')?.value;
  const endOfDay = () => {
    if (!dateInput.value) return null;
    const [y, m, d] = dateInput.value.split('-').map(Number);
    return new Date(y, m - 1, d, 23, 59, 59);
  };
  const update = () => {
    const key = chosen();
    dateRow.hidden = key !== 'date';
    warning.hidden = key !== 'never';
    const preset = PRESETS.find(([k]) => k === key);
    if (preset) summary.textContent = `The token will expire on ${exact(new Date(Date.now() + preset[2] * 1000).toISOString())}.`;
    else if (key === 'date') summary.textContent = endOfDay() ? `The token will expire on ${exact(endOfDay().toISOString())}.` : 'Choose a date.';
    else summary.textContent = '';
  };
  group.addEventListener('change', update);
  dateInput.addEventListener('input', update);
  update();

  return {
    element: [group, dateRow, warning, summary],
    value() {
      const key = chosen();
      if (key === 'never') return { never_expires: true };
      if (key === 'date') {
        const at = endOfDay();
        return at ? { expires_at: rfc3339(at) } : { expires_at: '' };
      }
      const preset = PRESETS.find(([k]) => k === key);
      return { expires_in: preset ? preset[2] : settings.default_ttl_seconds };
    },
  };
}

const KINDS = [
  {
    key: 'integration',
    label: 'Integration token',
    description: 'Calls this workspace’s APIs with the permissions you choose.',
  },
  {
    key: 'verifier',
    label: 'Verifier token',
    description: 'For one of your services: lets it check tokens of this workspace, nothing else.',
  },
];

/**
 * The first choice on the create page: what kind of token this is.
 * `canVerify` is false when the caller may not hand out `verify:read`.
 */
function kindPicker(initial, canVerify) {
  const radios = KINDS.map((kind) => {
    const id = `token-kind-${kind.key}`;
    const disabled = kind.key === 'verifier' && !canVerify;
    const input = h('input', {
      type: 'radio', name: 'kind', id, value: kind.key, checked: kind.key === initial,
      disabled, 'aria-describedby': `${id}-desc`,
    });
    return h('div', { class: disabled ? 'choice disabled' : 'choice', 'data-testid': `kind-${kind.key}` },
      input,
      h('div', { class: 'choice-text' },
        h('label', { for: id, class: 'choice-label' }, kind.label),
        h('p', { class: 'choice-desc', id: `${id}-desc` }, kind.description,
          disabled ? ' You do not hold the verify permission here: ask a workspace admin for it.' : null)));
  });
  const group = h('div', { class: 'choice-group' }, radios);
  // The whole card picks its kind, not only the label's words.
  group.addEventListener('click', (event) => {
    const card = event.target.closest('.choice');
    const input = card && card.querySelector('input');
    if (input && !input.disabled && !event.target.closest('input, label')) input.click();
  });
  return {
    element: group,
    value: () => group.querySelector('input[name="kind"]:checked')?.value || 'integration',
    onChange: (fn) => group.addEventListener('change', fn),
    focus: () => group.querySelector('input[name="kind"]:checked')?.focus(),
  };
}

/** What a verifier token can and cannot do, in place of the grid. */
function verifierExplainer() {
  return h('div', { class: 'explainer', 'data-testid': 'verifier-explainer' },
    h('p', {}, 'A verifier token holds one permission, ', h('code', {}, 'verify:read'),
      '. Your service sends it as ', h('code', {}, 'Authorization: Bearer …'), ' when it calls ',
      h('code', {}, 'POST /api/v1/tokens/verify'), ' to check a token its users sent.'),
    h('ul', { class: 'explainer-list' },
      h('li', {}, h('strong', {}, 'It can '), 'check whether a token of this workspace is valid and which permissions it holds.'),
      h('li', {}, h('strong', {}, 'It cannot '), 'call your APIs or see or change tokens, domains, members or settings. '
        + 'A token of another workspace answers NOT_FOUND, so tokens made elsewhere never pass your service.'),
      h('li', {}, h('strong', {}, 'It is never rate-limited '), 'by the bad tokens your users send: '
        + 'only anonymous checks are limited per address.')));
}

export async function renderCreate(ctx) {
  replace(ctx.section, breadcrumb('Create token'),
    pageHeader('Create token', 'Give the token a name you will recognise, only the permissions the integration needs, and an expiry.'),
    loading());
  const [resources, settingsResponse] = await Promise.all([loadResources(ctx.state), api.get('/settings')]);
  if (!ctx.live()) return;
  const settings = settingsResponse.data;
  ctx.state.settings = settings;

  const canVerify = holds(resources.grants, 'verify', 'read');
  const kind = kindPicker(ctx.query.get('kind') === 'verifier' && canVerify ? 'verifier' : 'integration', canVerify);
  const name = h('input', { type: 'text', id: 'token-name', name: 'name', required: true, maxlength: '100', autocomplete: 'off' });
  const nameHint = h('span');
  const grid = permissionGrid({ resources, limitTo: resources.grants, caption: 'Permissions for the new token' });
  const permissions = fieldset('Permissions', 'Tick Full or Read for each resource the token may use. Full includes Read. Give only what the integration needs.', 'scopes', grid.element);
  const explainer = h('div', { class: 'fieldset', 'data-field': 'verifier' },
    h('p', { class: 'field-label' }, 'What a verifier token does'),
    verifierExplainer(),
    h('p', { class: 'field-error', 'data-error-for': 'verifier', hidden: true, role: 'alert' }));
  const expiry = expiryPicker(settings);
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: 'token-submit', 'data-testid': 'token-submit' }, 'Generate token');
  const cancel = h('a', { href: '/tokens', class: 'btn', 'data-link': true }, 'Cancel');
  const form = h('form', { class: 'form form-wide', id: 'token-form', novalidate: true },
    h('div', { class: 'form-alert' }),
    fieldset('Kind of token', null, 'kind', kind.element),
    field({ label: 'Name', control: name, name: 'name', hint: nameHint }),
    permissions,
    explainer,
    fieldset('Expiration', null, 'expiry', expiry.element),
    h('div', { class: 'form-actions' }, submit, cancel));

  const showKind = () => {
    const verifier = kind.value() === 'verifier';
    permissions.hidden = verifier;
    explainer.hidden = !verifier;
    name.placeholder = verifier ? 'Billing service verifier' : 'CRM Integration';
    nameHint.textContent = verifier
      ? 'Which service uses it? For example “Billing service verifier”.'
      : 'What is this token for? For example “CRM Integration” or “Zapier connection”.';
  };
  kind.onChange(showKind);
  showKind();

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const verifier = kind.value() === 'verifier';
    const scopes = verifier ? [...VERIFIER_SCOPES] : grid.value();
    const local = {};
    if (!name.value.trim()) local.name = 'is required';
    if (scopes.length === 0) local.scopes = 'choose at least one permission';
    const expiryFields = expiry.value();
    if (expiryFields.expires_at === '') local.expiry = 'choose a date';
    if (Object.keys(local).length) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: local });
      return;
    }
    const body = { name: name.value.trim(), scopes, ...expiryFields };
    const created = await busy(submit, 'Generating…', async () => {
      try {
        return (await api.post('/tokens', body)).data;
      } catch (err) {
        // A verifier's scopes are not in the (hidden) grid: its errors go
        // under the explanation.
        showErrors(form, err, verifier ? { ...ALIASES, scopes: 'verifier' } : ALIASES);
        return null;
      }
    });
    if (!created) return;
    await ctx.navigate('/tokens', { focus: false });
    const intro = `${created.name} was created${created.expires_at ? ` and expires on ${exact(created.expires_at)}` : ' and never expires'}.`;
    if (isVerifier(created.scopes)) {
      await revealSecret({
        title: 'Copy your new verifier token',
        intro: `${intro} Put it in your service’s secret store; it checks tokens of this workspace only.`,
        secret: created.token,
        example: verifyExample,
      });
    } else {
      await revealSecret({ title: 'Copy your new token', intro, secret: created.token });
    }
    const heading = document.querySelector('main h1');
    if (heading) heading.focus({ preventScroll: true });
  });

  replace(ctx.section, breadcrumb('Create token'),
    pageHeader('Create token', 'Choose what the token is for, give it a name you will recognise, only the permissions it needs, and an expiry.'),
    form);
  kind.focus();
}

export async function renderEdit(ctx) {
  const [id] = ctx.params;
  replace(ctx.section, breadcrumb('Edit permissions'), pageHeader('Edit permissions'), loading());
  const [token, resources] = await Promise.all([loadToken(id), loadResources(ctx.state)]);
  if (!ctx.live()) return;

  const name = h('input', { type: 'text', id: 'token-name', name: 'name', required: true, maxlength: '100', autocomplete: 'off', value: token.name });
  const grid = permissionGrid({ resources, selected: token.scopes, limitTo: resources.grants, caption: `Permissions of ${token.name}` });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-save' }, 'Save permissions');
  const cancel = h('a', { href: '/tokens', class: 'btn', 'data-link': true }, 'Cancel');
  const inactive = token.state !== 'active';
  const form = h('form', { class: 'form form-wide', id: 'token-edit-form', novalidate: true },
    h('div', { class: 'form-alert' }, inactive ? alertBox('warning', `This token is ${token.state}; it can no longer be changed.`) : null),
    field({ label: 'Name', control: name, name: 'name' }),
    fieldset('Permissions', 'The change applies from the token’s next request. Full includes Read.', 'scopes', grid.element),
    h('div', { class: 'form-actions' }, submit, cancel));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const scopes = grid.value();
    if (scopes.length === 0) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: { scopes: 'choose at least one permission; to stop a token, delete it' } });
      return;
    }
    const body = { scopes };
    if (name.value.trim() !== token.name) body.name = name.value.trim();
    const saved = await busy(submit, 'Saving…', async () => {
      try {
        return (await api.patch(`/tokens/${enc(token.id)}`, body)).data;
      } catch (err) {
        showErrors(form, err);
        return null;
      }
    });
    if (!saved) return;
    toast(`Permissions of ${saved.name} saved.`);
    await ctx.navigate('/tokens');
  });

  replace(ctx.section, breadcrumb('Edit permissions'),
    pageHeader('Edit permissions', h('span', {}, h('strong', {}, token.name), ' ', h('code', { class: 'hint' }, token.token_hint),
      isVerifier(token.scopes) ? [' ', verifierBadge()] : null)),
    form);
  grid.focus();
}

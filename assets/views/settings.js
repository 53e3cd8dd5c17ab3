// Instance settings: the expiry policy, rotation grace, clean-up, sign-up
// and the token prefix. Only the instance admin may change them.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { duration } from '../format.js';
import { alertBox, busy, clearErrors, loading, pageHeader, showErrors, toast } from '../ui.js';

const UNITS = [
  ['seconds', 1],
  ['minutes', 60],
  ['hours', 3600],
  ['days', 86400],
];

/** A number and a unit, read back in seconds. */
function durationField({ key, label, hint, seconds }) {
  const [unit, size] = [...UNITS].reverse().find(([, s]) => seconds % s === 0) || UNITS[0];
  const number = h('input', { type: 'number', id: `setting-${key}`, name: key, min: '0', step: '1', inputmode: 'numeric', value: String(seconds / size), 'aria-describedby': `setting-${key}-hint setting-${key}-error`, required: true });
  const select = h('select', { id: `setting-${key}-unit`, 'aria-label': `${label}: unit` },
    UNITS.map(([name]) => h('option', { value: name }, name)));
  select.value = unit;
  const element = h('div', { class: 'field', 'data-field': key },
    h('label', { class: 'field-label', for: number.id }, label),
    h('div', { class: 'duration-input' }, number, select),
    h('p', { class: 'field-hint', id: `setting-${key}-hint` }, hint),
    h('p', { class: 'field-error', id: `setting-${key}-error`, 'data-error-for': key, hidden: true }));
  return {
    element,
    value: () => {
      const n = Number(number.value);
      const factor = UNITS.find(([name]) => name === select.value)[1];
      return Number.isFinite(n) ? Math.round(n * factor) : NaN;
    },
    input: number,
  };
}

function checkField({ key, label, hint, checked }) {
  const input = h('input', { type: 'checkbox', id: `setting-${key}`, name: key, checked, 'aria-describedby': `setting-${key}-hint` });
  return {
    element: h('div', { class: 'field check-field', 'data-field': key },
      h('div', { class: 'check-line' }, input, h('label', { for: input.id }, label)),
      h('p', { class: 'field-hint', id: `setting-${key}-hint` }, hint),
      h('p', { class: 'field-error', 'data-error-for': key, hidden: true })),
    value: () => input.checked,
    input,
  };
}

function textField({ key, label, hint, value }) {
  const input = h('input', { type: 'text', class: 'input-short', id: `setting-${key}`, name: key, value, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', 'aria-describedby': `setting-${key}-hint setting-${key}-error` });
  return {
    element: h('div', { class: 'field', 'data-field': key },
      h('label', { class: 'field-label', for: input.id }, label),
      input,
      h('p', { class: 'field-hint', id: `setting-${key}-hint` }, hint),
      h('p', { class: 'field-error', id: `setting-${key}-error`, 'data-error-for': key, hidden: true })),
    value: () => input.value.trim(),
    input,
  };
}

const DURATION_KEYS = ['default_ttl_seconds', 'max_ttl_seconds', 'reset_grace_seconds', 'purge_after_seconds'];

/** Seconds in the server's field problems, told as durations. */
function readable(err) {
  for (const key of DURATION_KEYS) {
    const problem = err.details && err.details[key];
    if (!problem) continue;
    err.details[key] = problem
      .replace(/between (\d+) and (\d+)/, (_, lo, hi) => `between ${duration(lo)} and ${duration(hi)}`)
      .replace(/^default_ttl_seconds \((\d+)\) must not exceed max_ttl_seconds \((\d+)\)$/,
        (_, d, m) => `the default expiry (${duration(d)}) must not be longer than the longest expiry (${duration(m)})`);
  }
  return err;
}

export async function render(ctx) {
  replace(ctx.section, pageHeader('Settings'), loading());
  const { data: s } = await api.get('/settings');
  if (!ctx.live()) return;
  ctx.state.settings = s;
  const admin = ctx.state.isInstanceAdmin;

  const fields = {
    default_ttl_seconds: durationField({ key: 'default_ttl_seconds', label: 'Default expiry', seconds: s.default_ttl_seconds, hint: 'How long a new token lives when its creator picks no expiry.' }),
    max_ttl_seconds: durationField({ key: 'max_ttl_seconds', label: 'Longest expiry', seconds: s.max_ttl_seconds, hint: 'No token may be created to live longer. At most 365 days.' }),
    allow_no_expiry: checkField({ key: 'allow_no_expiry', label: 'Allow tokens that never expire', checked: s.allow_no_expiry, hint: 'Useful for service-to-service integrations, riskier if a token leaks. Domain tokens then never expire either.' }),
    reset_grace_seconds: durationField({ key: 'reset_grace_seconds', label: 'Grace period after a reset', seconds: s.reset_grace_seconds, hint: 'How long the old token keeps working after a reset, so apps can be updated. Up to 7 days; 0 stops it at once.' }),
    purge_after_seconds: durationField({ key: 'purge_after_seconds', label: 'Delete expired and revoked tokens after', seconds: s.purge_after_seconds, hint: 'They stay listed this long, then they are deleted for good.' }),
    allow_signup: checkField({ key: 'allow_signup', label: 'Anyone can sign up', checked: s.allow_signup, hint: 'Otherwise only the instance admin creates accounts.' }),
    token_prefix: textField({ key: 'token_prefix', label: 'Token prefix', value: s.token_prefix, hint: 'New tokens start with it, such as tw_ or mb_: a lower-case letter, up to 14 more letters, digits or _, ending in _. A workspace may set its own.' }),
  };
  if (!admin) {
    for (const f of Object.values(fields)) {
      f.input.disabled = true;
    }
  }
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'settings-submit', disabled: !admin }, 'Save settings');
  const section = (title, ...content) => h('section', { class: 'settings-section card' }, h('h2', {}, title), ...content);
  const form = h('form', { class: 'form form-wide', id: 'settings-form', novalidate: true },
    h('div', { class: 'form-alert' }, admin ? null : alertBox('info', 'Only the instance admin can change these settings.')),
    section('Token expiry', fields.default_ttl_seconds.element, fields.max_ttl_seconds.element, fields.allow_no_expiry.element),
    section('Rotation and clean-up', fields.reset_grace_seconds.element, fields.purge_after_seconds.element),
    section('Accounts and tokens', fields.allow_signup.element, fields.token_prefix.element),
    admin ? h('div', { class: 'form-actions' }, submit) : null);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {};
    const local = {};
    for (const [key, f] of Object.entries(fields)) {
      const value = f.value();
      if (typeof value === 'number' && !Number.isInteger(value)) local[key] = 'must be a whole number';
      body[key] = value;
    }
    if (Object.keys(local).length) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: local });
      return;
    }
    for (const key of Object.keys(body)) {
      if (body[key] === s[key]) delete body[key];
    }
    if (Object.keys(body).length === 0) {
      toast('Nothing to save: the settings are unchanged.', 'info');
      return;
    }
    const saved = await busy(submit, 'Saving…', async () => {
      try {
        return (await api.patch('/settings', body)).data;
      } catch (err) {
        showErrors(form, readable(err));
        return null;
      }
    });
    if (!saved) return;
    Object.assign(s, saved);
    ctx.state.settings = saved;
    toast('Settings saved.');
  });

  replace(ctx.section,
    pageHeader('Settings', 'These apply to every workspace on this server.'),
    form);
}

// Before a session exists: first-run setup of the admin account, sign in,
// and sign up when the instance admin has opened it.

import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { alertBox, busy, clearErrors, field, showErrors } from '../ui.js';

function card(title, intro, ...body) {
  return h('div', { class: 'auth-card' },
    h('div', { class: 'auth-brand' },
      h('img', { src: '/assets/logo.svg', alt: '', width: '40', height: '40' }),
      h('span', {}, 'tokenward')),
    h('h1', { tabindex: '-1' }, title),
    intro ? h('p', { class: 'auth-intro' }, intro) : null,
    ...body);
}

function emailInput(id) {
  return h('input', { type: 'email', id, name: 'email', autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'none' });
}

/** The account fields shared by setup and sign-up. */
function accountForm({ id, submitLabel, setupCode, onSubmit }) {
  const email = emailInput(`${id}-email`);
  const password = h('input', { type: 'password', id: `${id}-password`, name: 'password', autocomplete: 'new-password', required: true, minlength: '10' });
  const confirm = h('input', { type: 'password', id: `${id}-password-confirm`, name: 'password_confirm', autocomplete: 'new-password', required: true });
  const code = setupCode ? h('input', { type: 'text', id: `${id}-code`, name: 'setup_code', autocomplete: 'off', required: true, spellcheck: 'false' }) : null;
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', id: `${id}-submit` }, submitLabel);
  const form = h('form', { class: 'form', id: `${id}-form`, novalidate: true },
    h('div', { class: 'form-alert' }),
    field({ label: 'Email', control: email, name: 'email' }),
    field({ label: 'Password', control: password, name: 'password', hint: 'At least 10 characters. A few unrelated words make a strong one.' }),
    field({ label: 'Confirm password', control: confirm, name: 'password_confirm' }),
    code ? field({ label: 'Setup code', control: code, name: 'setup_code', hint: 'The server printed a one-time setup code in its log when it started. It proves you run this server.' }) : null,
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const details = {};
    if (!email.value.trim()) details.email = 'is required';
    if (password.value.length < 10) details.password = 'must be at least 10 characters';
    if (confirm.value !== password.value) details.password_confirm = 'does not match the password';
    if (code && !code.value.trim()) details.setup_code = 'is required';
    if (Object.keys(details).length) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details });
      return;
    }
    const body = { email: email.value.trim(), password: password.value };
    if (code) body.setup_code = code.value.trim();
    await busy(submit, 'Creating account…', async () => {
      try {
        await onSubmit(body);
      } catch (err) {
        showErrors(form, err);
      }
    });
  });
  return { form, focus: email };
}

/**
 * Sign-up answers with a bearer session; the UI keeps its session in the
 * HttpOnly cookie instead, so it signs in with the cookie and ends the
 * bearer one at once.
 */
async function createAccountAndSignIn(body) {
  const { data } = await api.post('/accounts', body, { signOutOn401: false });
  let bearer = data.token;
  // First: signing out also clears the session cookie, so it must come
  // before the cookie sign-in.
  await api.del('/sessions/current', { headers: { Authorization: `Bearer ${bearer}` }, signOutOn401: false }).catch(() => {});
  bearer = null;
  await api.post('/sessions', { email: body.email, password: body.password, cookie: true }, { signOutOn401: false });
}

export function renderSetup(ctx) {
  const required = Boolean(ctx.state.instance && ctx.state.instance.setup_code_required);
  const { form, focus } = accountForm({
    id: 'setup',
    submitLabel: 'Create admin account',
    setupCode: required,
    onSubmit: async (body) => {
      await createAccountAndSignIn(body);
      history.replaceState(null, '', '/tokens');
      await ctx.signedIn();
    },
  });
  replace(ctx.section, card('Set up tokenward',
    'Create the admin account. The first account administers this server: its settings, and who may sign up.',
    form));
  focus.focus();
}

export function renderSignUp(ctx) {
  const { form, focus } = accountForm({
    id: 'signup',
    submitLabel: 'Create account',
    setupCode: false,
    onSubmit: async (body) => {
      await createAccountAndSignIn(body);
      history.replaceState(null, '', '/tokens');
      await ctx.signedIn();
    },
  });
  const back = h('a', { href: '/sign-in' }, 'Sign in');
  back.addEventListener('click', (event) => {
    event.preventDefault();
    ctx.showSignIn(null);
  });
  replace(ctx.section, card('Create your account', 'You get a personal workspace for your tokens.',
    form, h('p', { class: 'auth-footer' }, 'Already have an account? ', back)));
  focus.focus();
}

export function renderSignIn(ctx, notice) {
  const email = emailInput('signin-email');
  const password = h('input', { type: 'password', id: 'signin-password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', id: 'signin-submit' }, 'Sign in');
  const form = h('form', { class: 'form', id: 'signin-form', novalidate: true },
    h('div', { class: 'form-alert' }, notice ? alertBox('info', notice, 'signin-notice') : null),
    field({ label: 'Email', control: email, name: 'email' }),
    field({ label: 'Password', control: password, name: 'password' }),
    submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!email.value.trim() || !password.value) {
      showErrors(form, { status: 422, code: 'validation_failed', message: '', details: {
        ...(email.value.trim() ? {} : { email: 'is required' }),
        ...(password.value ? {} : { password: 'is required' }),
      } });
      return;
    }
    await busy(submit, 'Signing in…', async () => {
      try {
        await api.post('/sessions', { email: email.value.trim(), password: password.value, cookie: true }, { signOutOn401: false });
        password.value = '';
        history.replaceState(null, '', '/tokens');
        await ctx.signedIn();
      } catch (err) {
        showErrors(form, err);
        password.select();
      }
    });
  });
  let footer = null;
  if (ctx.state.instance && ctx.state.instance.allow_signup) {
    const link = h('a', { href: '/sign-up', 'data-testid': 'signup-link' }, 'Create an account');
    link.addEventListener('click', (event) => {
      event.preventDefault();
      ctx.showSignUp();
    });
    footer = h('p', { class: 'auth-footer' }, 'New here? ', link);
  }
  replace(ctx.section, card('Sign in to tokenward', null, form, footer));
  email.focus();
}

// Shared pieces of every screen: page headers, form errors, the one-time
// secret reveal, confirmations, row menus, notices.

import { append, h, icon, nextId, replace } from './dom.js';
import { sentence } from './format.js';

/* ---------- page structure ---------- */

export function pageHeader(title, description, ...actions) {
  return h('div', { class: 'page-header' },
    h('div', { class: 'page-heading' },
      h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, title),
      description ? h('p', { class: 'page-description' }, description) : null,
    ),
    actions.length ? h('div', { class: 'page-actions' }, actions) : null,
  );
}

export function alertBox(kind, message, testid) {
  return h('div', { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': testid || `alert-${kind}` },
    kind === 'error' || kind === 'warning' ? icon('warning') : null,
    h('div', { class: 'alert-body' }, message),
  );
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty-state', 'data-testid': 'empty-state' },
    h('div', { class: 'empty-icon' }, icon('key')),
    h('h2', { class: 'empty-title' }, title),
    text ? h('p', {}, text) : null,
    action || null,
  );
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

/** An error from the server as sentences. */
export function errorMessage(err) {
  if (!err) return '';
  if (err.status === 403 && err.code === 'insufficient_scope') {
    return sentence(`${err.message}; ask a workspace admin for it`);
  }
  if (err.status === 404) return 'This was not found. It may have been deleted, or it belongs to another workspace.';
  return sentence(err.message);
}

/* ---------- forms ---------- */

/**
 * A labelled field: label, control, hint and an error line wired with
 * aria-describedby. `name` is what server `details` keys map to.
 */
export function field({ label, control, hint, name, optional }) {
  const id = control.id || nextId('field');
  control.id = id;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ');
  control.setAttribute('aria-describedby', describedBy);
  return h('div', { class: 'field', 'data-field': name || null },
    h('label', { for: id, class: 'field-label' }, label, optional ? h('span', { class: 'optional' }, ' (optional)') : null),
    control,
    hint ? h('p', { class: 'field-hint', id: hintId }, hint) : null,
    h('p', { class: 'field-error', id: errorId, 'data-error-for': name || '', hidden: true }),
  );
}

/** Hides the error of the field that holds `control`, as the user fixes it. */
function clearFieldOf(control) {
  const wrapper = control.closest && control.closest('[data-field]');
  if (!wrapper) return;
  for (const slot of wrapper.querySelectorAll('.field-error')) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const el of wrapper.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

/** Clears the errors that `showErrors` put on a form. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll('.field-error')) {
    el.textContent = '';
    el.hidden = true;
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const banner = form.querySelector('.form-alert');
  if (banner) replace(banner);
}

/**
 * Shows a server error on a form: each `details` entry next to its field
 * (`aliases` maps a detail key to a field name), the message on top.
 */
export function showErrors(form, err, aliases = {}) {
  clearErrors(form);
  if (!err || err.handled) return;
  if (!form.dataset.clearsErrors) {
    form.dataset.clearsErrors = 'true';
    form.addEventListener('input', (event) => clearFieldOf(event.target));
    form.addEventListener('change', (event) => clearFieldOf(event.target));
  }
  const banner = form.querySelector('.form-alert');
  const unplaced = [];
  let first = null;
  for (const [key, problem] of Object.entries(err.details || {})) {
    const name = aliases[key] || key;
    const slot = form.querySelector(`.field-error[data-error-for="${CSS.escape(name)}"]`);
    if (slot) {
      slot.textContent = sentence(problem);
      slot.hidden = false;
      const wrapper = slot.closest('[data-field]');
      const control = wrapper && wrapper.querySelector('input, select, textarea');
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        first = first || control;
      }
    } else {
      unplaced.push(`${key} ${problem}`);
    }
  }
  const hasDetails = Object.keys(err.details || {}).length > 0;
  let message = errorMessage(err);
  if (hasDetails && unplaced.length === 0 && err.code === 'validation_failed') {
    message = 'Please correct the fields marked below.';
  } else if (unplaced.length) {
    message = `${message} ${unplaced.map(sentence).join(' ')}`;
  }
  if (banner) replace(banner, alertBox('error', message, 'form-error'));
  if (first) first.focus();
  else if (banner) banner.scrollIntoView({ block: 'nearest' });
}

/** Disables a submit button while `work` runs. */
export async function busy(button, text, work) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = text;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

/* ---------- clipboard ---------- */

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Fall through to the selection copy below.
    }
  }
  const area = h('textarea', { class: 'offscreen', readonly: true, 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.value = '';
  area.remove();
  return ok;
}

/* ---------- notices ---------- */

let toastTimer = null;
export function toast(message, kind = 'success') {
  let region = document.getElementById('toast');
  if (!region) {
    region = h('div', { id: 'toast', class: 'toast-region', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  replace(region, h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast' },
    icon(kind === 'success' ? 'check' : 'warning'), h('span', {}, message)));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => replace(region), 5000);
}

/* ---------- dialogs ---------- */

function dialogShell(testid) {
  const dialog = h('dialog', { class: 'dialog', 'data-testid': testid, 'aria-modal': 'true' });
  document.body.append(dialog);
  return dialog;
}

/**
 * Asks before a consequential action. `action` runs while the dialog stays
 * open; its error is shown inside, as a sentence. Resolves with the action's
 * result, or null when cancelled.
 */
export function confirmAction({ title, body, confirmLabel, danger = false, action }) {
  return new Promise((resolve) => {
    const dialog = dialogShell('confirm-dialog');
    const titleId = nextId('dlg');
    dialog.setAttribute('aria-labelledby', titleId);
    const errorSlot = h('div', { class: 'dialog-error' });
    const cancel = h('button', { type: 'button', class: 'btn', 'data-testid': 'confirm-cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', 'data-testid': 'confirm-ok' }, confirmLabel);
    let result = null;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      dialog.remove();
      resolve(result);
    };
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', finish);
    ok.addEventListener('click', async () => {
      replace(errorSlot);
      try {
        result = await busy(ok, 'Working…', action);
        if (result === undefined || result === null) result = true;
        dialog.close();
      } catch (err) {
        if (err && err.handled) {
          dialog.close();
          return;
        }
        replace(errorSlot, alertBox('error', errorMessage(err), 'confirm-error'));
        ok.focus();
      }
    });
    append_(dialog,
      h('h2', { id: titleId, class: 'dialog-title' }, title),
      h('div', { class: 'dialog-body', 'data-testid': 'confirm-body' }, body),
      errorSlot,
      h('div', { class: 'dialog-actions' }, cancel, ok),
    );
    dialog.showModal();
    cancel.focus();
  });
}

function append_(parent, ...children) {
  append(parent, children);
}

/**
 * Shows a secret once. The text lives only in this dialog's DOM and in this
 * closure; closing the dialog empties both. `example` ({title, text(secret),
 * copied}) adds a ready-to-copy command that uses the secret, emptied on
 * close like the secret itself.
 */
export function revealSecret({ title, intro, secret, notes = [], example = null }) {
  return new Promise((resolve) => {
    let value = secret;
    const dialog = dialogShell('reveal-panel');
    dialog.classList.add('dialog-reveal');
    const titleId = nextId('dlg');
    dialog.setAttribute('aria-labelledby', titleId);
    const code = h('code', { class: 'secret', 'data-testid': 'reveal-secret', id: 'reveal-secret' }, value);
    const copyLabel = h('span', {}, 'Copy');
    const copy = h('button', { type: 'button', class: 'btn btn-primary copy-btn', 'data-testid': 'reveal-copy' },
      icon('copy'), copyLabel);
    const status = h('span', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });
    copy.addEventListener('click', async () => {
      const ok = value !== null && (await copyText(value));
      copyLabel.textContent = ok ? 'Copied' : 'Copy failed';
      status.textContent = ok ? 'Token copied to the clipboard.' : 'Could not copy: select the token and copy it by hand.';
      copy.classList.toggle('copied', ok);
      setTimeout(() => {
        copyLabel.textContent = 'Copy';
        copy.classList.remove('copied');
      }, 2500);
    });
    let exampleBlock = null;
    let exampleCode = null;
    if (example) {
      const headingId = nextId('dlg');
      exampleCode = h('code', {}, example.text(value));
      const exampleLabel = h('span', {}, 'Copy command');
      const exampleCopy = h('button', { type: 'button', class: 'btn btn-sm copy-btn', 'data-testid': 'reveal-example-copy' },
        icon('copy'), exampleLabel);
      exampleCopy.addEventListener('click', async () => {
        const ok = value !== null && (await copyText(example.text(value)));
        exampleLabel.textContent = ok ? 'Copied' : 'Copy failed';
        status.textContent = ok ? example.copied : 'Could not copy: select the command and copy it by hand.';
        setTimeout(() => {
          exampleLabel.textContent = 'Copy command';
        }, 2500);
      });
      exampleBlock = h('section', { class: 'reveal-example', 'aria-labelledby': headingId },
        h('div', { class: 'reveal-example-head' },
          h('h3', { id: headingId, class: 'reveal-example-title' }, example.title), exampleCopy),
        h('pre', { class: 'code-block', 'data-testid': 'reveal-example' }, exampleCode));
    }
    const close = h('button', { type: 'button', class: 'btn', 'data-testid': 'reveal-close' }, 'Done, I have copied it');
    close.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      code.textContent = '';
      if (exampleCode) exampleCode.textContent = '';
      value = null;
      dialog.remove();
      resolve();
    });
    append_(dialog,
      h('h2', { id: titleId, class: 'dialog-title' }, title),
      intro ? h('p', { class: 'dialog-intro' }, intro) : null,
      h('div', { class: 'secret-box' }, code, copy),
      status,
      alertBox('warning', [
        h('strong', {}, 'Copy it now: it will not be shown again. '),
        'tokenward keeps only a hash of it. If you lose it, reset the token to get a new one.',
      ], 'reveal-warning'),
      exampleBlock,
      ...notes.map((note) => h('p', { class: 'dialog-note' }, note)),
      h('div', { class: 'dialog-actions' }, close),
    );
    dialog.showModal();
    copy.focus();
  });
}

/**
 * The `example` for `revealSecret` after a verifier token is created or
 * reset: the `curl` command that checks a token with it.
 */
export const verifyExample = {
  title: 'Check a token with it',
  copied: 'Command copied to the clipboard.',
  text: (secret) => [
    `curl -s ${location.origin}/api/v1/tokens/verify \\`,
    `  -H "Authorization: Bearer ${secret}" \\`,
    "  -H 'Content-Type: application/json' \\",
    `  -d '{"token": "<token to check>", "scopes": ["contacts:read"]}'`,
  ].join('\n'),
};

/* ---------- row menus ---------- */

let openMenu = null;

function closeOpenMenu(focusButton) {
  if (!openMenu) return;
  const { menu, button } = openMenu;
  menu.hidden = true;
  button.setAttribute('aria-expanded', 'false');
  openMenu = null;
  if (focusButton) button.focus();
}

document.addEventListener('click', (event) => {
  if (openMenu && !openMenu.wrapper.contains(event.target)) closeOpenMenu(false);
});

/**
 * A three-dot menu: items are {label, action, disabled, danger, testid,
 * hint}. Arrow keys move, Escape closes, Tab leaves.
 */
export function rowMenu(label, items) {
  const menuId = nextId('menu');
  const button = h('button', {
    type: 'button', class: 'btn btn-icon', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
    'aria-controls': menuId, 'aria-label': label, title: label, 'data-testid': 'row-menu',
  }, icon('dots'));
  const menu = h('ul', { class: 'menu', role: 'menu', id: menuId, hidden: true, 'aria-label': label });
  const wrapper = h('div', { class: 'menu-wrapper' }, button, menu);
  const buttons = [];
  for (const item of items) {
    if (item === 'separator') {
      menu.append(h('li', { role: 'separator', class: 'menu-separator' }));
      continue;
    }
    const entry = h('button', {
      type: 'button', role: 'menuitem', tabindex: '-1',
      class: item.danger ? 'menu-item danger' : 'menu-item',
      'data-action': item.testid, disabled: item.disabled || false,
      'aria-disabled': item.disabled ? 'true' : null,
    }, h('span', {}, item.label), item.hint ? h('span', { class: 'menu-hint' }, item.hint) : null);
    entry.addEventListener('click', () => {
      if (item.disabled) return;
      closeOpenMenu(true);
      item.action();
    });
    menu.append(h('li', { role: 'none' }, entry));
    buttons.push(entry);
  }
  const enabled = () => buttons.filter((b) => !b.disabled);
  const open = () => {
    closeOpenMenu(false);
    menu.hidden = false;
    button.setAttribute('aria-expanded', 'true');
    openMenu = { menu, button, wrapper };
    const rect = button.getBoundingClientRect();
    menu.classList.toggle('menu-up', rect.bottom + 220 > window.innerHeight && rect.top > 240);
    const first = enabled()[0];
    if (first) first.focus();
  };
  button.addEventListener('click', () => {
    if (openMenu && openMenu.menu === menu) closeOpenMenu(true);
    else open();
  });
  button.addEventListener('keydown', (event) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      open();
    }
  });
  menu.addEventListener('keydown', (event) => {
    const list = enabled();
    const index = list.indexOf(document.activeElement);
    if (event.key === 'ArrowDown') {
      event.preventDefault();
      list[(index + 1) % list.length].focus();
    } else if (event.key === 'ArrowUp') {
      event.preventDefault();
      list[(index - 1 + list.length) % list.length].focus();
    } else if (event.key === 'Home') {
      event.preventDefault();
      list[0].focus();
    } else if (event.key === 'End') {
      event.preventDefault();
      list[list.length - 1].focus();
    } else if (event.key === 'Escape') {
      event.preventDefault();
      closeOpenMenu(true);
    } else if (event.key === 'Tab') {
      closeOpenMenu(false);
    }
  });
  return wrapper;
}

/* ---------- small pieces ---------- */

export function badge(text, kind = 'neutral', testid) {
  return h('span', { class: `badge badge-${kind}`, 'data-testid': testid || null }, text);
}

/** Marks a token that can check other tokens (it holds `verify`). */
export function verifierBadge() {
  const el = badge('Verifier', 'info', 'verifier-badge');
  el.title = 'A verifier token: a service uses it to check tokens of this workspace';
  return el;
}

export function scopeChips(scopes) {
  if (!scopes || scopes.length === 0) return h('span', { class: 'muted' }, 'No permissions');
  return h('ul', { class: 'chips', 'aria-label': 'Permissions' },
    scopes.map((scope) => h('li', { class: scope.endsWith(':read') ? 'chip chip-read' : 'chip' }, scope)));
}

// Start-up, the signed-in shell (workspace switcher, navigation, sign out)
// and the router that draws one screen at a time into <main>.

import { api, configure, enc, listAll, setWorkspace } from './api.js';
import { h, replace } from './dom.js';
import { holds } from './permissions.js';
import { alertBox, errorMessage, loading, toast } from './ui.js';
import * as audit from './views/audit.js';
import * as accounts from './views/accounts.js';
import * as auth from './views/auth.js';
import * as domains from './views/domains.js';
import * as members from './views/members.js';
import * as routes from './views/routes.js';
import * as scopes from './views/scopes.js';
import * as settings from './views/settings.js';
import * as tokenForm from './views/token-form.js';
import * as tokens from './views/tokens.js';

const WORKSPACE_KEY = 'tokenward.workspace';

/** What the signed-in screens share. Never holds a secret. */
const state = {
  instance: null,
  me: null,
  workspaceId: null,
  settings: null,
  get workspace() {
    return this.me ? this.me.workspaces.find((w) => w.id === this.workspaceId) || null : null;
  },
  get isWorkspaceAdmin() {
    return this.workspace ? this.workspace.role === 'admin' : false;
  },
  get isInstanceAdmin() {
    return Boolean(this.me && this.me.account.instance_admin);
  },
};

const ROUTES = [
  [/^\/tokens\/new$/, tokenForm.renderCreate, 'tokens'],
  [/^\/tokens\/([0-9a-fA-F-]+)\/permissions$/, tokenForm.renderEdit, 'tokens'],
  [/^\/tokens$/, tokens.render, 'tokens'],
  [/^\/domains$/, domains.render, 'domains'],
  [/^\/members\/new$/, members.renderForm, 'members'],
  [/^\/members\/([0-9a-fA-F-]+)$/, members.renderForm, 'members'],
  [/^\/members$/, members.render, 'members'],
  [/^\/scopes$/, scopes.render, 'scopes'],
  [/^\/routes$/, routes.render, 'routes'],
  [/^\/settings$/, settings.render, 'settings'],
  [/^\/audit$/, audit.render, 'audit'],
  [/^\/accounts$/, accounts.render, 'accounts'],
];

const AUTH_PATHS = ['/', '/sign-in', '/sign-up', '/setup'];

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const sidenav = document.getElementById('sidenav');
const workspaceSelect = document.getElementById('workspace-select');

function navigate(path, { replace: replaceEntry = false, focus = true } = {}) {
  if (path !== location.pathname + location.search) {
    history[replaceEntry ? 'replaceState' : 'pushState'](null, '', path);
  }
  return route({ focus });
}

/** The context every screen gets. */
function context(section, params = []) {
  return {
    state,
    section,
    params,
    query: new URLSearchParams(location.search),
    navigate,
    /** True while this screen is still the one shown. */
    live: () => section.isConnected,
    signedIn,
    reloadMe,
  };
}

function showShell(visible) {
  topbar.hidden = !visible;
  sidenav.hidden = !visible;
  document.body.classList.toggle('signed-out', !visible);
}

async function route({ focus = true } = {}) {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  if (!state.me) return;
  if (AUTH_PATHS.includes(path)) return navigate('/tokens', { replace: true, focus });
  const found = ROUTES.map(([pattern, view, nav]) => [path.match(pattern), view, nav]).find(([m]) => m);
  if (!found) return navigate('/tokens', { replace: true, focus });
  const [match, view, nav] = found;
  for (const link of sidenav.querySelectorAll('a[data-nav]')) {
    if (link.dataset.nav === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const section = h('div', { class: 'view', 'data-view': nav });
  replace(main, section);
  try {
    await view(context(section, match.slice(1)));
  } catch (err) {
    if (err && err.handled) return undefined;
    if (section.isConnected) section.append(alertBox('error', errorMessage(err), 'view-error'));
  }
  if (focus && section.isConnected) {
    const heading = section.querySelector('h1');
    if (heading && !section.contains(document.activeElement)) heading.focus({ preventScroll: true });
  }
  return undefined;
}

function fillWorkspaces() {
  replace(workspaceSelect, state.me.workspaces.map((w) =>
    h('option', { value: w.id, selected: w.id === state.workspaceId || false },
      w.role === 'admin' ? w.name : `${w.name} (member)`)));
  workspaceSelect.value = state.workspaceId;
  workspaceSelect.closest('.workspace-picker').hidden = state.me.workspaces.length === 0;
}

function chooseWorkspace(id) {
  state.workspaceId = id;
  setWorkspace(id);
  try {
    localStorage.setItem(WORKSPACE_KEY, id);
  } catch {
    // Storage may be off; the choice then lasts for this page only.
  }
}

async function reloadMe() {
  const { data } = await api.get('/me');
  state.me = data;
  const ids = data.workspaces.map((w) => w.id);
  if (!ids.includes(state.workspaceId)) {
    let saved = null;
    try {
      saved = localStorage.getItem(WORKSPACE_KEY);
    } catch {
      saved = null;
    }
    chooseWorkspace(ids.includes(saved) ? saved : ids[0] || null);
  }
  fillWorkspaces();
  document.getElementById('account-email').textContent = data.account.email;
  for (const el of document.querySelectorAll('[data-instance-admin]')) el.hidden = !state.isInstanceAdmin;
  await showAuditLink();
}

let auditLinkCheck = 0;

/**
 * The audit log is in the navigation for workspace admins, members granted
 * `audit` (Read is enough), and the instance admin (instance entries).
 */
async function showAuditLink() {
  auditLinkCheck += 1;
  const check = auditLinkCheck;
  let visible = state.isWorkspaceAdmin || state.isInstanceAdmin;
  if (!visible && state.workspaceId) {
    try {
      const members = await listAll(`/workspaces/${enc(state.workspaceId)}/members`);
      const me = members.find((m) => m.account.id === state.me.account.id);
      visible = Boolean(me) && holds(me.scopes, 'audit', 'read');
    } catch {
      // Unknown: leave it out; /audit itself still says what is allowed.
      visible = false;
    }
  }
  // A later workspace switch has already decided.
  if (check !== auditLinkCheck) return;
  for (const el of document.querySelectorAll('[data-audit-reader]')) el.hidden = !visible;
}

/** After sign-in or setup, or on load with a live cookie. */
async function signedIn() {
  await reloadMe();
  const { data } = await api.get('/settings');
  state.settings = data;
  showShell(true);
  return route({ focus: true });
}

function signedOut(notice) {
  state.me = null;
  state.settings = null;
  setWorkspace(null);
  state.workspaceId = null;
  showShell(false);
  for (const dialog of document.querySelectorAll('dialog')) dialog.close();
  if (location.pathname !== '/sign-in') history.pushState(null, '', '/sign-in');
  const section = h('div', { class: 'view auth-view' });
  replace(main, section);
  auth.renderSignIn(authContext(section), notice);
}

function authContext(section) {
  return { ...context(section), showSignIn: (notice) => signedOut(notice), showSignUp };
}

function showSignUp() {
  history.pushState(null, '', '/sign-up');
  const section = h('div', { class: 'view auth-view' });
  replace(main, section);
  auth.renderSignUp(authContext(section));
}

async function boot() {
  configure({
    onUnauthorized: () => {
      if (!state.me) return false;
      signedOut('Your session has ended. Sign in again to continue.');
      return true;
    },
  });
  replace(main, loading());
  let instance;
  try {
    instance = (await api.get('/instance', { signOutOn401: false })).data;
  } catch (err) {
    replace(main, alertBox('error', errorMessage(err), 'boot-error'));
    return;
  }
  state.instance = instance;
  if (instance.needs_first_account) {
    showShell(false);
    history.replaceState(null, '', '/setup');
    const section = h('div', { class: 'view auth-view' });
    replace(main, section);
    auth.renderSetup(authContext(section));
    return;
  }
  try {
    await signedIn();
  } catch (err) {
    if (err.status === 401) {
      state.me = null;
      if (location.pathname === '/sign-up' && instance.allow_signup) showSignUp();
      else signedOut(null);
    } else {
      replace(main, alertBox('error', errorMessage(err), 'boot-error'));
    }
  }
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-link]');
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute('href'));
});

window.addEventListener('popstate', () => {
  if (state.me) route({ focus: true });
});

workspaceSelect.addEventListener('change', () => {
  chooseWorkspace(workspaceSelect.value);
  showAuditLink();
  const name = state.workspace ? state.workspace.name : 'the workspace';
  toast(`Switched to ${name}.`);
  const section = location.pathname.split('/')[1] || 'tokens';
  navigate(`/${section}`, { focus: false });
});

document.getElementById('sign-out').addEventListener('click', async (event) => {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    await api.del('/sessions/current', { signOutOn401: false });
  } catch {
    // Already ended or unreachable: the screen signs out either way.
  } finally {
    button.disabled = false;
  }
  signedOut(null);
  toast('You have signed out.');
});

boot();

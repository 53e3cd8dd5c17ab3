// Building DOM nodes without innerHTML: every value lands as text or as an
// attribute, so nothing the server returns can become markup.

/**
 * h('button', {class: 'btn', onclick: fn, 'data-testid': 'x'}, 'Label', child)
 * `on…` keys become listeners; `text` sets textContent; boolean-valued keys
 * become properties (disabled, checked, hidden, required…); `null`,
 * `undefined` and `false` children are skipped; arrays are flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'text') {
      el.textContent = value;
    } else if (key === 'class') {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    } else if (value === true) {
      if (key in el) el[key] = true;
      el.setAttribute(key, '');
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces every child of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let uid = 0;
/** A document-unique id for label/aria wiring. */
export function nextId(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** An inline SVG icon from a small fixed set (paths only, no markup from data). */
const ICONS = {
  dots: 'M8 9.75a1.75 1.75 0 1 0 0-3.5 1.75 1.75 0 0 0 0 3.5Zm-5.5 0a1.75 1.75 0 1 0 0-3.5 1.75 1.75 0 0 0 0 3.5Zm11 0a1.75 1.75 0 1 0 0-3.5 1.75 1.75 0 0 0 0 3.5Z',
  copy: 'M5.75 1h6.5C13.22 1 14 1.78 14 2.75v6.5c0 .97-.78 1.75-1.75 1.75h-6.5C4.78 11 4 10.22 4 9.25v-6.5C4 1.78 4.78 1 5.75 1Zm0 1.5a.25.25 0 0 0-.25.25v6.5c0 .14.11.25.25.25h6.5c.14 0 .25-.11.25-.25v-6.5a.25.25 0 0 0-.25-.25h-6.5ZM2 5.75C2 5.34 2.34 5 2.75 5s.75.34.75.75v7.5c0 .14.11.25.25.25h7.5a.75.75 0 0 1 0 1.5h-7.5A1.75 1.75 0 0 1 2 13.25v-7.5Z',
  check: 'M13.78 4.22a.75.75 0 0 1 0 1.06l-7.25 7.25a.75.75 0 0 1-1.06 0L2.22 9.28a.75.75 0 0 1 1.06-1.06L6 10.94l6.72-6.72a.75.75 0 0 1 1.06 0Z',
  warning: 'M6.46 1.78a1.75 1.75 0 0 1 3.08 0l5.25 9.75A1.75 1.75 0 0 1 13.25 14H2.75a1.75 1.75 0 0 1-1.54-2.47l5.25-9.75ZM8 5a.75.75 0 0 0-.75.75v2.5a.75.75 0 0 0 1.5 0v-2.5A.75.75 0 0 0 8 5Zm0 6.5a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z',
  key: 'M10.5 0a5.5 5.5 0 1 1-1.83 10.69l-.9.9a.75.75 0 0 1-.53.22H6v1.25a.75.75 0 0 1-.75.75H4v1.25a.75.75 0 0 1-.75.75H.75a.75.75 0 0 1-.75-.75v-2.5c0-.2.08-.39.22-.53l5.09-5.09A5.5 5.5 0 0 1 10.5 0Zm0 1.5a4 4 0 0 0-3.76 5.36.75.75 0 0 1-.17.79L1.5 12.7v1.8h1v-1.25c0-.41.34-.75.75-.75H4.5V11.25c0-.41.34-.75.75-.75h1.69l1.02-1.02a.75.75 0 0 1 .79-.17A4 4 0 1 0 10.5 1.5Zm1 2a1 1 0 1 1 0 2 1 1 0 0 1 0-2Z',
  shield: 'M7.47.22a.75.75 0 0 1 1.06 0C10.2 1.9 12.1 2.5 14.25 2.5c.41 0 .75.34.75.75V7c0 4.1-2.6 6.93-6.74 8.46a.75.75 0 0 1-.52 0C3.6 13.93 1 11.1 1 7V3.25c0-.41.34-.75.75-.75 2.15 0 4.05-.6 5.72-2.28ZM2.5 3.97V7c0 3.26 1.98 5.55 5.5 6.96 3.52-1.41 5.5-3.7 5.5-6.96V3.97A9.2 9.2 0 0 1 8 1.78a9.2 9.2 0 0 1-5.5 2.19Z',
};

export function icon(name, label) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('width', '16');
  svg.setAttribute('height', '16');
  svg.setAttribute('class', 'icon');
  if (label) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', label);
  } else {
    svg.setAttribute('aria-hidden', 'true');
  }
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', ICONS[name] || '');
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

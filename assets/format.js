// Times, durations and server sentences as people read them.

const exactFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium',
  timeStyle: 'short',
});
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** Up to which size (in seconds) a difference is told in which unit. */
const STEPS = [
  [45 * 60, 'minute', 60],
  [22 * 3600, 'hour', 3600],
  [45 * 86400, 'day', 86400],
  [320 * 86400, 'month', 30 * 86400],
  [Infinity, 'year', 365 * 86400],
];

/** "in 4 hours", "tomorrow", "3 minutes ago". */
export function relative(iso, now = Date.now()) {
  const diff = (Date.parse(iso) - now) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return diff >= 0 ? 'in a few seconds' : 'just now';
  const [, unit, size] = STEPS.find(([limit]) => abs < limit);
  const amount = Math.max(1, Math.round(abs / size));
  return relativeFormat.format(diff < 0 ? -amount : amount, unit);
}

/** "Mar 25, 2026, 2:00 PM" in the reader's time zone. */
export function exact(iso) {
  return exactFormat.format(new Date(iso));
}

/** A <time> element: relative text, exact date alongside for readers. */
export function timeEl(iso) {
  const el = document.createElement('time');
  el.dateTime = iso;
  el.title = exact(iso);
  el.textContent = relative(iso);
  return el;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** 43200 → "12 hours", 86400 → "1 day", 5400 → "90 minutes". */
export function duration(seconds) {
  const s = Number(seconds);
  if (s === 0) return '0 seconds';
  if (s % 86400 === 0) return plural(s / 86400, 'day');
  if (s % 3600 === 0) return plural(s / 3600, 'hour');
  if (s % 60 === 0) return plural(s / 60, 'minute');
  return plural(s, 'second');
}

/** The server's lower-case message as a sentence: capital, full stop. */
export function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** RFC 3339 with second precision and `Z`, as the API expects. */
export function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

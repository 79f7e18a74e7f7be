// The event inspector: every event of the session, both ways (↑ sent by this page, ↓ received),
// newest last, filterable by text and direction, with errors only on demand. Audio is elided
// (`delta`/`audio` fields shown as "<audio: N bytes>"), so the list stays readable and light; a
// row opens to show the event's JSON. Policy refusals (`error` events whose code starts with
// `relay_`) and other errors are highlighted. Keeps the last MAX events.

const MAX = 2000;
const AUDIO_FIELDS = new Set(['delta', 'audio']);
const AUDIO_TYPES = /audio|append/;

/** A copy of `event` with its base64 audio replaced by its size. */
export function elide(event) {
  const copy = { ...event };
  for (const key of Object.keys(copy)) {
    if (AUDIO_FIELDS.has(key) && typeof copy[key] === 'string' && AUDIO_TYPES.test(event.type || '')) {
      copy[key] = `<audio: ${Math.floor((copy[key].length * 3) / 4)} bytes>`;
    }
  }
  return copy;
}

/** 'refusal' (the relay's policy), 'error' (anything else), or ''. */
export function severity(event) {
  if (event.type !== 'error') return '';
  const code = (event.error && event.error.code) || '';
  return code.startsWith('relay_') ? 'refusal' : 'error';
}

export class Inspector extends EventTarget {
  /** `elements`: { section, list, filter, direction, errorsOnly, count } */
  constructor(elements) {
    super();
    this.el = elements;
    this.rows = []; // { li, dir, type, text, severity }
    this.t0 = null;
    for (const input of [elements.filter, elements.direction, elements.errorsOnly]) {
      input.addEventListener('input', () => this.applyFilter());
      input.addEventListener('change', () => this.applyFilter());
    }
  }

  /** Record an event: `dir` is 'sent' or 'received'. */
  add(dir, event) {
    const now = performance.now();
    if (this.t0 === null) this.t0 = now;
    const shown = elide(event);
    const sev = severity(event);
    const li = document.createElement('li');
    li.className = `event ${dir}${sev ? ` ${sev}` : ''}`;
    const details = document.createElement('details');
    const summary = document.createElement('summary');
    const time = document.createElement('span');
    time.className = 'time';
    time.textContent = `${((now - this.t0) / 1000).toFixed(2)}s`;
    const arrow = document.createElement('span');
    arrow.className = 'dir';
    arrow.textContent = dir === 'sent' ? '↑' : '↓';
    arrow.title = dir === 'sent' ? 'sent' : 'received';
    const type = document.createElement('span');
    type.className = 'type';
    type.textContent = event.type || '(no type)';
    summary.append(time, arrow, type);
    if (sev) {
      const code = document.createElement('code');
      code.className = 'code';
      code.textContent = (event.error && event.error.code) || '';
      summary.append(code);
    }
    const pre = document.createElement('pre');
    pre.textContent = JSON.stringify(shown, null, 2);
    details.append(summary, pre);
    li.append(details);
    const row = { li, dir, type: event.type || '', text: pre.textContent, severity: sev };
    this.rows.push(row);
    li.hidden = !this.matches(row);
    const list = this.el.list;
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.append(li);
    if (this.rows.length > MAX) this.rows.shift().li.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
    this.el.section.hidden = false;
    this.updateCount();
  }

  matches(row) {
    const dir = this.el.direction.value;
    if (dir !== 'both' && row.dir !== dir) return false;
    if (this.el.errorsOnly.checked && !row.severity) return false;
    const q = this.el.filter.value.trim().toLowerCase();
    return !q || row.type.toLowerCase().includes(q) || row.text.toLowerCase().includes(q);
  }

  applyFilter() {
    for (const row of this.rows) row.li.hidden = !this.matches(row);
    this.updateCount();
  }

  updateCount() {
    const shown = this.rows.filter((r) => !r.li.hidden).length;
    this.el.count.textContent = shown === this.rows.length ? `${shown} events` : `${shown} of ${this.rows.length} events`;
  }

  clear() {
    this.rows = [];
    this.t0 = null;
    this.el.list.replaceChildren();
    this.el.section.hidden = true;
  }
}

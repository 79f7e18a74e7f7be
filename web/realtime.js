// One Realtime API session through the relay: a WebSocket to /realtime?model=..., authenticated
// the way browsers can (the subprotocols ["realtime", "openai-insecure-api-key.<token>"]; the relay
// answers "realtime" and never echoes the token), JSON events in and out.
//
// Events dispatched: 'state' (detail: connecting | open | closed), 'server' (detail: a server
// event), 'failed' (detail: {text, code} - why it could not open or why it ended). A browser
// cannot read the HTTP refusal of a WebSocket handshake, so when the socket fails before opening,
// the same URL is asked once with a plain GET: the relay runs the same checks and answers with its
// JSON error (401 token, 400 model, 403 origin/profile, 503 shutting down).

import { describeClose, describeEarlyClose, describeError } from './errors.js';

export class RealtimeConnection extends EventTarget {
  constructor({ token, model, base = location.href }) {
    super();
    this.token = token;
    this.model = model;
    const url = new URL('realtime', base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (model) url.searchParams.set('model', model);
    this.url = url.toString();
    this.state = 'idle';
    this.socket = null;
    this.lastError = null; // an `error` event that was the last event before a close explains it
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }

  /** Open the socket. Resolves when it is open; rejects (after a 'failed' event) when refused. */
  open() {
    this.setState('connecting');
    return new Promise((resolve, reject) => {
      let opened = false;
      const socket = new WebSocket(this.url, ['realtime', `openai-insecure-api-key.${this.token}`]);
      this.socket = socket;
      socket.onopen = () => {
        opened = true;
        this.setState('open');
        resolve();
      };
      socket.onmessage = (e) => {
        let event;
        try {
          event = JSON.parse(e.data);
        } catch {
          return;
        }
        this.lastError = event.type === 'error' ? event.error : null;
        this.dispatchEvent(new CustomEvent('server', { detail: event }));
      };
      socket.onclose = async (e) => {
        if (this.socket !== socket) return;
        this.socket = null;
        let why = null;
        if (!opened && e.code !== 1006) {
          // The relay spoke WebSocket (a close frame), so the handshake was not refused.
          why = describeEarlyClose(e.code, e.reason);
        } else if (!opened) {
          why = await this.diagnose();
        } else if (this.lastError) {
          why = describeError(this.lastError);
        } else if (e.code !== 1000) {
          why = describeClose(e.code, e.reason);
        }
        this.setState('closed');
        if (why) this.dispatchEvent(new CustomEvent('failed', { detail: why }));
        if (!opened) reject(Object.assign(new Error(why.text), why));
      };
    });
  }

  /** Why the handshake failed: the relay's JSON refusal for the same request, if it has one. */
  async diagnose() {
    try {
      const probe = new URL(this.url);
      probe.protocol = probe.protocol === 'wss:' ? 'https:' : 'http:';
      const r = await fetch(probe, { headers: { Authorization: `Bearer ${this.token}` }, cache: 'no-store' });
      const body = await r.json().catch(() => null);
      if (body && body.error && body.error.code && body.error.code !== 'websocket_required') {
        return { ...describeError(body.error), status: r.status };
      }
      return { text: 'The relay refused the connection. Try again shortly.', code: `http ${r.status}` };
    } catch {
      return { text: 'The relay cannot be reached. Check the network and try again.', code: 'network_error' };
    }
  }

  /** Send a client event (adds nothing; returns false if the socket is not open). */
  send(event) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(event));
    return true;
  }

  close() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'client closed');
    if (this.state !== 'closed') this.setState('closed');
  }
}

// The transcript: one entry per conversation item, both sides, in the conversation's order
// (an item is placed after its `previous_item_id` when that is known), text streamed into it as
// deltas arrive. Fed with server events by `handle(event)`; renders into a list element. It
// outlives connections (a new session adds a divider; a failed reconnect leaves it as it was) and
// shows typed messages still waiting for a session. Its section is shown once it has an entry.

export class Conversation {
  constructor(list, section = null) {
    this.list = list;
    this.section = section;
    this.entries = new Map(); // item id -> { li, text, role }
  }

  clear() {
    this.entries.clear();
    this.list.replaceChildren();
    if (this.section) this.section.hidden = true;
  }

  show() {
    if (this.section) this.section.hidden = false;
  }

  /** A line between sessions (only if there is something above it). */
  divider(text) {
    if (!this.list.lastElementChild || this.list.lastElementChild.classList.contains('divider')) return;
    const li = document.createElement('li');
    li.className = 'divider';
    li.textContent = text;
    this.list.append(li);
  }

  /** A typed message waiting for a session to be sent in. */
  queued(id, text) {
    const e = this.entry(id, 'user');
    e.text.textContent = text;
    e.li.classList.add('queued');
    e.li.title = 'waiting for the connection';
  }

  /** The waiting message was sent: the server's own item replaces it. */
  unqueue(id) {
    const e = this.entries.get(id);
    if (e) e.li.remove();
    this.entries.delete(id);
  }

  /** The entry of `itemId`, made (after `previousId` when known) if it does not exist yet. */
  entry(itemId, role, previousId) {
    let e = this.entries.get(itemId);
    if (e) return e;
    const li = document.createElement('li');
    li.className = `turn ${role}`;
    li.dataset.itemId = itemId;
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = role === 'user' ? 'You' : 'Assistant';
    const text = document.createElement('span');
    text.className = 'text';
    li.append(who, text);
    const after = previousId && this.entries.get(previousId);
    if (after) after.li.after(li);
    else this.list.append(li);
    e = { li, text, role };
    this.entries.set(itemId, e);
    this.show();
    return e;
  }

  append(itemId, role, delta) {
    const e = this.entry(itemId, role);
    e.li.classList.remove('pending');
    e.text.textContent += delta;
  }

  set(itemId, role, text) {
    const e = this.entry(itemId, role);
    e.li.classList.remove('pending');
    e.text.textContent = text;
  }

  mark(itemId, cls, title) {
    const e = this.entries.get(itemId);
    if (!e) return;
    e.li.classList.add(cls);
    if (title) e.li.title = title;
  }

  /** Update from a server event; ignores events it has nothing to show for. */
  handle(ev) {
    switch (ev.type) {
      case 'conversation.item.added': {
        const item = ev.item || {};
        if (item.type !== 'message' || item.role === 'system') return;
        const e = this.entry(item.id, item.role, ev.previous_item_id);
        for (const part of item.content || []) {
          if (part.type === 'input_text' || part.type === 'text') e.text.textContent = part.text || '';
          if (part.type === 'input_audio' && !e.text.textContent) e.li.classList.add('pending');
        }
        return;
      }
      case 'conversation.item.input_audio_transcription.delta':
        return this.append(ev.item_id, 'user', ev.delta || '');
      case 'conversation.item.input_audio_transcription.completed':
        return this.set(ev.item_id, 'user', ev.transcript || '');
      case 'conversation.item.input_audio_transcription.failed':
        this.set(ev.item_id, 'user', '(not transcribed)');
        return this.mark(ev.item_id, 'failed');
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta':
        return this.append(ev.item_id, 'assistant', ev.delta || '');
      case 'response.output_audio_transcript.done':
        return this.set(ev.item_id, 'assistant', ev.transcript || '');
      case 'response.output_text.done':
        return this.set(ev.item_id, 'assistant', ev.text || '');
      case 'conversation.item.truncated':
        return this.mark(ev.item_id, 'interrupted', `interrupted after ${(ev.audio_end_ms / 1000).toFixed(1)} s`);
      case 'conversation.item.deleted': {
        const e = this.entries.get(ev.item_id);
        if (e) e.li.remove();
        this.entries.delete(ev.item_id);
        return;
      }
    }
  }
}

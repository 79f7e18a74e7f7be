// The user's usage and budget, from GET /api/usage (the relay's metering of every response.done):
// tokens this period against the budget (a meter when the profile has one), open sessions, and the
// last sessions. Refreshed on sign-in and after each answer; the section stays hidden when the
// relay does not answer.

const $ = (id) => document.getElementById(id);

function tokens(n) {
  return n >= 10000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

export class UsagePanel {
  constructor(tokenFn) {
    this.token = tokenFn;
    this.data = null;
    this.pending = null;
  }

  async refresh() {
    const token = this.token();
    if (!token) return this.hide();
    try {
      const r = await fetch('api/usage', { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
      if (!r.ok) return this.hide();
      this.data = await r.json();
    } catch {
      return this.hide();
    }
    this.render();
  }

  /** Refresh soon (coalesces bursts of response.done). */
  refreshSoon() {
    clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh().then(() => setTimeout(() => this.refresh(), 1500)), 300);
  }

  hide() {
    $('usage-section').hidden = true;
  }

  render() {
    const d = this.data;
    const used = d.usage || {};
    const budget = d.budget || {};
    $('usage-period').textContent = `This ${d.period ? d.period.name : 'period'}`;
    $('usage-tokens').textContent = `${tokens(used.total_tokens || 0)} tokens in ${used.responses || 0} answers`;
    const meter = $('usage-meter');
    if (budget.tokens) {
      meter.max = budget.tokens;
      meter.value = Math.min(budget.tokens, used.total_tokens || 0);
      meter.high = budget.tokens * 0.8;
      meter.hidden = false;
      $('usage-budget').textContent = budget.spent
        ? `Budget spent (${tokens(budget.tokens)} tokens).`
        : `${tokens(Math.max(0, budget.tokens - (used.total_tokens || 0)))} of ${tokens(budget.tokens)} tokens left.`;
    } else {
      meter.hidden = true;
      $('usage-budget').textContent = 'No token budget on this account.';
    }
    const recent = d.recent_sessions || [];
    $('usage-sessions').textContent = `${d.open_sessions || 0} open now; ${recent.length} recent.`;
    $('usage-section').hidden = false;
  }
}

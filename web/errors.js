// Plain words for what went wrong: the relay's refusals and `relay_*` error codes, the upstream's
// failures, the API's own errors, WebSocket close codes and browser media errors. Each function
// returns { text, code }: a sentence for a person, and the raw code shown beside it.

const MESSAGES = {
  // Refusals before the WebSocket opens (HTTP status + code).
  missing_token: 'You are not signed in. Sign in and connect again.',
  invalid_token: 'Your sign-in token was not accepted. Sign in again.',
  invalid_signature: 'Your sign-in token was not accepted (bad signature). Sign in again.',
  invalid_algorithm: 'Your sign-in token uses a method this relay does not accept. Sign in again.',
  token_expired: 'Your sign-in has expired. Sign in again.',
  token_not_yet_valid: 'Your sign-in token is not valid yet. Check this device\'s clock.',
  invalid_issuer: 'Your sign-in token comes from a service this relay does not trust.',
  invalid_audience: 'Your sign-in token is meant for another service.',
  unknown_key: 'Your sign-in token was signed with a key this relay does not know. Sign in again.',
  missing_claim: 'Your sign-in token lacks something this relay needs. Sign in again.',
  origin_not_allowed: 'This page\'s address is not allowed to use this relay.',
  relay_unknown_profile: 'Your account has a role this relay does not know.',
  model_not_found: 'This relay does not offer the model you picked. Choose another model.',
  websocket_required: 'The relay expected a WebSocket connection.',
  relay_too_many_sessions: 'You have too many sessions open. Close another tab or wait a moment.',
  relay_state_unavailable: 'The relay cannot check your limits right now. Try again shortly.',
  relay_shutting_down: 'The relay is restarting. Reconnect in a moment.',
  // The upstream (Azure OpenAI / OpenAI) failed.
  relay_upstream_auth_failed: 'The voice service refused the relay\'s credentials. The operator must fix the relay\'s key.',
  relay_upstream_credentials: 'The relay could not get credentials for the voice service.',
  relay_upstream_not_found: 'The voice service does not know this model or deployment.',
  relay_upstream_rate_limited: 'The voice service is busy (rate limited). Try again in a minute.',
  relay_upstream_unavailable: 'The voice service is unavailable right now. Try again shortly.',
  relay_upstream_unreachable: 'The relay cannot reach the voice service.',
  relay_upstream_tls_failed: 'The relay could not open a secure connection to the voice service.',
  relay_upstream_timeout: 'The voice service did not answer in time.',
  relay_upstream_refused: 'The voice service refused the connection.',
  relay_upstream_failed: 'The connection to the voice service failed.',
  relay_upstream_protocol: 'The voice service answered in a way the relay did not understand.',
  relay_upstream_closed: 'The voice service ended the session.',
  relay_upstream_lost: 'The connection to the voice service was lost.',
  server_error: 'The voice service had an internal error.',
  // The relay's policy and limits, during a session.
  relay_field_locked: 'This relay does not let you change that setting; its own settings are used.',
  relay_value_not_allowed: 'That value is not allowed on this relay.',
  relay_value_out_of_range: 'That value is outside what this relay allows.',
  relay_event_not_allowed: 'This relay does not allow that action for your account.',
  relay_item_not_allowed: 'This relay does not allow that kind of message.',
  relay_role_not_allowed: 'This relay does not allow messages in that role.',
  relay_text_too_long: 'That text is longer than this relay allows.',
  relay_voice_not_allowed: 'That voice is not available on this relay.',
  relay_append_too_large: 'Too much audio was sent at once.',
  relay_rate_limited: 'Too many messages too fast; some were refused.',
  relay_budget_exhausted: 'Your usage budget is spent for now.',
  relay_invalid_event: 'The relay could not read a message from this page.',
  relay_binary_not_supported: 'The relay does not accept binary messages.',
  relay_early_buffer_full: 'Too much was sent before the voice service answered.',
  relay_idle_warning: 'This session is idle and will close soon.',
  relay_idle_timeout: 'The session closed because it was idle.',
  relay_session_ending: 'This session reaches its time limit soon.',
  relay_max_session_duration: 'The session reached its time limit.',
  relay_token_expired: 'Your sign-in expired, so the session ended. Sign in again.',
  relay_session_terminated: 'An administrator ended your sessions.',
  relay_internal: 'The relay had an internal error.',
  // The API's own errors that a person may meet.
  cannot_update_voice: 'The voice cannot change once the assistant has spoken; reconnect to change it.',
  conversation_already_has_active_response: 'The assistant is still answering.',
  input_audio_buffer_commit_empty: 'Not enough audio was heard to answer.',
};

/** Codes that are expected in normal operation and are not shown as errors. */
export const QUIET_CODES = new Set(['response_cancel_not_active']);

/** An `error` event's detail ({type, code, message}) or a refusal's JSON body error. */
export function describeError(error) {
  const code = (error && (error.code || error.type)) || 'unknown_error';
  const text = MESSAGES[code] || (error && error.message) || 'Something went wrong.';
  return { text, code, detail: error && error.message };
}

/**
 * A close frame from the relay on a socket whose `open` event never fired. Firefox (ESR 153) does
 * this when the relay ends a session right after the upgrade (its upstream refused): a bare close,
 * with no `open` and no `message` events, in 5 of 8 tries; the relay's `error` event is lost, its
 * close frame is not. The relay's close reasons (README's close table) name what went wrong.
 */
export function describeEarlyClose(code, reason) {
  const byReason = { 'upstream unavailable': 'relay_upstream_unavailable' };
  const known = byReason[reason];
  return known ? describeError({ code: known, message: reason }) : describeClose(code, reason);
}

/** A WebSocket close that had no `error` event before it. */
export function describeClose(code, reason) {
  const known = {
    1000: 'The session ended.',
    1001: 'The relay is going away (restarting). Reconnect in a moment.',
    1006: 'The connection was lost.',
    1008: 'The relay ended the session (a policy or limit).',
    1009: 'A message was too large for the relay.',
    1011: 'The relay or the voice service failed.',
    1013: 'The relay is busy. Try again shortly.',
  };
  const text = known[code] || 'The connection closed.';
  return { text: reason ? `${text} (${reason})` : text, code: `close ${code}` };
}

/** A getUserMedia / AudioContext failure. */
export function describeMediaError(e) {
  const byName = {
    NotAllowedError: 'The browser did not allow the microphone. Allow it in the site settings and reconnect.',
    NotFoundError: 'No microphone was found.',
    NotReadableError: 'The microphone is in use by another application.',
    SecurityError: 'The microphone needs a secure page (https or localhost).',
  };
  return { text: byName[e && e.name] || `The microphone could not start: ${e && e.message}`, code: (e && e.name) || 'media_error' };
}

// The sign-in panel and the account line: shows the ways to sign in that the relay offers (dev
// mode's one click, a configured sign-in page, a pasted token), checks a token against the relay
// (GET /api/client-config with it, which also lists the models served), remembers it for the tab,
// and signs out. Tells the page through `onSignedIn(token, config)` and `onSignedOut()`.

import * as auth from './auth.js';
import { describeError } from './errors.js';

const $ = (id) => document.getElementById(id);

export function setUpSignIn({ onSignedIn, onSignedOut, showError, clearError }) {
  let config = {};

  async function signIn(token) {
    try {
      config = await auth.clientConfig(token);
    } catch (e) {
      auth.saveToken(null);
      showError(describeError(e.error));
      return showSignIn();
    }
    auth.saveToken(token);
    $('who').textContent = (auth.claims(token) || {}).sub || 'unknown user';
    $('signin').hidden = true;
    $('account').hidden = false;
    onSignedIn(token, config);
  }

  async function showSignIn() {
    $('signin').hidden = false;
    $('account').hidden = true;
    onSignedOut();
    try {
      config = await auth.clientConfig();
      $('dev-signin').hidden = !config.dev_mode;
      $('login-button').hidden = !config.login_url;
    } catch {
      // The relay is unreachable: pasting a token is still possible.
    }
  }

  $('dev-signin-button').addEventListener('click', async () => {
    clearError();
    try {
      await signIn(await auth.devToken($('dev-user').value.trim()));
    } catch (e) {
      showError(describeError(e.error));
    }
  });
  $('login-button').addEventListener('click', () => auth.goToLogin(config.login_url));
  $('token-button').addEventListener('click', () => {
    clearError();
    const token = $('token-input').value.trim();
    if (token) signIn(token);
  });
  $('signout-button').addEventListener('click', () => {
    auth.saveToken(null);
    showSignIn();
  });

  // A token handed back by a sign-in page, or the one this tab already had.
  const initial = auth.tokenFromFragment() || auth.savedToken();
  if (initial) signIn(initial);
  else showSignIn();
}

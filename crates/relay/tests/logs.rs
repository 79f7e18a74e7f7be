//! Log lines a client cannot forge: a token's `sub` (or a dev token's `user`) with a newline in it
//! is written escaped, on the line it belongs to. Its own test binary: it installs the global
//! log subscriber, as the relay's binary does.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::identity;
use realtime_relay::secret::Secret;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const FORGED: &str = "2026-12-02T00:00:00.000000Z  INFO relay: admin alice granted every profile";

#[tokio::test]
async fn a_newline_in_a_user_name_cannot_forge_a_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    // A signed token whose `sub` carries a line of its own.
    let relay = relay(args()).await;
    let sub = format!("mallory\n{FORGED}");
    let token = identity::mint(&Secret::new(JWT_SECRET), &sub, 600, Default::default()).unwrap();
    let mut c = connect(&relay.ws_url(), &token).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    drop(c);
    eventually("the session ends", || async { relay.open_sessions() == 0 }).await;
    relay.shutdown().await;

    // A dev relay's token endpoint, asked for such a user.
    let dev = common::relay(ServeArgs {
        jwt_secret: None,
        ..args()
    })
    .await;
    let url = format!("{}/dev/token?user=eve%0A{}", dev.http_url(), FORGED.replace(' ', "%20"));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    dev.shutdown().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("session opened"), "{text}");
    assert!(text.contains("dev token issued"), "{text}");
    for line in text.lines() {
        assert!(!line.starts_with(FORGED), "a forged line: {line}");
    }
    assert!(
        text.contains(&format!("mallory\\n{FORGED}")),
        "the name is shown escaped: {text}"
    );
    assert!(text.contains(&format!("eve\\n{FORGED}")), "{text}");
}

//! The pump rig shared by `benches/pump.rs` and `examples/frame_path.rs`: an echo upstream, a relay
//! in front of it (in this process, open policy), and a client socket to either; one call sends a
//! frame and waits for it to come back.

use futures_util::{SinkExt, StreamExt};
use realtime_loadgen::echo::Echo;
use realtime_loadgen::target::{Ws, connect};
use realtime_relay::Relay;
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SECRET: &str = "pump-rig-secret-0123456789abcdef0123";

/// The echo upstream, the relay in front of it, and one client of each.
pub struct Rig {
    pub direct: Ws,
    pub relayed: Ws,
    _relay: Relay,
    _echo: Echo,
}

/// An `input_audio_buffer.append` carrying `ms` of (silent) audio: 20 ms is 1.3 KB.
pub fn append(ms: usize) -> Message {
    let audio = "A".repeat((ms * 48).div_ceil(3) * 4);
    Message::text(format!(
        r#"{{"type":"input_audio_buffer.append","event_id":"event_0123456789","audio":"{audio}"}}"#
    ))
}

impl Rig {
    pub async fn start() -> Rig {
        let echo = Echo::start().await.expect("echo upstream");
        let config = ServeArgs {
            listen: Some("127.0.0.1:0".parse().expect("address")),
            jwt_secret: Some(Secret::new(SECRET)),
            upstream_url: Some(echo.url()),
            models: Some(vec!["gpt-realtime".into()]),
            ..Default::default()
        }
        .resolve()
        .expect("config");
        let relay = realtime_relay::start(config).await.expect("relay");
        let token =
            realtime_relay::identity::mint(&Secret::new(SECRET), "bench", 3600, Default::default()).expect("token");
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).expect("header");
        let limit = Duration::from_secs(10);
        let relayed = connect(
            &format!("{}?model=gpt-realtime", relay.ws_url()),
            Some(("authorization", bearer)),
            16 << 10,
            limit,
        )
        .await
        .expect("relay session");
        let direct = connect(&echo.url(), None, 16 << 10, limit).await.expect("echo session");
        Rig {
            direct,
            relayed,
            _relay: relay,
            _echo: echo,
        }
    }
}

/// Send `frame` and wait for it to come back.
pub async fn round_trip(ws: &mut Ws, frame: &Message) {
    ws.send(frame.clone()).await.expect("send");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => return,
            Some(Ok(_)) => continue,
            other => panic!("the echo ended: {other:?}"),
        }
    }
}

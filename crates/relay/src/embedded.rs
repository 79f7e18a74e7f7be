//! The embedded default upstream: with no Azure, OpenAI or custom upstream configured, the relay
//! starts the emulator in-process on a loopback port, so the product runs end to end on a fresh
//! machine with no account. It gets a random key, like a real upstream would want one, so the
//! relay's credential path is exercised in development too.

use std::net::SocketAddr;

use realtime_emulator::{Emulator, EmulatorConfig, Pacing};

use crate::secret::Secret;

/// A running in-process emulator and the key it expects.
pub struct Embedded {
    pub emulator: Emulator,
    pub key: Secret,
}

impl Embedded {
    /// Start it on `127.0.0.1:0` with `pacing`.
    pub async fn start(pacing: Pacing, max_message_bytes: usize) -> Result<Embedded, std::io::Error> {
        let key = Secret::new(crate::random_token(40));
        let config = EmulatorConfig {
            api_key: Some(key.expose().to_owned()),
            pacing,
            max_message_bytes,
            ..EmulatorConfig::default()
        };
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let emulator = realtime_emulator::spawn(config, loopback).await?;
        Ok(Embedded { emulator, key })
    }

    /// The base URL the relay connects to (the model is added per session).
    pub fn url(&self) -> String {
        format!("ws://{}/openai/v1/realtime", self.emulator.addr())
    }
}

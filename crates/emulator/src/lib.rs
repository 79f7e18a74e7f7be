//! A faithful local implementation of the OpenAI / Azure OpenAI Realtime API (GA protocol).
//!
//! A client cannot tell it from the service by the events it gets, except that its voice is
//! synthetic: the same handshake (key checks, subprotocol), the same event sequences and error
//! shapes, server VAD on the input audio, paced audio output. It is what the relay starts
//! in-process when no upstream is configured, and what every test and benchmark talks to.
//!
//! Map of the crate:
//! - [`session`]: one session as a pure state machine (client frames in, events out);
//!   [`response`] plans a response's event sequence; [`conversation`] stores items;
//!   [`validate`] checks input with the service's error codes; [`reply`] decides what is said;
//!   [`synth`] makes the voice; [`vad`] detects speech.
//! - [`server`] (the handshake and routes) and [`connection`] (the socket loop) are the I/O;
//!   [`faults`] injects failures per connection; [`observe`] records what was seen, for tests;
//!   [`bench`] stamps event ids so a load generator can time every frame (benchmark mode only).
//!
//! Embed it with [`spawn`]; run it alone with the `realtime-emulator` binary.

pub mod auth;
pub mod bench;
pub mod config;
pub mod connection;
pub mod conversation;
pub mod faults;
pub mod observe;
pub mod reply;
pub mod response;
pub mod server;
pub mod session;
pub mod synth;
pub mod vad;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
pub use config::{EmulatorConfig, Pacing};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running emulator.
pub struct Emulator {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
}

/// Start an emulator on `listen` (port 0 picks a free port) in the current runtime.
pub async fn spawn(config: EmulatorConfig, listen: SocketAddr) -> std::io::Result<Emulator> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, config, shutdown.clone()));
    Ok(Emulator { addr, shutdown, task })
}

/// Serve on `listener` until `shutdown` is cancelled; open sessions are closed with 1001.
pub async fn serve(listener: TcpListener, config: EmulatorConfig, shutdown: CancellationToken) -> std::io::Result<()> {
    let state = Arc::new(server::AppState {
        config,
        observer: Default::default(),
        shutdown: shutdown.clone(),
    });
    // TCP_NODELAY, as a service's WebSocket endpoint has: with Nagle on (axum 0.8's default), an
    // event written right after another waits for the client's ACK (up to ~20 ms at real time).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

impl Emulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://…/openai/v1/realtime?model=<model>` (the Azure GA path).
    pub fn url(&self, model: &str) -> String {
        format!("ws://{}/openai/v1/realtime?model={model}", self.addr)
    }

    /// `http://…` for the test endpoints.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, close open sessions with 1001, and wait for the server to end.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

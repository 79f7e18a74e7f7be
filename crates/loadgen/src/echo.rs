//! An upstream that sends every text or binary frame straight back: with the relay in front, one
//! frame's round trip crosses the relay's pump both ways (uplink, then downlink) and nothing else
//! does any work, which isolates the relay's per-frame cost (`benches/pump.rs`).

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running echo server.
pub struct Echo {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Echo {
    /// Listen on a free loopback port.
    pub async fn start() -> std::io::Result<Echo> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_close() {
                            return;
                        }
                        if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Echo { addr, task })
    }

    /// `ws://<addr>/openai/v1/realtime` (any path is accepted).
    pub fn url(&self) -> String {
        format!("ws://{}/openai/v1/realtime", self.addr)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

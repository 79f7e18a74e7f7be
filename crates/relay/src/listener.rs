//! The relay's HTTP edge: its own accept loop in front of the router, so that what happens to a
//! connection before it carries a request is the relay's decision.
//!
//! `axum::serve` (axum 0.8) gives hyper no timer, so hyper's header read timeout never applies: a
//! client that opens a connection and never finishes its headers holds a file descriptor for as
//! long as it likes, enough of them lock everyone else out, and one of them keeps a graceful
//! shutdown from ever finishing. Here every accepted socket:
//!
//! - gets TCP_NODELAY: with Nagle on, a frame written while the previous one is unacknowledged
//!   waits for the client's ACK, up to its next frame or the delayed-ACK timer (measured: +20 ms at
//!   p99 per hop, `scripts/bench.sh`);
//! - takes one of `max_connections` places. The place travels with the socket — through the HTTP
//!   exchange and, after an upgrade, the whole WebSocket session — and is given back when the socket
//!   closes. Without a place the client is answered a minimal 503 `relay_overloaded` in the API's
//!   error shape, written here, and the socket is closed;
//! - is served by hyper's HTTP/1 with a timer: the headers of each request must arrive within the
//!   header read timeout (the same timer closes a kept-alive connection idle that long between two
//!   requests), and a request head over [`MAX_HEAD_BYTES`] is answered 431 by hyper;
//! - when it ends in an error that refuses the client, is counted in
//!   `relay_handshake_refusals_total` under a fixed code: [`HEADER_READ_TIMEOUT`],
//!   [`HEADERS_TOO_LARGE`], [`MALFORMED_REQUEST`], [`OVERLOADED`], and with TLS
//!   [`TLS_HANDSHAKE_TIMEOUT`], [`TLS_HANDSHAKE_FAILED`], [`TLS_REQUIRED`].
//!
//! With TLS configured (`--tls-cert`, `--tls-key`; the certificate in force is `tls.rs`'s) the same
//! listener serves https and wss: once a socket has its place, its TLS handshake (rustls, ALPN
//! `http/1.1`) must be over within the header read timeout too, or the socket is closed
//! ([`TLS_HANDSHAKE_TIMEOUT`]: a client that connects and never finishes its hello holds nothing
//! for long). A handshake that fails is [`TLS_HANDSHAKE_FAILED`] (a bad hello, a client that does not
//! trust the certificate, a hang-up part way), and a plain HTTP request on the TLS port, recognised
//! by its first byte, is answered a 400 `tls_required` in the API's error shape ([`TLS_REQUIRED`]).
//! Each is logged at debug. Then hyper serves the TLS stream exactly as it serves a plain socket;
//! its header read timeout starts after the handshake.
//!
//! The admin address (`--admin-listen`) is a second listener of this same loop, with its own
//! [`ADMIN_MAX_CONNECTIONS`] places (so that a flood of the public port cannot lock operators
//! out), the same header read timeout and TLS, and its own router; [`crate::Relay::shutdown`]
//! closes it after the public one.
//!
//! HTTP/1 only, as `axum::serve` did here (axum is built without `http2`): the WebSocket clients
//! of the Realtime API upgrade over HTTP/1.1, and HTTP/2 would let one connection carry many
//! requests past the connection cap, while hyper's header read timeout exists for HTTP/1 only.
//!
//! Shutdown ([`crate::Relay::shutdown`]): once `accepting` is cancelled every answer carries
//! `Connection: close` and kept-alive connections idle between requests close, while the loop goes
//! on accepting, so that a client connecting during the drain is answered 503
//! `relay_shutting_down` by the handlers rather than refused by the kernel. [`Listener::close`],
//! once sessions are over, closes the listening socket, gives requests in flight a moment, and
//! cuts whatever connections are left, half-open ones included.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus::IntGauge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error};

use crate::error::error_body;
use crate::state::AppState;

/// Largest request head (request line and headers): hyper answers 431 past it. 64 KiB is twice
/// what nginx accepts by default (4 × 8 KiB) and four times Node's default (16 KiB), and it bounds
/// what one half-open connection can make the relay hold (hyper's default is ~400 KiB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Refusal codes counted in `relay_handshake_refusals_total` by this module. Fixed strings: a
/// label is never anything a client sent.
pub const HEADER_READ_TIMEOUT: &str = "header_read_timeout";
pub const HEADERS_TOO_LARGE: &str = "headers_too_large";
pub const MALFORMED_REQUEST: &str = "malformed_request";
pub const OVERLOADED: &str = "relay_overloaded";
pub const TLS_HANDSHAKE_TIMEOUT: &str = "tls_handshake_timeout";
pub const TLS_HANDSHAKE_FAILED: &str = "tls_handshake_failed";
pub const TLS_REQUIRED: &str = "tls_required";

/// The first byte of a TLS record carrying a handshake message (RFC 8446, 5.1): a client hello.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Once the listener closes, how long HTTP requests still in flight may take before their
/// connections are cut.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// File descriptors kept out of the default connection cap, for what is not a client or upstream
/// socket: the listener, standard streams, Redis, JWKS and Entra ID requests, refusals in progress.
pub const FD_RESERVE: u64 = 128;

/// Over-cap connections answered at once. Each is held for at most [`REFUSE_TIMEOUT`]; past this
/// many (a flood), the 503 is written only if the socket takes it at once, and the socket closed.
const MAX_REFUSING: usize = 32;

/// How long an over-cap connection may take to read its 503 and close.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The process's open-file limits, after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy)]
pub struct FdLimits {
    pub soft: u64,
    pub hard: u64,
}

/// Raise the soft limit on open files to the hard limit (the kernel's default soft limit, 1,024,
/// is a few hundred sessions), and return both.
pub fn raise_fd_limit() -> io::Result<FdLimits> {
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    #[cfg(unix)]
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE)?.1;
    #[cfg(not(unix))]
    let hard = soft;
    Ok(FdLimits { soft, hard })
}

/// The default cap on client connections for an open-file limit of `fd_limit`, when each session
/// holds `fds_per_session` descriptors (its client socket, its upstream socket, and with the
/// embedded emulator the emulator's end too), after [`FD_RESERVE`].
pub fn default_max_connections(fd_limit: u64, fds_per_session: u64) -> usize {
    let sessions = fd_limit.saturating_sub(FD_RESERVE) / fds_per_session.max(1);
    usize::try_from(sessions).unwrap_or(usize::MAX).max(1)
}

/// The refusal a connection's error stands for, if it is one. `served`: whether a request head was
/// read on this connection.
fn refusal_code(e: &hyper::Error, served: bool) -> Option<&'static str> {
    if e.is_timeout() {
        // The same timer closes a kept-alive connection left idle after its requests: not a refusal.
        return (!served).then_some(HEADER_READ_TIMEOUT);
    }
    if e.is_parse_too_large() {
        return Some(HEADERS_TOO_LARGE);
    }
    if e.is_parse() {
        return Some(MALFORMED_REQUEST);
    }
    None
}

/// The running accept loop and the connections it serves.
pub struct Listener {
    stop: CancellationToken,
    edge: Arc<Edge>,
    task: JoinHandle<()>,
}

/// What the accept loop and every connection share.
struct Edge {
    router: Router,
    http: http1::Builder,
    state: Arc<AppState>,
    /// One permit per connection that may be open.
    places: Arc<Semaphore>,
    /// One permit per over-cap connection being answered.
    refusing: Arc<Semaphore>,
    /// The 503 `relay_overloaded`, whole.
    overloaded: Bytes,
    /// With TLS: the acceptor, the time a handshake may take, and the 400 `tls_required`, whole.
    tls: Option<(TlsAcceptor, Duration, Bytes)>,
    /// Every connection task (served or being refused), so that closing can wait for them.
    connections: TaskTracker,
    /// Cancelled to cut every connection at once.
    cut: CancellationToken,
    /// Whether connections move `relay_connections_open`.
    gauged: bool,
}

/// Most connections open at once on the admin address (`--admin-listen`): scrapers and operators,
/// a few at a time. Its own places, so a flood of the public address cannot lock them out.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

/// How one listener serves.
pub struct Options {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Whether `relay_connections_open` and `relay_connections_max` are this listener's: the
    /// public one's; the admin address's connections are not client connections.
    pub gauged: bool,
}

/// Serve `router` on `listener` until [`Listener::close`].
pub fn serve(listener: TcpListener, router: Router, state: Arc<AppState>, options: Options) -> Listener {
    let Options {
        header_read_timeout,
        max_connections,
        tls,
        gauged,
    } = options;
    let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
    if gauged {
        state
            .metrics
            .connections_max
            .set(i64::try_from(max_connections).unwrap_or(i64::MAX));
    }
    let mut http = http1::Builder::new();
    // The head's size is checked twice by hyper: on a complete head (`max_header_size`) and while
    // an incomplete one is buffered (`max_buf_size`, which also bounds its read buffer).
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        .max_buf_size(MAX_HEAD_BYTES);
    let edge = Arc::new(Edge {
        router,
        http,
        state,
        places: Arc::new(Semaphore::new(max_connections)),
        refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        overloaded: overloaded_response(),
        tls: tls.map(|config| (TlsAcceptor::from(config), header_read_timeout, tls_required_response())),
        connections: TaskTracker::new(),
        cut: CancellationToken::new(),
        gauged,
    });
    let stop = CancellationToken::new();
    let task = tokio::spawn(accept_loop(listener, edge.clone(), stop.clone()));
    Listener { stop, edge, task }
}

impl Listener {
    /// Close the listening socket, let requests in flight finish for up to `wait`, then cut every
    /// connection left (half-open ones, kept-alive ones, slow requests). Upgraded connections are
    /// sessions: [`crate::Relay::shutdown`] has ended them before.
    pub async fn close(self, wait: Duration) {
        self.stop.cancel();
        let _ = self.task.await;
        let connections = &self.edge.connections;
        connections.close();
        if tokio::time::timeout(wait, connections.wait()).await.is_err() {
            debug!(left = connections.len(), "closing the connections left");
            self.edge.cut.cancel();
            connections.wait().await;
        }
    }
}

async fn accept_loop(listener: TcpListener, edge: Arc<Edge>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            // The client gave up before its connection was accepted.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                continue;
            }
            // Most likely out of file descriptors (EMFILE, ENFILE): wait for some to close rather
            // than spin on the error.
            Err(e) => {
                error!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let _ = tcp.set_nodelay(true);
        match edge.places.clone().try_acquire_owned() {
            Ok(place) => {
                let gauge = edge.gauged.then(|| edge.state.metrics.connections_open.clone());
                if let Some(g) = &gauge {
                    g.inc();
                }
                let io = Counted {
                    tcp,
                    _place: place,
                    gauge,
                };
                edge.connections.spawn(serve_socket(io, edge.clone()));
            }
            Err(_) => {
                edge.state
                    .metrics
                    .handshake_refusals
                    .with_label_values(&[OVERLOADED])
                    .inc();
                match edge.refusing.clone().try_acquire_owned() {
                    Ok(slot) => {
                        edge.connections.spawn(refuse(tcp, slot, edge.clone()));
                    }
                    Err(_) => {
                        let _ = tcp.try_write(&edge.overloaded);
                    }
                }
            }
        }
    }
}

/// How a TLS handshake ended when it did not give a stream.
enum Handshake {
    /// The client closed before it sent anything (a port probe): not a refusal.
    Closed,
    /// The client sent a plain HTTP request: it is answered 400 `tls_required`.
    Plain(Counted),
    /// Refused under this code.
    Refused(&'static str, io::Error),
}

/// One accepted socket: with TLS, its handshake first (bounded in time), then the connection.
async fn serve_socket(io: Counted, edge: Arc<Edge>) {
    let Some((acceptor, timeout, tls_required)) = &edge.tls else {
        return serve_connection(io, edge).await;
    };
    let handshake = async move {
        let mut first = [0u8; 1];
        match io.tcp.peek(&mut first).await {
            Ok(0) => return Err(Handshake::Closed),
            // An HTTP request line.
            Ok(_) if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_alphabetic() => {
                return Err(Handshake::Plain(io));
            }
            Ok(_) => {}
            Err(e) => return Err(Handshake::Refused(TLS_HANDSHAKE_FAILED, e)),
        }
        acceptor
            .accept(io)
            .await
            .map_err(|e| Handshake::Refused(TLS_HANDSHAKE_FAILED, e))
    };
    let result = tokio::select! {
        result = tokio::time::timeout(*timeout, handshake) => result,
        _ = edge.cut.cancelled() => return,
    };
    let refused = |code: &'static str, error: &dyn std::fmt::Display| {
        edge.state.metrics.handshake_refusals.with_label_values(&[code]).inc();
        debug!(code, error = %error, "TLS connection refused");
    };
    match result {
        Ok(Ok(stream)) => serve_connection(stream, edge.clone()).await,
        Ok(Err(Handshake::Closed)) => {}
        Ok(Err(Handshake::Refused(code, error))) => refused(code, &error),
        Ok(Err(Handshake::Plain(mut io))) => {
            refused(TLS_REQUIRED, &"a plain HTTP request on the TLS port");
            // Told why, in the API's error shape, within the time an over-cap client gets.
            tokio::select! {
                _ = tokio::time::timeout(REFUSE_TIMEOUT, answer_and_drain(&mut io.tcp, tls_required)) => {}
                _ = edge.cut.cancelled() => {}
            }
        }
        Err(elapsed) => refused(TLS_HANDSHAKE_TIMEOUT, &elapsed),
    }
}

/// One connection, from its first byte to its end or its upgrade (the upgraded socket then belongs
/// to its session).
async fn serve_connection<I>(io: I, edge: Arc<Edge>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicBool::new(false));
    let mark = served.clone();
    let service = tower::ServiceExt::map_request(edge.router.clone(), move |request: http::Request<Incoming>| {
        mark.store(true, Ordering::Relaxed);
        request
    });
    let draining = edge.state.accepting.clone();
    let service = tower::ServiceExt::map_response(service, move |mut response: axum::response::Response| {
        // During the drain each answer is the connection's last (a 101 is a session: it stays).
        if draining.is_cancelled() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    });
    let connection = edge
        .http
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(connection);
    let draining = edge.state.accepting.clone();
    let mut told = false;
    let result = loop {
        tokio::select! {
            result = connection.as_mut() => break result,
            // Once the drain begins a kept-alive connection idle between requests closes (one with
            // a request in flight closes after answering it). Not one that has sent no request
            // yet: hyper would close it at once, and its request may be on the way; it gets its
            // 503 and `Connection: close`.
            _ = draining.cancelled(), if !told => {
                told = true;
                if served.load(Ordering::Relaxed) {
                    connection.as_mut().graceful_shutdown();
                }
            }
            _ = edge.cut.cancelled() => return,
        }
    };
    if let Err(e) = result {
        match refusal_code(&e, served.load(Ordering::Relaxed)) {
            Some(code) => {
                edge.state.metrics.handshake_refusals.with_label_values(&[code]).inc();
                debug!(code, error = %e, "connection refused");
            }
            None => debug!(error = %e, "connection ended with an error"),
        }
    }
}

/// Answer an over-cap connection with the 503 and close it. The client's request is read (and
/// dropped) until it closes its side, because closing a socket with unread bytes resets it, and a
/// reset can destroy the response before the client has read it.
async fn refuse(mut tcp: TcpStream, _slot: OwnedSemaphorePermit, edge: Arc<Edge>) {
    tokio::select! {
        _ = tokio::time::timeout(REFUSE_TIMEOUT, answer_and_drain(&mut tcp, &edge.overloaded)) => {}
        _ = edge.cut.cancelled() => {}
    }
}

/// Write a whole response, close the writing side, and read what the client sends (at most a
/// request head's worth) until it closes its own: the caller bounds it in time.
async fn answer_and_drain(tcp: &mut TcpStream, response: &[u8]) -> io::Result<()> {
    tcp.write_all(response).await?;
    tcp.shutdown().await?;
    let mut sink = [0u8; 2048];
    let mut left = MAX_HEAD_BYTES;
    loop {
        let n = tcp.read(&mut sink).await?;
        if n == 0 || n >= left {
            return Ok(());
        }
        left -= n;
    }
}

/// The whole HTTP response of an over-cap connection.
fn overloaded_response() -> Bytes {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let body = error_body(
        status,
        OVERLOADED,
        "The relay has as many connections open as it may; try again shortly.",
    );
    Bytes::from(format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// The whole HTTP response to a plain HTTP request on the TLS port.
fn tls_required_response() -> Bytes {
    let status = StatusCode::BAD_REQUEST;
    let body = error_body(
        status,
        TLS_REQUIRED,
        "This port speaks TLS: use https:// or wss:// (the relay was started with --tls-cert).",
    );
    Bytes::from(format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

/// A client socket and its place among the `max_connections`; the place is given back, and the
/// `relay_connections_open` gauge lowered, when the socket is dropped — after the HTTP exchange,
/// or after the WebSocket session it was upgraded to.
struct Counted {
    tcp: TcpStream,
    _place: OwnedSemaphorePermit,
    gauge: Option<IntGauge>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(g) = &self.gauge {
            g.dec();
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_a_reserve_and_counts_each_session_s_sockets() {
        // The kernel's usual soft limit: (1024 - 128) / 2.
        assert_eq!(default_max_connections(1024, 2), 448);
        // With the embedded emulator a session holds three descriptors in this process.
        assert_eq!(default_max_connections(1024, 3), 298);
        assert_eq!(default_max_connections(1_048_576, 2), 524_224);
        // A limit below the reserve still lets one connection in.
        assert_eq!(default_max_connections(100, 2), 1);
    }

    #[test]
    fn the_overloaded_answer_is_a_complete_http_response_in_the_api_s_shape() {
        let raw = overloaded_response();
        let text = std::str::from_utf8(&raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["type"], "server_error");
        assert_eq!(json["error"]["code"], OVERLOADED);
    }
}

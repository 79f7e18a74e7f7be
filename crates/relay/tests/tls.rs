//! The relay's TLS listener on real sockets, with a certificate from `devcert` (what
//! `realtime-relay cert` writes) and clients that trust its CA: a wss session gets
//! `session.created` and https serves `/healthz`; plain HTTP on the TLS port is answered 400
//! `tls_required` and a bad client hello fails, both counted; a handshake that never completes is
//! closed after the header read timeout; a reload serves new connections the new certificate while
//! an open session goes on; a bad file on reload is refused and the old certificate stays.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use realtime_relay::Relay;
use realtime_relay::config::ServeArgs;
use realtime_relay::devcert::{self, DevCert};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{Connector, MaybeTlsStream};

/// A fresh directory with a development CA and server certificate in it.
fn certificates(name: &str) -> DevCert {
    let dir = std::env::temp_dir().join(format!("relay-tls-{name}-{}", realtime_relay::random_token(8)));
    devcert::generate(&dir, &[]).expect("certificates written")
}

fn tls_args(certs: &DevCert) -> ServeArgs {
    ServeArgs {
        tls_cert: Some(certs.cert.clone()),
        tls_key: Some(certs.key.clone()),
        ..args()
    }
}

/// A client configuration that trusts the CA in `ca` only, offering HTTP/1.1.
fn client_config(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The first certificate of a PEM file (the server's, in `relay.pem`).
fn leaf_in(path: &PathBuf) -> CertificateDer<'static> {
    CertificateDer::pem_file_iter(path).unwrap().next().unwrap().unwrap()
}

async fn tls_connect(relay: &Relay, config: Arc<rustls::ClientConfig>) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(relay.addr()).await.unwrap();
    tokio::time::timeout(
        WAIT,
        TlsConnector::from(config).connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("handshake in time")
    .expect("handshake")
}

/// GET `path` over https on a connection of its own: the status, the body, and the server's
/// certificate.
async fn https_get(relay: &Relay, ca: &Path, path: &str) -> (u16, String, CertificateDer<'static>) {
    let mut tls = tls_connect(relay, client_config(ca)).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    tls.write_all(format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    // The relay may end the stream without close_notify once it has answered `connection: close`.
    let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut raw))
        .await
        .expect("the answer in time");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned(), leaf)
}

/// `relay_handshake_refusals_total{code}` over https.
async fn refusals(relay: &Relay, ca: &Path, code: &str) -> u64 {
    let (_, metrics, _) = https_get(relay, ca, "/metrics").await;
    let series = format!("relay_handshake_refusals_total{{code=\"{code}\"}}");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series.as_str())?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

async fn counted(relay: &Relay, ca: &Path, code: &str, n: u64) {
    eventually(&format!("{n} refusals counted as {code}"), || async move {
        refusals(relay, ca, code).await == n
    })
    .await;
}

/// A wss session through the relay: the client and the server's certificate.
async fn wss_session(relay: &Relay, ca: &Path) -> (Client, CertificateDer<'static>) {
    let mut request = relay.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("tls-user")).parse().unwrap(),
    );
    let (client, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(Connector::Rustls(client_config(ca))),
        ),
    )
    .await
    .expect("upgrade in time")
    .expect("upgrade");
    let MaybeTlsStream::Rustls(tls) = client.get_ref() else {
        panic!("not a TLS stream")
    };
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    (client, leaf)
}

/// Read until the relay closes the connection (end of stream or reset); what it sent before.
async fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("the relay closes the connection in time")
        {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// A session's round trip: a response asked for, and its end.
async fn round_trip(client: &mut Client) {
    send_json(client, json!({"type": "response.create"})).await;
    let events = events_until(client, "response.done").await;
    assert!(
        events.iter().all(|e| e["type"] != "error"),
        "no error on the way: {events:?}"
    );
}

#[tokio::test]
async fn a_wss_session_and_an_https_request_through_the_tls_listener() {
    let certs = certificates("serve");
    let relay = relay(tls_args(&certs)).await;
    assert!(relay.http_url().starts_with("https://"), "{}", relay.http_url());
    assert!(relay.ws_url().starts_with("wss://"), "{}", relay.ws_url());

    let (mut client, leaf) = wss_session(&relay, &certs.ca).await;
    assert_eq!(leaf, leaf_in(&certs.cert), "the certificate of relay.pem");
    let created = next_event(&mut client).await;
    assert_eq!(created["type"], "session.created", "{created}");
    round_trip(&mut client).await;

    let (status, body, _) = https_get(&relay, &certs.ca, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    client.close(None).await.unwrap();
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn plain_http_and_a_bad_client_hello_on_the_tls_port_are_refused_and_counted() {
    let certs = certificates("plain");
    let relay = relay(tls_args(&certs)).await;
    let state = relay.state().clone();

    let mut plain = TcpStream::connect(relay.addr()).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = String::from_utf8(until_closed(&mut plain).await).unwrap();
    drop(plain);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    let body: serde_json::Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "tls_required", "{body}");
    counted(&relay, &certs.ca, "tls_required", 1).await;

    // A handshake record whose message is not a client hello.
    let mut bad = TcpStream::connect(relay.addr()).await.unwrap();
    bad.write_all(&[0x16, 0x03, 0x01, 0x00, 0x04, 0xff, 0x00, 0x00, 0x00])
        .await
        .unwrap();
    until_closed(&mut bad).await;
    counted(&relay, &certs.ca, "tls_handshake_failed", 1).await;

    // A client that does not trust the certificate fails its handshake; it is counted too.
    let stranger = certificates("stranger");
    let tcp = TcpStream::connect(relay.addr()).await.unwrap();
    let refused = TlsConnector::from(client_config(&stranger.ca))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(refused.is_err(), "a certificate of another CA is not trusted");
    counted(&relay, &certs.ca, "tls_handshake_failed", 2).await;
    let _ = std::fs::remove_dir_all(&stranger.dir);

    eventually("the refused connections' places given back", || {
        let state = state.clone();
        async move { state.metrics.connections_open.get() == 0 }
    })
    .await;
    let (status, _, _) = https_get(&relay, &certs.ca, "/readyz").await;
    assert_eq!(status, 200, "the listener still serves");
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn a_tls_handshake_that_never_completes_is_closed_after_the_header_read_timeout() {
    let certs = certificates("slow");
    let relay = relay(ServeArgs {
        header_read_timeout_secs: Some(1),
        ..tls_args(&certs)
    })
    .await;
    let state = relay.state().clone();
    // One says nothing; one starts a client hello of 512 bytes and sends 5 of them.
    let mut silent = TcpStream::connect(relay.addr()).await.unwrap();
    let mut partial = TcpStream::connect(relay.addr()).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).await.unwrap();
    assert!(until_closed(&mut silent).await.is_empty(), "closed without an answer");
    until_closed(&mut partial).await;
    counted(&relay, &certs.ca, "tls_handshake_timeout", 2).await;
    eventually("both connections' places given back", || {
        let state = state.clone();
        async move { state.metrics.connections_open.get() == 0 }
    })
    .await;
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn a_reload_gives_new_connections_the_new_certificate_and_open_sessions_go_on() {
    let certs = certificates("reload");
    let relay = relay(tls_args(&certs)).await;
    let (mut open, first) = wss_session(&relay, &certs.ca).await;
    assert_eq!(next_event(&mut open).await["type"], "session.created");
    let (_, _, served) = https_get(&relay, &certs.ca, "/healthz").await;
    assert_eq!(served, first);

    // The command run again in the same directory: a new server certificate by the same CA.
    let again = devcert::generate(&certs.dir, &["relay.test".into()]).unwrap();
    assert!(again.ca_reused);
    let second = leaf_in(&again.cert);
    assert_ne!(second, first);
    let (_, _, served) = https_get(&relay, &certs.ca, "/healthz").await;
    assert_eq!(served, first, "nothing changes before the reload");

    relay.reload_tls().expect("the new pair is accepted");
    assert_eq!(relay.tls_chain().unwrap()[0], second);
    let (status, _, served) = https_get(&relay, &certs.ca, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(served, second, "a new connection gets the new certificate");
    let (mut fresh, served) = wss_session(&relay, &certs.ca).await;
    assert_eq!(served, second);
    assert_eq!(next_event(&mut fresh).await["type"], "session.created");

    round_trip(&mut open).await;
    round_trip(&mut fresh).await;
    open.close(None).await.unwrap();
    fresh.close(None).await.unwrap();
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs.dir);
}

#[tokio::test]
async fn a_bad_file_on_reload_is_refused_and_the_old_certificate_stays() {
    let certs = certificates("bad-reload");
    let relay = relay(tls_args(&certs)).await;
    let first = leaf_in(&certs.cert);
    let good_chain = std::fs::read(&certs.cert).unwrap();
    let good_key = std::fs::read(&certs.key).unwrap();

    std::fs::write(&certs.cert, "not a certificate\n").unwrap();
    let e = relay.reload_tls().expect_err("junk is refused");
    assert!(matches!(e, realtime_relay::tls::TlsError::NoCertificate { .. }), "{e}");

    std::fs::write(&certs.cert, &good_chain).unwrap();
    std::fs::write(&certs.key, std::fs::read(certs.dir.join(devcert::CA_KEY_FILE)).unwrap()).unwrap();
    let e = relay.reload_tls().expect_err("another certificate's key is refused");
    assert!(matches!(e, realtime_relay::tls::TlsError::KeyMismatch { .. }), "{e}");

    std::fs::remove_file(&certs.key).unwrap();
    let e = relay.reload_tls().expect_err("a missing key is refused");
    assert!(matches!(e, realtime_relay::tls::TlsError::Read { .. }), "{e}");
    assert!(
        e.to_string().contains(devcert::KEY_FILE),
        "the message names the file: {e}"
    );

    assert_eq!(relay.tls_chain().unwrap()[0], first);
    let (status, _, served) = https_get(&relay, &certs.ca, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(served, first, "the old certificate is still served");

    std::fs::write(&certs.key, &good_key).unwrap();
    relay.reload_tls().expect("the good pair again");
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&certs.dir);
}

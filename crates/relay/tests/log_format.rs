//! `RELAY_LOG_FORMAT` on the relay's binary, its logs written to a file or a pipe as a log shipper
//! or `docker logs` would read them: `json` gives one JSON object per line (and nothing else on
//! either stream), `text` never carries ANSI escape codes when stderr is not a terminal, and
//! neither prints the dev token.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::Value;

const ESC: u8 = 0x1b;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The relay's binary in dev mode on a free port, with `format`, `RUST_LOG=debug` (the most lines
/// the filter lets through, dependencies' too) and no NO_COLOR; stdout and stderr as given.
fn spawn(format: &str, stdout: Stdio, stderr: Stdio) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_realtime-relay"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--emulator-pace", "fast"])
        .env("RELAY_LOG_FORMAT", format)
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .env_remove("RELAY_JWT_SECRET")
        .env_remove("RELAY_CONFIG")
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    (child, format!("127.0.0.1:{port}"))
}

/// Some traffic that logs: a session (dev token, handshake, session record) and a 404.
async fn exercise(addr: &str) {
    realtime_relay::install_crypto_provider();
    let http = format!("http://{addr}");
    eventually("the relay answers", || {
        let url = format!("{http}/healthz");
        async move { reqwest::get(url).await.is_ok() }
    })
    .await;
    let token = reqwest::get(format!("{http}/dev/token?user=logs&format=text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut c = connect(&format!("ws://{addr}/realtime"), token.trim()).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    c.close(None).await.unwrap();
    until_close(&mut c).await;
    assert_eq!(get_json(&format!("{http}/no/such/path")).await.0, 404);
}

/// SIGTERM, and the exit.
fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_escape_codes() {
    let dir = std::env::temp_dir().join(format!("relay-log-json-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let (mut child, addr) = spawn(
        "json",
        Stdio::from(std::fs::File::create(&out_path).unwrap()),
        Stdio::from(std::fs::File::create(&err_path).unwrap()),
    );
    exercise(&addr).await;
    stop(&mut child);
    let stderr = std::fs::read(&err_path).unwrap();
    let stdout = std::fs::read(&out_path).unwrap();
    for (name, bytes) in [("stderr", &stderr), ("stdout", &stdout)] {
        assert!(!bytes.contains(&ESC), "{name} has an escape code");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(!text.contains("eyJ"), "{name} shows a token: {text}");
    }
    let lines: Vec<Value> = String::from_utf8(stderr)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect();
    let message = |m: &str| lines.iter().any(|l| l["fields"]["message"] == m);
    assert!(message("relay listening"), "{lines:?}");
    assert!(message("realtime-relay is running"), "the banner is a log event");
    assert!(message("no such path"));
    assert!(message("relay stopped"));
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    assert!(
        String::from_utf8(stdout)
            .unwrap()
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "nothing but JSON on stdout either"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_escape_codes() {
    let (mut child, addr) = spawn("text", Stdio::null(), Stdio::piped());
    let mut pipe = child.stderr.take().unwrap();
    // The pipe is read while the relay runs, so that it never blocks on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        pipe.read_to_end(&mut all).map(|_| all)
    });
    exercise(&addr).await;
    stop(&mut child);
    let stderr = reader.join().unwrap().unwrap();
    assert!(!stderr.contains(&ESC), "{}", String::from_utf8_lossy(&stderr));
    let text = String::from_utf8(stderr).unwrap();
    assert!(text.contains("relay listening"), "{text}");
    assert!(text.contains("no such path"), "{text}");
    assert!(
        text.lines().all(|l| serde_json::from_str::<Value>(l).is_err()),
        "text, not JSON"
    );
}

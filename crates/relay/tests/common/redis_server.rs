//! A `redis-server` of the test's own on a free loopback port, so a test can stop and restart it
//! (an outage, a restart with or without persistence) without touching the shared one at 6379.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::eventually;

pub struct RedisServer {
    child: Child,
    pub port: u16,
    /// With persistence: the directory of its append-only file, kept across restarts.
    dir: Option<PathBuf>,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// No persistence: a restart starts empty (what compose had before it gave Redis a volume).
    pub fn start(port: u16) -> RedisServer {
        RedisServer::spawn(port, None)
    }

    /// An append-only file in `dir`, written on every command, as compose's Redis now runs.
    pub fn start_persistent(port: u16, dir: PathBuf) -> RedisServer {
        RedisServer::spawn(port, Some(dir))
    }

    fn spawn(port: u16, dir: Option<PathBuf>) -> RedisServer {
        let port_arg = port.to_string();
        let mut args = vec!["--port", &port_arg, "--bind", "127.0.0.1", "--save", ""];
        let dir_arg = dir.as_ref().map(|d| d.display().to_string());
        match &dir_arg {
            Some(d) => args.extend(["--appendonly", "yes", "--appendfsync", "always", "--dir", d]),
            None => args.extend(["--appendonly", "no"]),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh)");
        RedisServer { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub async fn until_up(&self) {
        let port = self.port;
        eventually("redis-server is up", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
    }

    /// SIGKILL: what a crash or an OOM kill does.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stopped, then started again on the same port (and the same directory, if persistent).
    pub async fn restart(&mut self) {
        self.stop();
        *self = RedisServer::spawn(self.port, self.dir.clone());
        self.until_up().await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

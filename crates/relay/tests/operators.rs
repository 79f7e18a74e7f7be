//! What operators use, over real sockets: an admin token from the `token` command against the
//! shipped example policy (kill switch, anyone's usage), the admin usage view judged by the user's
//! own profile, `/readyz` and the fleet state in each failure mode (against a `redis-server` the
//! test starts and stops, `common/redis_server.rs`), and the admin address (`--admin-listen`): metrics and admin APIs there
//! only, the public port's 404 for them, the edge's header timeout on it, and shutdown closing it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::redis_server::{RedisServer, free_port};
use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::identity;
use realtime_relay::secret::Secret;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

fn example_policy() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.example.toml"))
}

fn write_policy(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("relay-operators-policy")));
    std::fs::write(&path, text).unwrap();
    path
}

/// `realtime-relay token ARGS…` with the tests' JWT secret: the token it prints.
fn token_command(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_realtime-relay"))
        .arg("token")
        .args(args)
        .env("RELAY_JWT_SECRET", JWT_SECRET)
        .env_remove("RELAY_POLICY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn token_with(user: &str, claim: &str, value: &str) -> String {
    identity::mint(
        &Secret::new(JWT_SECRET),
        user,
        600,
        identity::profile_claim(claim, value),
    )
    .unwrap()
}

async fn get_as(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_as(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_admin_token_from_the_token_command_uses_the_kill_switch_and_usage_view_of_the_example_policy() {
    let relay = relay(ServeArgs {
        policy: Some(example_policy()),
        ..args()
    })
    .await;
    let admin = token_command(&["--user", "ops", "--role", "admin"]);
    let plain = token_command(&["--user", "someone"]);
    let victim = unique("victim");
    let mut session = connect(&relay.ws_url(), &token(&victim)).await;
    assert_eq!(next_event(&mut session).await["type"], "session.created");

    // The admin is a user of the example policy (its own usage: the admin profile, from its token)…
    let (status, mine) = get_as(&format!("{}/api/usage", relay.http_url()), &admin).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["profile"], json!({"name": "admin", "source": "token"}));
    // …who may read another user's usage, and end their sessions.
    let (status, theirs) = get_as(&format!("{}/api/usage?user={victim}", relay.http_url()), &admin).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["user"], victim.as_str());
    assert_eq!(theirs["open_sessions"], 1);
    assert_eq!(theirs["profile"]["name"], "voice-chat", "no record yet: the default");
    let (status, killed) = post_as(
        &format!("{}/api/admin/users/{victim}/kill", relay.http_url()),
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200, "{killed}");
    assert_eq!(killed["ended_on_this_instance"], 1);
    let (frames, close) = until_close(&mut session).await;
    assert!(format!("{frames:?}").contains("relay_session_terminated"));
    assert_eq!(close.map(|c| c.0), Some(1008));

    // A token without the role is the default profile's user: no admin.
    let (status, body) = post_as(
        &format!("{}/api/admin/users/{victim}/kill", relay.http_url()),
        Some(&plain),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("relay_admin_only"))
    );
}

#[tokio::test]
async fn the_token_command_writes_the_role_in_the_claim_of_the_policy_file() {
    let policy = write_policy(
        "claim = \"tier\"\ndefault_profile = \"free\"\n[profiles.free]\n[profiles.gold]\n[profiles.admin]\n",
    );
    let relay = relay(ServeArgs {
        policy: Some(policy.clone()),
        ..args()
    })
    .await;
    let gold = token_command(&["--user", "g", "--role", "gold", "--policy", policy.to_str().unwrap()]);
    let (status, body) = get_as(&format!("{}/api/usage", relay.http_url()), &gold).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"], json!({"name": "gold", "source": "token"}));
    // Written in `role` instead, the claim this policy does not read: the default profile.
    let misplaced = token_command(&["--user", "g", "--role", "gold"]);
    let (_, body) = get_as(&format!("{}/api/usage", relay.http_url()), &misplaced).await;
    assert_eq!(body["profile"]["name"], "free");
    let explicit = token_command(&["--user", "g", "--role", "gold", "--claim", "tier"]);
    let (_, body) = get_as(&format!("{}/api/usage", relay.http_url()), &explicit).await;
    assert_eq!(body["profile"]["name"], "gold");
}

#[tokio::test]
async fn an_admin_reads_a_users_usage_under_that_users_own_profile() {
    let policy = write_policy(
        r#"default_profile = "basic"
[profiles.basic]
limits = { budget_tokens = 100, budget_period = "day" }
[profiles.gold]
limits = { budget_tokens = 5000, budget_period = "hour" }
[profiles.admin]
"#,
    );
    let relay = relay(ServeArgs {
        policy: Some(policy),
        ..args()
    })
    .await;
    let usage = |query: String| format!("{}/api/usage?{query}", relay.http_url());
    let admin = token_with("root", "role", "admin");
    let alice = unique("alice");
    let alice_token = token_with(&alice, "role", "gold");

    // Alice, a gold user, has a session: it leaves a record with her profile.
    let mut c = connect(&relay.ws_url(), &alice_token).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    c.close(None).await.unwrap();
    until_close(&mut c).await;
    let own = usage(String::new());
    eventually("alice's session record is kept", || {
        let (own, t) = (own.clone(), alice_token.clone());
        async move {
            get_as(&own, &t).await.1["recent_sessions"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        }
    })
    .await;

    // The admin's view of alice: her own profile's budget and period, from her latest record.
    let (status, body) = get_as(&usage(format!("user={alice}")), &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"], json!({"name": "gold", "source": "recent_session"}));
    assert_eq!(body["budget"]["tokens"], 5000);
    assert_eq!(body["period"]["name"], "hour");
    assert_eq!(body["period"]["seconds"], 3600);

    // The admin may name the profile to judge her by.
    let (status, body) = get_as(&usage(format!("user={alice}&profile=basic")), &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"], json!({"name": "basic", "source": "query"}));
    assert_eq!(body["budget"]["tokens"], 100);
    assert_eq!(body["period"]["name"], "day");
    let (status, body) = get_as(&usage(format!("user={alice}&profile=platinum")), &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("relay_unknown_profile"))
    );

    // A user who never had a session: the default profile, and it says so.
    let (_, body) = get_as(&usage(format!("user={}", unique("nobody"))), &admin).await;
    assert_eq!(body["profile"], json!({"name": "basic", "source": "default"}));
    assert_eq!(body["budget"]["tokens"], 100);

    // Alice herself: her token's profile; she may not choose another, nor read anyone else.
    let (_, body) = get_as(&own, &alice_token).await;
    assert_eq!(body["profile"], json!({"name": "gold", "source": "token"}));
    let (status, body) = get_as(&usage("profile=basic".into()), &alice_token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("relay_admin_only"))
    );
    let (status, _) = get_as(&usage("user=root".into()), &alice_token).await;
    assert_eq!(status, 403);
}

async fn readyz(relay: &realtime_relay::Relay) -> (u16, Value) {
    get_json(&format!("{}/readyz", relay.http_url())).await
}

#[tokio::test]
async fn readyz_is_503_without_the_fleet_state_in_the_closed_mode_only() {
    let mut server = RedisServer::start(free_port());
    server.until_up().await;
    let with = |mode: &str| ServeArgs {
        redis_url: Some(Secret::new(server.url())),
        redis_failure: Some(mode.into()),
        ..args()
    };
    let closed = relay(with("closed")).await;
    let open = relay(with("open")).await;
    let (status, body) = readyz(&closed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fleet_state"], "redis");
    assert_eq!(body["fleet_state_reachable"], true);
    assert!(body.get("error").is_none(), "{body}");

    server.stop();
    let (status, body) = readyz(&closed).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["fleet_state_reachable"], false);
    assert_eq!(body["fleet_state_failure"], "closed");
    assert_eq!(body["upstream_reachable"], true, "the upstream is not why");
    assert_eq!(body["error"]["type"], "server_error");
    assert_eq!(body["error"]["code"], "relay_state_unavailable");
    assert!(body["error"]["message"].is_string());
    // Open mode admits sessions without the state: still ready, and it says what it sees.
    let (status, body) = readyz(&open).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ready"], true);
    assert_eq!(body["fleet_state_reachable"], false);
    assert_eq!(body["fleet_state_failure"], "open");

    server.restart().await;
    eventually("ready again once Redis is back", || async {
        readyz(&closed).await.0 == 200
    })
    .await;
}

#[tokio::test]
async fn readyz_in_the_closed_mode_with_nothing_listening_at_redis_url() {
    let nothing = format!("redis://127.0.0.1:{}/", free_port());
    let closed = relay(ServeArgs {
        redis_url: Some(Secret::new(&nothing)),
        redis_failure: Some("closed".into()),
        ..args()
    })
    .await;
    let (status, body) = readyz(&closed).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "relay_state_unavailable");
    // In memory (no REDIS_URL) the state always answers, whatever the mode.
    let memory = relay(ServeArgs {
        redis_failure: Some("closed".into()),
        ..args()
    })
    .await;
    let (status, body) = readyz(&memory).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["fleet_state"], "memory");
}

#[tokio::test]
async fn the_admin_address_serves_metrics_and_admin_apis_and_the_public_port_does_not() {
    let relay = relay(ServeArgs {
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        header_read_timeout_secs: Some(1),
        ..args()
    })
    .await;
    let public = relay.http_url();
    let admin_url = relay.admin_url().expect("an admin address");
    assert_ne!(relay.admin_addr(), Some(relay.addr()));
    let admin = token_with("root", "role", "admin");
    let user = unique("u");

    // The public port: 404 for both, in the JSON shape of any unknown path.
    let (status, body) = get_json(&format!("{public}/metrics")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, body) = post_as(&format!("{public}/api/admin/users/{user}/kill"), Some(&admin)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    // The rest of the public port is as before.
    assert_eq!(get_json(&format!("{public}/readyz")).await.0, 200);
    let (status, _) = get_as(&format!("{public}/api/usage"), &token(&user)).await;
    assert_eq!(status, 200);
    let mut session = connect(&relay.ws_url(), &token(&user)).await;
    assert_eq!(next_event(&mut session).await["type"], "session.created");

    // The admin address: metrics, and the admin APIs with the same authentication.
    let text = reqwest::get(format!("{admin_url}/metrics")).await.unwrap();
    assert_eq!(text.status().as_u16(), 200);
    let text = text.text().await.unwrap();
    assert!(text.contains("relay_sessions_active 1"), "{text}");
    assert!(
        text.contains("relay_handshake_refusals_total{code=\"not_found\"} 2"),
        "{text}"
    );
    let kill = format!("{admin_url}/api/admin/users/{user}/kill");
    let (status, body) = post_as(&kill, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("missing_token")));
    let (status, body) = post_as(&kill, Some(&token(&user))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("relay_admin_only"))
    );
    let (status, body) = post_as(&kill, Some(&admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ended_on_this_instance"], 1);
    let (_, close) = until_close(&mut session).await;
    assert_eq!(close.map(|c| c.0), Some(1008));
    assert_eq!(get_json(&format!("{admin_url}/readyz")).await.0, 200);
    let (status, body) = get_json(&format!("{admin_url}/realtime")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found")),
        "no sessions here"
    );

    // The relay's own accept loop: a connection that sends no request is closed at the header
    // read timeout, and counted.
    let mut silent = tokio::net::TcpStream::connect(relay.admin_addr().unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("closed by the relay");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let metrics = metrics_text(&admin_url).await;
    assert!(
        metrics.contains("relay_handshake_refusals_total{code=\"header_read_timeout\"} 1"),
        "{metrics}"
    );

    // Shutdown closes the admin address too.
    let addr = relay.admin_addr().unwrap();
    relay.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn without_an_admin_address_metrics_and_admin_apis_stay_on_the_public_port() {
    let relay = relay(args()).await;
    assert_eq!(relay.admin_addr(), None);
    let r = reqwest::get(format!("{}/metrics", relay.http_url())).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = post_as(
        &format!("{}/api/admin/users/x/kill", relay.http_url()),
        Some(&token_with("root", "role", "admin")),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_dev_relay_mints_an_admin_token_with_the_role_in_its_policys_claim() {
    let relay = relay(ServeArgs {
        jwt_secret: None,
        policy: Some(example_policy()),
        ..args()
    })
    .await;
    let dev_token = |query: &str| {
        let url = format!("{}/dev/token?user=ops&format=text{query}", relay.http_url());
        async move { reqwest::get(url).await.unwrap().text().await.unwrap().trim().to_owned() }
    };
    let kill = format!("{}/api/admin/users/x/kill", relay.http_url());
    let (status, body) = post_as(&kill, Some(&dev_token("&role=admin").await)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_as(&kill, Some(&dev_token("").await)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("relay_admin_only"))
    );
}

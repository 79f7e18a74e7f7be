//! Fleet-wide state in a real Redis: two relay instances share a user's session cap and the kill
//! switch; a dead instance's slots expire with its lease; a Redis outage follows the configured
//! failure mode and recovery needs no restart. Uses 127.0.0.1:6379 (scripts/setup.sh starts it if
//! absent); the outage test runs its own `redis-server` on a free port so it can stop it.

mod common;

use std::time::Duration;

use common::redis_server::{RedisServer, free_port};
use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::store::Admission;
use realtime_relay::store::redis::RedisStore;
use serde_json::{Value, json};

const REDIS: &str = "redis://127.0.0.1:6379/";

/// A fleet member with a 2 s lease.
fn fleet_args(redis: &str, limits: &str) -> ServeArgs {
    fleet_member(redis, limits, 2)
}

#[tokio::test]
async fn two_instances_share_a_users_session_cap() {
    let a = relay(fleet_args(REDIS, "{ max_sessions_per_user = 1 }")).await;
    let b = relay(fleet_args(REDIS, "{ max_sessions_per_user = 1 }")).await;
    let user = unique("shared");
    let t = token_as(&user, None);
    let mut on_a = connect(&a.ws_url(), &t).await;
    assert_eq!(next_event(&mut on_a).await["type"], "session.created");
    assert_eq!(
        refused_code(&b.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into()))
    );
    assert_eq!(
        refused_code(&a.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into()))
    );
    // The session on A holds its slot past the lease: the heartbeat renews it.
    tokio::time::sleep(Duration::from_secs(3)).await; // the lease is 2 s; no event marks its renewal
    assert_eq!(
        refused_code(&b.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into()))
    );
    on_a.close(None).await.unwrap();
    until_close(&mut on_a).await;
    let url = b.ws_url();
    eventually("B admits once A's session is gone", || async {
        refused_code(&url, &t).await.is_none()
    })
    .await;
}

#[tokio::test]
async fn the_kill_switch_reaches_every_instance() {
    let a = relay(fleet_args(REDIS, "{}")).await;
    let b = relay(fleet_args(REDIS, "{}")).await;
    let user = unique("victim");
    let mut on_b = connect(&b.ws_url(), &token_as(&user, None)).await;
    assert_eq!(next_event(&mut on_b).await["type"], "session.created");
    let r = admin_kill(&a.http_url(), &user).await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ended_on_this_instance"], 0, "the session is on B");
    assert_eq!(body["broadcast"], true);
    let (frames, close) = until_close(&mut on_b).await;
    assert!(format!("{frames:?}").contains("relay_session_terminated"));
    assert_eq!(close.map(|c| c.0), Some(1008));
}

#[tokio::test]
async fn a_dead_instances_slots_expire_with_its_lease() {
    let user = unique("orphan");
    // What an instance that died leaves behind: a slot with a 2 s lease nobody renews.
    let dead = RedisStore::new(REDIS).unwrap();
    assert_eq!(
        dead.acquire(&user, "rs_dead", Some(1), Duration::from_secs(2))
            .await
            .unwrap(),
        Admission::Admitted { kill_generation: 0 }
    );
    let live = relay(fleet_args(REDIS, "{ max_sessions_per_user = 1 }")).await;
    let t = token_as(&user, None);
    assert_eq!(
        refused_code(&live.ws_url(), &t).await,
        Some((429, "relay_too_many_sessions".into()))
    );
    let url = live.ws_url();
    eventually("the orphaned slot expires", || async {
        refused_code(&url, &t).await.is_none()
    })
    .await;
}

#[tokio::test]
async fn usage_is_shared_across_instances() {
    let a = relay(fleet_args(REDIS, "{ budget_tokens = 10 }")).await;
    let b = relay(fleet_args(REDIS, "{ budget_tokens = 10 }")).await;
    let user = unique("spender");
    let t = token_as(&user, None);
    let mut c = connect(&a.ws_url(), &t).await;
    next_event(&mut c).await;
    send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "spend it"}]}})).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    let done = events_until(&mut c, "response.done").await.pop().unwrap();
    let url = b.ws_url();
    eventually("B refuses: the budget was spent on A", || async {
        refused_code(&url, &t).await == Some((429, "relay_budget_exhausted".into()))
    })
    .await;
    let usage = usage_of(&b.http_url(), &t).await;
    assert_eq!(
        usage["usage"]["total_tokens"],
        done["response"]["usage"]["total_tokens"]
    );
}

#[tokio::test]
async fn a_redis_outage_follows_the_failure_mode_and_recovery_needs_no_restart() {
    let mut server = RedisServer::start(free_port());
    server.until_up().await;
    let closed = relay(ServeArgs {
        redis_failure: Some("closed".into()),
        ..fleet_args(&server.url(), "{ max_sessions_per_user = 5 }")
    })
    .await;
    let open = relay(ServeArgs {
        redis_failure: Some("open".into()),
        ..fleet_args(&server.url(), "{ max_sessions_per_user = 5 }")
    })
    .await;
    let t = token_as(&unique("outage"), None);
    assert_eq!(
        refused_code(&closed.ws_url(), &t).await,
        None,
        "works while Redis is up"
    );

    server.stop();
    assert_eq!(
        refused_code(&closed.ws_url(), &t).await,
        Some((503, "relay_state_unavailable".into())),
        "fail-closed"
    );
    assert_eq!(
        refused_code(&open.ws_url(), &t).await,
        None,
        "fail-open keeps admitting"
    );

    let _restarted = RedisServer::start(server.port);
    let url = closed.ws_url();
    eventually("the fail-closed relay recovers by itself", || async {
        refused_code(&url, &t).await.is_none()
    })
    .await;
}

//! Microsoft Entra ID client credentials against a local token endpoint: the relay's upstream
//! token is fetched once, shared, refreshed in the background before it expires, and a refusal
//! reaches the client as a named error without the client secret.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::routing::post;
use axum::{Json, Router};
use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::entra::{COGNITIVE_SERVICES_SCOPE, EntraCredentials, EntraTokenProvider};
use realtime_relay::secret::Secret;
use serde_json::{Value, json};
use tokio::sync::watch;

const CLIENT_SECRET: &str = "entra-client-secret-xyz789";

struct Authority {
    requests: watch::Sender<u64>,
    expires_in: AtomicU64,
    refuse: AtomicBool,
}

async fn token_endpoint(
    State(a): State<Arc<Authority>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    let ok = tenant == "tenant-1"
        && form.get("grant_type").map(String::as_str) == Some("client_credentials")
        && form.get("client_id").map(String::as_str) == Some("client-1")
        && form.get("scope").map(String::as_str) == Some(COGNITIVE_SERVICES_SCOPE)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        && !a.refuse.load(Ordering::SeqCst);
    let mut n = 0;
    a.requests.send_modify(|c| {
        *c += 1;
        n = *c;
    });
    if !ok {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            Json(
                json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 1"}),
            ),
        );
    }
    // v1 endpoints send expires_in as a string; the provider takes both.
    let expires_in = a.expires_in.load(Ordering::SeqCst);
    let expires_in = if n % 2 == 0 {
        json!(expires_in.to_string())
    } else {
        json!(expires_in)
    };
    (
        axum::http::StatusCode::OK,
        Json(json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": format!("entra-token-{n}")})),
    )
}

async fn authority(expires_in: u64) -> (String, Arc<Authority>, watch::Receiver<u64>) {
    let (tx, rx) = watch::channel(0);
    let a = Arc::new(Authority {
        requests: tx,
        expires_in: AtomicU64::new(expires_in),
        refuse: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .with_state(a.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, a, rx)
}

fn http() -> reqwest::Client {
    realtime_relay::install_crypto_provider();
    reqwest::Client::new()
}

fn credentials(authority: &str, secret: &str) -> EntraCredentials {
    EntraCredentials {
        tenant_id: "tenant-1".into(),
        client_id: "client-1".into(),
        client_secret: Secret::new(secret),
        authority_host: authority.into(),
        scope: COGNITIVE_SERVICES_SCOPE.into(),
    }
}

async fn wait_requests(rx: &mut watch::Receiver<u64>, n: u64) {
    tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
        .await
        .expect("token requests in time")
        .unwrap();
}

#[tokio::test]
async fn the_relay_sends_an_entra_token_upstream_and_fetches_it_once() {
    let (authority_url, _a, mut requests) = authority(3600).await;
    // The emulator accepts exactly the first token the authority issues.
    let emulator = realtime_emulator::spawn(
        realtime_emulator::EmulatorConfig {
            api_key: Some("entra-token-1".into()),
            pacing: realtime_emulator::Pacing::Fast,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let relay = relay(ServeArgs {
        azure_openai_endpoint: Some(emulator.http_base()),
        azure_openai_deployment: Some("gpt-realtime".into()),
        azure_tenant_id: Some("tenant-1".into()),
        azure_client_id: Some("client-1".into()),
        azure_client_secret: Some(Secret::new(CLIENT_SECRET)),
        azure_authority_host: Some(authority_url),
        ..args()
    })
    .await;
    for i in 0..3 {
        let mut c = connect(&relay.ws_url(), &token(&format!("u{i}"))).await;
        let created = next_event(&mut c).await;
        assert_eq!(created["type"], "session.created", "{created}");
    }
    wait_requests(&mut requests, 1).await;
    assert_eq!(*requests.borrow(), 1, "one token for every session");
}

#[tokio::test]
async fn the_token_is_refreshed_in_the_background_before_it_expires() {
    let (authority_url, _a, mut requests) = authority(8).await;
    let provider = Arc::new(EntraTokenProvider::new(
        credentials(&authority_url, CLIENT_SECRET),
        http(),
        Duration::from_secs(6),
    ));
    assert_eq!(provider.token().await.unwrap().expose(), "entra-token-1");
    let first_expiry = provider.expires_at().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let refresher = provider.clone().spawn_refresher(stop.clone());
    // Until the refresh is due, sessions get the cached token without a request.
    assert_eq!(provider.token().await.unwrap().expose(), "entra-token-1");
    // About 2 s in (8 s lifetime, 6 s margin) the refresher replaces it, with no caller waiting.
    wait_requests(&mut requests, 2).await;
    tokio::time::timeout(WAIT, async {
        while provider.token().await.unwrap().expose() != "entra-token-2" {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the new token is served");
    assert!(provider.expires_at().await.unwrap() > first_expiry);
    stop.cancel();
    refresher.await.unwrap();
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let (authority_url, _a, requests) = authority(3600).await;
    let provider = Arc::new(EntraTokenProvider::new(
        credentials(&authority_url, CLIENT_SECRET),
        http(),
        Duration::from_secs(300),
    ));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let p = provider.clone();
                async move { p.token().await.unwrap().expose().to_owned() }
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), "entra-token-1");
    }
    assert_eq!(*requests.borrow(), 1);
}

#[tokio::test]
async fn a_refused_secret_is_named_to_the_client_without_the_secret() {
    let (authority_url, _a, _requests) = authority(3600).await;
    let provider = EntraTokenProvider::new(
        credentials(&authority_url, "wrong-secret-abc123"),
        http(),
        Duration::from_secs(300),
    );
    let e = provider.token().await.unwrap_err().to_string();
    assert!(e.contains("AADSTS7000215") && e.contains("401"), "{e}");
    assert!(!e.contains("wrong-secret-abc123"));

    let emulator = realtime_emulator::spawn(Default::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let relay = relay(ServeArgs {
        azure_openai_endpoint: Some(emulator.http_base()),
        azure_openai_deployment: Some("gpt-realtime".into()),
        azure_tenant_id: Some("tenant-1".into()),
        azure_client_id: Some("client-1".into()),
        azure_client_secret: Some(Secret::new("wrong-secret-abc123")),
        azure_authority_host: Some(authority_url),
        ..args()
    })
    .await;
    let mut c = connect(&relay.ws_url(), &token("u")).await;
    let (frames, close) = until_close(&mut c).await;
    let text = format!("{frames:?}");
    assert!(
        text.contains("relay_upstream_credentials") && text.contains("AADSTS7000215"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-abc123"));
    assert_eq!(close.map(|c| c.0), Some(1011));
}

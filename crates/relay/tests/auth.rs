//! End-user authentication and model checks, all decided before the upgrade.

mod common;

use common::*;
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;
use serde_json::json;

#[tokio::test]
async fn each_token_carrier_is_accepted() {
    let relay = relay(args()).await;
    let t = token("alice");
    let base = relay.ws_url();
    let carriers: Vec<(String, Vec<(&str, String)>)> = vec![
        (base.clone(), vec![("authorization", format!("Bearer {t}"))]),
        (base.clone(), vec![("api-key", t.clone())]),
        (
            base.clone(),
            vec![(
                "sec-websocket-protocol",
                format!("realtime, openai-insecure-api-key.{t}, openai-beta.realtime-v1"),
            )],
        ),
        (format!("{base}?access_token={t}"), vec![]),
        (format!("{base}?api-key={t}"), vec![]),
    ];
    for (url, headers) in carriers {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
        for (k, v) in &headers {
            request.headers_mut().insert(*k, v.parse().unwrap());
        }
        let (mut c, response) = tokio_tungstenite::connect_async(request)
            .await
            .unwrap_or_else(|e| panic!("{url} {headers:?}: {e}"));
        if headers.iter().any(|(k, _)| *k == "sec-websocket-protocol") {
            let chosen = response
                .headers()
                .get("sec-websocket-protocol")
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(
                chosen, "realtime",
                "the relay selects a non-secret protocol, never the token"
            );
        }
        assert_eq!(next_event(&mut c).await["type"], "session.created");
    }
}

#[tokio::test]
async fn bad_tokens_get_401_with_a_json_body_before_the_upgrade() {
    let relay = relay(args()).await;
    let url = relay.ws_url();
    let other = realtime_relay::identity::mint(
        &Secret::new("some-other-secret-0123456789"),
        "alice",
        60,
        Default::default(),
    )
    .unwrap();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "alice", "exp": realtime_relay::identity::now_secs() - 3600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(r#"{"sub":"alice","exp":9999999999}"#)
    );
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "missing_token"),
        (vec![("authorization", format!("Bearer {other}"))], "invalid_signature"),
        (vec![("authorization", format!("Bearer {expired}"))], "token_expired"),
        (vec![("api-key", alg_none)], "invalid_token"),
        (vec![("api-key", "garbage".into())], "invalid_token"),
        (
            vec![(
                "sec-websocket-protocol",
                "realtime, openai-insecure-api-key.nope".into(),
            )],
            "invalid_token",
        ),
    ];
    for (headers, code) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = refusal(try_connect(&url, &headers).await.expect_err("refused"));
        assert_eq!(status, 401, "{headers:?}");
        assert_eq!(body["error"]["code"], code, "{headers:?}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
        for (_, v) in &headers {
            assert!(
                !body.to_string().contains(v.trim_start_matches("Bearer ")),
                "the token is not echoed"
            );
        }
    }
}

#[tokio::test]
async fn models_are_checked_and_defaulted() {
    let relay = relay(args()).await;
    let t = token("alice");
    let (status, body) = refusal(
        try_connect(&format!("{}?model=gpt-4o", relay.ws_url()), &[("api-key", &t)])
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("gpt-realtime"));
    let (status, _) = refusal(
        try_connect(&format!("{}?deployment=nope", relay.ws_url()), &[("api-key", &t)])
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(status, 400);
    // Without a valid token, the model list is not disclosed: 401 first.
    let (status, body) = refusal(
        try_connect(&format!("{}?model=gpt-4o", relay.ws_url()), &[])
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(status, 401);
    assert!(!body.to_string().contains("gpt-realtime"));
    // Nothing was forwarded.
    assert_eq!(emulator_open(&relay.embedded_emulator_http().unwrap()).await, 0);

    // No model: the default (the first one). The SDK paths are aliases of /realtime.
    let base = relay.http_url().replace("http://", "ws://");
    for (path, expected) in [
        ("/realtime", "gpt-realtime"),
        ("/openai/v1/realtime?model=gpt-realtime-mini", "gpt-realtime-mini"),
        (
            "/v1/realtime?deployment=gpt-realtime-mini&api-version=2025-08-28",
            "gpt-realtime-mini",
        ),
    ] {
        let mut c = connect(&format!("{base}{path}"), &t).await;
        let created = next_event(&mut c).await;
        assert_eq!(created["session"]["model"], expected, "{path}");
    }
}

#[tokio::test]
async fn a_plain_http_request_gets_426() {
    let relay = relay(args()).await;
    let r = reqwest::Client::new()
        .get(format!("{}/realtime", relay.http_url()))
        .bearer_auth(token("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 426);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "websocket_required");
}

#[tokio::test]
async fn dev_mode_issues_tokens_and_binds_only_to_loopback() {
    let dev = relay(ServeArgs {
        jwt_secret: None,
        ..args()
    })
    .await;
    let (status, body) = get_json(&format!("{}/dev/token?user=dora", dev.http_url())).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"], "dora");
    let mut c = connect(&dev.ws_url(), body["token"].as_str().unwrap()).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    // `format=text`: the bare token, for `TOKEN=$(curl …)`.
    let text = reqwest::get(format!("{}/dev/token?user=dora&format=text", dev.http_url()))
        .await
        .unwrap();
    assert!(
        text.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let bare = text.text().await.unwrap();
    assert!(bare.ends_with('\n') && !bare.contains('{'), "{bare:?}");
    let mut c = connect(&dev.ws_url(), bare.trim_end()).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    // A token signed with anything but this start's random secret is refused.
    let (status, _) = refusal(
        try_connect(&dev.ws_url(), &[("api-key", &token("dora"))])
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(status, 401);

    // With a real secret there is no dev token endpoint.
    let prod = relay(args()).await;
    assert_eq!(get_json(&format!("{}/dev/token", prod.http_url())).await.0, 404);

    let exposed = ServeArgs {
        listen: Some("0.0.0.0:0".parse().unwrap()),
        jwt_secret: None,
        ..args()
    };
    let err = realtime_relay::start(exposed.resolve().unwrap())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn health_and_readiness() {
    let relay = relay(args()).await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", relay.http_url()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let (status, body) = get_json(&format!("{}/readyz", relay.http_url())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upstream_reachable"], true);

    // An upstream nobody listens on: not ready.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dangling = relay_with_upstream(&format!("ws://127.0.0.1:{port}/v1/realtime")).await;
    let (status, body) = get_json(&format!("{}/readyz", dangling.http_url())).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["upstream"], format!("ws://127.0.0.1:{port}"));
}

async fn relay_with_upstream(url: &str) -> realtime_relay::Relay {
    relay(ServeArgs {
        upstream_url: Some(url.into()),
        ..args()
    })
    .await
}

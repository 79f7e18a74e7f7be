//! End-user JWTs in every configured form, each failure refused with 401 before the upgrade.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_relay::config::ServeArgs;
use realtime_relay::identity::now_secs;
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, key).unwrap()
}

fn rsa(name: &str) -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture(&format!("{name}.private.pem"))).unwrap()).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("ec.private.pem")).unwrap()).unwrap()
}

fn claims(extra: Value) -> Value {
    let mut c =
        json!({"sub": "alice", "exp": now_secs() + 600, "iss": "https://login.example.com", "aud": "realtime-relay"});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// The status (and error code) a token gets.
async fn outcome(url: &str, token: &str) -> (u16, String) {
    match try_connect(url, &[("authorization", &format!("Bearer {token}"))]).await {
        Ok(mut c) => {
            assert_eq!(next_event(&mut c).await["type"], "session.created");
            (101, String::new())
        }
        Err(e) => {
            let (status, body) = refusal(e);
            (status, body["error"]["code"].as_str().unwrap_or("").to_owned())
        }
    }
}

#[tokio::test]
async fn rs256_with_a_pem_key_issuer_and_audience() {
    let relay = relay(ServeArgs {
        jwt_secret: None,
        jwt_public_key: Some(fixture("rsa-a.public.pem")),
        jwt_issuer: Some("https://login.example.com".into()),
        jwt_audience: Some(vec!["realtime-relay".into()]),
        ..args()
    })
    .await;
    let url = relay.ws_url();
    let key = rsa("rsa-a");
    let public_pem = std::fs::read(fixture("rsa-a.public.pem")).unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("valid", sign(Algorithm::RS256, &key, None, claims(json!({}))), 101, ""),
        (
            "another key",
            sign(Algorithm::RS256, &rsa("rsa-b"), None, claims(json!({}))),
            401,
            "invalid_signature",
        ),
        (
            "expired",
            sign(Algorithm::RS256, &key, None, claims(json!({"exp": now_secs() - 3600}))),
            401,
            "token_expired",
        ),
        (
            "not yet valid",
            sign(Algorithm::RS256, &key, None, claims(json!({"nbf": now_secs() + 3600}))),
            401,
            "token_not_yet_valid",
        ),
        (
            "wrong issuer",
            sign(
                Algorithm::RS256,
                &key,
                None,
                claims(json!({"iss": "https://evil.example"})),
            ),
            401,
            "invalid_issuer",
        ),
        (
            "no issuer",
            sign(Algorithm::RS256, &key, None, claims(json!({"iss": null}))),
            401,
            "missing_claim",
        ),
        (
            "wrong audience",
            sign(Algorithm::RS256, &key, None, claims(json!({"aud": "another-app"}))),
            401,
            "invalid_audience",
        ),
        (
            "no subject",
            sign(Algorithm::RS256, &key, None, claims(json!({"sub": null}))),
            401,
            "missing_claim",
        ),
        // Algorithm confusion: HMAC "signed" with the public key's PEM bytes as the secret.
        (
            "HS256 with the public key",
            sign(
                Algorithm::HS256,
                &EncodingKey::from_secret(&public_pem),
                None,
                claims(json!({})),
            ),
            401,
            "invalid_algorithm",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&claims(json!({})).to_string())
            ),
            401,
            "invalid_token",
        ),
        (
            "ES256 not allowed",
            sign(Algorithm::ES256, &ec(), None, claims(json!({}))),
            401,
            "invalid_algorithm",
        ),
    ];
    for (what, token, status, code) in cases {
        assert_eq!(outcome(&url, &token).await, (status, code.to_owned()), "{what}");
    }
}

#[tokio::test]
async fn hs384_and_hs512_when_configured_and_nothing_else() {
    let relay = relay(ServeArgs {
        jwt_algorithms: Some(vec!["HS384".into(), "HS512".into()]),
        ..args()
    })
    .await;
    let secret = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    for (alg, expected) in [
        (Algorithm::HS384, 101),
        (Algorithm::HS512, 101),
        (Algorithm::HS256, 401),
    ] {
        assert_eq!(
            outcome(&relay.ws_url(), &sign(alg, &secret, None, claims(json!({}))))
                .await
                .0,
            expected,
            "{alg:?}"
        );
    }
    // A configuration that cannot work is refused at start.
    let bad = ServeArgs {
        jwt_algorithms: Some(vec!["RS256".into()]),
        ..args()
    };
    assert!(realtime_relay::start(bad.resolve().unwrap()).await.is_err());
}

#[tokio::test]
async fn jwks_file_with_rsa_and_ec_keys() {
    let relay = relay(ServeArgs {
        jwt_secret: None,
        jwt_jwks: Some(fixture("jwks-a.json").display().to_string()),
        ..args()
    })
    .await;
    let url = relay.ws_url();
    assert_eq!(
        outcome(
            &url,
            &sign(Algorithm::RS256, &rsa("rsa-a"), Some("rsa-a"), claims(json!({})))
        )
        .await
        .0,
        101
    );
    assert_eq!(
        outcome(&url, &sign(Algorithm::ES256, &ec(), Some("ec"), claims(json!({}))))
            .await
            .0,
        101
    );
    assert_eq!(
        outcome(
            &url,
            &sign(Algorithm::RS256, &rsa("rsa-b"), Some("rsa-b"), claims(json!({})))
        )
        .await,
        (401, "unknown_key".into())
    );
    // A key id that exists, with the wrong key behind the signature.
    assert_eq!(
        outcome(
            &url,
            &sign(Algorithm::RS256, &rsa("rsa-b"), Some("rsa-a"), claims(json!({})))
        )
        .await
        .1,
        "invalid_signature"
    );
    // The ES key cannot be used for an RS256 token.
    assert_eq!(
        outcome(
            &url,
            &sign(Algorithm::RS256, &rsa("rsa-a"), Some("ec"), claims(json!({})))
        )
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn a_jwks_url_is_refetched_for_a_new_key_but_not_more_often_than_allowed() {
    let rotated = Arc::new(AtomicBool::new(false));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (r, f) = (rotated.clone(), fetches.clone());
    let app = Router::new().route(
        "/jwks.json",
        get(move || {
            let (r, f) = (r.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                let file = if r.load(Ordering::SeqCst) {
                    "jwks-all.json"
                } else {
                    "jwks-a.json"
                };
                std::fs::read_to_string(fixture(file)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let eager = relay(ServeArgs {
        jwt_secret: None,
        jwt_jwks: Some(jwks_url.clone()),
        jwt_jwks_min_refresh_secs: Some(0),
        ..args()
    })
    .await;
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start");
    let new_key = sign(Algorithm::RS256, &rsa("rsa-b"), Some("rsa-b"), claims(json!({})));
    assert_eq!(outcome(&eager.ws_url(), &new_key).await.1, "unknown_key");
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "an unknown kid triggers one refetch");
    rotated.store(true, Ordering::SeqCst);
    assert_eq!(
        outcome(&eager.ws_url(), &new_key).await.0,
        101,
        "the rotated-in key is found by a refetch"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    // Known keys never cause a fetch.
    assert_eq!(outcome(&eager.ws_url(), &new_key).await.0, 101);
    assert_eq!(fetches.load(Ordering::SeqCst), 3);

    // With a long minimum interval, a flood of unknown key ids cannot make the relay hammer the URL.
    let before = fetches.load(Ordering::SeqCst);
    let patient = relay(ServeArgs {
        jwt_secret: None,
        jwt_jwks: Some(jwks_url),
        jwt_jwks_min_refresh_secs: Some(3600),
        ..args()
    })
    .await;
    for i in 0..5 {
        let t = sign(
            Algorithm::RS256,
            &rsa("rsa-a"),
            Some(&format!("nope-{i}")),
            claims(json!({})),
        );
        assert_eq!(outcome(&patient.ws_url(), &t).await.1, "unknown_key");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1, "only the start-up fetch");
}

#[tokio::test]
async fn a_session_can_end_when_its_token_expires() {
    let relay = relay(ServeArgs {
        end_session_on_token_expiry: Some(true),
        ..args()
    })
    .await;
    let t = realtime_relay::identity::mint(
        &realtime_relay::secret::Secret::new(JWT_SECRET),
        "short",
        2,
        Default::default(),
    )
    .unwrap();
    let mut c = connect(&relay.ws_url(), &t).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    let (frames, close) = until_close(&mut c).await;
    let text = format!("{frames:?}");
    assert!(text.contains("relay_token_expired"), "{text}");
    assert_eq!(close.map(|c| c.0), Some(1008));
}

//! The web client is served by the relay itself, with a strict Content-Security-Policy.

mod common;

use common::*;
use realtime_relay::config::ServeArgs;

#[tokio::test]
async fn the_client_is_served_at_the_root() {
    let relay = relay(args()).await;
    let r = reqwest::get(format!("{}/", relay.http_url())).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(r.text().await.unwrap().contains("realtime-relay"));
    assert_eq!(
        reqwest::get(format!("{}/no-such-file.js", relay.http_url()))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn a_directory_can_replace_the_built_in_files() {
    let dir = std::env::temp_dir().join(format!("relay-web-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>from the directory</p>").unwrap();
    let relay = relay(ServeArgs {
        web_dir: Some(dir.clone()),
        ..args()
    })
    .await;
    let body = reqwest::get(format!("{}/", relay.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "<p>from the directory</p>");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn the_client_config_lists_models_only_to_a_signed_in_caller() {
    let relay = relay(args()).await;
    let url = format!("{}/api/client-config", relay.http_url());
    let anonymous: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(anonymous["dev_mode"], false);
    assert!(anonymous["login_url"].is_null());
    assert!(anonymous.get("models").is_none(), "{anonymous}");
    let client = reqwest::Client::new();
    let signed_in: serde_json::Value = client
        .get(&url)
        .bearer_auth(token("alice"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(signed_in["models"][0], "gpt-realtime");
    let refused = client.get(&url).bearer_auth("not-a-token").send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
}

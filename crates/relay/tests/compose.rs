//! The packaging: `docker-compose.yml` parsed by a real Compose Specification parser (the
//! `compose_spec` crate; there is no Docker engine here), plus the invariants the fleet relies on:
//! every relay points at a defined upstream service, shares one Redis, and is reachable through the
//! load balancer, whose nginx config names each relay. The Dockerfile builds both binaries.

use std::path::PathBuf;

use compose_spec::Compose;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(path)
}

fn compose_text() -> String {
    std::fs::read_to_string(repo("docker-compose.yml")).unwrap()
}

/// Parse as Compose does: YAML merge keys (`<<: *relay`) resolved first.
fn parse(text: &str) -> Result<Compose, serde_yaml::Error> {
    let mut value: serde_yaml::Value = serde_yaml::from_str(text)?;
    value.apply_merge()?;
    serde_yaml::from_value(value)
}

#[test]
fn the_compose_file_follows_the_specification() {
    let compose = parse(&compose_text()).expect("valid Compose file");
    let names: Vec<String> = compose.services.keys().map(|k| k.to_string()).collect();
    for expected in ["emulator", "redis", "relay-1", "relay-2", "lb"] {
        assert!(names.iter().any(|n| n == expected), "service {expected} in {names:?}");
    }
    // A file with a typo in a service key is refused by the same parser: the check can fail.
    let broken = compose_text().replace(
        "    entrypoint: [\"realtime-emulator\"]",
        "    entrypont: [\"realtime-emulator\"]",
    );
    assert!(parse(&broken).is_err(), "an unknown key is an error");
}

#[test]
fn the_fleet_is_wired_together() {
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&compose_text()).unwrap();
    yaml.apply_merge().unwrap();
    let services = yaml["services"].as_mapping().unwrap();
    let env = |service: &str, key: &str| -> Option<String> {
        yaml["services"][service]["environment"][key]
            .as_str()
            .map(str::to_owned)
    };
    for relay in ["relay-1", "relay-2"] {
        let upstream = env(relay, "RELAY_UPSTREAM_URL").expect("upstream URL");
        let host = upstream.trim_start_matches("ws://").split(':').next().unwrap();
        assert!(
            services.contains_key(host),
            "{relay} points at {host}, a service of this file"
        );
        let redis = env(relay, "REDIS_URL").expect("Redis");
        assert!(services.contains_key(redis.trim_start_matches("redis://").split(':').next().unwrap()));
        assert!(
            env(relay, "RELAY_JWT_SECRET").is_some(),
            "a relay beyond loopback needs a JWT secret"
        );
    }
    let nginx = std::fs::read_to_string(repo("deploy/nginx.conf")).unwrap();
    assert!(nginx.contains("server relay-1:8080") && nginx.contains("server relay-2:8080"));
    assert!(
        nginx.contains("proxy_set_header Upgrade $http_upgrade"),
        "WebSocket upgrades pass"
    );
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    assert!(dockerfile.contains("-p realtime-relay -p realtime-emulator"));
    assert!(dockerfile.starts_with("# syntax="), "BuildKit syntax line first");
}

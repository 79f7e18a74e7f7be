//! The packaging: `docker-compose.yml` parsed by a real Compose Specification parser (the
//! `compose_spec` crate; there is no Docker engine here), plus the invariants the fleet relies on:
//! every relay points at a defined upstream service, shares one Redis, and is reachable through the
//! load balancer, whose nginx config names each relay. The Dockerfile builds both binaries. And what
//! operators rely on (issue 17): the stop grace period above the drain, restart policies, Redis
//! persisted on a named volume, the admin address kept off the load balancer, JSON logs, and nginx
//! (its config parsed here into directives and blocks) resolving relays at run time through Docker's
//! DNS with a shared zone, proxying only the public paths. Each check is also run on a file that
//! lost what it checks, and must fail there.

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

// ---- What an operator's fleet relies on (issue 17), each as a check that returns why it fails, so
// that the tests below can show each one failing on a file that lost what it checks.

/// A service of the parsed file, by name.
fn service<'a>(compose: &'a Compose, name: &str) -> Result<&'a compose_spec::Service, String> {
    compose
        .services
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, s)| s)
        .ok_or_else(|| format!("no service {name}"))
}

const RELAYS: [&str; 2] = ["relay-1", "relay-2"];

/// After the drain, the relay itself may take up to 5 s for the sessions it told to close, the
/// listener's close timeout, and 2 s to give the slots back (`Fleet::settle`): Docker's SIGKILL
/// must come after all of it.
const RELAY_CLOSING: std::time::Duration = std::time::Duration::from_secs(5 + 2);

fn check_compose(text: &str) -> Result<(), String> {
    let compose = parse(text).map_err(|e| format!("not a Compose file: {e}"))?;
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    yaml.apply_merge().map_err(|e| e.to_string())?;
    let env = |service: &str, key: &str| {
        yaml["services"][service]["environment"][key]
            .as_str()
            .map(str::to_owned)
    };

    for relay in RELAYS {
        let s = service(&compose, relay)?;
        // The drain, as the relay reads it: the environment, else its default.
        let drain = match env(relay, "RELAY_SHUTDOWN_GRACE_SECS") {
            Some(v) => v
                .parse::<u64>()
                .map_err(|e| format!("{relay}: RELAY_SHUTDOWN_GRACE_SECS {v:?}: {e}"))?,
            None => realtime_relay::config::DEFAULTS.shutdown_grace_secs,
        };
        let drain = std::time::Duration::from_secs(drain);
        let needed = drain + RELAY_CLOSING + realtime_relay::listener::CLOSE_TIMEOUT;
        match s.stop_grace_period {
            Some(grace) if grace > needed => {}
            other => {
                return Err(format!(
                    "{relay}: stop_grace_period {other:?} must be above the drain ({drain:?}) and the relay's closing ({needed:?} in all)"
                ));
            }
        }
        if env(relay, "RELAY_LOG_FORMAT").as_deref() != Some("json") {
            return Err(format!("{relay}: RELAY_LOG_FORMAT=json for docker logs"));
        }
        let port = |key: &str| -> Result<String, String> {
            let addr = env(relay, key).ok_or_else(|| format!("{relay}: {key} is not set"))?;
            addr.rsplit(':')
                .next()
                .map(str::to_owned)
                .ok_or_else(|| format!("{relay}: {key} {addr:?}"))
        };
        let (public, admin) = (port("RELAY_LISTEN")?, port("RELAY_ADMIN_LISTEN")?);
        if public == admin {
            return Err(format!("{relay}: the admin address needs a port of its own"));
        }
        if !s.ports.is_empty() {
            return Err(format!("{relay}: publishes ports: only the load balancer may"));
        }
        let nginx = std::fs::read_to_string(repo("deploy/nginx.conf")).map_err(|e| e.to_string())?;
        if nginx.contains(&format!("{relay}:{admin}")) || !nginx.contains(&format!("{relay}:{public}")) {
            return Err(format!(
                "{relay}: nginx must reach its public port {public}, never the admin port {admin}"
            ));
        }
    }
    for name in ["emulator", "redis", "lb", "relay-1", "relay-2"] {
        use compose_spec::service::Restart;
        match service(&compose, name)?.restart {
            Some(Restart::UnlessStopped | Restart::Always) => {}
            other => return Err(format!("{name}: restart {other:?}, not unless-stopped or always")),
        }
    }

    // Redis persists on a named volume.
    let command: Vec<String> = yaml["services"]["redis"]["command"]
        .as_sequence()
        .ok_or("redis: command as a list")?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if !command.windows(2).any(|w| w[0] == "--appendonly" && w[1] == "yes") {
        return Err(format!("redis: --appendonly yes, not {command:?}"));
    }
    let mounts = yaml["services"]["redis"]["volumes"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    let named = mounts.iter().filter_map(|m| m.as_str()).find_map(|m| {
        let (source, target) = m.split_once(':')?;
        (target.trim_end_matches(":rw") == "/data").then(|| source.to_owned())
    });
    let Some(volume) = named else {
        return Err("redis: a volume mounted at /data".into());
    };
    if compose.volumes.keys().all(|k| k.to_string() != volume) {
        return Err(format!("redis: {volume} is not a named volume of the file"));
    }

    // The load balancer publishes the public port alone, from an nginx with `resolve` upstreams.
    let lb = service(&compose, "lb")?;
    if lb.ports.len() != 1 {
        return Err(format!("lb: publishes {} ports, only the public one", lb.ports.len()));
    }
    let image = yaml["services"]["lb"]["image"].as_str().unwrap_or_default();
    let version: Vec<u32> = image
        .trim_start_matches("nginx:")
        .split('-')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    if version < vec![1, 27, 3] {
        return Err(format!(
            "lb: {image}: `resolve` in upstreams needs nginx 1.27.3 or later"
        ));
    }
    Ok(())
}

/// nginx's configuration as directives and blocks (comments dropped, quotes kept whole).
#[derive(Debug)]
enum Node {
    Directive(Vec<String>),
    Block(Vec<String>, Vec<Node>),
}

fn nginx_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '{' | '}' | ';' => tokens.push(c.to_string()),
            '\'' | '"' => {
                let mut word = String::new();
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                    word.push(d);
                }
                tokens.push(word);
            }
            c if c.is_whitespace() => {}
            c => {
                let mut word = c.to_string();
                while let Some(&d) = chars.peek() {
                    if d.is_whitespace() || matches!(d, '{' | '}' | ';') {
                        break;
                    }
                    word.push(d);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    tokens
}

fn nginx_nodes(tokens: &[String], at: &mut usize) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut words = Vec::new();
    while *at < tokens.len() {
        let t = &tokens[*at];
        *at += 1;
        match t.as_str() {
            ";" => nodes.push(Node::Directive(std::mem::take(&mut words))),
            "{" => {
                let inner = nginx_nodes(tokens, at);
                nodes.push(Node::Block(std::mem::take(&mut words), inner));
            }
            "}" => return nodes,
            _ => words.push(t.clone()),
        }
    }
    nodes
}

fn directives<'a>(nodes: &'a [Node], name: &str) -> Vec<&'a [String]> {
    nodes
        .iter()
        .filter_map(|n| match n {
            Node::Directive(w) if w.first().is_some_and(|f| f == name) => Some(w.as_slice()),
            _ => None,
        })
        .collect()
}

fn blocks<'a>(nodes: &'a [Node], name: &str) -> Vec<(&'a [String], &'a [Node])> {
    nodes
        .iter()
        .filter_map(|n| match n {
            Node::Block(w, inner) if w.first().is_some_and(|f| f == name) => Some((w.as_slice(), inner.as_slice())),
            _ => None,
        })
        .collect()
}

/// The location nginx picks for `path` (exact match, else the longest prefix; the file may have
/// no regex locations, so that this is nginx's whole rule).
fn location_for<'a>(locations: &[(&'a [String], &'a [Node])], path: &str) -> Result<&'a [Node], String> {
    let mut best: Option<(usize, &'a [Node])> = None;
    for (words, inner) in locations {
        match &words[1..] {
            [m, exact] if m == "=" => {
                if exact == path {
                    return Ok(inner);
                }
            }
            [m, prefix] if m == "^~" => {
                if path.starts_with(prefix.as_str()) && best.is_none_or(|(n, _)| prefix.len() > n) {
                    best = Some((prefix.len(), inner));
                }
            }
            [prefix] => {
                if path.starts_with(prefix.as_str()) && best.is_none_or(|(n, _)| prefix.len() > n) {
                    best = Some((prefix.len(), inner));
                }
            }
            other => {
                return Err(format!(
                    "location {other:?}: no regex locations, so that the routing can be checked"
                ));
            }
        }
    }
    best.map(|(_, inner)| inner)
        .ok_or_else(|| format!("no location for {path}"))
}

fn check_nginx(text: &str) -> Result<(), String> {
    let nodes = nginx_nodes(&nginx_tokens(text), &mut 0);
    let resolver = directives(&nodes, "resolver");
    if !resolver
        .iter()
        .any(|r| r.get(1).is_some_and(|a| a == "127.0.0.11") && r.iter().any(|w| w.starts_with("valid=")))
    {
        return Err(format!(
            "resolver 127.0.0.11 valid=… (Docker's DNS, re-resolved): {resolver:?}"
        ));
    }
    let upstreams = blocks(&nodes, "upstream");
    let Some((_, relays)) = upstreams.iter().find(|(w, _)| w.get(1).is_some_and(|n| n == "relays")) else {
        return Err("upstream relays".into());
    };
    if !directives(relays, "zone").iter().any(|z| z.len() >= 3) {
        return Err("upstream relays: a shared `zone NAME SIZE`".into());
    }
    if directives(relays, "least_conn").is_empty() {
        return Err("upstream relays: least_conn".into());
    }
    let servers = directives(relays, "server");
    if servers.len() != RELAYS.len() || !servers.iter().all(|s| s.iter().any(|w| w == "resolve")) {
        return Err(format!(
            "every relay server resolved at run time (`resolve`): {servers:?}"
        ));
    }
    let servers_block = blocks(&nodes, "server");
    let [(_, server)] = servers_block.as_slice() else {
        return Err("one server block".into());
    };
    let locations = blocks(server, "location");
    let proxied = |path: &str| -> Result<bool, String> {
        let inner = location_for(&locations, path)?;
        Ok(directives(inner, "proxy_pass")
            .iter()
            .any(|p| p.get(1).is_some_and(|u| u == "http://relays")))
    };
    for path in ["/metrics", "/api/admin/users/alice/kill", "/api/admin/"] {
        if proxied(path)? {
            return Err(format!("{path} is proxied: operators' paths are not public"));
        }
    }
    for path in [
        "/",
        "/realtime",
        "/openai/v1/realtime",
        "/openai/realtime",
        "/v1/realtime",
        "/api/usage",
        "/api/narrate",
        "/healthz",
        "/app.js",
    ] {
        if !proxied(path)? {
            return Err(format!("{path} is not proxied to the relays"));
        }
    }
    Ok(())
}

fn nginx_text() -> String {
    std::fs::read_to_string(repo("deploy/nginx.conf")).unwrap()
}

#[test]
fn the_fleet_drains_restarts_persists_and_keeps_operators_paths_private() {
    check_compose(&compose_text()).unwrap();
}

#[test]
fn each_compose_invariant_fails_on_a_file_without_it() {
    let text = compose_text();
    for (what, from, to) in [
        ("no grace period", "  stop_grace_period: 20s\n", ""),
        (
            "a grace period equal to the drain",
            "stop_grace_period: 20s",
            "stop_grace_period: 10s",
        ),
        (
            "a longer drain",
            "RELAY_SHUTDOWN_GRACE_SECS: \"10\"",
            "RELAY_SHUTDOWN_GRACE_SECS: \"18\"",
        ),
        (
            "no persistence",
            "\"--appendonly\", \"yes\"",
            "\"--appendonly\", \"no\"",
        ),
        ("no volume", "      - redis-data:/data\n", ""),
        ("no admin address", "    RELAY_ADMIN_LISTEN: 0.0.0.0:9090\n", ""),
        (
            "the admin port is the public one",
            "RELAY_ADMIN_LISTEN: 0.0.0.0:9090",
            "RELAY_ADMIN_LISTEN: 0.0.0.0:8080",
        ),
        ("text logs", "RELAY_LOG_FORMAT: json", "RELAY_LOG_FORMAT: text"),
        ("an nginx before `resolve`", "nginx:1.28-alpine", "nginx:1.27.2-alpine"),
    ] {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text, "{what}: the file changed");
        assert!(check_compose(&broken).is_err(), "{what} goes unnoticed");
    }
    // Restart policies, one service at a time (the relays' is in `x-relay`).
    for (service, indent) in [
        ("emulator", "    "),
        ("redis", "    "),
        ("lb", "    "),
        ("x-relay", "  "),
    ] {
        let restart = format!("{indent}restart: unless-stopped\n");
        let start = text.find(&format!("\n{}{service}:", &indent[2..])).unwrap();
        let at = start + text[start..].find(&restart).unwrap();
        let mut broken = text.clone();
        broken.replace_range(at..at + restart.len(), "");
        assert!(
            check_compose(&broken).is_err(),
            "{service} without a restart policy goes unnoticed"
        );
    }
}

#[test]
fn nginx_resolves_at_run_time_shares_its_zone_and_proxies_only_public_paths() {
    check_nginx(&nginx_text()).unwrap();
    let text = nginx_text();
    let metrics_block = {
        let start = text.find("    location = /metrics {").unwrap();
        let end = start + text[start..].find("    }\n").unwrap() + "    }\n".len();
        text[start..end].to_owned()
    };
    let admin_block = {
        let start = text.find("    location ^~ /api/admin/ {").unwrap();
        let end = start + text[start..].find("    }\n").unwrap() + "    }\n".len();
        text[start..end].to_owned()
    };
    for (what, from, to) in [
        ("no resolver", "resolver 127.0.0.11 valid=10s ipv6=off;", ""),
        ("no zone", "zone relays 64k;", ""),
        (
            "names resolved once",
            "server relay-2:8080 resolve",
            "server relay-2:8080",
        ),
        ("/metrics proxied", metrics_block.as_str(), ""),
        ("/api/admin/ proxied", admin_block.as_str(), ""),
    ] {
        let broken = text.replacen(from, to, 1);
        assert_ne!(broken, text, "{what}: the file changed");
        assert!(check_nginx(&broken).is_err(), "{what} goes unnoticed");
    }
}

//! Where a Realtime client puts its credential, and finding it there.
//!
//! The service (Azure and OpenAI) takes the key as an `Authorization: Bearer` header, an `api-key`
//! header, or, for browsers, which cannot set headers, a `Sec-WebSocket-Protocol` entry
//! `openai-insecure-api-key.<key>` or a query parameter (`api-key`, Azure's; `access_token`;
//! `Authorization=Bearer <token>`, which Azure's `rt-client` sends from a browser with a token). The
//! emulator finds its key there; the relay finds the end user's JWT in the same places, so an
//! existing client works through it by changing the base URL and putting the JWT where the key was.
//! [`find_credential`] looks in one documented order; nothing here logs or echoes what it finds.

use http::HeaderMap;

/// The subprotocol prefix that carries a credential.
pub const CREDENTIAL_SUBPROTOCOL_PREFIX: &str = "openai-insecure-api-key.";

/// Where a credential was found (for logs: never the credential itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Bearer,
    ApiKeyHeader,
    Subprotocol,
    QueryAuthorization,
    QueryAccessToken,
    QueryApiKey,
}

/// The credential a request presents, from the first of these that has one: `Authorization:
/// Bearer`, the `api-key` header, the `openai-insecure-api-key.` subprotocol, the `Authorization`
/// query parameter (`Bearer <token>`), the `access_token` query parameter, the `api-key` query
/// parameter. `query` looks a query parameter up by name (already percent-decoded).
pub fn find_credential<'q>(headers: &HeaderMap, query: impl Fn(&str) -> Option<&'q str>) -> Option<(String, Carrier)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let bearer = |a: &str| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
            .map(|t| t.trim().to_owned())
    };
    if let Some(t) = header("authorization").and_then(bearer) {
        return Some((t, Carrier::Bearer));
    }
    if let Some(t) = header("api-key").filter(|t| !t.is_empty()) {
        return Some((t.to_owned(), Carrier::ApiKeyHeader));
    }
    if let Some(t) = subprotocol_credential(headers) {
        return Some((t.to_owned(), Carrier::Subprotocol));
    }
    if let Some(t) = query("Authorization").and_then(bearer).filter(|t| !t.is_empty()) {
        return Some((t, Carrier::QueryAuthorization));
    }
    if let Some(t) = query("access_token").filter(|t| !t.is_empty()) {
        return Some((t.to_owned(), Carrier::QueryAccessToken));
    }
    query("api-key")
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), Carrier::QueryApiKey))
}

/// The credential in a `Sec-WebSocket-Protocol` entry, if any.
pub fn subprotocol_credential(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(CREDENTIAL_SUBPROTOCOL_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn each_carrier_in_its_order() {
        let find = |h: &[(&'static str, &str)], at: Option<&str>, ak: Option<&str>| {
            find_credential(&headers(h), |name| match name {
                "access_token" => at,
                "api-key" => ak,
                _ => None,
            })
        };
        assert_eq!(
            find(&[("authorization", "Bearer a")], None, None),
            Some(("a".into(), Carrier::Bearer))
        );
        assert_eq!(
            find(&[("api-key", "b")], None, None),
            Some(("b".into(), Carrier::ApiKeyHeader))
        );
        assert_eq!(
            find(
                &[("sec-websocket-protocol", "realtime, openai-insecure-api-key.c")],
                None,
                None
            ),
            Some(("c".into(), Carrier::Subprotocol))
        );
        assert_eq!(
            find(&[], Some("d"), Some("e")),
            Some(("d".into(), Carrier::QueryAccessToken))
        );
        assert_eq!(find(&[], None, Some("e")), Some(("e".into(), Carrier::QueryApiKey)));
        assert_eq!(find(&[], Some(""), None), None);
        // The first carrier wins.
        assert_eq!(
            find(&[("api-key", "b"), ("authorization", "Bearer a")], Some("d"), None),
            Some(("a".into(), Carrier::Bearer))
        );
        assert_eq!(find(&[("authorization", "Basic x")], None, None), None);
        // rt-client in a browser with a token: `?Authorization=Bearer%20<token>`.
        let query = |name: &str| (name == "Authorization").then_some("Bearer f");
        assert_eq!(
            find_credential(&HeaderMap::new(), query),
            Some(("f".into(), Carrier::QueryAuthorization))
        );
        let query = |name: &str| (name == "Authorization").then_some("Basic f");
        assert_eq!(find_credential(&HeaderMap::new(), query), None);
    }
}

//! The guard's differential property, for one frame: what it forwards must read the same whether the
//! first or the last copy of a repeated key wins, and that reading must be an event the guard
//! allows. Used by `tests/differential.rs` (random frames and the fuzz corpus) and by the fuzz target
//! (`fuzz/`), which include this file by path; it needs `readings` beside it.

use std::sync::Arc;

use realtime_relay::policy::{Guard, Policy, Profile, Verdict};

use super::readings::{Wins, read};

/// A guard for every profile of the example policy, and one for the open policy.
pub fn guards() -> Vec<Guard> {
    let text = include_str!("../../../../docs/policy.example.toml");
    let policy = Policy::from_toml(text, "policy.example.toml").expect("the example policy loads");
    let mut names: Vec<&String> = policy.profiles.keys().collect();
    names.sort();
    let mut out: Vec<Guard> = names
        .into_iter()
        .map(|n| Guard::new(policy.profiles[n].clone(), 0.0))
        .collect();
    out.push(Guard::new(Arc::new(Profile::open()), 0.0));
    out
}

/// The property for `frame` under `guard` (judged on a copy, so the guard's state is unchanged).
pub fn check(guard: &Guard, frame: &str) -> Result<(), String> {
    let name = &guard.profile.name;
    let forwarded = match guard.clone().client_text(frame, 0.0) {
        Verdict::Reject(_) => return Ok(()),
        Verdict::Forward => frame.to_owned(),
        Verdict::Replace(rewritten) => rewritten,
    };
    let first = read(&forwarded, Wins::First);
    let Some(last) = read(&forwarded, Wins::Last) else {
        return Err(format!("{name}: forwarded, but not JSON: {forwarded}"));
    };
    if first.as_ref() != Some(&last) {
        return Err(format!("{name}: forwarded, but read two ways: {forwarded}"));
    }
    let reread = last.to_string();
    match guard.clone().client_text(&reread, 0.0) {
        Verdict::Reject(e) => Err(format!(
            "{name}: forwarded {forwarded}, but its reading {reread} is refused: {}",
            e.message
        )),
        _ => Ok(()),
    }
}

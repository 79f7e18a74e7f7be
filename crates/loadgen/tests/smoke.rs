//! The load generator's smoke mode against an in-process emulator (benchmark stamps on) and an
//! in-process relay in front of it: every scenario runs, produces its report with the expected
//! fields, and sees no error. Nothing here asserts a timing.

use realtime_emulator::{EmulatorConfig, Pacing};
use realtime_loadgen::{Auth, Kind, Target, Watch};
use realtime_relay::config::ServeArgs;
use realtime_relay::secret::Secret;

const KEY: &str = "emulator-key-0123456789";
const JWT_SECRET: &str = "loadgen-test-secret-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_reports_without_errors() {
    let emulator = realtime_emulator::spawn(
        EmulatorConfig {
            api_key: Some(KEY.into()),
            pacing: Pacing::Fast,
            bench: true,
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let upstream = format!("ws://{}/openai/v1/realtime", emulator.addr());
    let relay = realtime_relay::start(
        ServeArgs {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            jwt_secret: Some(Secret::new(JWT_SECRET)),
            upstream_url: Some(upstream.clone()),
            upstream_api_key: Some(Secret::new(KEY)),
            models: Some(vec!["gpt-realtime".into()]),
            ..Default::default()
        }
        .resolve()
        .unwrap(),
    )
    .await
    .unwrap();
    let me = std::process::id();
    let direct = Target {
        name: "direct".into(),
        url: format!("{upstream}?model=gpt-realtime"),
        auth: Auth::ApiKey(KEY.into()),
        pid: None,
    };
    let through = Target {
        name: "relay".into(),
        url: format!("{}?model=gpt-realtime", relay.ws_url()),
        auth: Auth::JwtSecret(JWT_SECRET.into()),
        // Everything runs in this process: its CPU and memory stand in for the relay's.
        pid: Some(me),
    };
    let watch = [Watch {
        name: "emulator".into(),
        pid: me,
    }];
    let reports = realtime_loadgen::smoke(&direct, &through, &watch).await.unwrap();
    let kinds: Vec<Kind> = reports.iter().map(|r| r.scenario.kind).collect();
    assert_eq!(kinds, [Kind::Burst, Kind::Realtime, Kind::Idle, Kind::Storm]);

    for r in &reports {
        let json = serde_json::to_value(r).unwrap();
        let kind = r.scenario.kind;
        assert_eq!(json["smoke"], true);
        for key in ["scenario", "started_unix", "direct", "relay", "comparison"] {
            assert!(json.get(key).is_some(), "{kind:?}: no `{key}` in {json}");
        }
        let relay_run = &json["relay"];
        for key in [
            "latency_down",
            "latency_up",
            "time_to_first_audio",
            "connect",
            "traffic",
            "rates",
            "errors",
            "processes",
            "per_session",
        ] {
            assert!(relay_run.get(key).is_some(), "{kind:?}: no relay.{key} in {relay_run}");
        }
        for key in ["p50_us", "p99_us", "p999_us", "max_us", "count"] {
            assert!(relay_run["latency_down"].get(key).is_some(), "{kind:?}: {relay_run}");
        }
        assert!(
            relay_run["processes"].as_array().is_some_and(|p| p.len() == 3),
            "{relay_run}"
        );
        for run in [&r.direct, &r.relay].into_iter().flatten() {
            assert_eq!(run.errors.total, 0, "{kind:?} {}: {:?}", run.target, run.errors);
            assert!(run.connected >= 1, "{kind:?}: {run:?}");
        }
        let relay_run = r.relay.as_ref().unwrap();
        match kind {
            Kind::Burst | Kind::Realtime => {
                assert!(relay_run.latency_down.count > 0, "{kind:?}: no downlink samples");
                assert!(relay_run.traffic.audio_frames_down > 0, "{kind:?}: no audio");
                assert!(relay_run.time_to_first_audio.count > 0, "{kind:?}: no first audio");
                assert!(r.comparison.is_some() && r.direct.is_some());
            }
            Kind::Idle => {
                assert!(r.direct.is_none(), "idle runs the relay only");
                assert_eq!(relay_run.connected as usize, relay_run.sessions);
            }
            Kind::Storm => assert!(relay_run.completed > 0 && relay_run.rates.sessions_per_s > 0.0),
        }
        if kind == Kind::Realtime {
            assert!(relay_run.latency_up.count > 0, "no uplink samples");
            assert!(relay_run.traffic.frames_up > 0);
        }
        let summary = realtime_loadgen::scenario::summary(r);
        assert!(!summary.is_empty());
        println!("{summary}");
    }
    relay.shutdown().await;
    emulator.shutdown().await.unwrap();
}

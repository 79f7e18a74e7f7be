//! Narration over real sockets against the emulator: the WAV is valid and holds exactly the audio
//! the upstream sent, it streams, long texts keep their order, podcasts use each speaker's voice,
//! and every error path has its status.

mod common;

use std::collections::BTreeMap;

use common::*;
use realtime_protocol::{audio, wav};
use realtime_relay::config::ServeArgs;
use realtime_relay::identity;
use realtime_relay::narrate::{self, NARRATOR_INSTRUCTIONS, http::SEGMENT_CHARS};
use realtime_relay::secret::Secret;
use serde_json::{Map, Value, json};

fn role_token(role: &str) -> String {
    let mut claims = Map::new();
    claims.insert("role".into(), json!(role));
    identity::mint(&Secret::new(JWT_SECRET), "narrator-user", 600, claims).unwrap()
}

async fn post(url: &str, token: Option<&str>, accept: &str, body: Value) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("{url}/api/narrate"))
        .header("accept", accept)
        .json(&body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// The audio a direct session with the same settings gets: the reference the WAV must equal.
async fn reference_pcm(relay: &realtime_relay::Relay, text: &str, voice: &str) -> Vec<u8> {
    let mut c = connect(&relay.ws_url(), &token("reference")).await;
    next_event(&mut c).await;
    send_json(&mut c, json!({"type": "session.update", "session": {"type": "realtime", "instructions": NARRATOR_INSTRUCTIONS, "output_modalities": ["audio"], "audio": {"output": {"voice": voice}}}})).await;
    events_until(&mut c, "session.updated").await;
    send_json(&mut c, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    let mut pcm = Vec::new();
    for e in events_until(&mut c, "response.done").await {
        if e["type"] == "response.output_audio.delta" {
            pcm.extend(audio::decode_base64(e["delta"].as_str().unwrap()).unwrap());
        }
    }
    pcm
}

#[tokio::test]
async fn json_mode_returns_a_wav_of_exactly_the_audio_received() {
    let relay = relay(args()).await;
    let text = "Hello there. This is a narration test.";
    let r = post(
        &relay.http_url(),
        Some(&token("u")),
        "application/json",
        json!({"text": text, "voice": "echo"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    let wav_bytes = audio::decode_base64(body["audio_data"].as_str().unwrap()).unwrap();
    let parsed = wav::read_wav(&wav_bytes).unwrap();
    assert!(parsed.is_api_format(), "24 kHz, mono, 16-bit");
    let expected = reference_pcm(&relay, text, "echo").await;
    assert!(!expected.is_empty());
    assert_eq!(parsed.pcm, expected, "the samples are the deltas, exactly");
    assert_eq!(body["transcript"], text);
    assert_eq!(body["voice"], "echo");
    assert_eq!(body["duration_ms"], audio::bytes_to_ms(expected.len()));
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn wav_mode_streams_before_the_narration_ends() {
    // Real-time pacing: the audio takes as long to arrive as to play.
    let relay = relay(ServeArgs {
        emulator_pace: Some("realtime".into()),
        ..args()
    })
    .await;
    let text = "This sentence is long enough to take a few seconds to read aloud, one word after another.";
    let r = post(&relay.http_url(), Some(&token("u")), "audio/wav", json!({"text": text})).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let mut r = r;
    let first = r.chunk().await.unwrap().unwrap();
    // Ordering, not timing: when the first bytes arrived, the narration's upstream session was still
    // open (it closes only after the last `response.done`), so the body was not complete.
    let emulator = relay.embedded_emulator_http().unwrap();
    assert_eq!(
        emulator_open(&emulator).await,
        1,
        "the upstream was still speaking when the first bytes arrived"
    );
    let mut all = first.to_vec();
    while let Some(chunk) = r.chunk().await.unwrap() {
        all.extend_from_slice(&chunk);
    }
    assert_eq!(&all[..4], b"RIFF");
    assert!(
        first.len() < all.len() / 2,
        "the first bytes left early: {} of {}",
        first.len(),
        all.len()
    );
    let parsed = wav::read_wav(&all).unwrap();
    assert!(parsed.is_api_format());
    assert_eq!(parsed.pcm, reference_pcm(&relay, text, "alloy").await);
}

#[tokio::test]
async fn a_long_text_is_read_in_order_segment_by_segment() {
    let relay = relay(args()).await;
    let paragraphs: Vec<String> = (1..=16).map(|i| format!("Paragraph number {i} begins here. It carries a few words of its own, so that the whole text is long. It ends with marker {i}.")).collect();
    let text = paragraphs.join("\n\n");
    assert!(text.len() > 1500);
    let r = post(
        &relay.http_url(),
        Some(&token("u")),
        "application/json",
        json!({"text": text}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        words(body["transcript"].as_str().unwrap()),
        words(&text),
        "every word, in order"
    );
    let segments = narrate::segments(&text, SEGMENT_CHARS);
    assert!(segments.len() >= 2, "more than one segment");
    assert_eq!(
        body["voices"].as_array().unwrap().len(),
        segments.len(),
        "one response per segment"
    );
    // Stitched with nothing added or lost: the WAV is each segment's audio, in order, end to end.
    let mut expected = Vec::new();
    for segment in &segments {
        expected.extend(reference_pcm(&relay, segment, "alloy").await);
    }
    let parsed = wav::read_wav(&audio::decode_base64(body["audio_data"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(parsed.pcm.len(), expected.len());
    assert!(parsed.pcm == expected, "the segments' audio, in order");
}

#[tokio::test]
async fn a_podcast_uses_each_speakers_voice_where_it_belongs() {
    let relay = relay(args()).await;
    let speakers: BTreeMap<&str, &str> = [("HOST", "alloy"), ("GUEST", "echo")].into();
    let script = "HOST: Welcome to the show.\nGUEST: Thanks for having me.\nHOST: Let us begin.";
    let r = post(
        &relay.http_url(),
        Some(&token("u")),
        "application/json",
        json!({"text": script, "speakers": speakers}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["voices"],
        json!(["alloy", "echo", "alloy"]),
        "the upstream reported each response's voice"
    );
    assert_eq!(
        body["transcript"],
        "Welcome to the show. Thanks for having me. Let us begin."
    );
    assert_eq!(body["voice"], "alloy", "the first speaker's");
    let emulator = relay.embedded_emulator_http().unwrap();
    let (_, stats) = get_json(&format!("{emulator}/emulator/stats")).await;
    assert_eq!(
        stats["total"], 2,
        "one upstream session per voice, reused for the host's second turn"
    );
    // Each turn's audio is that text in that speaker's voice, in the script's order.
    let mut expected = reference_pcm(&relay, "Welcome to the show.", "alloy").await;
    expected.extend(reference_pcm(&relay, "Thanks for having me.", "echo").await);
    expected.extend(reference_pcm(&relay, "Let us begin.", "alloy").await);
    let parsed = wav::read_wav(&audio::decode_base64(body["audio_data"].as_str().unwrap()).unwrap()).unwrap();
    assert!(parsed.pcm == expected, "each speaker's audio where it belongs");
    assert_ne!(
        reference_pcm(&relay, "Thanks for having me.", "alloy").await,
        reference_pcm(&relay, "Thanks for having me.", "echo").await,
        "the voices are audibly different, so the comparison above means something"
    );
}

#[tokio::test]
async fn each_error_has_its_status() {
    let policy = std::env::temp_dir().join(format!("narrate-policy-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &policy,
        "default_profile = \"reader\"\n[profiles.reader]\nnarration = { max_chars = 50, voices = [\"alloy\", \"echo\"] }\n[profiles.chat]\nnarration = { allow = false }\n",
    )
    .unwrap();
    let relay = relay(ServeArgs {
        policy: Some(policy),
        ..args()
    })
    .await;
    let url = relay.http_url();
    let t = token("u");
    let status = |r: reqwest::Response| async move {
        let s = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (s, body["error"]["code"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(
        status(post(&url, None, "application/json", json!({"text": "hi"})).await).await,
        (401, "missing_token".into())
    );
    let bad_json = reqwest::Client::new()
        .post(format!("{url}/api/narrate"))
        .bearer_auth(&t)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(status(bad_json).await, (400, "invalid_request".into()));
    assert_eq!(
        status(post(&url, Some(&t), "application/json", json!({"text": "   "})).await).await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        status(post(&url, Some(&t), "application/json", json!({"text": "x".repeat(51)})).await).await,
        (413, "relay_text_too_long".into())
    );
    assert_eq!(
        status(
            post(
                &url,
                Some(&t),
                "application/json",
                json!({"text": "hi", "voice": "marin"})
            )
            .await
        )
        .await,
        (403, "relay_voice_not_allowed".into())
    );
    assert_eq!(
        status(
            post(
                &url,
                Some(&role_token("chat")),
                "application/json",
                json!({"text": "hi"})
            )
            .await
        )
        .await,
        (403, "relay_narration_not_allowed".into())
    );
    let stranger = identity::mint(&Secret::new("some-other-secret-0123456789abcdef"), "u", 600, Map::new()).unwrap();
    assert_eq!(
        status(post(&url, Some(&stranger), "application/json", json!({"text": "hi"})).await).await,
        (401, "invalid_signature".into())
    );
    assert_eq!(
        status(post(&url, Some(&t), "application/json", json!({"voice": "alloy"})).await).await,
        (400, "invalid_request".into()),
        "no text"
    );
    assert_eq!(
        status(post(&url, Some(&t), "application/json", json!({"text": "hi", "speed": 2})).await).await,
        (400, "invalid_request".into()),
        "an unknown field"
    );
    assert_eq!(
        status(
            post(
                &url,
                Some(&t),
                "application/json",
                json!({"text": "HOST: hi\nGUEST: hello", "speakers": {"HOST": "alloy", "GUEST": "shimmer"}})
            )
            .await
        )
        .await,
        (403, "relay_voice_not_allowed".into()),
        "every speaker's voice is checked"
    );
    assert_eq!(
        status(
            post(
                &url,
                Some(&t),
                "application/json",
                json!({"text": "Nobody: hi", "speakers": {"HOST": "alloy"}})
            )
            .await
        )
        .await,
        (400, "invalid_request".into()),
        "a script without a known speaker"
    );
}

#[tokio::test]
async fn a_voice_the_upstream_does_not_know_is_the_callers_mistake() {
    let relay = relay(args()).await;
    let r = post(
        &relay.http_url(),
        Some(&token("u")),
        "audio/wav",
        json!({"text": "hi", "voice": "bob"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "relay_voice_invalid");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("'bob'"),
        "the upstream's own message: {body}"
    );
}

#[tokio::test]
async fn the_example_policy_decides_who_may_narrate() {
    let example = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.example.toml"));
    let relay = relay(ServeArgs {
        policy: Some(example),
        ..args()
    })
    .await;
    let url = relay.http_url();
    let code = |r: reqwest::Response| async move {
        let s = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (s, body["error"]["code"].as_str().unwrap_or("").to_owned())
    };
    // voice-chat, the default profile, may not narrate.
    let r = post(&url, Some(&token("u")), "application/json", json!({"text": "hi"})).await;
    assert_eq!(code(r).await, (403, "relay_narration_not_allowed".into()));
    // The narrator may, in its three voices.
    let r = post(
        &url,
        Some(&role_token("narrator")),
        "application/json",
        json!({"text": "Once upon a time.", "voice": "shimmer"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["transcript"], "Once upon a time.");
    assert_eq!(body["voices"], json!(["shimmer"]));
    let r = post(
        &url,
        Some(&role_token("narrator")),
        "application/json",
        json!({"text": "hi", "voice": "marin"}),
    )
    .await;
    assert_eq!(code(r).await, (403, "relay_voice_not_allowed".into()));
}

#[tokio::test]
async fn origins_are_checked_as_for_the_websocket() {
    let relay = relay(ServeArgs {
        allowed_origins: Some(vec!["https://app.example.com".into()]),
        ..args()
    })
    .await;
    let ask = |origin: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/api/narrate", relay.http_url()))
            .bearer_auth(token("u"))
            .header("origin", origin)
            .json(&json!({"text": "hi"}))
            .send()
    };
    let r = ask("https://evil.example").await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "origin_not_allowed");
    assert_eq!(ask("https://app.example.com").await.unwrap().status().as_u16(), 200);
}

#[tokio::test]
async fn upstream_failures_are_502_before_audio_and_a_cut_stream_after() {
    let refused = relay(ServeArgs {
        models: Some(vec!["gpt-realtime~reject=503".into()]),
        ..args()
    })
    .await;
    let r = post(
        &refused.http_url(),
        Some(&token("u")),
        "audio/wav",
        json!({"text": "hello"}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "relay_upstream_unavailable");
    assert!(body["error"]["message"].as_str().unwrap().contains("503"));

    // The upstream drops mid-narration (after a few audio deltas).
    let dropping = relay(ServeArgs {
        models: Some(vec!["gpt-realtime~drop-after=12".into()]),
        ..args()
    })
    .await;
    let long = "This text is long enough to need many audio deltas before it is done being read aloud. ".repeat(3);
    let r = post(
        &dropping.http_url(),
        Some(&token("u")),
        "application/json",
        json!({"text": long}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "relay_upstream_lost", "{body}");
    let r = post(
        &dropping.http_url(),
        Some(&token("u")),
        "audio/wav",
        json!({"text": long}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200, "audio had started");
    let mut r = r;
    let mut failed = false;
    loop {
        match r.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the stream is cut short, not ended as if complete");
}

#[tokio::test]
async fn the_first_audio_leaves_while_the_upstream_is_still_speaking() {
    // The upstream goes silent after its first audio deltas and never finishes the response: whatever
    // audio reaches the client left before the narration ended.
    let relay = relay(ServeArgs {
        models: Some(vec!["gpt-realtime~stall-after=12".into()]),
        ..args()
    })
    .await;
    let mut r = post(
        &relay.http_url(),
        Some(&token("u")),
        "audio/wav",
        json!({"text": "Hello there, listener."}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..4], b"RIFF");
    assert_eq!(
        &first[40..44],
        &[0xff; 4],
        "a streaming header: the length is not known yet"
    );
    assert!(first.len() > wav::HEADER_LEN, "audio came with the header");
}

#[tokio::test]
async fn a_listener_that_hangs_up_ends_the_upstream_session() {
    let relay = relay(ServeArgs {
        emulator_pace: Some("realtime".into()),
        ..args()
    })
    .await;
    let emulator = relay.embedded_emulator_http().unwrap();
    let text = "A story that takes a while to tell, so that the listener can leave in the middle of it.";
    let mut r = post(&relay.http_url(), Some(&token("u")), "audio/wav", json!({"text": text})).await;
    r.chunk().await.unwrap().unwrap();
    assert_eq!(emulator_open(&emulator).await, 1);
    drop(r);
    eventually("the narration's upstream session closes", || async {
        emulator_open(&emulator).await == 0
    })
    .await;
}

#[tokio::test]
async fn shutdown_cuts_a_narration_short_after_the_grace_period() {
    let relay = relay(ServeArgs {
        emulator_pace: Some("realtime".into()),
        shutdown_grace_secs: Some(0),
        ..args()
    })
    .await;
    let text = "A long story that is still being read when the relay is told to stop.";
    let mut r = post(&relay.http_url(), Some(&token("u")), "audio/wav", json!({"text": text})).await;
    assert_eq!(r.status().as_u16(), 200);
    r.chunk().await.unwrap().unwrap();
    let shutdown = tokio::spawn(relay.shutdown());
    loop {
        match r.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the WAV ended as if complete"),
            Err(_) => break,
        }
    }
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
}

/// `realtime-relay narrate ARGS` with nothing configured (the embedded emulator, at full speed).
fn cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_realtime-relay"))
        .arg("narrate")
        .args(args)
        .env_clear()
        .env("RELAY_EMULATOR_PACE", "fast")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn temp(ext: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("narrate-cli-{}.{ext}", uuid::Uuid::new_v4().simple()))
}

fn synth(text: &str, voice: &str) -> Vec<u8> {
    audio::samples_to_bytes(&realtime_emulator::synth::render(text, voice))
}

#[test]
fn the_cli_writes_a_wav_with_the_embedded_emulator() {
    let out = temp("wav");
    let text = "Hello from the command line.";
    let run = cli(&["--text", text, "--voice", "echo", "-o", out.to_str().unwrap()], &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let parsed = wav::read_wav(&std::fs::read(&out).unwrap()).unwrap();
    assert!(parsed.is_api_format());
    assert_eq!(
        &std::fs::read(&out).unwrap()[40..44],
        &(parsed.pcm.len() as u32).to_le_bytes(),
        "real sizes"
    );
    assert!(
        parsed.pcm == synth(text, "echo"),
        "exactly the emulator's voice for the text"
    );
    std::fs::remove_file(out).unwrap();
}

#[test]
fn the_cli_reads_a_podcast_script_from_a_file() {
    let (script, out) = (temp("txt"), temp("wav"));
    std::fs::write(
        &script,
        "HOST: Welcome back.\r\nGUEST: Glad to be here.\r\n\r\nHOST: Let us start.\r\n",
    )
    .unwrap();
    let run = cli(
        &[
            "--file",
            script.to_str().unwrap(),
            "--speaker",
            "HOST=alloy",
            "--speaker",
            "GUEST=echo",
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let parsed = wav::read_wav(&std::fs::read(&out).unwrap()).unwrap();
    let mut expected = synth("Welcome back.", "alloy");
    expected.extend(synth("Glad to be here.", "echo"));
    expected.extend(synth("Let us start.", "alloy"));
    assert!(parsed.pcm == expected, "each speaker in their voice, in order");
    std::fs::remove_file(script).unwrap();
    std::fs::remove_file(out).unwrap();
}

#[test]
fn the_cli_keeps_a_playable_file_when_the_upstream_fails_midway() {
    let out = temp("wav");
    let text = "This text is long enough to need many audio deltas before it is done being read aloud.";
    let run = cli(
        &["--text", text, "-o", out.to_str().unwrap()],
        &[("RELAY_MODELS", "gpt-realtime~drop-after=12")],
    );
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("connection was lost"), "{stderr}");
    let parsed = wav::read_wav(&std::fs::read(&out).unwrap()).unwrap();
    let full = synth(text, "alloy");
    assert!(!parsed.pcm.is_empty() && parsed.pcm.len() < full.len());
    assert!(full.starts_with(&parsed.pcm), "the audio read before the failure");
    std::fs::remove_file(out).unwrap();

    // Refused before any audio: no file is left behind.
    let out = temp("wav");
    let run = cli(&["--text", "hi", "--voice", "bob", "-o", out.to_str().unwrap()], &[]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("'bob'"));
    assert!(!out.exists());
}

#[tokio::test]
async fn ndjson_mode_streams_audio_and_progress_and_ends_with_done() {
    let relay = relay(args()).await;
    let r = post(
        &relay.http_url(),
        Some(&token("u")),
        "application/x-ndjson",
        json!({"text": "HOST: Welcome.\nGUEST: Thanks.", "speakers": {"HOST": "alloy", "GUEST": "echo"}}),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], json!({"type": "start", "segments": 2}));
    let segments: Vec<&Value> = lines.iter().filter(|l| l["type"] == "segment").collect();
    assert_eq!(segments.len(), 2);
    assert_eq!(
        (segments[0]["done"].as_u64(), segments[0]["voice"].as_str()),
        (Some(1), Some("alloy"))
    );
    assert_eq!(
        (segments[1]["done"].as_u64(), segments[1]["voice"].as_str()),
        (Some(2), Some("echo"))
    );
    let pcm: Vec<u8> = lines
        .iter()
        .filter(|l| l["type"] == "audio")
        .flat_map(|l| audio::decode_base64(l["audio"].as_str().unwrap()).unwrap())
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "done");
    assert_eq!(last["duration_ms"], audio::bytes_to_ms(pcm.len()));
    assert_eq!(last["voices"], json!(["alloy", "echo"]));
    let mut expected = reference_pcm(&relay, "Welcome.", "alloy").await;
    expected.extend(reference_pcm(&relay, "Thanks.", "echo").await);
    assert_eq!(pcm, expected, "the audio lines are the deltas, in order");
}

#[tokio::test]
async fn a_streamed_wav_says_its_sizes_are_unknown_and_stream_false_gives_real_ones() {
    let relay = relay(args()).await;
    let text = "Sizes, please.";
    let r = post(&relay.http_url(), Some(&token("u")), "audio/wav", json!({"text": text})).await;
    assert_eq!(r.headers()["x-wav-sizes"], "unknown");
    let streamed = r.bytes().await.unwrap();
    assert_eq!(
        &streamed[40..44],
        &[0xff; 4],
        "the streamed header has open-ended sizes"
    );

    let r = reqwest::Client::new()
        .post(format!("{}/api/narrate?stream=false", relay.http_url()))
        .header("accept", "audio/wav")
        .bearer_auth(token("u"))
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("x-wav-sizes").is_none());
    let whole = r.bytes().await.unwrap();
    let parsed = wav::read_wav(&whole).unwrap();
    let data_len = u32::from_le_bytes(whole[40..44].try_into().unwrap()) as usize;
    assert_eq!(data_len, parsed.pcm.len(), "the data size is the real one");
    assert_eq!(
        u32::from_le_bytes(whole[4..8].try_into().unwrap()) as usize,
        whole.len() - 8
    );
    assert_eq!(&parsed.pcm[..], &streamed[44..], "the same audio as the streamed WAV");
}

/// A narration is charged response by response and stops between segments once the budget is
/// spent: the NDJSON stream ends with `relay_budget_exhausted` after the first segment, the account
/// holds that one response's usage (a cut narration is not free), and the next narration is 429.
#[tokio::test]
async fn a_narration_is_charged_as_it_goes_and_stops_when_the_budget_is_spent() {
    let path = std::env::temp_dir().join(format!("narrate-budget-{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &path,
        "default_profile = \"p\"\n[profiles.p]\nlimits = { budget_tokens = 10 }\n",
    )
    .unwrap();
    let relay = relay(ServeArgs {
        policy: Some(path),
        ..args()
    })
    .await;
    let t = token("thrifty");
    let text = (1..=4)
        .map(|i| {
            format!(
                "Paragraph {i} has words enough of its own to be a segment. {}",
                "More words. ".repeat(60)
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let total = narrate::segments(&text, SEGMENT_CHARS).len();
    assert!(total >= 3, "{total} segments");
    let body = post(
        &relay.http_url(),
        Some(&t),
        "application/x-ndjson",
        json!({"text": text}),
    )
    .await
    .text()
    .await
    .unwrap();
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let segments: Vec<&Value> = lines.iter().filter(|l| l["type"] == "segment").collect();
    assert_eq!(segments.len(), 1, "one segment read, then the budget was spent");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "error", "{last}");
    assert_eq!(last["error"]["code"], "relay_budget_exhausted", "{last}");

    let usage = usage_of(&relay.http_url(), &t).await;
    assert_eq!(usage["usage"]["responses"], 1, "{usage}");
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() >= 10, "{usage}");
    let again = post(
        &relay.http_url(),
        Some(&t),
        "application/json",
        json!({"text": "More?"}),
    )
    .await;
    assert_eq!(again.status().as_u16(), 429);
}

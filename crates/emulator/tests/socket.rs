//! The emulator over real sockets: the handshake (keys, paths, refusals), full turns (text, and
//! server VAD on a recorded utterance), every fault mode, the test endpoints, shutdown, and errors.
//! Every server frame read here is checked to be a known GA event (see `common::check_known`).

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use realtime_emulator::{EmulatorConfig, Pacing, synth};
use realtime_protocol::{audio, wav};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "test-key-0123456789";

fn keyed() -> EmulatorConfig {
    EmulatorConfig {
        api_key: Some(KEY.into()),
        pacing: Pacing::Fast,
        ..Default::default()
    }
}

/// Drive one text turn on an open session: a user item, then a response, to `rate_limits.updated`.
/// Returns every event the turn produced.
async fn text_turn(c: &mut Client, text: &str) -> Vec<Value> {
    send_json(c, user_text(text)).await;
    let mut events = events_until(c, "conversation.item.done").await;
    send_json(c, json!({"type": "response.create"})).await;
    events.extend(events_until(c, "response.done").await);
    events.push(next_event(c).await);
    events
}

/// Check the events of a complete audio response (`response.created` … `rate_limits.updated`)
/// against the documented order.
fn assert_audio_response_order(events: &[Value]) {
    let t = types(events);
    let first_delta = t.iter().position(|t| t.ends_with(".delta")).expect("deltas");
    let last_delta = t.iter().rposition(|t| t.ends_with(".delta")).unwrap();
    assert_eq!(
        t[..first_delta],
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added"
        ]
    );
    assert!(
        t[first_delta..=last_delta]
            .iter()
            .all(|d| *d == "response.output_audio.delta" || *d == "response.output_audio_transcript.delta"),
        "{t:?}"
    );
    assert_eq!(
        t[last_delta + 1..],
        [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated"
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Handshake: keys, paths, model

#[tokio::test]
async fn without_a_key_configured_any_caller_is_accepted() {
    let emu = fast_emulator().await;
    let url = emu.url("gpt-realtime");
    for headers in [
        vec![],
        vec![("api-key", "whatever")],
        vec![("authorization", "Bearer nonsense")],
    ] {
        let (mut c, _) = try_connect(&url, &headers)
            .await
            .expect("accepted without a key configured");
        assert_eq!(next_event(&mut c).await["type"], "session.created");
    }
}

#[tokio::test]
async fn each_key_carrier_is_accepted() {
    let emu = emulator(keyed()).await;
    let url = emu.url("gpt-realtime");
    let bearer = format!("Bearer {KEY}");
    for headers in [[("api-key", KEY)], [("authorization", bearer.as_str())]] {
        let (mut c, _) = try_connect(&url, &headers).await.expect("the key is accepted");
        assert_eq!(next_event(&mut c).await["type"], "session.created", "{headers:?}");
    }
    // Azure's query parameter.
    let (mut c, _) = try_connect(&format!("{url}&api-key={KEY}"), &[])
        .await
        .expect("query key");
    assert_eq!(next_event(&mut c).await["type"], "session.created");

    // The browser's subprotocol: accepted, and the answer names `realtime`, never the key.
    let protocols = format!("realtime, openai-insecure-api-key.{KEY}, openai-beta.realtime-v1");
    let (mut c, response) = try_connect(&url, &[("sec-websocket-protocol", &protocols)])
        .await
        .expect("the key subprotocol is accepted");
    let chosen: Vec<&str> = response
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(chosen, ["realtime"]);
    for (name, value) in response.headers() {
        assert!(
            !value.to_str().unwrap_or("").contains(KEY),
            "the key is echoed in the response header {name}"
        );
    }
    assert_eq!(next_event(&mut c).await["type"], "session.created");
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_refused_with_401_before_the_upgrade() {
    let emu = emulator(keyed()).await;
    let url = emu.url("gpt-realtime");
    let wrong_protocol = "realtime, openai-insecure-api-key.wrong-key";
    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("api-key", "wrong-key")],
        &[("authorization", "Bearer wrong-key")],
        &[("authorization", KEY)], // not a Bearer credential
        &[("sec-websocket-protocol", wrong_protocol)],
    ];
    for headers in cases {
        let body = assert_refused(try_connect(&url, headers).await, 401);
        assert_eq!(body["error"]["code"], "401", "{headers:?}: {body}");
        assert!(
            !body.to_string().contains("wrong-key"),
            "the presented key is echoed: {body}"
        );
    }
    assert_refused(try_connect(&format!("{url}&api-key=wrong-key"), &[]).await, 401);
    // A refused handshake never became a session.
    assert_eq!(stats(&emu).await, (0, 0));
}

#[tokio::test]
async fn both_paths_open_a_session_of_the_requested_model() {
    let emu = fast_emulator().await;
    let addr = emu.addr();
    for (path, model) in [
        ("/openai/v1/realtime", "gpt-realtime"),
        ("/v1/realtime", "gpt-realtime-mini"),
    ] {
        let (mut c, created) = connect_session(&format!("ws://{addr}{path}?model={model}")).await;
        assert_eq!(created["session"]["model"], model, "{path}");
        assert_eq!(created["session"]["type"], "realtime");
        assert!(created["session"]["id"].as_str().unwrap().starts_with("sess_"));
        // The session is live on that path.
        send_json(&mut c, user_text("hi")).await;
        assert_eq!(next_event(&mut c).await["type"], "conversation.item.added", "{path}");
    }
    // Azure's beta spelling of the model parameter.
    let (_c, created) = connect_session(&format!("ws://{addr}/openai/v1/realtime?deployment=my-deployment")).await;
    assert_eq!(created["session"]["model"], "my-deployment");
    // No model at all: a 400 before the upgrade.
    let body = assert_refused(try_connect(&format!("ws://{addr}/openai/v1/realtime"), &[]).await, 400);
    assert_eq!(body["error"]["code"], "missing_model");
}

// ---------------------------------------------------------------------------------------------
// Turns

#[tokio::test]
async fn a_full_text_turn_over_the_socket() {
    let emu = fast_emulator().await;
    let (mut c, created) = connect_session(&emu.url("gpt-realtime")).await;
    assert_eq!(created["session"]["audio"]["output"]["voice"], "marin");

    send_json(
        &mut c,
        json!({"type": "session.update", "event_id": "evt_update", "session": {"type": "realtime", "instructions": "Read the text aloud.", "audio": {"output": {"voice": "alloy"}}}}),
    )
    .await;
    let updated = next_event(&mut c).await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["instructions"], "Read the text aloud.");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "alloy");
    assert_eq!(updated["session"]["id"], created["session"]["id"]);

    send_json(&mut c, user_text("Hello there, world.")).await;
    let added = next_event(&mut c).await;
    let done = next_event(&mut c).await;
    assert_eq!(
        types(&[added.clone(), done.clone()]),
        ["conversation.item.added", "conversation.item.done"]
    );
    assert!(added["previous_item_id"].is_null());
    let user_item = added["item"]["id"].as_str().unwrap().to_owned();
    assert_eq!(done["item"]["id"], user_item.as_str());
    assert_eq!(done["item"]["content"][0]["text"], "Hello there, world.");

    send_json(&mut c, json!({"type": "response.create"})).await;
    let mut events = events_until(&mut c, "response.done").await;
    events.push(next_event(&mut c).await);
    assert_audio_response_order(&events);

    // One response, one item, the narration read verbatim in the chosen voice.
    let response_id = events[0]["response"]["id"].as_str().unwrap();
    assert_eq!(events[0]["response"]["status"], "in_progress");
    let item_id = events[1]["item"]["id"].as_str().unwrap();
    assert_eq!(events[2]["previous_item_id"], user_item.as_str());
    let mut transcript = String::new();
    let mut pcm = Vec::new();
    for e in &events {
        if let Some(id) = e.get("response_id") {
            assert_eq!(id, response_id, "{e}");
        }
        match e["type"].as_str().unwrap() {
            "response.output_audio_transcript.delta" => transcript.push_str(e["delta"].as_str().unwrap()),
            "response.output_audio.delta" => {
                assert_eq!(e["item_id"], item_id);
                pcm.extend(audio::decode_base64(e["delta"].as_str().unwrap()).unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(transcript, "Hello there, world.");
    assert_eq!(
        pcm,
        audio::samples_to_bytes(&synth::render("Hello there, world.", "alloy"))
    );
    let done = &events[events.len() - 2]["response"];
    assert_eq!(done["id"], response_id);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["audio"]["output"]["voice"], "alloy");
    assert_eq!(done["output"][0]["id"], item_id);
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let limits = &events[events.len() - 1]["rate_limits"];
    assert!(limits.as_array().is_some_and(|l| !l.is_empty()), "{limits}");

    // The session goes on: a second response answers again.
    send_json(&mut c, json!({"type": "response.create"})).await;
    let again = events_until(&mut c, "response.done").await;
    assert_ne!(again[0]["response"]["id"], response_id);
    assert_eq!(again.last().unwrap()["response"]["status"], "completed");
}

/// The recorded utterance, as PCM16 24 kHz mono bytes.
fn speech_fixture() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/speech.wav");
    let bytes = std::fs::read(path).expect("tests/fixtures/speech.wav (scripts/make-speech-fixture.sh makes it)");
    let wav = wav::read_wav(&bytes).expect("a readable WAV");
    assert!(
        wav.is_api_format(),
        "the fixture must be 24 kHz mono 16-bit: {} Hz, {} ch, {} bit",
        wav.sample_rate,
        wav.channels,
        wav.bits_per_sample
    );
    wav.pcm
}

/// Where the speech is, by this test's own measure: the first and last 10 ms frame louder than
/// −40 dBFS (ms from the start, the end being the end of the last loud frame).
fn speech_span_ms(pcm: &[u8]) -> (u64, u64) {
    let frame = audio::ms_to_bytes(10);
    let loud: Vec<u64> = pcm
        .chunks_exact(frame)
        .enumerate()
        .filter(|(_, f)| audio::rms(f) > 0.01)
        .map(|(i, _)| i as u64 * 10)
        .collect();
    (*loud.first().expect("some speech"), loud.last().unwrap() + 10)
}

#[tokio::test]
async fn server_vad_detects_the_recorded_utterance_and_answers() {
    let pcm = speech_fixture();
    let total_ms = audio::bytes_to_ms(pcm.len());
    let (onset_ms, end_ms) = speech_span_ms(&pcm);
    assert!(
        onset_ms >= 500 && total_ms - end_ms >= 500,
        "the fixture has silence around the speech"
    );

    let emu = fast_emulator().await;
    let (c, created) = connect_session(&emu.url("gpt-realtime")).await;
    let td = &created["session"]["audio"]["input"]["turn_detection"];
    assert_eq!(td["type"], "server_vad");
    let padding = td["prefix_padding_ms"].as_u64().unwrap();
    let silence = td["silence_duration_ms"].as_u64().unwrap();

    // Stream it as 40 ms appends, as fast as the socket takes them (the VAD runs on audio time),
    // while reading the answers.
    let (mut tx, mut rx) = c.split();
    let chunks: Vec<String> = pcm.chunks(audio::ms_to_bytes(40)).map(audio::encode_base64).collect();
    let writer = tokio::spawn(async move {
        for chunk in chunks {
            let append = json!({"type": "input_audio_buffer.append", "audio": chunk});
            tx.send(Message::text(append.to_string())).await.expect("append");
        }
        tx
    });
    let mut events = Vec::new();
    loop {
        let frame = tokio::time::timeout(WAIT, rx.next())
            .await
            .expect("an event in time")
            .expect("the socket stays open")
            .expect("no socket error");
        let Message::Text(text) = frame else {
            continue;
        };
        let e = check_known(text.as_str());
        let end = e["type"] == "rate_limits.updated";
        events.push(e);
        if end {
            break;
        }
    }
    let tx = tokio::time::timeout(WAIT, writer)
        .await
        .expect("all audio sent")
        .unwrap();
    let mut c = tx.reunite(rx).unwrap();

    let t = types(&events);
    assert_eq!(
        t[..6],
        [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created"
        ],
        "{t:?}"
    );
    assert_audio_response_order(&events[5..]);
    assert_eq!(
        t.iter().filter(|t| t.contains("speech_")).count(),
        2,
        "one turn only: {t:?}"
    );

    let (started, stopped) = (&events[0], &events[1]);
    let start_ms = started["audio_start_ms"].as_u64().unwrap();
    let expected_start = onset_ms.saturating_sub(padding);
    assert!(
        start_ms.abs_diff(expected_start) <= 150,
        "speech_started at {start_ms} ms; the speech begins at {onset_ms} ms, less {padding} ms of padding"
    );
    let stop_ms = stopped["audio_end_ms"].as_u64().unwrap();
    let expected_stop = end_ms + silence;
    assert!(
        stop_ms.abs_diff(expected_stop) <= 150,
        "speech_stopped at {stop_ms} ms; the speech ends at {end_ms} ms, plus {silence} ms of silence"
    );
    assert!(stop_ms <= total_ms);
    let item_id = started["item_id"].as_str().unwrap();
    assert_eq!(stopped["item_id"], item_id);
    assert_eq!(events[2]["item_id"], item_id);
    assert_eq!(events[3]["item"]["id"], item_id);
    assert_eq!(events[3]["item"]["role"], "user");
    assert_eq!(events[3]["item"]["content"][0]["type"], "input_audio");

    // The automatic answer says how much audio the committed turn held: audio_start_ms to audio_end_ms.
    let said = events
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .unwrap()["transcript"]
        .as_str()
        .unwrap();
    assert_eq!(
        said,
        format!("I heard {:.1} seconds of audio.", (stop_ms - start_ms) as f64 / 1000.0)
    );
    assert_eq!(events[events.len() - 2]["response"]["status"], "completed");

    // The session goes on, and what followed audio_end_ms stayed in the input buffer.
    let left_ms = audio::bytes_to_ms(pcm.len() - audio::ms_to_bytes(stop_ms));
    send_json(&mut c, json!({"type": "input_audio_buffer.commit"})).await;
    let answer = next_event(&mut c).await;
    if left_ms >= 100 {
        assert_eq!(answer["type"], "input_audio_buffer.committed", "{answer}");
        let reply_item = events
            .iter()
            .find(|e| e["type"] == "response.output_item.added")
            .unwrap();
        assert_eq!(answer["previous_item_id"], reply_item["item"]["id"]);
    } else {
        assert_eq!(answer["error"]["code"], "input_audio_buffer_commit_empty", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left_ms}"))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn reject_refuses_the_handshake_with_that_status_and_a_json_body() {
    let emu = fast_emulator().await;
    for status in [401u16, 429, 500] {
        let body = assert_refused(
            try_connect(&format!("{}&fault=reject={status}", emu.url("gpt-realtime")), &[]).await,
            status,
        );
        assert_eq!(body["error"]["code"], status.to_string());
        // The same through the model name.
        let url = emu.url(&format!("gpt-realtime~reject={status}"));
        assert_refused(try_connect(&url, &[]).await, status);
    }
    assert_eq!(stats(&emu).await, (0, 0), "no session was opened");
    // A spec the emulator does not know is refused too, rather than ignored.
    let body = assert_refused(
        try_connect(&format!("{}&fault=explode=1", emu.url("gpt-realtime")), &[]).await,
        400,
    );
    assert_eq!(body["error"]["code"], "invalid_fault");
}

#[tokio::test]
async fn handshake_delay_still_opens_the_session() {
    let emu = fast_emulator().await;
    let (mut c, created) = connect_session(&format!("{}&fault=handshake-delay=200", emu.url("gpt-realtime"))).await;
    assert_eq!(created["session"]["model"], "gpt-realtime");
    let events = text_turn(&mut c, "hi").await;
    assert_eq!(events.last().unwrap()["type"], "rate_limits.updated");
}

#[tokio::test]
async fn close_after_n_events_closes_with_1011() {
    let emu = fast_emulator().await;
    // N = 2: session.created, then the answer to a session.update.
    let mut c = connect(&format!("{}&fault=close-after=2", emu.url("gpt-realtime"))).await;
    assert_eq!(next_event(&mut c).await["type"], "session.created");
    send_json(
        &mut c,
        json!({"type": "session.update", "session": {"type": "realtime"}}),
    )
    .await;
    let (events, end) = events_until_end(&mut c).await;
    assert_eq!(types(&events), ["session.updated"]);
    assert!(matches!(end, Frame::Close(Some((1011, _)))), "{end:?}");

    // N = 6, in the middle of a response.
    let mut c = connect(&format!("{}&fault=close-after=6", emu.url("gpt-realtime"))).await;
    send_json(&mut c, user_text("Tell me something.")).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    let (events, end) = events_until_end(&mut c).await;
    assert_eq!(
        types(&events),
        [
            "session.created",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
            "response.output_item.added",
            "conversation.item.added"
        ]
    );
    assert!(matches!(end, Frame::Close(Some((1011, _)))), "{end:?}");
}

#[tokio::test]
async fn faults_in_the_model_name_apply_and_the_model_is_reported_without_them() {
    let emu = fast_emulator().await;
    let (mut c, created) = connect_session(&emu.url("gpt-realtime~close-after=2")).await;
    assert_eq!(created["session"]["model"], "gpt-realtime");
    send_json(
        &mut c,
        json!({"type": "session.update", "session": {"type": "realtime"}}),
    )
    .await;
    let (events, end) = events_until_end(&mut c).await;
    assert_eq!(types(&events), ["session.updated"]);
    assert!(matches!(end, Frame::Close(Some((1011, _)))), "{end:?}");

    // Both carriers at once: the model's and the query's faults are merged.
    let url = format!("{}&fault=close-after=3", emu.url("gpt-realtime-mini~error-after=1"));
    let (mut c, created) = connect_session(&url).await;
    assert_eq!(created["session"]["model"], "gpt-realtime-mini");
    let error = next_event(&mut c).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "server_error");
    send_json(&mut c, user_text("hi")).await;
    let (events, end) = events_until_end(&mut c).await;
    assert_eq!(types(&events), ["conversation.item.added", "conversation.item.done"]);
    assert!(matches!(end, Frame::Close(Some((1011, _)))), "{end:?}");
}

#[tokio::test]
async fn drop_after_n_events_ends_without_a_close_frame() {
    let emu = fast_emulator().await;
    let mut c = connect(&format!("{}&fault=drop-after=3", emu.url("gpt-realtime"))).await;
    send_json(&mut c, user_text("hi")).await;
    let (events, end) = events_until_end(&mut c).await;
    assert_eq!(
        types(&events),
        ["session.created", "conversation.item.added", "conversation.item.done"]
    );
    assert!(matches!(end, Frame::Reset), "expected no close frame, got {end:?}");
    eventually("the dropped session is no longer open", || async {
        stats(&emu).await.0 == 0
    })
    .await;
}

#[tokio::test]
async fn stall_after_n_events_sends_nothing_more_but_keeps_reading() {
    let emu = fast_emulator().await;
    let (mut c, created) = connect_session(&format!("{}&fault=stall-after=3", emu.url("gpt-realtime"))).await;
    let session_id = created["session"]["id"].as_str().unwrap().to_owned();
    send_json(&mut c, user_text("hi")).await;
    assert_eq!(
        types(&events_until(&mut c, "conversation.item.done").await),
        ["conversation.item.added", "conversation.item.done"]
    );
    send_json(
        &mut c,
        json!({"type": "response.create", "event_id": "evt_after_stall"}),
    )
    .await;
    // Absence is the behaviour under test: a bounded wait that must see nothing.
    let nothing = tokio::time::timeout(Duration::from_millis(500), c.next()).await;
    assert!(nothing.is_err(), "a stalled connection sent {:?}", nothing.unwrap());
    // Still open, and still reading: the response.create reached the session.
    assert_eq!(stats(&emu).await.0, 1);
    let path = format!("/emulator/sessions/{session_id}/events");
    eventually("the emulator recorded the response.create", || async {
        let (_, events) = get_json(&emu, &path).await;
        events
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["event_id"] == "evt_after_stall"))
    })
    .await;
}

#[tokio::test]
async fn error_after_n_events_sends_a_server_error_and_the_session_goes_on() {
    let emu = fast_emulator().await;
    let (mut c, _) = connect_session(&format!("{}&fault=error-after=1", emu.url("gpt-realtime"))).await;
    let error = next_event(&mut c).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["error"]["type"], "server_error");
    assert_eq!(error["error"]["code"], "server_error");
    assert!(
        error["error"]["event_id"].is_null(),
        "it answers no client event: {error}"
    );
    assert!(!error["error"]["message"].as_str().unwrap().is_empty());

    let events = text_turn(&mut c, "Are you still there?").await;
    assert_eq!(
        types(&events[..2]),
        ["conversation.item.added", "conversation.item.done"]
    );
    assert_audio_response_order(&events[2..]);
    assert_eq!(events[events.len() - 2]["response"]["status"], "completed");
    assert!(!types(&events).contains(&"error"), "only one injected error");
}

#[tokio::test]
async fn slow_events_still_arrive_all_and_in_order() {
    let emu = fast_emulator().await;
    let (mut c, _) = connect_session(&emu.url("gpt-realtime")).await;
    let normal = text_turn(&mut c, "Say something.").await;
    let (mut c, _) = connect_session(&format!("{}&fault=slow=2", emu.url("gpt-realtime"))).await;
    let slow = text_turn(&mut c, "Say something.").await;
    assert_eq!(types(&slow), types(&normal));
    assert_audio_response_order(&slow[2..]);
}

// ---------------------------------------------------------------------------------------------
// Test endpoints, shutdown, errors

#[tokio::test]
async fn stats_count_open_and_total_sessions() {
    let emu = fast_emulator().await;
    assert_eq!(stats(&emu).await, (0, 0));
    let (a, _) = connect_session(&emu.url("gpt-realtime")).await;
    assert_eq!(stats(&emu).await, (1, 1));
    let (mut b, _) = connect_session(&emu.url("gpt-realtime")).await;
    assert_eq!(stats(&emu).await, (2, 2));

    b.close(None).await.unwrap();
    // The server answers the close; after it the connection is over.
    assert!(matches!(next_frame(&mut b).await, Frame::Close(_) | Frame::Reset));
    eventually("one session open", || async { stats(&emu).await == (1, 2) }).await;
    drop(a); // not even a close frame
    eventually("no session open", || async { stats(&emu).await == (0, 2) }).await;

    let (status, health) = get_json(&emu, "/healthz").await;
    assert_eq!((status, health), (200, Value::Null), "plain `ok`");
}

#[tokio::test]
async fn session_events_lists_the_client_events_with_audio_elided() {
    let emu = fast_emulator().await;
    let (mut c, created) = connect_session(&emu.url("gpt-realtime")).await;
    let id = created["session"]["id"].as_str().unwrap().to_owned();
    let silence = vec![0u8; audio::ms_to_bytes(100)];
    send_json(
        &mut c,
        json!({"type": "input_audio_buffer.append", "event_id": "evt_1", "audio": audio::encode_base64(&silence)}),
    )
    .await;
    send_json(
        &mut c,
        json!({"type": "session.update", "event_id": "evt_2", "session": {"type": "realtime", "instructions": "Be brief."}}),
    )
    .await;
    // The emulator records a frame before answering it: once answered, both are recorded.
    assert_eq!(next_event(&mut c).await["type"], "session.updated");

    let (status, events) = get_json(&emu, &format!("/emulator/sessions/{id}/events")).await;
    assert_eq!(status, 200);
    assert_eq!(
        events,
        json!([
            {"type": "input_audio_buffer.append", "event_id": "evt_1", "audio": format!("<{} bytes>", silence.len())},
            {"type": "session.update", "event_id": "evt_2", "session": {"type": "realtime", "instructions": "Be brief."}}
        ])
    );
    let (status, body) = get_json(&emu, "/emulator/sessions/sess_nope/events").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "session_not_found");
}

#[tokio::test]
async fn shutdown_closes_open_sessions_with_1001() {
    // Realtime pacing and a reply of more than twice WAIT of audio: the response is certainly
    // still in flight when the emulator stops (it could not end before a wait here times out).
    let emu = emulator(EmulatorConfig::default()).await;
    let url = emu.url("gpt-realtime");
    let addr = emu.addr();
    let (mut c, _) = connect_session(&url).await;
    let story = "Tell me a long story about the sea, the sky, the wind and the rain, please. ".repeat(8);
    let reply_ms = audio::samples_to_ms(synth::render(&format!("You said: {story}"), "marin").len());
    assert!(
        reply_ms > 2 * WAIT.as_millis() as u64,
        "a {reply_ms} ms reply is too short"
    );
    send_json(&mut c, user_text(&story)).await;
    send_json(&mut c, json!({"type": "response.create"})).await;
    events_until(&mut c, "response.created").await;

    let stopping = tokio::spawn(emu.shutdown());
    let (events, end) = events_until_end(&mut c).await;
    assert!(
        !types(&events).contains(&"response.done"),
        "the response was cut by the shutdown: {:?}",
        types(&events)
    );
    assert!(matches!(end, Frame::Close(Some((1001, _)))), "{end:?}");
    tokio::time::timeout(WAIT, stopping)
        .await
        .expect("shutdown ends")
        .unwrap()
        .expect("a clean stop");
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn bad_input_gets_an_error_event_in_the_apis_shape_and_the_session_goes_on() {
    let emu = fast_emulator().await;
    let (mut c, _) = connect_session(&emu.url("gpt-realtime")).await;
    let cases: [(&str, &str, Option<&str>); 5] = [
        (
            r#"{"type":"foo.bar","event_id":"evt_a"}"#,
            "invalid_value",
            Some("type"),
        ),
        (
            r#"{"type":"input_audio_buffer.append","event_id":"evt_b"}"#,
            "missing_required_parameter",
            Some("audio"),
        ),
        (
            r#"{"type":"session.update","event_id":"evt_c","session":{"type":"realtime","audio":{"output":{"voice":"bob"}}}}"#,
            "invalid_value",
            Some("session.audio.output.voice"),
        ),
        (
            r#"{"type":"response.cancel","event_id":"evt_d"}"#,
            "response_cancel_not_active",
            None,
        ),
        ("{not json", "invalid_json", None),
    ];
    for (frame, code, param) in cases {
        c.send(Message::text(frame)).await.unwrap();
        let e = next_event(&mut c).await;
        assert_eq!(e["type"], "error", "{frame}: {e}");
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["type", "event_id", "error"] {
            assert!(keys.contains(&k), "{frame}: {k} missing: {e}");
        }
        let error = e["error"].as_object().unwrap();
        for k in ["type", "code", "message", "param", "event_id"] {
            assert!(error.contains_key(k), "{frame}: error.{k} missing: {e}");
        }
        assert_eq!(e["error"]["type"], "invalid_request_error", "{frame}: {e}");
        assert_eq!(e["error"]["code"], code, "{frame}: {e}");
        assert_eq!(e["error"]["param"].as_str(), param, "{frame}: {e}");
        let sent_id = serde_json::from_str::<Value>(frame)
            .ok()
            .and_then(|f| f["event_id"].as_str().map(str::to_owned));
        assert_eq!(e["error"]["event_id"].as_str(), sent_id.as_deref(), "{frame}: {e}");
        assert_ne!(
            e["event_id"].as_str(),
            sent_id.as_deref(),
            "the error has an id of its own"
        );
    }
    // A binary frame: the API speaks JSON text only.
    c.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let e = next_event(&mut c).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["code"], "invalid_event");

    // The session goes on.
    let events = text_turn(&mut c, "still here?").await;
    assert_eq!(events[events.len() - 2]["response"]["status"], "completed");
}

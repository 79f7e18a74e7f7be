//! The emulator's flows, on the pure session state machine (no sockets): the order of the events
//! of each flow, that every event is a known GA event, and the service's errors.

use realtime_emulator::session::RealtimeSession;
use realtime_emulator::synth;
use realtime_protocol::{ServerEvent, audio};
use serde_json::{Value, json};

fn new_session() -> RealtimeSession {
    RealtimeSession::new("gpt-realtime", 100, 1_700_000_000).0
}

/// Send a client event; return the events answered at once.
fn send(s: &mut RealtimeSession, event: Value) -> Vec<ServerEvent> {
    s.handle_text(&event.to_string())
}

/// Release the whole response in flight.
fn drain(s: &mut RealtimeSession) -> Vec<ServerEvent> {
    let mut out = Vec::new();
    while s.next_at_ms().is_some() {
        out.extend(s.pop_response_events());
    }
    out
}

fn types(events: &[ServerEvent]) -> Vec<&str> {
    events.iter().map(ServerEvent::event_type).collect()
}

/// Every event the emulator sends is a typed GA event that survives a round trip.
fn assert_all_known(events: &[ServerEvent]) {
    for e in events {
        let json = e.to_json();
        let again = ServerEvent::parse(&json).unwrap_or_else(|err| panic!("{json}: {err}"));
        assert!(!matches!(again, ServerEvent::Unknown(_)), "unknown event: {json}");
        assert!(e.event_id().is_some_and(|id| id.starts_with("event_")), "{json}");
    }
}

fn error_code(e: &ServerEvent) -> &str {
    match e {
        ServerEvent::Error(err) => err.error.code().unwrap_or(""),
        other => panic!("expected an error, got {}", other.event_type()),
    }
}

fn user_text(text: &str) -> Value {
    json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
}

fn speech(ms: u64) -> Vec<u8> {
    let samples: Vec<i16> = (0..audio::ms_to_samples(ms))
        .map(|i| ((i as f64 * 0.06).sin() * 7000.0) as i16)
        .collect();
    audio::samples_to_bytes(&samples)
}

fn append(s: &mut RealtimeSession, pcm: &[u8]) -> Vec<ServerEvent> {
    let mut out = Vec::new();
    for chunk in pcm.chunks(audio::ms_to_bytes(100)) {
        out.extend(send(
            s,
            json!({"type": "input_audio_buffer.append", "audio": audio::encode_base64(chunk)}),
        ));
    }
    out
}

#[test]
fn session_created_has_the_full_ga_session() {
    let (s, created) = RealtimeSession::new("gpt-realtime-mini", 100, 1_700_000_000);
    assert_all_known(std::slice::from_ref(&created));
    let v: Value = serde_json::from_str(&created.to_json()).unwrap();
    assert_eq!(v["type"], "session.created");
    assert_eq!(v["session"]["type"], "realtime");
    assert_eq!(v["session"]["object"], "realtime.session");
    assert_eq!(v["session"]["model"], "gpt-realtime-mini");
    assert_eq!(v["session"]["expires_at"], 1_700_003_600);
    assert_eq!(
        v["session"]["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
    assert_eq!(v["session"]["audio"]["input"]["turn_detection"]["type"], "server_vad");
    assert!(v["session"]["audio"]["input"]["transcription"].is_null());
    assert_eq!(v["session"]["audio"]["output"]["voice"], "marin");
    assert!(s.id().starts_with("sess_"));
}

#[test]
fn text_in_audio_out_has_the_documented_order() {
    let mut s = new_session();
    let updated = send(
        &mut s,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Read the text aloud.", "audio": {"output": {"voice": "alloy"}}}}),
    );
    assert_eq!(types(&updated), ["session.updated"]);
    let added = send(&mut s, user_text("Hello there, world."));
    assert_eq!(types(&added), ["conversation.item.added", "conversation.item.done"]);
    assert!(
        send(&mut s, json!({"type": "response.create"})).is_empty(),
        "response events are paced, not immediate"
    );
    let events = drain(&mut s);
    assert_all_known(&events);
    let t = types(&events);
    let deltas: Vec<&str> = t.iter().copied().filter(|t| t.ends_with(".delta")).collect();
    let first_delta = t.iter().position(|t| t.ends_with(".delta")).unwrap();
    let last_delta = t.iter().rposition(|t| t.ends_with(".delta")).unwrap();
    assert_eq!(
        &t[..first_delta],
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added"
        ]
    );
    assert!(
        deltas
            .iter()
            .all(|d| *d == "response.output_audio.delta" || *d == "response.output_audio_transcript.delta")
    );
    assert_eq!(
        &t[last_delta + 1..],
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
    // What was said: the text read verbatim, and audio that is exactly the synthesized voice.
    let mut transcript = String::new();
    let mut pcm = Vec::new();
    for e in &events {
        match e {
            ServerEvent::ResponseOutputAudioTranscriptDelta(d) => transcript.push_str(&d.delta),
            ServerEvent::ResponseOutputAudioDelta(d) => pcm.extend(audio::decode_base64(&d.delta).unwrap()),
            _ => {}
        }
    }
    assert_eq!(transcript, "Hello there, world.");
    assert_eq!(
        pcm,
        audio::samples_to_bytes(&synth::render("Hello there, world.", "alloy"))
    );
    let ServerEvent::ResponseDone(done) = &events[events.len() - 2] else {
        panic!()
    };
    let v = serde_json::to_value(&done.response).unwrap();
    assert_eq!(v["status"], "completed");
    assert_eq!(
        v["audio"]["output"]["voice"], "alloy",
        "the voice used is reported per response"
    );
    assert_eq!(
        v["output"][0]["content"][0],
        json!({"type": "output_audio", "transcript": "Hello there, world."})
    );
    assert_eq!(
        v["usage"]["output_token_details"]["audio_tokens"],
        audio::bytes_to_ms(pcm.len()).div_ceil(50)
    );
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
    // The assistant item is in the conversation, with its audio.
    let items = s.conversation().items();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].audio, pcm);
    assert_eq!(s.active_response_id(), None);
}

#[test]
fn text_modality_uses_output_text_events() {
    let mut s = new_session();
    send(&mut s, user_text("Hi"));
    send(
        &mut s,
        json!({"type": "response.create", "response": {"output_modalities": ["text"], "metadata": {"topic": "x"}}}),
    );
    let events = drain(&mut s);
    assert_all_known(&events);
    let t = types(&events);
    assert!(t.contains(&"response.output_text.delta") && t.contains(&"response.output_text.done"));
    assert!(!t.iter().any(|t| t.contains("audio")));
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::ResponseOutputTextDelta(d) => Some(d.delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "You said: Hi");
    let v: Value = serde_json::from_str(&events[0].to_json()).unwrap();
    assert_eq!(v["response"]["metadata"], json!({"topic": "x"}), "metadata is echoed");
}

#[test]
fn one_response_at_a_time_and_cancel() {
    let mut s = new_session();
    send(&mut s, user_text("Tell me a long story about the sea and the sky."));
    send(&mut s, json!({"type": "response.create"}));
    let first: Vec<_> = (0..6).flat_map(|_| s.pop_response_events()).collect();
    assert_eq!(first[0].event_type(), "response.created");
    let again = send(&mut s, json!({"type": "response.create", "event_id": "evt_2"}));
    assert_eq!(error_code(&again[0]), "conversation_already_has_active_response");
    let v: Value = serde_json::from_str(&again[0].to_json()).unwrap();
    assert_eq!(v["error"]["event_id"], "evt_2");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(s.active_response_id().unwrap())
    );

    let cancelled = send(&mut s, json!({"type": "response.cancel"}));
    assert_all_known(&cancelled);
    assert_eq!(
        types(&cancelled),
        [
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated"
        ]
    );
    let v: Value = serde_json::from_str(&cancelled[2].to_json()).unwrap();
    assert_eq!(v["response"]["status"], "cancelled");
    assert_eq!(v["response"]["status_details"]["reason"], "client_cancelled");
    assert_eq!(v["response"]["output"][0]["status"], "incomplete");
    assert!(drain(&mut s).is_empty(), "nothing more of the cancelled response");
    let none = send(&mut s, json!({"type": "response.cancel"}));
    assert_eq!(error_code(&none[0]), "response_cancel_not_active");
}

#[test]
fn server_vad_turn_commits_and_answers() {
    let mut s = new_session();
    let mut audio_in = vec![0u8; audio::ms_to_bytes(600)];
    audio_in.extend(speech(900));
    audio_in.extend(vec![0u8; audio::ms_to_bytes(800)]);
    let events = append(&mut s, &audio_in);
    assert_all_known(&events);
    assert_eq!(
        types(&events),
        [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done"
        ]
    );
    let (ServerEvent::InputAudioBufferSpeechStarted(start), ServerEvent::InputAudioBufferSpeechStopped(stop)) =
        (&events[0], &events[1])
    else {
        panic!()
    };
    assert_eq!(
        start.audio_start_ms, 300,
        "600 ms of silence less 300 ms of prefix padding"
    );
    assert_eq!(
        stop.audio_end_ms, 2000,
        "speech ends at 1500 ms, plus 500 ms of silence"
    );
    assert_eq!(start.item_id, stop.item_id);
    let ServerEvent::InputAudioBufferCommitted(c) = &events[2] else {
        panic!()
    };
    assert_eq!(c.item_id, start.item_id);
    // The committed item holds the turn's audio: from audio_start_ms to audio_end_ms, not the
    // silence before the prefix padding.
    assert_eq!(s.conversation().items()[0].audio.len(), audio::ms_to_bytes(1700));
    // create_response is on by default: the answer is under way.
    let answer = drain(&mut s);
    assert_eq!(answer[0].event_type(), "response.created");
    let said: String = answer
        .iter()
        .filter_map(|e| match e {
            ServerEvent::ResponseOutputAudioTranscriptDone(d) => Some(d.transcript.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(said, "I heard 1.7 seconds of audio.");
}

#[test]
fn a_later_turn_holds_only_its_own_audio_not_the_silence_since_the_last() {
    let mut s = new_session();
    let turn = |s: &mut RealtimeSession, silence_ms: u64, speech_ms: u64| {
        let mut pcm = vec![0u8; audio::ms_to_bytes(silence_ms)];
        pcm.extend(speech(speech_ms));
        pcm.extend(vec![0u8; audio::ms_to_bytes(800)]);
        let mut events = append(s, &pcm);
        events.extend(drain(s));
        events
    };
    turn(&mut s, 600, 900);
    // 6 s of silence (a muted microphone, a pause), then 1.2 s of speech.
    let events = turn(&mut s, 6000, 1200);
    let ms = |ty: &str, field: &str| {
        let e = events.iter().find(|e| e.event_type() == ty).unwrap();
        serde_json::to_value(e).unwrap()[field].as_u64().unwrap()
    };
    let (start, end) = (
        ms("input_audio_buffer.speech_started", "audio_start_ms"),
        ms("input_audio_buffer.speech_stopped", "audio_end_ms"),
    );
    assert_eq!(end - start, 300 + 1200 + 500, "padding, speech, silence to the stop");
    let user_items: Vec<_> = s
        .conversation()
        .items()
        .iter()
        .filter(|i| i.item.role() == Some("user"))
        .collect();
    assert_eq!(user_items[1].audio.len(), audio::ms_to_bytes(end - start));
    let said: String = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::ResponseOutputAudioTranscriptDone(d) => Some(d.transcript.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(said, "I heard 2.0 seconds of audio.");
}

#[test]
fn speech_during_a_response_interrupts_it() {
    let mut s = new_session();
    send(
        &mut s,
        user_text("Tell me a long story about the sea and the sky and the wind."),
    );
    send(&mut s, json!({"type": "response.create"}));
    // Release part of the response, some audio included.
    let mut released = Vec::new();
    while !released
        .iter()
        .any(|e: &ServerEvent| e.event_type() == "response.output_audio.delta")
    {
        released.extend(s.pop_response_events());
    }
    let events = append(&mut s, &speech(300));
    assert_eq!(
        types(&events),
        [
            "input_audio_buffer.speech_started",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated"
        ]
    );
    let v: Value = serde_json::from_str(&events[3].to_json()).unwrap();
    assert_eq!(v["response"]["status_details"]["reason"], "turn_detected");
    // The conversation keeps only the audio that was sent.
    let sent: usize = released
        .iter()
        .filter_map(|e| match e {
            ServerEvent::ResponseOutputAudioDelta(d) => Some(audio::decode_base64(&d.delta).unwrap().len()),
            _ => None,
        })
        .sum();
    assert_eq!(s.conversation().items()[1].audio.len(), sent);
}

#[test]
fn truncate_checks_the_audio_that_exists() {
    let mut s = new_session();
    send(&mut s, user_text("Hello there, how are you today?"));
    send(&mut s, json!({"type": "response.create"}));
    drain(&mut s);
    let item = s.conversation().items()[1].clone();
    let id = item.item.id().unwrap().to_owned();
    let have = item.audio_ms();
    let too_far = send(
        &mut s,
        json!({"type": "conversation.item.truncate", "item_id": id, "content_index": 0, "audio_end_ms": have + 500}),
    );
    assert_eq!(error_code(&too_far[0]), "invalid_value");
    let v: Value = serde_json::from_str(&too_far[0].to_json()).unwrap();
    assert_eq!(
        v["error"]["message"],
        format!("Audio content of {have}ms is already shorter than {}ms", have + 500)
    );
    let user_id = s.conversation().items()[0].item.id().unwrap().to_owned();
    let not_audio = send(
        &mut s,
        json!({"type": "conversation.item.truncate", "item_id": user_id, "content_index": 0, "audio_end_ms": 0}),
    );
    assert_eq!(error_code(&not_audio[0]), "invalid_value");
    let ok = send(
        &mut s,
        json!({"type": "conversation.item.truncate", "item_id": id, "content_index": 0, "audio_end_ms": 500}),
    );
    assert_all_known(&ok);
    assert_eq!(types(&ok), ["conversation.item.truncated"]);
    assert_eq!(s.conversation().items()[1].audio_ms(), 500);
    let missing = send(
        &mut s,
        json!({"type": "conversation.item.truncate", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 0}),
    );
    assert_eq!(error_code(&missing[0]), "item_not_found");
}

#[test]
fn the_voice_is_locked_once_audio_was_produced() {
    let mut s = new_session();
    let echo =
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "echo"}}}});
    assert_eq!(
        types(&send(&mut s, echo.clone())),
        ["session.updated"],
        "free before any audio"
    );
    send(&mut s, user_text("Hi"));
    send(&mut s, json!({"type": "response.create"}));
    drain(&mut s);
    let alloy =
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "alloy"}}}});
    assert_eq!(error_code(&send(&mut s, alloy)[0]), "cannot_update_voice");
    assert_eq!(
        types(&send(&mut s, echo)),
        ["session.updated"],
        "the same voice again is fine"
    );
    let per_response = send(
        &mut s,
        json!({"type": "response.create", "response": {"audio": {"output": {"voice": "sage"}}}}),
    );
    assert_eq!(error_code(&per_response[0]), "cannot_update_voice");
}

#[test]
fn the_session_type_is_fixed_at_creation() {
    let mut s = new_session();
    let to_transcription = json!({"type": "session.update", "session": {"type": "transcription"}});
    let refused = send(&mut s, to_transcription);
    assert_eq!(error_code(&refused[0]), "invalid_value");
    let realtime = json!({"type": "session.update", "session": {"type": "realtime", "instructions": "x"}});
    assert_eq!(types(&send(&mut s, realtime)), ["session.updated"]);
}

#[test]
fn function_call_then_output() {
    let mut s = new_session();
    send(
        &mut s,
        json!({"type": "session.update", "session": {"type": "realtime", "tools": [{"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]}}),
    );
    send(&mut s, user_text("Can you get_weather in Paris?"));
    send(&mut s, json!({"type": "response.create"}));
    let events = drain(&mut s);
    assert_all_known(&events);
    let t = types(&events);
    assert_eq!(
        t[0..3],
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added"
        ]
    );
    assert!(t.contains(&"response.function_call_arguments.delta"));
    let done = events
        .iter()
        .find_map(|e| match e {
            ServerEvent::ResponseFunctionCallArgumentsDone(d) => Some(d.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(done.name.get().map(String::as_str), Some("get_weather"));
    assert_eq!(done.arguments, r#"{"city":"Can you get_weather in Paris?"}"#);
    let deltas: String = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::ResponseFunctionCallArgumentsDelta(d) => Some(d.delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deltas, done.arguments);
    send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": done.call_id, "output": "sunny"}}),
    );
    send(&mut s, json!({"type": "response.create"}));
    let answer = drain(&mut s);
    assert!(answer.iter().any(|e| matches!(e, ServerEvent::ResponseOutputAudioTranscriptDone(d) if d.transcript == "The function returned: sunny.")));
}

#[test]
fn out_of_band_response_leaves_the_conversation_alone() {
    let mut s = new_session();
    send(&mut s, user_text("Hi"));
    send(
        &mut s,
        json!({"type": "response.create", "response": {"conversation": "none", "output_modalities": ["text"]}}),
    );
    let events = drain(&mut s);
    assert!(!types(&events).iter().any(|t| t.starts_with("conversation.")));
    let v: Value = serde_json::from_str(&events[0].to_json()).unwrap();
    assert!(v["response"]["conversation_id"].is_null());
    assert_eq!(s.conversation().items().len(), 1);
}

#[test]
fn max_output_tokens_cuts_the_reply() {
    let mut s = new_session();
    send(
        &mut s,
        user_text("Please say something rather long so that the limit has an effect on it."),
    );
    send(
        &mut s,
        json!({"type": "response.create", "response": {"max_output_tokens": 20}}),
    );
    let events = drain(&mut s);
    let v: Value = serde_json::from_str(&events[events.len() - 2].to_json()).unwrap();
    assert_eq!(v["response"]["status"], "incomplete");
    assert_eq!(v["response"]["status_details"]["reason"], "max_output_tokens");
    assert!(v["response"]["usage"]["output_tokens"].as_u64().unwrap() <= 20);
}

#[test]
fn manual_turns_and_transcription() {
    let mut s = new_session();
    let off = send(
        &mut s,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"turn_detection": null, "transcription": {"model": "whisper-1"}}}}}),
    );
    let v: Value = serde_json::from_str(&off[0].to_json()).unwrap();
    assert!(v["session"]["audio"]["input"]["turn_detection"].is_null());
    let early = send(&mut s, json!({"type": "input_audio_buffer.commit"}));
    assert_eq!(error_code(&early[0]), "input_audio_buffer_commit_empty");
    assert!(
        append(&mut s, &speech(1200)).is_empty(),
        "no VAD events with turn_detection null"
    );
    let committed = send(&mut s, json!({"type": "input_audio_buffer.commit"}));
    assert_all_known(&committed);
    assert_eq!(
        types(&committed),
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed"
        ]
    );
    let ServerEvent::InputAudioTranscriptionCompleted(t) = &committed[4] else {
        panic!()
    };
    assert_eq!(
        t.transcript,
        "[emulator transcript: 1.2 s of audio, no speech recognition]"
    );
    assert!(s.active_response_id().is_none(), "no automatic response in manual mode");
    assert_eq!(
        types(&send(&mut s, json!({"type": "input_audio_buffer.clear"}))),
        ["input_audio_buffer.cleared"]
    );
}

#[test]
fn items_are_created_retrieved_and_deleted() {
    let mut s = new_session();
    let a = send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"id": "item_a", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}]}}),
    );
    let v: Value = serde_json::from_str(&a[0].to_json()).unwrap();
    assert!(v["previous_item_id"].is_null());
    let b = send(
        &mut s,
        json!({"type": "conversation.item.create", "previous_item_id": "root", "item": {"id": "item_b", "type": "message", "role": "system", "content": [{"type": "input_text", "text": "b"}]}}),
    );
    assert_all_known(&b);
    assert_eq!(s.conversation().items()[0].item.id(), Some("item_b"));
    let dup = send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"id": "item_a", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "again"}]}}),
    );
    assert_eq!(error_code(&dup[0]), "item_id_already_exists");
    let got = send(
        &mut s,
        json!({"type": "conversation.item.retrieve", "item_id": "item_a"}),
    );
    assert_eq!(types(&got), ["conversation.item.retrieved"]);
    let deleted = send(&mut s, json!({"type": "conversation.item.delete", "item_id": "item_a"}));
    assert_eq!(types(&deleted), ["conversation.item.deleted"]);
    let gone = send(
        &mut s,
        json!({"type": "conversation.item.retrieve", "item_id": "item_a"}),
    );
    assert_eq!(error_code(&gone[0]), "item_not_found");
}

#[test]
fn bad_input_gets_the_services_errors_and_the_session_goes_on() {
    let mut s = new_session();
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("{not json", "invalid_json", None),
        (r#"{"type":"foo.bar","event_id":"e1"}"#, "invalid_value", Some("type")),
        (r#"{"event_id":"e2"}"#, "invalid_event", None),
        (
            r#"{"type":"input_audio_buffer.append","event_id":"e3"}"#,
            "missing_required_parameter",
            Some("audio"),
        ),
        (
            r#"{"type":"input_audio_buffer.append","audio":"%%%"}"#,
            "invalid_value",
            Some("audio"),
        ),
        (
            r#"{"type":"session.update","session":{"instructions":"x"}}"#,
            "missing_required_parameter",
            Some("session.type"),
        ),
        (
            r#"{"type":"session.update","session":{"type":"realtime","modalities":["text"]}}"#,
            "unknown_parameter",
            Some("session.modalities"),
        ),
        (
            r#"{"type":"session.update","session":{"type":"realtime","audio":{"output":{"voice":"bob"}}}}"#,
            "invalid_value",
            Some("session.audio.output.voice"),
        ),
        (
            r#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_text"}]}}"#,
            "missing_required_parameter",
            Some("item.content[0].text"),
        ),
        (
            r#"{"type":"conversation.item.delete","item_id":"nope"}"#,
            "item_not_found",
            Some("item_id"),
        ),
    ];
    for (frame, code, param) in cases {
        let out = s.handle_text(frame);
        assert_eq!(out.len(), 1, "{frame}");
        let v: Value = serde_json::from_str(&out[0].to_json()).unwrap();
        assert_eq!(v["type"], "error", "{frame}");
        assert_eq!(v["error"]["code"], code, "{frame}: {v}");
        assert_eq!(v["error"]["param"].as_str(), param, "{frame}: {v}");
        let keys: Vec<&str> = v["error"].as_object().unwrap().keys().map(String::as_str).collect();
        for k in ["type", "code", "message", "param", "event_id"] {
            assert!(keys.contains(&k), "{frame}: error.{k} missing");
        }
        let sent_id = serde_json::from_str::<Value>(frame)
            .ok()
            .and_then(|f| f["event_id"].as_str().map(str::to_owned));
        assert_eq!(v["error"]["event_id"].as_str(), sent_id.as_deref(), "{frame}");
    }
    assert_eq!(s.handle_binary()[0].event_type(), "error");
    assert_eq!(
        types(&send(&mut s, user_text("still here"))),
        ["conversation.item.added", "conversation.item.done"]
    );
}

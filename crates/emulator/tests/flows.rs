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
    assert!(answer.iter().any(|e| matches!(e, ServerEvent::ResponseOutputAudioTranscriptDone(d) if d.transcript == "The tool returned: sunny.")));
}

fn as_json(events: &[ServerEvent]) -> Vec<Value> {
    events
        .iter()
        .map(|e| serde_json::from_str(&e.to_json()).unwrap())
        .collect()
}

/// A session with two function tools: `get_weather(city)` and `get_time()`.
fn session_with_two_tools() -> RealtimeSession {
    let mut s = new_session();
    let updated = send(
        &mut s,
        json!({"type": "session.update", "session": {"type": "realtime", "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"type": "function", "name": "get_time", "description": "Time", "parameters": {"type": "object", "properties": {}}}
        ]}}),
    );
    assert_eq!(types(&updated), ["session.updated"]);
    s
}

/// The spoken answer of a response's events (its final transcript).
fn transcript(events: &[ServerEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        ServerEvent::ResponseOutputAudioTranscriptDone(d) => Some(d.transcript.clone()),
        _ => None,
    })
}

#[test]
fn several_named_tools_make_one_call_each_in_the_order_of_the_text() {
    let mut s = session_with_two_tools();
    let ask = "What is the get_time, and the get_weather in Paris?";
    send(&mut s, user_text(ask));
    let user_id = s.conversation().last_id().unwrap();
    send(&mut s, json!({"type": "response.create"}));
    let events = drain(&mut s);
    assert_all_known(&events);
    // Each call's whole sequence, one after the other: `get_time`'s arguments `{}` come in two
    // deltas (one per character), `get_weather`'s in three.
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated"
        ]
    );
    let v = as_json(&events);
    let response_id = v[0]["response"]["id"].as_str().unwrap().to_owned();
    let (first, second) = (&v[1]["item"], &v[8]["item"]);
    assert_eq!(first["type"], "function_call");
    assert_eq!(first["name"], "get_time");
    assert_eq!(first["status"], "in_progress");
    assert_eq!(second["name"], "get_weather");
    let (id1, id2) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    let (call1, call2) = (first["call_id"].as_str().unwrap(), second["call_id"].as_str().unwrap());
    assert!(id1.starts_with("item_") && id2.starts_with("item_") && id1 != id2);
    assert!(call1.starts_with("call_") && call2.starts_with("call_") && call1 != call2);
    // Every event of the first call names the first item, index and call; then the second's.
    for (range, index, id, call) in [(1..8, 0, id1, call1), (8..16, 1, id2, call2)] {
        for e in &v[range] {
            let t = e["type"].as_str().unwrap();
            if t.starts_with("response.") {
                assert_eq!(e["response_id"], response_id.as_str(), "{e}");
                assert_eq!(e["output_index"], index, "{e}");
            }
            let item_id = e["item_id"].as_str().or(e["item"]["id"].as_str());
            assert_eq!(item_id, Some(id), "{e}");
            if t.starts_with("response.function_call_arguments") {
                assert_eq!(e["call_id"], call, "{e}");
            }
        }
    }
    // The second call follows the first in the conversation.
    assert_eq!(v[2]["previous_item_id"], user_id.as_str());
    assert_eq!(v[9]["previous_item_id"], id1);
    assert_eq!(v[15]["previous_item_id"], id1);
    assert_eq!(v[5]["name"], "get_time");
    assert_eq!(v[5]["arguments"], "{}");
    assert_eq!(v[13]["name"], "get_weather");
    assert_eq!(v[13]["arguments"], json!({"city": ask}).to_string());
    let deltas: String = v[10..13].iter().map(|e| e["delta"].as_str().unwrap()).collect();
    assert_eq!(deltas, v[13]["arguments"].as_str().unwrap());
    for done in [&v[6]["item"], &v[7]["item"], &v[14]["item"], &v[15]["item"]] {
        assert_eq!(done["status"], "completed");
    }
    assert_eq!(v[14]["item"]["arguments"], v[13]["arguments"]);
    // `response.done` lists every call, complete, in order.
    let done = &v[16]["response"];
    assert_eq!(done["status"], "completed");
    let output = done["output"].as_array().unwrap();
    assert_eq!(output.len(), 2);
    assert_eq!(output[0]["call_id"], call1);
    assert_eq!(output[0]["name"], "get_time");
    assert_eq!(output[1]["call_id"], call2);
    assert_eq!(output[1]["arguments"], v[13]["arguments"]);
    assert!(output.iter().all(|o| o["status"] == "completed"));
    assert!(s.active_response_id().is_none());
    let kinds: Vec<&str> = s.conversation().items().iter().map(|i| i.item.kind.as_str()).collect();
    assert_eq!(kinds, ["message", "function_call", "function_call"]);

    // Both outputs, then one response that answers from both, in conversation order.
    for (call, output) in [(call1, r#"{"time":"12:00"}"#), (call2, r#"{"sky":"sunny"}"#)] {
        let added = send(
            &mut s,
            json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call, "output": output}}),
        );
        assert_eq!(types(&added), ["conversation.item.added", "conversation.item.done"]);
    }
    send(&mut s, json!({"type": "response.create"}));
    let answer = drain(&mut s);
    assert_all_known(&answer);
    assert_eq!(
        transcript(&answer).as_deref(),
        Some(r#"The tools returned: {"time":"12:00"}; {"sky":"sunny"}."#)
    );
    // The next turn's single output is answered alone.
    send(&mut s, user_text("And the get_time now?"));
    send(&mut s, json!({"type": "response.create"}));
    let again = as_json(&drain(&mut s));
    let calls: Vec<&Value> = again
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["item"]["name"], "get_time");
    let call = calls[0]["item"]["call_id"].as_str().unwrap().to_owned();
    send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call, "output": "13:00"}}),
    );
    send(&mut s, json!({"type": "response.create"}));
    assert_eq!(transcript(&drain(&mut s)).as_deref(), Some("The tool returned: 13:00."));
}

#[test]
fn a_forced_tool_is_one_call_even_when_the_text_names_several() {
    let mut s = session_with_two_tools();
    send(&mut s, user_text("get_time and get_weather"));
    send(
        &mut s,
        json!({"type": "response.create", "response": {"tool_choice": {"type": "function", "name": "get_weather"}}}),
    );
    let v = as_json(&drain(&mut s));
    let added: Vec<&Value> = v.iter().filter(|e| e["type"] == "response.output_item.added").collect();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["item"]["name"], "get_weather");
    let done = v.iter().find(|e| e["type"] == "response.done").unwrap();
    assert_eq!(done["response"]["output"].as_array().unwrap().len(), 1);
}

#[test]
fn response_create_before_the_calls_response_done_is_refused() {
    let mut s = session_with_two_tools();
    send(&mut s, user_text("get_time and get_weather"));
    send(&mut s, json!({"type": "response.create"}));
    // Release the first call through its arguments' done: the response is still active.
    let mut early = Vec::new();
    while !matches!(early.last(), Some(ServerEvent::ResponseFunctionCallArgumentsDone(_))) {
        let next = s.pop_response_events();
        assert!(!next.is_empty(), "the arguments' done never came");
        early.extend(next);
    }
    let call_id = match early.last() {
        Some(ServerEvent::ResponseFunctionCallArgumentsDone(d)) => d.call_id.clone(),
        _ => unreachable!(),
    };
    let active = s.active_response_id().unwrap().to_owned();
    // The call's output may be added once its item has arrived; a response may not be created.
    let output = send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": "noon"}}),
    );
    assert_eq!(types(&output), ["conversation.item.added", "conversation.item.done"]);
    let refused = send(&mut s, json!({"type": "response.create", "event_id": "evt_early"}));
    assert_eq!(types(&refused), ["error"]);
    assert_eq!(error_code(&refused[0]), "conversation_already_has_active_response");
    let v = &as_json(&refused)[0];
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["event_id"], "evt_early");
    assert!(v["error"]["message"].as_str().unwrap().contains(&active));
    // The response goes on unharmed to its `response.done`, listing both calls.
    let rest = as_json(&drain(&mut s));
    let done = rest.iter().find(|e| e["type"] == "response.done").unwrap();
    assert_eq!(done["response"]["id"], active.as_str());
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(done["response"]["output"].as_array().unwrap().len(), 2);
    // After it, a response may be created.
    assert!(send(&mut s, json!({"type": "response.create"})).is_empty());
    assert!(s.active_response_id().is_some_and(|id| id != active));
}

#[test]
fn cancelling_during_the_second_call_closes_it_and_lists_both() {
    let mut s = session_with_two_tools();
    send(&mut s, user_text("get_time and get_weather"));
    send(&mut s, json!({"type": "response.create"}));
    let mut sent = Vec::new();
    // Through the second call's `conversation.item.added`.
    while types(&sent).iter().filter(|t| **t == "conversation.item.added").count() < 2 {
        sent.extend(s.pop_response_events());
    }
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
    let v = as_json(&cancelled);
    assert_eq!(v[0]["output_index"], 1);
    assert_eq!(v[0]["item"]["name"], "get_weather");
    assert_eq!(v[0]["item"]["status"], "incomplete");
    let output = v[2]["response"]["output"].as_array().unwrap();
    assert_eq!(v[2]["response"]["status"], "cancelled");
    assert_eq!(output.len(), 2);
    assert_eq!(
        (output[0]["name"].as_str(), output[0]["status"].as_str()),
        (Some("get_time"), Some("completed"))
    );
    assert_eq!(
        (output[1]["name"].as_str(), output[1]["status"].as_str()),
        (Some("get_weather"), Some("incomplete"))
    );
    assert!(drain(&mut s).is_empty());
}

#[test]
fn an_output_for_an_unknown_call_is_accepted_as_the_service_does() {
    // The published contract says nothing of an output whose `call_id` matches no call: it is
    // accepted as any item, and the model answers from it.
    let mut s = new_session();
    send(&mut s, user_text("Hi"));
    let added = send(
        &mut s,
        json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_nobody", "output": "42"}}),
    );
    assert_all_known(&added);
    assert_eq!(types(&added), ["conversation.item.added", "conversation.item.done"]);
    send(&mut s, json!({"type": "response.create"}));
    assert_eq!(transcript(&drain(&mut s)).as_deref(), Some("The tool returned: 42."));
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

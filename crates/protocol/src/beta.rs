//! The beta (preview) protocol's event names and how they map to GA.
//!
//! Many clients still speak the beta protocol (Azure's preview endpoint, `OpenAI-Beta: realtime=v1`).
//! Six server events were renamed for GA; a few exist only on one side. The relay uses this table
//! to translate names; the session's shape also changed (`modalities` → `output_modalities`,
//! top-level `voice` → `audio.output.voice`…), which is a translation of its own.

/// `(beta name, GA name)` for the server events that were renamed.
pub const SERVER_RENAMES: &[(&str, &str)] = &[
    ("response.audio.delta", "response.output_audio.delta"),
    ("response.audio.done", "response.output_audio.done"),
    (
        "response.audio_transcript.delta",
        "response.output_audio_transcript.delta",
    ),
    (
        "response.audio_transcript.done",
        "response.output_audio_transcript.done",
    ),
    ("response.text.delta", "response.output_text.delta"),
    ("response.text.done", "response.output_text.done"),
];

/// Events of the beta protocol with no GA counterpart.
pub const BETA_ONLY: &[&str] = &[
    "transcription_session.update",
    "transcription_session.updated",
    "transcription_session.created",
];

/// GA server events that a beta client has never heard of. `conversation.item.added` is the GA
/// counterpart of beta's `conversation.item.created`, which GA servers still send too.
pub const GA_ONLY: &[&str] = &[
    "conversation.item.added",
    "conversation.item.done",
    "input_audio_buffer.timeout_triggered",
    "input_audio_buffer.dtmf_event_received",
    "conversation.item.input_audio_transcription.segment",
    "mcp_list_tools.in_progress",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.in_progress",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
];

/// The GA name of a beta server event, when it was renamed.
pub fn ga_name(beta: &str) -> Option<&'static str> {
    SERVER_RENAMES.iter().find(|(b, _)| *b == beta).map(|(_, g)| *g)
}

/// The beta name of a GA server event, when it was renamed.
pub fn beta_name(ga: &str) -> Option<&'static str> {
    SERVER_RENAMES.iter().find(|(_, g)| *g == ga).map(|(b, _)| *b)
}

/// The GA name for any event type: renamed beta names are mapped, everything else is unchanged.
pub fn to_ga(event_type: &str) -> &str {
    ga_name(event_type).unwrap_or(event_type)
}

/// The beta name for any event type: renamed GA names are mapped, everything else is unchanged.
pub fn to_beta(event_type: &str) -> &str {
    beta_name(event_type).unwrap_or(event_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_are_a_bijection() {
        for (b, g) in SERVER_RENAMES {
            assert_eq!(ga_name(b), Some(*g));
            assert_eq!(beta_name(g), Some(*b));
            assert_eq!(to_beta(to_ga(b)), *b);
        }
        assert_eq!(to_ga("session.created"), "session.created");
    }
}

// The `session.update` a voice conversation sends once the session is created (GA Realtime API
// shape), a typed message's events, and the voices a person can pick. (Narration goes through
// POST /api/narrate, whose settings are the relay's own.) A relay policy may own some of these settings: it then refuses
// the update with `relay_field_locked` and its own settings stay in force.

export const VOICES = ['alloy', 'ash', 'ballad', 'coral', 'echo', 'sage', 'shimmer', 'verse', 'marin', 'cedar'];

const PCM = { type: 'audio/pcm', rate: 24000 };

/** Live voice: server VAD turns, transcripts of both sides, spoken answers. */
export function voiceSession(voice) {
  return {
    type: 'session.update',
    session: {
      type: 'realtime',
      instructions: 'You are a helpful voice assistant. Answer briefly and clearly.',
      output_modalities: ['audio'],
      audio: {
        input: {
          format: PCM,
          turn_detection: {
            type: 'server_vad',
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
          },
          transcription: { model: 'gpt-4o-mini-transcribe' },
        },
        output: { format: PCM, voice },
      },
    },
  };
}

/** A typed user message and the request to answer it. */
export function userText(text) {
  return [
    {
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] },
    },
    { type: 'response.create' },
  ];
}

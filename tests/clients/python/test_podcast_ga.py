"""The podcast seed's backend (seed 000) with PyPI openai's GA client, through the plain relay:
`AsyncOpenAI(websocket_base_url=..., api_key=...)` and `client.realtime.connect(...)`. The seed's
code runs verbatim (only `endpoint`, `api_key` and `prompt` are given to it, as its app does);
a recorder on the connection's recv() is the witness of every event it got, so that an `error`
event, which the seed's loop ignores, still fails the test. Run in the newest openai's venv."""

import asyncio
import base64

from openai.resources.realtime.realtime import AsyncRealtimeConnection

from clientlib import (
    INSTRUCTIONS, PROMPT, assert_answered, assert_no_errors, assert_heard, b64, chunks, plain_relay, read_until_done, speech_pcm,
    token,
)
from openai import AsyncOpenAI


def record_events():
    """Every event any AsyncRealtimeConnection receives, appended to the returned list."""
    seen = []
    original = AsyncRealtimeConnection.recv

    async def recv(self):
        event = await original(self)
        seen.append(event)
        return event

    AsyncRealtimeConnection.recv = recv
    return seen, lambda: setattr(AsyncRealtimeConnection, "recv", original)


async def podcast(endpoint: str, api_key: str, prompt: str):
    # --- seed 000, "后端音频生成", verbatim from here ---
    # Convert HTTPS endpoint to WebSocket URL
    ws_url = endpoint.replace("https://", "wss://") + "/openai/v1"

    client = AsyncOpenAI(
        websocket_base_url=ws_url,
        api_key=api_key
    )

    audio_chunks = []
    transcript_parts = []

    async with client.realtime.connect(model="gpt-realtime-mini") as conn:
        # Configure for audio-only output
        await conn.session.update(session={
            "output_modalities": ["audio"],
            "instructions": "You are a narrator. Speak naturally."
        })

        # Send text to narrate
        await conn.conversation.item.create(item={
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": prompt}]
        })

        await conn.response.create()

        # Collect streaming events
        async for event in conn:
            if event.type == "response.output_audio.delta":
                audio_chunks.append(base64.b64decode(event.delta))
            elif event.type == "response.output_audio_transcript.delta":
                transcript_parts.append(event.delta)
            elif event.type == "response.done":
                break
    # --- end of the seed's code ---
    return b"".join(audio_chunks), "".join(transcript_parts)


def test_podcast_seed_verbatim():
    base = plain_relay()
    # The seed's endpoint is an https:// resource URL it turns into wss://; the plain relay is
    # http://, which its replace() leaves as it is, so it is handed the ws:// form.
    endpoint = base.replace("http://", "ws://")
    seen, restore = record_events()
    try:
        pcm, transcript = asyncio.run(asyncio.wait_for(podcast(endpoint, token(base), PROMPT), 60))
    finally:
        restore()
    assert_no_errors(seen)
    assert len(pcm) > 0 and len(pcm) % 2 == 0, f"audio: {len(pcm)} bytes"
    assert transcript.strip(), "no transcript"
    updated = [e for e in seen if e.type == "session.updated"]
    assert updated, f"no session.updated among [{', '.join(e.type for e in seen)}]"
    assert updated[-1].session.instructions == INSTRUCTIONS, "the seed's instructions were not applied"
    assert_answered(seen, "ga")


def test_ga_server_vad_on_speech():
    base = plain_relay()

    async def main():
        events = []
        client = AsyncOpenAI(websocket_base_url=base.replace("http://", "ws://") + "/openai/v1", api_key=token(base))
        async with client.realtime.connect(model="gpt-realtime-mini") as conn:
            await conn.session.update(
                session={
                    "type": "realtime",
                    "output_modalities": ["audio"],
                    "audio": {"input": {"turn_detection": {"type": "server_vad"}, "transcription": {"model": "whisper-1"}}},
                }
            )
            for chunk in chunks(speech_pcm()):
                await conn.input_audio_buffer.append(audio=b64(chunk))
            await read_until_done(conn, events)
        return events

    assert_heard(asyncio.run(main()), "ga")

"""PyPI openai's preview client, as Azure's quickstart (seed 003) runs it:
`AsyncAzureOpenAI(azure_endpoint=..., api_key=..., api_version="2024-10-01-preview")
.beta.realtime.connect(model=<deployment>)`, through the relay's TLS listener (the SDK opens
wss:// whatever the endpoint's scheme; the relay CA is trusted through SSL_CERT_FILE, set by
run.sh). Run in each venv: openai 1.61.1 and the newest."""

import asyncio

import openai
from openai import AsyncAzureOpenAI

from clientlib import (
    DEPLOYMENT, PREVIEW_API_VERSION, assert_answered, assert_heard, b64, chunks, read_until_done, speech_pcm,
    tls_relay, token,
)


def client() -> AsyncAzureOpenAI:
    base = tls_relay()
    return AsyncAzureOpenAI(azure_endpoint=base, api_key=token(base), api_version=PREVIEW_API_VERSION)


def test_beta_realtime_text_in_audio_out():
    async def main():
        events = []
        async with client().beta.realtime.connect(model=DEPLOYMENT) as connection:
            # The quickstart's session and turn, as written (its input() loop made one turn).
            await connection.session.update(session={"modalities": ["text", "audio"]})
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Please assist the user"}],
                }
            )
            await connection.response.create()
            await read_until_done(connection, events)
        return events

    events = asyncio.run(main())
    assert "session.created" in [e.type for e in events]
    assert_answered(events, "preview")
    print(f"openai {openai.__version__}: {len(events)} events")


def test_beta_realtime_server_vad_on_speech():
    async def main():
        events = []
        async with client().beta.realtime.connect(model=DEPLOYMENT) as connection:
            await connection.session.update(
                session={
                    "modalities": ["text", "audio"],
                    "turn_detection": {"type": "server_vad"},
                    "input_audio_transcription": {"model": "whisper-1"},
                }
            )
            for chunk in chunks(speech_pcm()):
                await connection.input_audio_buffer.append(audio=b64(chunk))
            await read_until_done(connection, events)
        return events

    assert_heard(asyncio.run(main()), "preview")

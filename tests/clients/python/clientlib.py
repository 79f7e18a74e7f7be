"""What the Python client tests share: the relays of this run (tests/clients/run.sh starts them and
says where in the environment), a dev token, the recorded speech, bounded waits, and assertions
on what a client received. The openai SDK itself does all the talking."""

import asyncio
import base64
import os
import re
import ssl
import urllib.request
import wave

DEPLOYMENT = "gpt-realtime"
PREVIEW_API_VERSION = "2024-10-01-preview"
PROMPT = "Please tell me, in one sentence, why lighthouses are painted in stripes."
INSTRUCTIONS = "You are a narrator. Speak naturally."
# Bounds a whole flow: a hang fails the test; no timing is asserted.
FLOW_TIMEOUT_S = 60


def plain_relay() -> str:
    url = os.environ.get("RELAY_URL")
    if not url:
        raise RuntimeError("RELAY_URL is not set: run these tests through tests/clients/run.sh")
    return url


def tls_relay() -> str:
    url = os.environ.get("RELAY_TLS_URL")
    if not url:
        why = os.environ.get("RELAY_TLS_ERROR") or "RELAY_TLS_URL is not set (run through tests/clients/run.sh)"
        raise RuntimeError(f"no TLS relay in this run: {why}")
    if not os.environ.get("SSL_CERT_FILE"):
        raise RuntimeError("SSL_CERT_FILE is not set: the relay CA is not trusted")
    return url


def token(base: str, user: str = "client-tests-py") -> str:
    """A dev-mode end-user token from that relay (GET /dev/token?user=NAME&format=text)."""
    context = ssl.create_default_context() if base.startswith("https:") else None
    with urllib.request.urlopen(f"{base}/dev/token?user={user}&format=text", timeout=10, context=context) as r:
        return r.read().decode().strip()


def speech_pcm() -> bytes:
    """The run's recorded speech (espeak-ng, made by run.sh) as 24 kHz mono PCM16."""
    path = os.environ.get("SPEECH_WAV")
    if not path:
        raise RuntimeError("SPEECH_WAV is not set: run these tests through tests/clients/run.sh")
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (1, 24000, 2), f"{path}: not 24 kHz mono PCM16"
        pcm = w.readframes(w.getnframes())
    assert len(pcm) > 24000 * 2, f"{path} holds less than a second of audio"
    return pcm


def chunks(pcm: bytes, size: int = 4800):
    for i in range(0, len(pcm), size):
        yield pcm[i : i + size]


def b64(chunk: bytes) -> str:
    return base64.b64encode(chunk).decode("ascii")


async def read_until_done(connection, events: list) -> list:
    """Every server event into `events` until response.done, bounded by FLOW_TIMEOUT_S."""

    async def read():
        async for event in connection:
            events.append(event)
            if event.type == "response.done":
                return events
        raise AssertionError(f"the connection ended before response.done: [{types(events)}]")

    try:
        return await asyncio.wait_for(read(), FLOW_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {FLOW_TIMEOUT_S} s waiting for response.done: [{types(events)}]")


def types(events) -> str:
    return ", ".join(e.type for e in events)


def assert_no_errors(events) -> None:
    errors = [e for e in events if e.type == "error"]
    assert not errors, f"error events: {[e.model_dump() if hasattr(e, 'model_dump') else e for e in errors]}"


NAMES = {
    "preview": ("response.audio.delta", "response.audio_transcript.delta"),
    "ga": ("response.output_audio.delta", "response.output_audio_transcript.delta"),
}


def assert_answered(events, dialect: str):
    """One completed answer with audio and its transcript, in `dialect`'s names, no error event."""
    audio_type, transcript_type = NAMES[dialect]
    assert_no_errors(events)
    if dialect == "preview":
        assert_preview_only(events)
    audio = sum(len(base64.b64decode(e.delta)) for e in events if e.type == audio_type)
    transcript = "".join(e.delta for e in events if e.type == transcript_type)
    done = [e for e in events if e.type == "response.done"]
    assert done, f"no response.done among [{types(events)}]"
    assert done[-1].response.status == "completed", f"response.done: {done[-1].response}"
    assert audio > 0, f"no audio bytes in {audio_type} among [{types(events)}]"
    assert audio % 2 == 0, "PCM16 audio comes in whole samples"
    assert transcript.strip(), f"no transcript in {transcript_type} among [{types(events)}]"
    return audio, transcript


def assert_heard(events, dialect: str):
    """VAD saw the speech start and stop, the buffer was committed, then an answer came."""
    order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed"]
    seen = [e.type for e in events]
    for t in order:
        assert t in seen, f"no {t} among [{types(events)}]"
    at = [seen.index(t) for t in order]
    assert at[0] < at[1] < at[2], f"VAD events out of order: [{types(events)}]"
    assert_no_errors(events)
    assert "response.created" in seen[at[1] :], f"no response.created after speech_stopped: [{types(events)}]"
    return assert_answered(events[at[1] :], dialect)


GA_ONLY = re.compile(
    r"^(response\.output_(audio|audio_transcript|text)\.|conversation\.item\.(added|done)$"
    r"|conversation\.item\.input_audio_transcription\.delta$)"
)


def assert_preview_only(events) -> None:
    """A preview session saw only preview event names, and its sessions in the preview shape."""
    ga = sorted({e.type for e in events if GA_ONLY.match(e.type)})
    assert not ga, f"GA-only events reached a preview client: {ga} among [{types(events)}]"
    for e in events:
        if e.type in ("session.created", "session.updated"):
            session = e.session.model_dump() if hasattr(e.session, "model_dump") else dict(e.session)
            extra = getattr(e.session, "model_extra", None) or {}
            session.update(extra)
            assert isinstance(session.get("modalities"), list), f"{e.type} has no preview `modalities`: {session}"
            assert session.get("type") is None and session.get("audio") is None, f"{e.type} is in the GA shape: {session}"

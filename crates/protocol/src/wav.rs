//! WAV files of the API's audio: a writer for whole files, a streaming writer for when the length is
//! not known yet (an HTTP response that starts before the narration ends), and a reader.
//!
//! The header is the canonical 44-byte RIFF/`fmt `/`data` layout for PCM16 24 kHz mono. A stream
//! whose length is unknown says `0xFFFFFFFF` in both size fields, as ffmpeg and browsers expect for
//! live WAV; [`WavStream::finalize`] writes the real sizes when the output can seek, and
//! [`read_wav`] accepts either form. Reading goes through `hound`.

use std::io::{self, Cursor, Seek, SeekFrom, Write};

use crate::ProtocolError;
use crate::audio::{BITS_PER_SAMPLE, BYTES_PER_SAMPLE, CHANNELS, SAMPLE_RATE};

/// Length of the header [`header`] writes.
pub const HEADER_LEN: usize = 44;
/// The size written in a streaming header, whose length is not known yet.
pub const UNKNOWN_SIZE: u32 = u32::MAX;

/// A 44-byte WAV header for `data_len` bytes of PCM16 24 kHz mono (`None`: not known yet).
pub fn header(data_len: Option<u32>) -> [u8; HEADER_LEN] {
    let data = data_len.unwrap_or(UNKNOWN_SIZE);
    let riff = data_len.map_or(UNKNOWN_SIZE, |d| d.saturating_add(36));
    let block_align = CHANNELS * BITS_PER_SAMPLE / 8;
    let byte_rate = SAMPLE_RATE * u32::from(block_align);
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&riff.to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&CHANNELS.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&BITS_PER_SAMPLE.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

/// A whole WAV file of the given PCM16 24 kHz mono bytes.
pub fn to_wav(pcm: &[u8]) -> Vec<u8> {
    let len = u32::try_from(pcm.len()).unwrap_or(UNKNOWN_SIZE - 36);
    let mut out = Vec::with_capacity(HEADER_LEN + pcm.len());
    out.extend_from_slice(&header(Some(len)));
    out.extend_from_slice(pcm);
    out
}

/// A WAV writer for audio whose length is not known when the first bytes must leave.
pub struct WavStream<W: Write> {
    out: W,
    data_len: u64,
}

impl<W: Write> WavStream<W> {
    /// Write a streaming header (sizes unknown) and return the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&header(None))?;
        Ok(WavStream { out, data_len: 0 })
    }

    /// Append PCM16 bytes.
    pub fn write_pcm(&mut self, pcm: &[u8]) -> io::Result<()> {
        self.out.write_all(pcm)?;
        self.data_len += pcm.len() as u64;
        Ok(())
    }

    /// Bytes of PCM written so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Flush and return the output, leaving the streaming sizes in the header.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Seek> WavStream<W> {
    /// Write the real sizes into the header (for files), then return the output.
    pub fn finalize(mut self) -> io::Result<W> {
        let data = u32::try_from(self.data_len).unwrap_or(UNKNOWN_SIZE - 36);
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&(data + 36).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&data.to_le_bytes())?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Audio read from a WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavAudio {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits_per_sample: u16,
    /// Little-endian 16-bit samples, interleaved if there are several channels.
    pub pcm: Vec<u8>,
}

impl WavAudio {
    /// Whether this is the API's own format (24 kHz, mono, 16-bit).
    pub fn is_api_format(&self) -> bool {
        self.sample_rate == SAMPLE_RATE && self.channels == CHANNELS && self.bits_per_sample == BITS_PER_SAMPLE
    }
}

/// Read a 16-bit PCM WAV file, including a streamed one whose header says its size is unknown.
pub fn read_wav(bytes: &[u8]) -> Result<WavAudio, ProtocolError> {
    let fixed;
    let bytes = if is_streaming_header(bytes) {
        let mut copy = bytes.to_vec();
        let data = (bytes.len() - HEADER_LEN) as u32;
        copy[4..8].copy_from_slice(&(data + 36).to_le_bytes());
        copy[40..44].copy_from_slice(&data.to_le_bytes());
        fixed = copy;
        &fixed[..]
    } else {
        bytes
    };
    let mut reader = hound::WavReader::new(Cursor::new(bytes))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(ProtocolError::WavFormat(format!(
            "{:?} {}-bit audio; only 16-bit PCM is supported",
            spec.sample_format, spec.bits_per_sample
        )));
    }
    let mut pcm = Vec::with_capacity(reader.len() as usize * BYTES_PER_SAMPLE);
    for sample in reader.samples::<i16>() {
        pcm.extend_from_slice(&sample?.to_le_bytes());
    }
    Ok(WavAudio {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        pcm,
    })
}

fn is_streaming_header(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN
        && &bytes[36..40] == b"data"
        && (bytes[40..44] == UNKNOWN_SIZE.to_le_bytes() || bytes[40..44] == [0; 4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::samples_to_bytes;

    fn tone() -> Vec<u8> {
        samples_to_bytes(
            &(0..2400)
                .map(|i| ((i as f64 * 0.1).sin() * 8000.0) as i16)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn whole_file_reads_back_with_hound() {
        let pcm = tone();
        let wav = to_wav(&pcm);
        assert_eq!(wav.len(), HEADER_LEN + pcm.len());
        let audio = read_wav(&wav).unwrap();
        assert!(audio.is_api_format());
        assert_eq!(audio.pcm, pcm);
    }

    #[test]
    fn streaming_then_finalized() {
        let pcm = tone();
        let mut w = WavStream::new(Cursor::new(Vec::new())).unwrap();
        for chunk in pcm.chunks(1000) {
            w.write_pcm(chunk).unwrap();
        }
        assert_eq!(w.data_len(), pcm.len() as u64);
        let file = w.finalize().unwrap().into_inner();
        assert_eq!(&file[40..44], &(pcm.len() as u32).to_le_bytes());
        assert_eq!(read_wav(&file).unwrap().pcm, pcm);
    }

    #[test]
    fn streaming_unfinalized_is_readable() {
        let pcm = tone();
        let mut w = WavStream::new(Vec::new()).unwrap();
        w.write_pcm(&pcm).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(&bytes[40..44], &[0xff; 4]);
        assert_eq!(read_wav(&bytes).unwrap().pcm, pcm);
    }

    #[test]
    fn refuses_float_wav() {
        let mut out = Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 24000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::new(&mut out, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        assert!(matches!(read_wav(out.get_ref()), Err(ProtocolError::WavFormat(_))));
    }
}

//! Narration into a WAV file (the `narrate` command): the header first, the PCM as it arrives, and
//! the real sizes written at the end — also when the narration fails part-way, so the file plays
//! and holds the audio read until then. A narration that fails before any audio leaves no file.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use realtime_protocol::audio;
use realtime_protocol::wav::WavStream;
use tokio::sync::mpsc;

use super::driver::{NarrateError, Progress, Summary, Unmetered, narrate};
use super::script::Part;
use crate::config::Limits;
use crate::upstream::Upstream;

/// Why a narration into a file failed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("writing {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Narration(NarrateError),
    #[error("{error} (the {:.1} s read before that are in {})", audio::bytes_to_ms(*audio_bytes as usize) as f64 / 1000.0, path.display())]
    Partial {
        error: NarrateError,
        path: PathBuf,
        audio_bytes: u64,
    },
}

/// Read `parts` aloud into a WAV file at `path`. `on_progress` sees every [`Progress`] with the
/// bytes of PCM written so far.
pub async fn narrate_to_file(
    upstream: &Upstream,
    limits: &Limits,
    model: &str,
    parts: &[Part],
    instructions: Option<&str>,
    path: &Path,
    mut on_progress: impl FnMut(&Progress, u64),
) -> Result<Summary, FileError> {
    let io_error = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::create(path).map_err(io_error)?;
    let mut wav = WavStream::new(BufWriter::new(file)).map_err(io_error)?;
    let (tx, mut rx) = mpsc::channel(64);
    let mut unmetered = Unmetered;
    let job = narrate(upstream, limits, model, parts, instructions, tx, &mut unmetered);
    let write = async {
        while let Some(p) = rx.recv().await {
            if let Progress::Audio(pcm) = &p {
                wav.write_pcm(pcm)?;
            }
            on_progress(&p, wav.data_len());
        }
        Ok::<_, io::Error>(())
    };
    let (narrated, written) = tokio::join!(job, write);
    // A write error drops the receiver, so the narration stops too (as abandoned): report the write.
    written.map_err(io_error)?;
    let audio_bytes = wav.data_len();
    wav.finalize().map_err(io_error)?;
    narrated.map_err(|error| {
        if audio_bytes > 0 {
            return FileError::Partial {
                error,
                path: path.to_owned(),
                audio_bytes,
            };
        }
        let _ = std::fs::remove_file(path);
        FileError::Narration(error)
    })
}

//! The `wav` source: a WAV file (any format `stt::wav` reads) played as if
//! it were a microphone: delivered at real pace from the moment it is
//! opened, then silence (empty reads) for as long as the listener runs.
//! Tests and demos use it (`voxd serve --audio-in FILE.wav`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{Source, SourceOptions, RATE};
use crate::audio::AudioError;
use crate::stt::wav;

pub struct FileSource {
    path: PathBuf,
    samples: Vec<f32>,
    /// Samples delivered.
    pos: usize,
    started: Instant,
}

pub fn open(options: &SourceOptions) -> Result<Box<dyn Source>, AudioError> {
    if options.file.as_os_str().is_empty() {
        return Err(AudioError::NoInputFile);
    }
    let audio = wav::read(options.file).map_err(|e| AudioError::Input(e.to_string()))?;
    tracing::info!(file = %options.file.display(), secs = audio.secs(), "audio input: WAV file");
    Ok(Box::new(FileSource {
        path: options.file.to_path_buf(),
        samples: audio.samples,
        pos: 0,
        started: Instant::now(),
    }))
}

impl Source for FileSource {
    fn read(&mut self, timeout: Duration) -> Result<Vec<f32>, AudioError> {
        if self.pos >= self.samples.len() {
            std::thread::sleep(timeout);
            return Ok(Vec::new());
        }
        // Deliver what a microphone would have by now, in 20 ms steps.
        let step = Duration::from_millis(20);
        let deadline = Instant::now() + timeout;
        loop {
            let due = (self.started.elapsed().as_secs_f64() * f64::from(RATE)) as usize;
            let due = due.min(self.samples.len());
            if due > self.pos {
                let out = self.samples[self.pos..due].to_vec();
                self.pos = due;
                return Ok(out);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            std::thread::sleep(step.min(deadline - now));
        }
    }

    fn describe(&self) -> String {
        format!("wav: {}", self.path.display())
    }
}

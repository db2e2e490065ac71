//! The `wav` sink: speech appended to a 16-bit mono WAV file, at the rate
//! of the first audio written (later audio at another rate is resampled).
//! The header is brought up to date after every utterance, so the file is
//! valid while the daemon runs.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{AudioError, Interrupter, Sink, SinkOptions};

pub struct WavSink {
    path: PathBuf,
    writer: Option<(hound::WavWriter<BufWriter<File>>, u32)>,
}

pub fn open(options: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    if options.file.as_os_str().is_empty() {
        return Err(AudioError::NoFile);
    }
    Ok(Box::new(WavSink::create(options.file)?))
}

impl WavSink {
    /// A sink that creates (or truncates) `path` at the first write. Fails
    /// now when the file's directory does not exist.
    pub fn create(path: &Path) -> Result<WavSink, AudioError> {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            if !dir.is_dir() {
                return Err(AudioError::File {
                    path: path.to_path_buf(),
                    message: format!("directory {} does not exist", dir.display()),
                });
            }
        }
        Ok(WavSink {
            path: path.to_path_buf(),
            writer: None,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> AudioError {
        AudioError::File {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Finishes the file (also done on drop, without the error).
    pub fn finalize(mut self) -> Result<(), AudioError> {
        match self.writer.take() {
            Some((writer, _)) => writer.finalize().map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
}

impl Sink for WavSink {
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError> {
        if self.writer.is_none() {
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: rate,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            let writer = hound::WavWriter::create(&self.path, spec).map_err(|e| self.err(e))?;
            self.writer = Some((writer, rate));
        }
        let file_rate = self.writer.as_ref().map_or(rate, |(_, r)| *r);
        let samples = super::resample(samples, rate, file_rate)?;
        let result = {
            let (writer, _) = self.writer.as_mut().expect("created above");
            let mut w = writer.get_i16_writer(samples.len() as u32);
            for s in super::to_i16(&samples) {
                w.write_sample(s);
            }
            w.flush()
        };
        result.map_err(|e| self.err(e))
    }

    fn drain(&mut self, _: &dyn Fn() -> bool) -> Result<(), AudioError> {
        let result = match self.writer.as_mut() {
            Some((writer, _)) => writer.flush(),
            None => Ok(()),
        };
        result.map_err(|e| self.err(e))
    }

    fn interrupter(&self) -> Interrupter {
        Arc::new(|| {})
    }
}

//! Audio in: one [`Source`] trait, one file per source, and the [`SOURCES`]
//! table that `listen.input` names an entry of (as [`super::SINKS`] does for
//! audio out). Every source delivers 16 kHz mono f32, converted from
//! whatever it reads by a streaming rubato resampler ([`To16k`]).
//!
//! Sources are opened and read on the listening thread (a capture stream
//! may not leave the thread that built it), never on the async runtime.

mod file;
mod mic;
mod stream;

use std::path::Path;
use std::time::Duration;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::AudioError;
use crate::events::Events;

pub use stream::{PcmChunk, PcmFeed};

/// The rate every source delivers.
pub const RATE: u32 = 16_000;

/// Somewhere audio comes from.
pub trait Source {
    /// Waits up to `timeout` for audio; returns the 16 kHz mono samples that
    /// arrived (empty when none did). A source that has nothing more (a
    /// file played to its end) returns empty reads: it idles.
    fn read(&mut self, timeout: Duration) -> Result<Vec<f32>, AudioError>;
    /// What it is, for `listen` status: `cpal: USB Mic`, `wav: /a.wav`.
    fn describe(&self) -> String;
}

/// What a source may be opened with.
pub struct SourceOptions<'a> {
    /// Capture device name (`listen.device`); empty means the default.
    pub device: &'a str,
    /// WAV file (`listen.file`).
    pub file: &'a Path,
    /// The bus a source reports device changes on (`listen.device`).
    pub events: &'a Events,
    /// Where socket clients' PCM arrives.
    pub feed: &'a PcmFeed,
}

/// One entry of the source table.
pub struct SourceKind {
    pub name: &'static str,
    pub about: &'static str,
    pub open: fn(&SourceOptions) -> Result<Box<dyn Source>, AudioError>,
}

/// Every source `listen.input` can name.
pub const SOURCES: &[SourceKind] = &[
    SourceKind {
        name: "cpal",
        about: "a capture device (listen.device); reopened when it comes back",
        open: mic::open,
    },
    SourceKind {
        name: "wav",
        about: "the WAV file listen.file, at real pace, then silence",
        open: file::open,
    },
    SourceKind {
        name: "socket",
        about: "16-bit PCM chunks sent with the `listen` command's `audio` action",
        open: stream::open,
    },
];

/// Opens the source named `name`.
pub fn open_source(name: &str, options: &SourceOptions) -> Result<Box<dyn Source>, AudioError> {
    let kind =
        SOURCES
            .iter()
            .find(|k| k.name == name)
            .ok_or_else(|| AudioError::UnknownSource {
                name: name.to_string(),
                known: SOURCES
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    (kind.open)(options)
}

/// Streaming conversion of interleaved audio at any rate and channel count
/// to 16 kHz mono: channels are averaged, the rate converted by rubato's
/// FFT resampler in fixed input chunks, its start-up delay dropped.
pub struct To16k {
    rate: u32,
    channels: usize,
    resampler: Option<Fft<f32>>,
    pending: Vec<f32>,
    /// Output samples still to drop (the resampler's delay).
    delay: usize,
}

impl To16k {
    pub fn new(rate: u32, channels: u16) -> Result<To16k, AudioError> {
        let err = |message: String| AudioError::Resample {
            from: rate,
            to: RATE,
            message,
        };
        if rate == 0 || channels == 0 {
            return Err(err(format!("{channels} channel(s) at {rate} Hz")));
        }
        let resampler = if rate == RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Input)
                    .map_err(|e| err(e.to_string()))?,
            )
        };
        let delay = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(To16k {
            rate,
            channels: usize::from(channels),
            resampler,
            pending: Vec::new(),
            delay,
        })
    }

    /// The input format.
    pub fn format(&self) -> (u32, u16) {
        (self.rate, self.channels as u16)
    }

    /// Converts `interleaved` samples (whole frames) and returns what is
    /// ready; a partial resampler chunk waits for the next call.
    pub fn push(&mut self, interleaved: &[f32]) -> Result<Vec<f32>, AudioError> {
        let channels = self.channels;
        // A device or client may send anything: NaN and infinities become
        // silence, the rest is clipped to [-1, 1] (the FFT needs finite input).
        let mono = interleaved.chunks_exact(channels).map(|frame| {
            let mean = frame.iter().sum::<f32>() / channels as f32;
            if mean.is_finite() {
                mean.clamp(-1.0, 1.0)
            } else {
                0.0
            }
        });
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(mono.collect());
        };
        self.pending.extend(mono);
        let mut out = Vec::new();
        let need = resampler.input_frames_next();
        let mut used = 0;
        while self.pending.len() - used >= need {
            let chunk = &self.pending[used..used + need];
            let err = |message: String| AudioError::Resample {
                from: self.rate,
                to: RATE,
                message,
            };
            let input = InterleavedSlice::new(chunk, 1, need).map_err(|e| err(e.to_string()))?;
            let converted = resampler
                .process(&input, None)
                .map_err(|e| err(e.to_string()))?;
            out.extend(converted.take_data());
            used += need;
        }
        self.pending.drain(..used);
        let skip = self.delay.min(out.len());
        self.delay -= skip;
        out.drain(..skip);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_conversion_keeps_timing_and_pitch() {
        // 1 s of a 440 Hz stereo tone at 44.1 kHz, in uneven pieces.
        let rate = 44_100;
        let tone: Vec<f32> = (0..rate)
            .flat_map(|i| {
                let s = (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5;
                [s, s]
            })
            .collect();
        let mut conv = To16k::new(rate, 2).unwrap();
        let mut out = Vec::new();
        for piece in tone.chunks(2 * 777) {
            out.extend(conv.push(piece).unwrap());
        }
        // All but the last partial chunk (< 1024 input frames) came out.
        assert!(
            (15_400..=16_000).contains(&out.len()),
            "{} samples",
            out.len()
        );
        let crossings = out[1000..15_000]
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        // 14000 samples = 0.875 s → 770 crossings.
        assert!((760..=780).contains(&crossings), "{crossings} crossings");
        // No delay at the start: the first sample is the tone's start.
        assert!(out[0].abs() < 0.05 && out[5] > 0.0, "{:?}", &out[..6]);
    }

    #[test]
    fn non_finite_samples_become_silence() {
        let mut conv = To16k::new(48_000, 1).unwrap();
        let junk: Vec<f32> = (0..4800)
            .map(|i| match i % 3 {
                0 => f32::NAN,
                1 => f32::INFINITY,
                _ => 7.0,
            })
            .collect();
        let out = conv.push(&junk).unwrap();
        assert!(!out.is_empty() && out.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn bad_formats_and_unknown_sources_are_clear_errors() {
        assert!(To16k::new(0, 1).is_err());
        assert!(To16k::new(16_000, 0).is_err());
        let events = Events::new(4);
        let feed = PcmFeed::default();
        let options = SourceOptions {
            device: "",
            file: Path::new(""),
            events: &events,
            feed: &feed,
        };
        let err = open_source("tape", &options).err().unwrap().to_string();
        assert!(err.contains("cpal, wav, socket"), "{err}");
        assert!(matches!(
            open_source("wav", &options).err(),
            Some(AudioError::NoInputFile)
        ));
    }
}

//! Audio in ([`input`]: the `Source` trait and its sources) and audio out:
//! one [`Sink`] trait, one file per sink, and the [`SINKS`]
//! table that `audio.output` names an entry of (the way librespot registers
//! its audio backends). Sinks are driven from the speech thread, never from
//! the async runtime; [`resample`] converts rates with rubato.
//!
//! This module may touch: sound devices (through cpal), the WAV files it is
//! told to write, and the event bus (the socket sink).

mod device;
pub mod input;
mod null;
mod socket;
mod wav;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use device::{input_devices, output_devices, DeviceInfo};
pub use socket::Tap;
pub use wav::WavSink;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("unknown audio output {name:?}; one of: {known}")]
    UnknownSink { name: String, known: String },
    #[error("no audio output device{}: {message}; list them with `voxd audio devices`, or write to a file with `voxd serve --audio-out FILE.wav`",
        if .device.is_empty() { String::new() } else { format!(" named {:?}", .device) })]
    NoDevice { device: String, message: String },
    #[error("no audio input device{}: {message}; list them with `voxd audio devices`, or listen to a file with `voxd serve --audio-in FILE.wav`",
        if .device.is_empty() { String::new() } else { format!(" named {:?}", .device) })]
    NoInputDevice { device: String, message: String },
    #[error("unknown audio input {name:?}; one of: {known}")]
    UnknownSource { name: String, known: String },
    #[error("listen.input = \"wav\" needs listen.file (or `voxd serve --audio-in FILE.wav`)")]
    NoInputFile,
    #[error("audio input: {0}")]
    Input(String),
    #[error("bad PCM chunk: {0}")]
    BadPcm(String),
    #[error("not listening to socket audio: start it with {{\"cmd\": \"listen\", \"action\": \"start\", \"input\": \"socket\"}}")]
    NotStreaming,
    #[error("audio device error: {0}")]
    Device(String),
    #[error("cannot write {path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("audio.output = \"wav\" needs audio.file (or `voxd serve --audio-out FILE.wav`)")]
    NoFile,
    #[error("cannot resample {from} Hz to {to} Hz: {message}")]
    Resample { from: u32, to: u32, message: String },
}

/// Drops audio that was written but not yet played; callable from any thread.
pub type Interrupter = Arc<dyn Fn() + Send + Sync>;

/// A piece of synthesised speech: mono samples in [-1, 1] at `rate` Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub samples: Vec<f32>,
    pub rate: u32,
}

/// Somewhere speech goes.
pub trait Sink {
    /// Queues mono samples in [-1, 1] at `rate` Hz. May buffer; returns
    /// once the samples are buffered, not played.
    fn write(&mut self, samples: &[f32], rate: u32) -> Result<(), AudioError>;
    /// Blocks until everything written has been played or stored, or until
    /// `cancelled()` returns true.
    fn drain(&mut self, cancelled: &dyn Fn() -> bool) -> Result<(), AudioError>;
    /// Audio written but not yet played. Sinks that store or forward
    /// audio at once (files, sockets) have none waiting.
    fn queued(&self) -> Duration {
        Duration::ZERO
    }
    /// The handle that stops playback at once (within one device buffer).
    fn interrupter(&self) -> Interrupter;
}

/// What a sink may be opened with.
pub struct SinkOptions<'a> {
    /// Output device name (`audio.device`); empty means the default.
    pub device: &'a str,
    /// WAV file (`audio.file`).
    pub file: &'a Path,
    /// Where the socket sink hands its audio to subscribers.
    pub tap: &'a Tap,
}

/// One entry of the sink table.
pub struct SinkKind {
    pub name: &'static str,
    pub about: &'static str,
    pub open: fn(&SinkOptions) -> Result<Box<dyn Sink>, AudioError>,
}

/// Every sink `audio.output` can name.
pub const SINKS: &[SinkKind] = &[
    SinkKind {
        name: "cpal",
        about: "a sound device (audio.device; resampled to the device's rate)",
        open: device::open,
    },
    SinkKind {
        name: "wav",
        about: "appended to the WAV file audio.file",
        open: wav::open,
    },
    SinkKind {
        name: "socket",
        about: "speech.audio events with base64 PCM, to the socket clients subscribed to them",
        open: socket::open,
    },
    SinkKind {
        name: "null",
        about: "discarded",
        open: null::open,
    },
];

/// Opens the sink named `name`.
pub fn open_sink(name: &str, options: &SinkOptions) -> Result<Box<dyn Sink>, AudioError> {
    let kind = SINKS
        .iter()
        .find(|k| k.name == name)
        .ok_or_else(|| AudioError::UnknownSink {
            name: name.to_string(),
            known: SINKS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
        })?;
    (kind.open)(options)
}

/// Converts mono `samples` from `from` Hz to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let err = |message: String| AudioError::Resample { from, to, message };
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| err(e.to_string()))?;
    let input = InterleavedSlice::new(samples, 1, samples.len()).map_err(|e| err(e.to_string()))?;
    let out = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| err(e.to_string()))?;
    Ok(out.take_data())
}

/// Interleaved little-endian signed PCM of `width` bytes per sample (1 to
/// 4) and `channels` channels, as mono samples in [-1, 1] (the channels
/// averaged).
pub fn pcm_to_mono(bytes: &[u8], width: usize, channels: usize) -> Result<Vec<f32>, AudioError> {
    if !(1..=4).contains(&width) || channels == 0 {
        return Err(AudioError::BadPcm(format!(
            "{width} bytes per sample and {channels} channels: voxd reads 1 to 4 bytes and 1 or more channels"
        )));
    }
    let frame = width * channels;
    if bytes.len() % frame != 0 {
        return Err(AudioError::BadPcm(format!(
            "{} bytes is not a whole number of {frame}-byte frames ({width} bytes x {channels} channels)",
            bytes.len()
        )));
    }
    // Each sample widened to the top of an i32, then scaled to [-1, 1].
    let sample = |b: &[u8]| {
        let mut wide = [0u8; 4];
        wide[4 - width..].copy_from_slice(b);
        i32::from_le_bytes(wide) as f32 / 2_147_483_648.0
    };
    Ok(bytes
        .chunks_exact(frame)
        .map(|f| f.chunks_exact(width).map(sample).sum::<f32>() / channels as f32)
        .collect())
}

/// Samples in [-1, 1] as 16-bit PCM.
pub fn to_i16(samples: &[f32]) -> impl Iterator<Item = i16> + '_ {
    samples
        .iter()
        .map(|s| (s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_duration_and_pitch() {
        // One second of 440 Hz at 22050 Hz → 48000 Hz.
        let tone: Vec<f32> = (0..22050)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 22050.0).sin() * 0.5)
            .collect();
        let out = resample(&tone, 22050, 48000).unwrap();
        assert!(
            (out.len() as i64 - 48000).abs() < 50,
            "{} samples",
            out.len()
        );
        // Zero crossings per second ≈ 2 × 440.
        let crossings = out
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((870..=890).contains(&crossings), "{crossings} crossings");
    }

    #[test]
    fn unknown_sinks_name_the_known_ones() {
        let options = SinkOptions {
            device: "",
            file: Path::new(""),
            tap: &Tap::default(),
        };
        let err = open_sink("speaker", &options).err().unwrap().to_string();
        assert!(err.contains("cpal, wav, socket, null"), "{err}");
        assert!(matches!(
            open_sink("wav", &options).err(),
            Some(AudioError::NoFile)
        ));
    }

    #[test]
    fn pcm_of_any_width_and_channels_reads_as_mono() {
        // 16-bit stereo: full scale left, silence right.
        let stereo = [0x00, 0x40, 0x00, 0x00, 0x00, 0xc0, 0x00, 0x00];
        assert_eq!(pcm_to_mono(&stereo, 2, 2).unwrap(), [0.25, -0.25]);
        // 24-bit and 32-bit half scale, 8-bit quarter scale (signed).
        assert_eq!(pcm_to_mono(&[0x00, 0x00, 0x40], 3, 1).unwrap(), [0.5]);
        assert_eq!(pcm_to_mono(&[0, 0, 0, 0xc0], 4, 1).unwrap(), [-0.5]);
        assert_eq!(pcm_to_mono(&[0x20], 1, 1).unwrap(), [0.25]);
        assert!(matches!(
            pcm_to_mono(&[1, 2, 3], 2, 1),
            Err(AudioError::BadPcm(_))
        ));
        assert!(matches!(
            pcm_to_mono(&[1, 2], 5, 1),
            Err(AudioError::BadPcm(_))
        ));
        assert!(matches!(
            pcm_to_mono(&[1, 2], 2, 0),
            Err(AudioError::BadPcm(_))
        ));
    }

    #[test]
    fn pcm_conversion_clips() {
        let pcm: Vec<i16> = to_i16(&[0.0, 1.0, -1.0, 2.0]).collect();
        assert_eq!(pcm, [0, i16::MAX, -i16::MAX, i16::MAX]);
    }
}

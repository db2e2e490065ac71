//! Wyoming audio in and out: the format of `audio-start`/`audio-chunk`
//! (`rate`, `width`, `channels`), incoming chunks converted to mono,
//! and outgoing speech as
//! 16-bit `audio-chunk`s of [`CHUNK_SAMPLES`].

use serde::Deserialize;
use serde_json::{json, Value};
use voxd_proto::Frame;

use super::error::WyomingError;
use super::kind;
use crate::audio::{pcm_to_mono, resample, Pcm};
use crate::stt::wav::{Audio16k, RATE, RATES};

/// Samples per outgoing `audio-chunk` (Home Assistant's own satellite
/// chunks are 1,024; one huge chunk would defeat its streaming).
pub const CHUNK_SAMPLES: usize = 2048;

/// `rate`, `width` (bytes per sample) and `channels` of Wyoming audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Format {
    pub rate: u32,
    pub width: usize,
    pub channels: usize,
}

impl Format {
    /// The format in `frame`'s data, checked.
    pub fn of(frame: &Frame) -> Result<Format, WyomingError> {
        let format: Format = serde_json::from_value(frame.data.clone()).map_err(|e| {
            WyomingError::BadAudioFormat(format!(
                "`{}` needs rate, width and channels: {e}",
                frame.kind
            ))
        })?;
        if !RATES.contains(&format.rate) {
            return Err(WyomingError::BadAudioFormat(format!(
                "rate {} Hz; voxd takes {}-{} Hz",
                format.rate,
                RATES.start(),
                RATES.end()
            )));
        }
        if !(1..=4).contains(&format.width) || !(1..=16).contains(&format.channels) {
            return Err(WyomingError::BadAudioFormat(format!(
                "width {} and channels {}; voxd takes 1-4 bytes per sample and 1-16 channels",
                format.width, format.channels
            )));
        }
        Ok(format)
    }

    /// The 16-bit mono format of voxd's speech at `rate`.
    pub fn speech(rate: u32) -> Format {
        Format {
            rate,
            width: 2,
            channels: 1,
        }
    }

    fn data(self) -> Value {
        json!({ "rate": self.rate, "width": self.width, "channels": self.channels })
    }
}

/// Audio a client is sending, between `audio-start` and `audio-stop`.
pub struct Incoming {
    format: Format,
}

impl Incoming {
    /// Audio in `start`'s format (an `audio-start`).
    pub fn start(start: &Frame) -> Result<Incoming, WyomingError> {
        Ok(Incoming {
            format: Format::of(start)?,
        })
    }

    /// The format `audio-start` gave.
    pub fn format(&self) -> Format {
        self.format
    }

    /// An `audio-chunk`'s samples, mono at the stream's rate. Its format
    /// (when it names one) must be the stream's.
    pub fn chunk(&mut self, chunk: &Frame) -> Result<Vec<f32>, WyomingError> {
        if chunk.data.get("rate").is_some() {
            let format = Format::of(chunk)?;
            if format != self.format {
                return Err(WyomingError::BadAudioFormat(format!(
                    "audio-chunk is {format:?} but audio-start said {:?}",
                    self.format
                )));
            }
        }
        Ok(pcm_to_mono(
            &chunk.payload,
            self.format.width,
            self.format.channels,
        )?)
    }

    /// `mono` samples at the stream's rate, at 16 kHz. Resample long
    /// stretches (a second or more): the resampler is not streaming, and
    /// each call has edges.
    pub fn to_16k(&self, mono: &[f32]) -> Result<Vec<f32>, WyomingError> {
        Ok(resample(mono, self.format.rate, RATE)?)
    }
}

/// Speech as 16-bit `audio-chunk`s of at most [`CHUNK_SAMPLES`] samples,
/// stamped `timestamp_ms` onwards.
pub fn chunks(pcm: &Pcm, timestamp_ms: &mut u64) -> Vec<Frame> {
    let rate = pcm.rate;
    let format = Format::speech(rate);
    pcm.samples
        .chunks(CHUNK_SAMPLES)
        .map(|piece| {
            let mut data = format.data();
            data["timestamp"] = json!(*timestamp_ms);
            *timestamp_ms += piece.len() as u64 * 1000 / u64::from(rate);
            Frame::new(kind::AUDIO_CHUNK)
                .with_data(data)
                .with_payload(Audio16k::to_s16le(piece))
        })
        .collect()
}

/// `audio-start` of voxd's speech at `rate`.
pub fn start(rate: u32) -> Frame {
    Frame::new(kind::AUDIO_START).with_data(Format::speech(rate).data())
}

/// `audio-stop`.
pub fn stop() -> Frame {
    Frame::new(kind::AUDIO_STOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_goes_out_in_bounded_chunks() {
        let pcm = Pcm {
            samples: vec![0.5; CHUNK_SAMPLES * 2 + 10],
            rate: 16_000,
        };
        let mut at = 0;
        let frames = chunks(&pcm, &mut at);
        let sizes: Vec<usize> = frames.iter().map(|f| f.payload.len() / 2).collect();
        assert_eq!(sizes, [CHUNK_SAMPLES, CHUNK_SAMPLES, 10]);
        assert_eq!(frames[1].data["timestamp"], 128);
        assert_eq!(frames[0].data["rate"], 16_000);
        assert_eq!(at, (CHUNK_SAMPLES as u64 * 2 + 10) * 1000 / 16_000);
    }

    #[test]
    fn incoming_audio_is_checked_and_converted() {
        let start = |data: Value| Frame::new(kind::AUDIO_START).with_data(data);
        let chunk = |data: Value, payload: Vec<u8>| {
            Frame::new(kind::AUDIO_CHUNK)
                .with_data(data)
                .with_payload(payload)
        };
        let fmt = json!({"rate": 16000, "width": 2, "channels": 2});
        let mut audio = Incoming::start(&start(fmt.clone())).unwrap();
        let out = audio
            .chunk(&chunk(fmt.clone(), vec![0, 0x40, 0, 0x40]))
            .unwrap();
        assert_eq!(out, [0.5]);
        let other = json!({"rate": 22050, "width": 2, "channels": 2});
        assert!(matches!(
            audio.chunk(&chunk(other, vec![0; 4])),
            Err(WyomingError::BadAudioFormat(_))
        ));
        assert!(matches!(
            audio.chunk(&chunk(fmt.clone(), vec![0; 3])),
            Err(WyomingError::BadAudioFormat(_))
        ));
        for bad in [
            json!({"rate": 16000}),
            json!({"rate": 100, "width": 2, "channels": 1}),
            json!({"rate": 16000, "width": 8, "channels": 1}),
        ] {
            assert!(Incoming::start(&start(bad)).is_err());
        }
        // Any rate is resampled to 16 kHz.
        let fmt = json!({"rate": 48000, "width": 2, "channels": 1});
        let mut audio = Incoming::start(&start(fmt)).unwrap();
        let out = audio.chunk(&chunk(json!({}), vec![0; 2 * 48_000])).unwrap();
        assert_eq!(out.len(), 48_000);
        let out = audio.to_16k(&out).unwrap();
        assert!((out.len() as i64 - 16_000).abs() < 50, "{}", out.len());
    }
}

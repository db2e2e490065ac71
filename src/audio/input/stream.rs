//! The `socket` source: 16-bit little-endian PCM that socket clients send
//! with the `listen` command's `audio` action (base64, with its rate and
//! channel count). Chunks are checked when they arrive ([`PcmChunk::decode`],
//! so a malformed one is refused to its sender and nothing else is lost),
//! queued (at most [`MAX_QUEUED_SECS`] of audio), and converted to 16 kHz
//! mono on the listening thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use super::{Source, SourceOptions, To16k, RATE};
use crate::audio::AudioError;

/// Most audio a client may have queued and not yet heard, in seconds.
pub const MAX_QUEUED_SECS: usize = 60;
/// Highest input rate accepted.
const MAX_RATE: u32 = 192_000;
/// Most channels accepted.
const MAX_CHANNELS: u16 = 8;

/// One checked chunk of client PCM, as f32 in [-1, 1], interleaved.
#[derive(Debug, Clone, PartialEq)]
pub struct PcmChunk {
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<f32>,
}

impl PcmChunk {
    /// Decodes base64 s16le `pcm` of `channels` interleaved channels at `rate`.
    pub fn decode(pcm: &str, rate: u32, channels: u16) -> Result<PcmChunk, AudioError> {
        if !(8_000..=MAX_RATE).contains(&rate) {
            return Err(AudioError::BadPcm(format!(
                "rate {rate} Hz is outside 8000..={MAX_RATE}"
            )));
        }
        if !(1..=MAX_CHANNELS).contains(&channels) {
            return Err(AudioError::BadPcm(format!(
                "{channels} channels; 1 to {MAX_CHANNELS} are accepted"
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(pcm.trim())
            .map_err(|e| AudioError::BadPcm(format!("`pcm` is not base64: {e}")))?;
        let frame = 2 * usize::from(channels);
        if bytes.len() % frame != 0 {
            return Err(AudioError::BadPcm(format!(
                "{} bytes is not a whole number of {channels}-channel 16-bit frames",
                bytes.len()
            )));
        }
        let samples = bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
            .collect();
        Ok(PcmChunk {
            rate,
            channels,
            samples,
        })
    }

    /// Length in 16 kHz samples.
    fn samples_16k(&self) -> usize {
        let frames = self.samples.len() / usize::from(self.channels.max(1));
        (frames as u64 * u64::from(RATE) / u64::from(self.rate.max(1))) as usize
    }
}

/// Where socket clients' PCM goes: the open `socket` source, if any.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct PcmFeed {
    tx: Arc<Mutex<Option<mpsc::Sender<PcmChunk>>>>,
    /// 16 kHz samples queued and not yet read.
    queued: Arc<AtomicUsize>,
}

impl PcmFeed {
    /// Queues `chunk` for the socket source; returns the 16 kHz samples queued.
    pub fn send(&self, chunk: PcmChunk) -> Result<usize, AudioError> {
        let len = chunk.samples_16k();
        let queued = self.queued.load(Ordering::SeqCst);
        if queued + len > MAX_QUEUED_SECS * RATE as usize {
            return Err(AudioError::BadPcm(format!(
                "{} s of audio is already queued; send at most {MAX_QUEUED_SECS} s ahead of real time",
                queued / RATE as usize
            )));
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let tx = tx.as_ref().ok_or(AudioError::NotStreaming)?;
        self.queued.fetch_add(len, Ordering::SeqCst);
        tx.send(chunk).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            AudioError::NotStreaming
        })?;
        Ok(self.queued.load(Ordering::SeqCst))
    }

    fn connect(&self) -> mpsc::Receiver<PcmChunk> {
        let (tx, rx) = mpsc::channel();
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.queued.store(0, Ordering::SeqCst);
        rx
    }

    fn disconnect(&self) {
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.queued.store(0, Ordering::SeqCst);
    }
}

pub struct StreamSource {
    rx: mpsc::Receiver<PcmChunk>,
    feed: PcmFeed,
    conv: Option<To16k>,
}

pub fn open(options: &SourceOptions) -> Result<Box<dyn Source>, AudioError> {
    Ok(Box::new(StreamSource {
        rx: options.feed.connect(),
        feed: options.feed.clone(),
        conv: None,
    }))
}

impl StreamSource {
    fn convert(&mut self, chunk: PcmChunk) -> Result<Vec<f32>, AudioError> {
        self.feed
            .queued
            .fetch_sub(chunk.samples_16k(), Ordering::SeqCst);
        let conv = match self.conv.take() {
            Some(c) if c.format() == (chunk.rate, chunk.channels) => c,
            _ => To16k::new(chunk.rate, chunk.channels)?,
        };
        let conv = self.conv.insert(conv);
        conv.push(&chunk.samples)
    }
}

impl Source for StreamSource {
    fn read(&mut self, timeout: Duration) -> Result<Vec<f32>, AudioError> {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(chunk) => chunk,
            Err(_) => return Ok(Vec::new()),
        };
        let mut out = self.convert(first)?;
        while let Ok(chunk) = self.rx.try_recv() {
            out.extend(self.convert(chunk)?);
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        "socket".to_string()
    }
}

impl Drop for StreamSource {
    fn drop(&mut self) {
        self.feed.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_checked() {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let ok = PcmChunk::decode(&b64(&[0, 0x40, 0, 0xc0]), 16_000, 1).unwrap();
        assert_eq!(ok.samples, [0.5, -0.5]);
        for (pcm, rate, ch, want) in [
            ("%%%".to_string(), 16_000, 1, "base64"),
            (b64(&[1, 2, 3]), 16_000, 1, "whole number"),
            (b64(&[1, 2]), 16_000, 2, "whole number"),
            (b64(&[1, 2]), 0, 1, "rate"),
            (b64(&[1, 2]), 16_000, 0, "channels"),
        ] {
            let err = PcmChunk::decode(&pcm, rate, ch).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn a_feed_without_a_socket_source_refuses_audio() {
        let feed = PcmFeed::default();
        // "AAAA" is 3 bytes: not whole 16-bit samples.
        assert!(PcmChunk::decode("AAAA", 16_000, 1).is_err());
        let chunk = PcmChunk::decode("AAA=", 16_000, 1).unwrap();
        assert!(matches!(
            feed.send(chunk.clone()),
            Err(AudioError::NotStreaming)
        ));
        let rx = feed.connect();
        assert_eq!(feed.send(chunk).unwrap(), 1);
        drop(rx);
    }
}

//! Audio uploads in any container voxd reads: WAV (hound, in `wav.rs`,
//! whose bounds against lying headers voxd relies on) and FLAC, MP3 and
//! Ogg Vorbis, decoded by symphonia (pure Rust) into the same
//! [`Audio16k`]: mono, resampled to 16 kHz, at most [`MAX_SECS`] long.

use std::io::Cursor;
use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::wav::{self, resample, Audio16k, WavError, MAX_SECS, RATES};

/// Converts an audio file held in memory, called `name` in errors (its
/// extension is a hint to the container).
pub fn read(bytes: Vec<u8>, name: &Path) -> Result<Audio16k, WavError> {
    if bytes.starts_with(b"RIFF") {
        return wav::read_bytes(&bytes, name);
    }
    let unreadable = |message: String| WavError::Unreadable {
        path: name.to_path_buf(),
        message,
    };
    let mut hint = Hint::new();
    if let Some(ext) = name.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| unreadable(e.to_string()))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| unreadable("it has no audio track".into()))?;
    let (track_id, params) = (track.id, track.codec_params.clone());
    let rate = params.sample_rate.unwrap_or(0);
    if !RATES.contains(&rate) {
        return Err(unreadable(format!(
            "its rate is {rate} Hz; voxd reads {}-{} Hz",
            RATES.start(),
            RATES.end()
        )));
    }
    let channels = params.channels.map_or(1, |c| c.count() as u16);
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| unreadable(e.to_string()))?;
    let most = MAX_SECS * u64::from(rate);
    let mut mono: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(unreadable(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged packet is skipped, as players do.
            Err(Error::DecodeError(_)) => continue,
            Err(e) => return Err(unreadable(e.to_string())),
        };
        let spec = *decoded.spec();
        let width = spec.channels.count().max(1);
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        buffer.copy_interleaved_ref(decoded);
        mono.extend(
            buffer
                .samples()
                .chunks_exact(width)
                .map(|frame| frame.iter().sum::<f32>() / width as f32),
        );
        if mono.len() as u64 > most {
            return Err(WavError::TooLong {
                path: name.to_path_buf(),
                secs: mono.len() as u64 / u64::from(rate),
            });
        }
    }
    if mono.is_empty() {
        return Err(WavError::Empty {
            path: name.to_path_buf(),
        });
    }
    let samples = resample(&mono, rate).map_err(|message| WavError::Resample {
        path: name.to_path_buf(),
        rate,
        message,
    })?;
    Ok(Audio16k {
        samples,
        source_rate: rate,
        source_channels: channels,
    })
}

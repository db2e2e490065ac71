//! Reads WAV files into what Whisper wants: 16 kHz mono f32. Any PCM
//! layout `hound` reads (8/16/24/32-bit integer, 32-bit float, any channel
//! count and rate) is accepted; channels are averaged and the rate is
//! converted with rubato's FFT resampler (band-limited, not decimation).

use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Whisper's sample rate.
pub const RATE: u32 = 16_000;

/// Longest audio accepted from a file (1 hour, 230 MB of samples), so a
/// huge or lying header cannot make the daemon allocate without bound.
pub const MAX_SECS: u64 = 3600;

/// The rates a file may have: telephone to studio. Outside them a header
/// is lying, and the resampler would plan FFTs of its size.
pub const RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Why a WAV file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a usable WAV file: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("{} is truncated: its header announces {expected} samples but only {got} could be read ({message})", path.display())]
    Truncated {
        path: PathBuf,
        expected: u64,
        got: u64,
        message: String,
    },
    #[error("{} holds no audio (0 samples)", path.display())]
    Empty { path: PathBuf },
    #[error("{} is {secs} s long; at most {MAX_SECS} s can be transcribed at once", path.display())]
    TooLong { path: PathBuf, secs: u64 },
    #[error("cannot resample {} from {rate} Hz: {message}", path.display())]
    Resample {
        path: PathBuf,
        rate: u32,
        message: String,
    },
}

/// Audio ready for Whisper.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio16k {
    /// Mono samples in [-1, 1] at 16 kHz.
    pub samples: Vec<f32>,
    /// The file's own rate and channels.
    pub source_rate: u32,
    pub source_channels: u16,
}

impl Audio16k {
    /// Duration in seconds.
    pub fn secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(RATE)
    }

    /// The samples as 16-bit little-endian PCM (Wyoming `audio-chunk` payload).
    pub fn to_s16le(samples: &[f32]) -> Vec<u8> {
        samples
            .iter()
            .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
            .collect()
    }
}

/// Reads and converts `path`.
pub fn read(path: &Path) -> Result<Audio16k, WavError> {
    let open_err = |source| WavError::Open {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let bytes = file.metadata().map_err(open_err)?.len();
    read_from(std::io::BufReader::new(file), bytes, path)
}

/// Converts a WAV file held in memory (an upload); `name` is what errors
/// call it.
pub fn read_bytes(wav: &[u8], name: &Path) -> Result<Audio16k, WavError> {
    read_from(wav, wav.len() as u64, name)
}

/// Converts the `bytes`-long WAV file `input`, called `path` in errors.
fn read_from(input: impl std::io::Read, bytes: u64, path: &Path) -> Result<Audio16k, WavError> {
    let invalid = |message: String| WavError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let reader = hound::WavReader::new(input).map_err(|e| match e {
        hound::Error::IoError(e) => invalid(format!("cannot read its header: {e}")),
        other => invalid(other.to_string()),
    })?;
    let spec = reader.spec();
    if spec.channels == 0 || !RATES.contains(&spec.sample_rate) {
        return Err(invalid(format!(
            "header says {} channel(s) at {} Hz; voxd reads 1 or more channels at {}-{} Hz",
            spec.channels,
            spec.sample_rate,
            RATES.start(),
            RATES.end()
        )));
    }
    let frames = u64::from(reader.duration());
    let secs = frames / u64::from(spec.sample_rate);
    if secs > MAX_SECS {
        return Err(WavError::TooLong {
            path: path.to_path_buf(),
            secs,
        });
    }
    let expected = u64::from(reader.len());
    // No more room than the file can fill, whatever its header claims.
    let present = bytes / u64::from(spec.bits_per_sample.div_ceil(8).max(1));
    let interleaved = decode(reader, spec, present.min(expected)).map_err(|(got, e)| match e {
        // hound says "Failed to read enough bytes" (ErrorKind::Other) when
        // the file ends inside a sample.
        hound::Error::IoError(io) if got < expected => WavError::Truncated {
            path: path.to_path_buf(),
            expected,
            got,
            message: io.to_string(),
        },
        other => invalid(format!("sample {got}: {other}")),
    })?;
    let channels = usize::from(spec.channels);
    let mono: Vec<f32> = if channels == 1 {
        interleaved
    } else {
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32)
            .collect()
    };
    if mono.is_empty() {
        return Err(WavError::Empty {
            path: path.to_path_buf(),
        });
    }
    let samples = resample(&mono, spec.sample_rate).map_err(|message| WavError::Resample {
        path: path.to_path_buf(),
        rate: spec.sample_rate,
        message,
    })?;
    Ok(Audio16k {
        samples,
        source_rate: spec.sample_rate,
        source_channels: spec.channels,
    })
}

/// Every sample as f32 in [-1, 1]; on failure, how many were read and why.
fn decode<R: std::io::Read>(
    mut reader: hound::WavReader<R>,
    spec: hound::WavSpec,
    room: u64,
) -> Result<Vec<f32>, (u64, hound::Error)> {
    let mut out = Vec::with_capacity(room as usize);
    match spec.sample_format {
        hound::SampleFormat::Float => {
            for s in reader.samples::<f32>() {
                out.push(s.map_err(|e| (out.len() as u64, e))?);
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            for s in reader.samples::<i32>() {
                out.push(s.map_err(|e| (out.len() as u64, e))? as f32 * scale);
            }
        }
    }
    Ok(out)
}

/// `mono` at `rate` → 16 kHz.
pub fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    if rate == RATE {
        return Ok(mono.to_vec());
    }
    let mut fft = Fft::<f32>::new(rate as usize, RATE as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| e.to_string())?;
    let input = InterleavedSlice::new(mono, 1, mono.len()).map_err(|e| e.to_string())?;
    let out = fft
        .process_all(&input, mono.len(), None)
        .map_err(|e| e.to_string())?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1 kHz tone survives 48 kHz → 16 kHz with its amplitude and length;
    /// a 12 kHz tone (above the new Nyquist) is filtered out, not aliased.
    #[test]
    fn resampling_is_band_limited() {
        let tone = |f: f32, rate: u32| -> Vec<f32> {
            (0..rate)
                .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / rate as f32).sin() * 0.5)
                .collect()
        };
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let out = resample(&tone(1000.0, 48_000), 48_000).unwrap();
        assert!(
            (out.len() as i64 - 16_000).abs() <= 2,
            "{} samples",
            out.len()
        );
        let mid = &out[2000..14_000];
        assert!(
            (rms(mid) - 0.5 / 2f32.sqrt()).abs() < 0.01,
            "rms {}",
            rms(mid)
        );
        let aliased = resample(&tone(12_000.0, 48_000), 48_000).unwrap();
        assert!(
            rms(&aliased[2000..14_000]) < 0.005,
            "rms {}",
            rms(&aliased[2000..14_000])
        );
    }

    /// A WAV file of `channels` × 16-bit at `rate` whose header claims
    /// `claimed` bytes of samples and which holds `present` of them.
    fn lying_wav(dir: &Path, channels: u16, rate: u32, claimed: u32, present: usize) -> PathBuf {
        let mut bytes = Vec::new();
        let block = channels * 2;
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&claimed.saturating_add(36).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&rate.to_le_bytes());
        bytes.extend_from_slice(&rate.wrapping_mul(u32::from(block)).to_le_bytes());
        bytes.extend_from_slice(&block.to_le_bytes());
        bytes.extend_from_slice(&16u16.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&claimed.to_le_bytes());
        bytes.resize(bytes.len() + present, 0);
        let path = dir.join(format!("lying-{channels}-{rate}-{claimed}.wav"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// A header cannot make voxd reserve memory the file does not hold (a
    /// 60-byte file claiming 4 GiB of samples once took 16 GiB and aborted
    /// a small board), nor plan a resampler of any size it names.
    #[test]
    fn a_lying_header_is_refused_without_allocating_its_claim() {
        let dir = tempfile::tempdir().unwrap();
        // 4 GiB of samples in 16 bytes, within the hour at 192 kHz × 8
        // (tests/daemon.rs reads it under a memory cap).
        let huge = lying_wav(dir.path(), 8, 192_000, u32::MAX / 16 * 16 - 64, 16);
        match read(&huge) {
            Err(WavError::Truncated { expected, got, .. }) => {
                assert!(expected > 1 << 30, "{expected}");
                assert_eq!(got, 8);
            }
            other => panic!("{other:?}"),
        }
        for rate in [0, 1, 7_999, 192_001, 1_000_000_000] {
            let err = read(&lying_wav(dir.path(), 1, rate, 32, 32)).unwrap_err();
            assert!(
                matches!(&err, WavError::Invalid { message, .. } if message.contains("8000-192000 Hz")),
                "{rate} Hz: {err}"
            );
        }
        // An honest file of an accepted rate still reads.
        let fine = lying_wav(dir.path(), 1, 8_000, 1600, 1600);
        assert_eq!(read(&fine).unwrap().samples.len(), 1600);
    }
}

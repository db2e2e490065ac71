//! Whisper's mel filter bank, computed as librosa does it:
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=N)` (Slaney mel scale,
//! Slaney area normalisation), the matrix whisper.cpp reads from its model
//! file.

/// Sample rate Whisper expects.
const SAMPLE_RATE: f64 = 16_000.0;
/// Whisper's FFT size (25 ms at 16 kHz).
pub const N_FFT: usize = 400;
/// Frequency bins of one FFT frame: `1 + N_FFT / 2`.
pub const N_BINS: usize = 1 + N_FFT / 2;

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / logstep()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (logstep() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The `n_mels` × [`N_BINS`] filter matrix, row-major, from 0 Hz to 8 kHz.
pub fn filters(n_mels: usize) -> Vec<f32> {
    let fmax = SAMPLE_RATE / 2.0;
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|i| fmax * i as f64 / (N_BINS - 1) as f64)
        .collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = Vec::with_capacity(n_mels * N_BINS);
    for i in 0..n_mels {
        let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = 2.0 / (hi - lo);
        for &f in &fft_freqs {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            weights.push((lower.min(upper).max(0.0) * enorm) as f32);
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from openai-whisper's `assets/mel_filters.npz`
    /// (produced by librosa), row, column, value.
    #[test]
    fn matches_openai_whispers_mel_filters() {
        let m80 = filters(80);
        assert_eq!(m80.len(), 80 * 201);
        for (r, c, want) in [
            (0, 1, 0.024_862_595_f32),
            (10, 10, 0.019_908_218),
            (10, 11, 0.004_954_375),
            (40, 43, 0.014_735_566),
            (79, 187, 0.000_833_07),
            (0, 2, 0.0),
            (79, 200, 0.0),
        ] {
            let got = m80[r * N_BINS + c];
            assert!(
                (got - want).abs() < 1e-7,
                "mel80[{r}][{c}] = {got}, want {want}"
            );
        }
        let sum: f64 = m80.iter().map(|&x| x as f64).sum();
        assert!((sum - 1.999_024_092_387_117).abs() < 1e-5, "sum {sum}");

        let m128 = filters(128);
        for (r, c, want) in [(40, 24, 0.040_376_365_f32), (127, 192, 0.001_617_171_7)] {
            let got = m128[r * N_BINS + c];
            assert!(
                (got - want).abs() < 1e-7,
                "mel128[{r}][{c}] = {got}, want {want}"
            );
        }
        let sum: f64 = m128.iter().map(|&x| x as f64).sum();
        assert!((sum - 3.190_985_540_940_346).abs() < 1e-5, "sum {sum}");
    }
}

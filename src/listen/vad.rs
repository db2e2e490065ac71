//! Voice activity detection: Silero VAD (v5/v6 ONNX graph, the `silero-vad`
//! model) on ONNX Runtime. It scores 512-sample (32 ms) frames of 16 kHz
//! audio with the speech probability; its recurrent state and the 64
//! samples of context before each frame are carried between calls, as
//! Silero's own `OnnxWrapper` does.

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use super::ListenError;
use crate::config::OnnxConfig;
use crate::onnx::Shapes;

/// Samples per VAD frame at 16 kHz.
pub const FRAME: usize = 512;
/// Samples of the previous frame fed again before each frame.
const CONTEXT: usize = 64;
/// Size of the recurrent state, `[2, 1, 128]`.
const STATE: usize = 2 * 128;

/// A Silero VAD session and its running state.
pub struct Vad {
    session: Session,
    state: Vec<f32>,
    /// The last [`CONTEXT`] samples of the previous frame, then the frame.
    input: Vec<f32>,
}

impl Vad {
    /// Loads `silero_vad.onnx` from `model_dir`.
    pub fn load(onnx: &OnnxConfig, model_dir: &Path, threads: u32) -> Result<Vad, ListenError> {
        let path = model_dir.join("silero_vad.onnx");
        let session = crate::onnx::session(onnx, &path, threads, Shapes::Fixed)?;
        Ok(Vad {
            session,
            state: vec![0.0; STATE],
            input: vec![0.0; CONTEXT + FRAME],
        })
    }

    /// The probability that `frame` (exactly [`FRAME`] samples in [-1, 1])
    /// is speech.
    pub fn probability(&mut self, frame: &[f32]) -> Result<f32, ListenError> {
        if frame.len() != FRAME {
            return Err(ListenError::Inference(format!(
                "a VAD frame is {FRAME} samples, not {}",
                frame.len()
            )));
        }
        self.input.copy_within(FRAME.., 0);
        self.input[CONTEXT..].copy_from_slice(frame);
        let err = |e: ort::Error| ListenError::Inference(format!("VAD: {e}"));
        let input =
            Tensor::from_array(([1usize, CONTEXT + FRAME], self.input.clone())).map_err(err)?;
        let state = Tensor::from_array(([2usize, 1, 128], self.state.clone())).map_err(err)?;
        let sr = Tensor::from_array(((), vec![16_000i64])).map_err(err)?;
        let outputs = self
            .session
            .run(ort::inputs!["input" => input, "state" => state, "sr" => sr])
            .map_err(err)?;
        let (_, p) = outputs["output"].try_extract_tensor::<f32>().map_err(err)?;
        let p = p.first().copied().unwrap_or(0.0);
        let (_, state) = outputs["stateN"].try_extract_tensor::<f32>().map_err(err)?;
        if state.len() == STATE {
            self.state.copy_from_slice(state);
        }
        Ok(p)
    }
}

//! Progress reporting for pulls and verification: a small trait the CLI
//! renders with indicatif and the daemon can forward as events.

/// Receives progress of a pull or verify, one step (a file, a download) at a time.
pub trait PullProgress {
    /// A step starts; `total` is its size in bytes when known.
    fn start(&mut self, label: &str, total: Option<u64>);
    /// `bytes` more bytes were copied or hashed in the current step.
    fn advance(&mut self, bytes: u64);
    /// The current step ended.
    fn finish(&mut self);
    /// A notice worth a line of its own (a source failed, a retry, a fallback).
    fn note(&mut self, line: &str);
}

/// Reports nothing (notes still go to the log).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn start(&mut self, _label: &str, _total: Option<u64>) {}
    fn advance(&mut self, _bytes: u64) {}
    fn finish(&mut self) {}
    fn note(&mut self, line: &str) {
        tracing::info!("{line}");
    }
}

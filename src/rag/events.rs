//! What the notes index publishes on the observers' bus.

use std::path::PathBuf;

use serde::Serialize;

use super::ScanReport;
use crate::events::Observed;

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum RagEvent {
    /// `rag.state`: answers use the notes, or not (`voxd rag on|off`).
    State { enabled: bool },
    /// `notes.indexed`: a full rescan of the notes folders ended.
    Indexed(ScanReport),
    /// `notes.changed`: a note was (re)indexed into `chunks` chunks.
    Changed { path: PathBuf, chunks: usize },
    /// `notes.removed`: a note left the index.
    Removed { path: PathBuf },
    /// `notes.renamed`: a note moved, its index entries with it.
    Renamed { from: PathBuf, to: PathBuf },
}

impl Observed for RagEvent {
    fn name(&self) -> &'static str {
        match self {
            RagEvent::State { .. } => "rag.state",
            RagEvent::Indexed(_) => "notes.indexed",
            RagEvent::Changed { .. } => "notes.changed",
            RagEvent::Removed { .. } => "notes.removed",
            RagEvent::Renamed { .. } => "notes.renamed",
        }
    }
}

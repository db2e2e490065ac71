//! Queries: hybrid search over the index (BM25 and cosine rankings fused
//! by RRF, the newest picture first when the question asks for it) and the
//! sources prepared for a grounded answer. Reads the index, the vector
//! table and the embedder; writes nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::answer::{self, At, Source};
use super::chunk;
use super::index::ChunkRow;
use super::{rank, DocKind, Rag, RagError};
use crate::vision::CaptionDoc;

/// Candidates taken from each ranking before fusion.
const CANDIDATES: usize = 50;

/// One retrieved chunk.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub kind: DocKind,
    /// The note, or the captioned image.
    pub path: String,
    /// Relative to its notes folder; an image's file name.
    pub name: String,
    pub heading: String,
    pub line_start: u32,
    pub line_end: u32,
    pub text: String,
    /// Fused (RRF) score.
    pub score: f32,
    /// Cosine similarity to the query, when embeddings are available.
    pub cosine: Option<f32>,
    pub bm25_rank: Option<usize>,
    pub cosine_rank: Option<usize>,
    /// The newest picture, put first because the query asks for the latest
    /// one ([`rank::asks_for_latest_image`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub latest: bool,
    #[serde(skip)]
    pub chunk: ChunkRow,
}

/// Everything an answer needs: numbered sources, the question's vector,
/// each source sentence's vector, and the superseded sentences.
#[derive(Debug, Default)]
pub struct Prepared {
    pub sources: Vec<Source>,
    pub query: Vec<f32>,
    pub sentence_vectors: Vec<Vec<Vec<f32>>>,
    pub dropped: HashSet<At>,
    /// The best source's cosine similarity (the abstain decision).
    pub best_score: f32,
}

impl Rag {
    /// Hybrid search: BM25 and cosine rankings fused by RRF, best `k`.
    pub async fn search(&self, query: &str, k: usize) -> Result<(Vec<Hit>, Vec<f32>), RagError> {
        let started = Instant::now();
        let index = self.index().await?;
        let qvec = match self.embedder.get().await {
            Some(pool) => pool
                .embed(vec![query.to_string()])
                .await?
                .pop()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let bm25 = {
            let index = index.clone();
            let query = query.to_string();
            tokio::task::spawn_blocking(move || index.bm25(&query, CANDIDATES))
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        };
        let (cosine, scores) = {
            let table = self.vectors.read().unwrap_or_else(|e| e.into_inner());
            let top = table.top(&qvec, CANDIDATES);
            let mut scores: HashMap<i64, f32> = top.iter().copied().collect();
            for id in &bm25 {
                if let Some(s) = table.score(*id, &qvec) {
                    scores.insert(*id, s);
                }
            }
            (
                top.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
                scores,
            )
        };
        let mut fused = rank::rrf(&[&bm25, &cosine]);
        let latest = if rank::asks_for_latest_image(query) {
            let index = index.clone();
            tokio::task::spawn_blocking(move || index.newest_image())
                .await
                .map_err(|e| RagError::Internal(e.to_string()))??
        } else {
            Vec::new()
        };
        if !latest.is_empty() {
            let top = fused.first().map_or(0.0, |(_, s)| *s);
            fused.retain(|(id, _)| !latest.contains(id));
            fused.splice(0..0, latest.iter().map(|id| (*id, top)));
        }
        let ids: Vec<i64> = fused.iter().take(k).map(|(id, _)| *id).collect();
        let rows = tokio::task::spawn_blocking(move || index.chunks(&ids))
            .await
            .map_err(|e| RagError::Internal(e.to_string()))??;
        let fused: HashMap<i64, f32> = fused.into_iter().collect();
        let hits = rows
            .into_iter()
            .map(|row| Hit {
                kind: self.kind_of(&row.path),
                name: self.display_name(&row.path),
                path: CaptionDoc::path_of(&row.path)
                    .map_or_else(|| row.path.clone(), |p| p.display().to_string()),
                latest: latest.contains(&row.id),
                heading: row.heading.clone(),
                line_start: row.lines.start,
                line_end: row.lines.end,
                text: row.text.clone(),
                score: fused.get(&row.id).copied().unwrap_or(0.0),
                cosine: scores.get(&row.id).copied(),
                bm25_rank: bm25.iter().position(|x| *x == row.id).map(|r| r + 1),
                cosine_rank: cosine.iter().position(|x| *x == row.id).map(|r| r + 1),
                chunk: row,
            })
            .collect();
        self.metrics.observe_rag_query(started.elapsed());
        Ok((hits, qvec))
    }

    /// Retrieves and prepares the sources for answering `question`.
    /// A question about the latest picture is answered from that picture
    /// alone: older pictures and notes that merely resemble the question
    /// would only compete with it.
    pub async fn prepare(&self, question: &str) -> Result<Prepared, RagError> {
        let (mut hits, query) = self.search(question, self.config.top_k).await?;
        if hits.first().is_some_and(|h| h.latest) {
            hits.retain(|h| h.latest);
        }
        let mut sources: Vec<Source> = hits
            .into_iter()
            .enumerate()
            .map(|(i, hit)| Source {
                n: i + 1,
                kind: hit.kind,
                path: hit.path,
                name: hit.name,
                heading: hit.heading,
                lines: hit.chunk.lines,
                // What the question asks for by recency is relevant, whatever
                // its words.
                score: if hit.latest {
                    1.0
                } else {
                    hit.cosine.unwrap_or(0.0)
                },
                sentences: hit.chunk.sentences,
            })
            .collect();
        let best_score = if query.is_empty() {
            // No embeddings: any lexical match counts as relevant.
            if sources.is_empty() {
                0.0
            } else {
                1.0
            }
        } else {
            sources.iter().map(|s| s.score).fold(0.0, f32::max)
        };
        let mut sentence_vectors = vec![Vec::new(); sources.len()];
        let pool = match query.is_empty() {
            true => None,
            false => self.embedder.get().await,
        };
        if let Some(pool) = pool {
            // Stored when the note was indexed; embedded now only where the
            // index has none (a note indexed while no embedder was loaded).
            let missing: Vec<String> = sources
                .iter()
                .flat_map(|s| {
                    s.sentences
                        .iter()
                        .filter(|x| x.vector.is_none())
                        .map(|x| chunk::sentence_embed_text(&s.heading, &x.text))
                })
                .collect();
            let mut fresh = pool.embed(missing).await?.into_iter();
            for (s, source) in sources.iter_mut().enumerate() {
                sentence_vectors[s] = source
                    .sentences
                    .iter_mut()
                    .map(|x| x.vector.take().or_else(|| fresh.next()).unwrap_or_default())
                    .collect();
            }
        }
        let dropped = answer::superseded(&sources, &sentence_vectors);
        Ok(Prepared {
            sources,
            query,
            sentence_vectors,
            dropped,
            best_score,
        })
    }

    /// `path` relative to the notes folder that holds it; a caption
    /// document's image file name.
    fn display_name(&self, path: &str) -> String {
        if let Some(image) = CaptionDoc::path_of(path) {
            return image.file_name().map_or_else(
                || image.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
        }
        let p = Path::new(path);
        self.roots
            .iter()
            .find_map(|root| p.strip_prefix(root).ok())
            .map_or_else(|| path.to_string(), |rel| rel.display().to_string())
    }

    fn kind_of(&self, key: &str) -> DocKind {
        if CaptionDoc::path_of(key).is_some() {
            DocKind::Image
        } else {
            DocKind::Note
        }
    }
}

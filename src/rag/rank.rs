//! Hybrid ranking: an in-memory table of chunk vectors for exact cosine
//! search, and reciprocal rank fusion of the BM25 and cosine rankings.
//! Pure computation; the index keeps the durable copy of the vectors.

use std::collections::HashMap;

/// RRF's k: damps the weight of the very first ranks (Cormack et al. 2009).
pub const RRF_K: f32 = 60.0;

/// Every chunk vector, contiguous, for brute-force search (exact, and fast
/// enough: 30,000 chunks × 384 dims is ~11 M multiply-adds per query).
#[derive(Debug, Default)]
pub struct Vectors {
    dim: usize,
    ids: Vec<i64>,
    data: Vec<f32>,
    pos: HashMap<i64, usize>,
}

impl Vectors {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds (or replaces) a chunk's vector. Vectors of another length than
    /// the first one are refused (a different embedding model).
    pub fn insert(&mut self, id: i64, v: &[f32]) {
        if self.dim == 0 {
            self.dim = v.len();
        }
        if v.len() != self.dim || self.dim == 0 {
            return;
        }
        if let Some(&i) = self.pos.get(&id) {
            self.data[i * self.dim..(i + 1) * self.dim].copy_from_slice(v);
            return;
        }
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
        self.data.extend_from_slice(v);
    }

    pub fn remove(&mut self, id: i64) {
        let Some(i) = self.pos.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if i != last {
            let moved = self.ids[last];
            self.ids[i] = moved;
            self.pos.insert(moved, i);
            let (head, tail) = self.data.split_at_mut(last * self.dim);
            head[i * self.dim..(i + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
        }
        self.ids.pop();
        self.data.truncate(last * self.dim);
    }

    /// Cosine of one chunk with the (unit) query vector.
    pub fn score(&self, id: i64, query: &[f32]) -> Option<f32> {
        let i = *self.pos.get(&id)?;
        Some(dot(&self.data[i * self.dim..(i + 1) * self.dim], query))
    }

    /// The `n` chunks most similar to `query`, best first.
    pub fn top(&self, query: &[f32], n: usize) -> Vec<(i64, f32)> {
        if query.len() != self.dim || n == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(i64, f32)> = self
            .data
            .chunks_exact(self.dim)
            .zip(&self.ids)
            .map(|(v, id)| (*id, dot(v, query)))
            .collect();
        let n = n.min(scored.len());
        if n == 0 {
            return scored;
        }
        scored.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(n);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
    }
}

/// Dot product with eight independent accumulators, so the compiler can
/// vectorise it (a plain `sum()` must add in order and cannot).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Reciprocal rank fusion: each id scores Σ 1/(k + rank) over the rankings
/// it appears in (rank from 1). Best first; ties keep first-seen order.
pub fn rrf(rankings: &[&[i64]]) -> Vec<(i64, f32)> {
    let mut scores: Vec<(i64, f32)> = Vec::new();
    let mut at: HashMap<i64, usize> = HashMap::new();
    for ranking in rankings {
        for (rank, id) in ranking.iter().enumerate() {
            let s = 1.0 / (RRF_K + rank as f32 + 1.0);
            match at.get(id) {
                Some(&i) => scores[i].1 += s,
                None => {
                    at.insert(*id, scores.len());
                    scores.push((*id, s));
                }
            }
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores
}

/// Whether `question` asks about the most recent picture ("what was in the
/// last picture I saved?"): a word for a picture and a word for recency.
/// Captions say what is in a picture, never when it came, so no ranking by
/// content finds "the last one"; the caller puts the newest caption first.
pub fn asks_for_latest_image(question: &str) -> bool {
    const PICTURE: &[&str] = &[
        "picture",
        "pictures",
        "photo",
        "photos",
        "photograph",
        "image",
        "images",
        "screenshot",
        "pic",
        "snapshot",
        "snap",
    ];
    const RECENT: &[&str] = &["last", "latest", "newest", "recent", "recently", "just"];
    let words: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    has(PICTURE) && has(RECENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_about_the_latest_picture_are_recognised() {
        for q in [
            "What was in the last picture I saved?",
            "describe my latest photo",
            "What's in the screenshot I just took?",
            "most recent image?",
        ] {
            assert!(asks_for_latest_image(q), "{q}");
        }
        for q in [
            "What is the wifi password?",
            "Where is the picture frame?",
            "When did I last water the roses?",
            "the lastimage", // not a word of either kind
        ] {
            assert!(!asks_for_latest_image(q), "{q}");
        }
    }

    #[test]
    fn dot_product_matches_the_plain_sum() {
        let a: Vec<f32> = (0..387).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..387).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn fusion_rewards_agreement() {
        let bm25 = [1, 2, 3];
        let cosine = [3, 4, 1];
        let fused = rrf(&[&bm25, &cosine]);
        let order: Vec<i64> = fused.iter().map(|(id, _)| *id).collect();
        assert_eq!(order, [1, 3, 2, 4]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-6);
    }

    #[test]
    fn vector_table_inserts_replaces_removes_and_ranks() {
        let mut v = Vectors::default();
        v.insert(10, &[1.0, 0.0]);
        v.insert(11, &[0.0, 1.0]);
        v.insert(12, &[0.6, 0.8]);
        v.insert(13, &[1.0, 0.0, 0.0]); // wrong length: refused
        assert_eq!(v.len(), 3);
        let top = v.top(&[1.0, 0.0], 2);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [10, 12]);
        v.remove(10);
        assert_eq!(v.top(&[1.0, 0.0], 1)[0].0, 12);
        v.insert(11, &[1.0, 0.0]);
        assert_eq!(v.top(&[1.0, 0.0], 1)[0].0, 11);
        assert_eq!(v.score(12, &[0.0, 1.0]), Some(0.8));
        assert_eq!(v.score(10, &[0.0, 1.0]), None);
        v.remove(11);
        v.remove(12);
        assert!(v.is_empty());
    }
}

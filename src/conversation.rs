//! Conversation sessions: the questions and answers of each `session` id,
//! persisted in SQLite (`$XDG_DATA_HOME/voxd/history.sqlite`), and the
//! trimming of a session's history to the model's context budget (oldest
//! turns dropped first; the system prompt and retrieved sources are never
//! part of what is trimmed). Owns the history file; touches nothing else.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("session history {path}: {source}")]
pub struct HistoryError {
    path: PathBuf,
    source: StoreFailure,
}

/// What went wrong with the history file.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot create it: {0}")]
    Create(#[from] std::io::Error),
}

/// One earlier turn of a conversation, as prompts show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Turn {
    pub question: String,
    pub answer: String,
}

/// One stored turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredTurn {
    pub question: String,
    pub answer: String,
    /// Unix seconds.
    pub at: u64,
}

impl From<StoredTurn> for Turn {
    fn from(turn: StoredTurn) -> Turn {
        Turn {
            question: turn.question,
            answer: turn.answer,
        }
    }
}

/// A session in the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    pub session: String,
    pub turns: u64,
    /// Unix seconds of the last turn.
    pub last: u64,
}

/// The history database.
pub struct History {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Turns older than this are deleted (`conversation.retention_days`).
    retention: Option<Duration>,
}

impl History {
    pub fn open(path: &Path) -> Result<History, HistoryError> {
        let err = |source: rusqlite::Error| HistoryError {
            path: path.to_path_buf(),
            source: source.into(),
        };
        crate::private::prepare_file(path).map_err(|e| HistoryError {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        let conn = crate::private::open_store(path, "history", |path| {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            crate::private::quick_check(&conn)?;
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS turns (
                     id INTEGER PRIMARY KEY,
                     session TEXT NOT NULL,
                     question TEXT NOT NULL,
                     answer TEXT NOT NULL,
                     at INTEGER NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS turns_session ON turns(session, id);",
            )?;
            Ok(conn)
        })
        .map_err(err)?;
        Ok(History {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            retention: None,
        })
    }

    /// Keeps turns for `days` (0: for ever); older ones are deleted now
    /// and whenever a turn is stored.
    pub fn keep_days(mut self, days: u64) -> Result<History, HistoryError> {
        self.retention = (days > 0).then(|| Duration::from_secs(days * 86_400));
        self.expire()?;
        Ok(self)
    }

    fn expire(&self) -> Result<(), HistoryError> {
        let Some(retention) = self.retention else {
            return Ok(());
        };
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        self.conn()
            .execute("DELETE FROM turns WHERE at < ?1", params![cutoff])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError {
            path: self.path.clone(),
            source: source.into(),
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn append(&self, session: &str, question: &str, answer: &str) -> Result<(), HistoryError> {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.conn()
            .execute(
                "INSERT INTO turns (session, question, answer, at) VALUES (?1, ?2, ?3, ?4)",
                params![session, question, answer, at],
            )
            .map_err(|e| self.err(e))?;
        self.expire()
    }

    /// The last `limit` turns of a session, oldest first.
    pub fn turns(&self, session: &str, limit: usize) -> Result<Vec<StoredTurn>, HistoryError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT question, answer, at FROM
                   (SELECT id, question, answer, at FROM turns WHERE session = ?1
                    ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![session, limit as i64], |r| {
                Ok(StoredTurn {
                    question: r.get(0)?,
                    answer: r.get(1)?,
                    at: r.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    pub fn sessions(&self) -> Result<Vec<SessionInfo>, HistoryError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT session, count(*), max(at) FROM turns GROUP BY session ORDER BY max(id) DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SessionInfo {
                    session: r.get(0)?,
                    turns: r.get::<_, i64>(1)? as u64,
                    last: r.get::<_, i64>(2)? as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Deletes a session; returns how many turns it had.
    pub fn forget(&self, session: &str) -> Result<usize, HistoryError> {
        self.conn()
            .execute("DELETE FROM turns WHERE session = ?1", [session])
            .map_err(|e| self.err(e))
    }
}

/// A rough token count for budgeting (about four characters per token for
/// English text with common tokenizers); voxd has no LLM tokenizer of its own.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// The newest turns that fit in `budget` tokens, oldest first: older turns
/// are dropped first, and a turn is kept whole or not at all.
pub fn trim_to_budget(turns: &[Turn], budget: usize) -> Vec<Turn> {
    let mut used = 0;
    let mut kept = Vec::new();
    for turn in turns.iter().rev() {
        // "Question: " / "Answer: " and line breaks cost a few tokens too.
        let cost = estimate_tokens(&turn.question) + estimate_tokens(&turn.answer) + 6;
        if used + cost > budget {
            break;
        }
        used += cost;
        kept.push(turn.clone());
    }
    kept.reverse();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_persist_list_and_forget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.sqlite");
        {
            let h = History::open(&path).unwrap();
            h.append("a", "q1", "a1").unwrap();
            h.append("b", "x", "y").unwrap();
            h.append("a", "q2", "a2").unwrap();
        }
        let h = History::open(&path).unwrap();
        let turns = h.turns("a", 10).unwrap();
        assert_eq!(
            turns
                .iter()
                .map(|t| t.question.as_str())
                .collect::<Vec<_>>(),
            ["q1", "q2"]
        );
        assert_eq!(h.turns("a", 1).unwrap()[0].question, "q2");
        let sessions = h.sessions().unwrap();
        assert_eq!(sessions[0].session, "a");
        assert_eq!(sessions[0].turns, 2);
        assert_eq!(h.forget("a").unwrap(), 2);
        assert!(h.turns("a", 10).unwrap().is_empty());
        assert_eq!(h.sessions().unwrap().len(), 1);
    }

    #[test]
    fn turns_older_than_the_retention_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(&dir.path().join("h.sqlite")).unwrap();
        let day = 86_400;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for (question, age) in [("old", 100 * day), ("recent", 10 * day)] {
            h.conn()
                .execute(
                    "INSERT INTO turns (session, question, answer, at) VALUES ('s', ?1, 'a', ?2)",
                    params![question, now - age],
                )
                .unwrap();
        }
        let h = h.keep_days(90).unwrap();
        let left: Vec<String> = h
            .turns("s", 10)
            .unwrap()
            .into_iter()
            .map(|t| t.question)
            .collect();
        assert_eq!(left, ["recent"]);
        h.append("s", "new", "a").unwrap();
        assert_eq!(h.turns("s", 10).unwrap().len(), 2);
        let forever = h.keep_days(0).unwrap();
        assert_eq!(forever.turns("s", 10).unwrap().len(), 2);
    }

    #[test]
    fn trimming_drops_the_oldest_turns_first() {
        let turn = |q: &str| Turn {
            question: q.repeat(40),
            answer: "ok".into(),
        };
        let turns = vec![turn("a"), turn("b"), turn("c")];
        // Each turn costs 10 + 1 + 6 = 17 tokens.
        let kept = trim_to_budget(&turns, 40);
        assert_eq!(kept.len(), 2);
        assert!(kept[0].question.starts_with('b'));
        assert!(kept[1].question.starts_with('c'));
        assert!(trim_to_budget(&turns, 10).is_empty());
        assert_eq!(trim_to_budget(&turns, 1000).len(), 3);
    }
}

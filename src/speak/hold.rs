//! Held utterances: an utterance may be *held* ([`hold`]): it is
//! synthesised as usual, but nothing of it plays until its [`Gate`]
//! confirms it, and it is dropped unheard if the gate withdraws it (the
//! voice loop answers a question while it waits to learn whether the
//! speaker has finished). The speech thread waits on the [`Hold`] side.

use tokio::sync::watch;

/// Whether a held utterance may be heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pending,
    Confirmed,
    Withdrawn,
}

/// Decides a held utterance. Dropping it undecided withdraws it.
#[derive(Debug)]
pub struct Gate(watch::Sender<Verdict>);

/// The utterance's side of a [`Gate`].
#[derive(Debug, Clone)]
pub struct Hold(watch::Receiver<Verdict>);

/// A gate and the hold it decides.
pub fn hold() -> (Gate, Hold) {
    let (tx, rx) = watch::channel(Verdict::Pending);
    (Gate(tx), Hold(rx))
}

impl Gate {
    pub fn confirm(self) {
        let _ = self.0.send(Verdict::Confirmed);
    }

    pub fn withdraw(self) {
        let _ = self.0.send(Verdict::Withdrawn);
    }
}

impl Hold {
    /// The verdict so far (an undecided gate that is gone withdrew).
    pub fn verdict(&self) -> Verdict {
        let verdict = *self.0.borrow();
        match verdict {
            Verdict::Pending if self.0.has_changed().is_err() => Verdict::Withdrawn,
            v => v,
        }
    }

    /// Waits for the verdict.
    pub async fn decided(&self) -> Verdict {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|v| *v != Verdict::Pending).await;
        self.verdict()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_confirms_or_withdraws_and_a_dropped_one_withdraws() {
        let (gate, hold) = super::hold();
        assert_eq!(hold.verdict(), Verdict::Pending);
        gate.confirm();
        assert_eq!(hold.verdict(), Verdict::Confirmed);
        assert_eq!(hold.decided().await, Verdict::Confirmed);

        let (gate, hold) = super::hold();
        gate.withdraw();
        assert_eq!(hold.decided().await, Verdict::Withdrawn);

        let (gate, hold) = super::hold();
        let waiting = tokio::spawn({
            let hold = hold.clone();
            async move { hold.decided().await }
        });
        drop(gate);
        assert_eq!(waiting.await.unwrap(), Verdict::Withdrawn);
        assert_eq!(hold.verdict(), Verdict::Withdrawn);
    }
}

//! Concurrent read barriers share rounds. A barrier is only good for a caller if its
//! round began after the caller arrived (Raft §6.4: the read index must be taken after the
//! read was asked for), so a caller takes the answer of the first round that began after
//! it arrived, and runs one itself only when none has: under load, a burst of callers
//! costs at most two rounds (a heartbeat to a majority each) instead of one per caller.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rounds of one check, run one at a time; each answers every caller that arrived before
/// it began.
#[derive(Debug, Default)]
pub(crate) struct Rounds<T> {
    /// How many rounds began.
    began: AtomicU64,
    /// The last round that ended: its number and answer (an error as its message). Held
    /// while a round runs, so rounds run one at a time and a caller that waited for the
    /// lock finds the answer of the round it waited for.
    last: tokio::sync::Mutex<Option<(u64, Result<T, String>)>>,
}

impl<T: Clone> Rounds<T> {
    /// The answer of a round that began after this call: one that ended while this call
    /// waited its turn, or else `round()` run now. Another round's error comes back as its
    /// message through `shared_err`.
    ///
    /// # Errors
    /// `round`'s, or the shared round's through `shared_err`.
    pub(crate) async fn run<E: std::fmt::Display, F, Fut>(
        &self,
        round: F,
        shared_err: impl FnOnce(String) -> E,
    ) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let arrived = self.began.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some((n, answer)) = &*last
            && *n > arrived
        {
            return answer.clone().map_err(shared_err);
        }
        let n = self.began.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = round().await;
        *last = Some((
            n,
            match &answer {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err(e.to_string()),
            },
        ));
        answer
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Sixteen callers at once share rounds (fewer than sixteen run), and each takes the
    /// answer of a round that began after it arrived: a round's value is the count of
    /// rounds begun when it began, so no caller gets one below what it saw on arrival.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_share_rounds_that_began_after_them() {
        let rounds = Arc::new(Rounds::<u64>::default());
        let ran = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (rounds, ran) = (rounds.clone(), ran.clone());
            tasks.push(tokio::spawn(async move {
                let arrived = rounds.began.load(Ordering::SeqCst);
                let got = rounds
                    .run(
                        || async {
                            ran.fetch_add(1, Ordering::SeqCst);
                            let began = rounds.began.load(Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok::<u64, String>(began)
                        },
                        |m| m,
                    )
                    .await
                    .expect("round");
                assert!(
                    got > arrived,
                    "a round that began after the caller: {got} > {arrived}"
                );
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let ran = ran.load(Ordering::SeqCst);
        assert!(
            (1..16).contains(&ran),
            "rounds shared: {ran} ran for 16 callers"
        );
    }

    /// A failed round answers the callers that waited for it with its message; the next
    /// caller runs a new one.
    #[tokio::test]
    async fn a_failed_round_answers_its_waiters_and_the_next_caller_runs_again() {
        let rounds = Rounds::<u64>::default();
        let e = rounds
            .run(|| async { Err::<u64, String>("no leader".into()) }, |m| m)
            .await;
        assert_eq!(e, Err("no leader".to_owned()));
        let ok = rounds.run(|| async { Ok::<u64, String>(7) }, |m| m).await;
        assert_eq!(
            ok,
            Ok(7),
            "a round that began before this call is not taken"
        );
    }
}

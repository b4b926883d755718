//! One run of a fetch however many requests ask for the same thing at once: the first
//! starts it as its own task (so a client that hangs up cancels nothing), the others
//! await the same result.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt, Shared};

/// Runs in progress, by key.
pub struct SingleFlight<K, V: Clone> {
    running: Mutex<HashMap<K, Shared<BoxFuture<'static, Option<V>>>>>,
}

impl<K, V: Clone> Default for SingleFlight<K, V> {
    fn default() -> Self {
        Self {
            running: Mutex::default(),
        }
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the run for `key`: the one in progress, or `make()`'s, spawned.
    /// `None` if the run's task panicked.
    pub async fn run<F>(&self, key: K, make: impl FnOnce() -> F) -> Option<V>
    where
        F: Future<Output = V> + Send + 'static,
    {
        let run = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            running
                .entry(key.clone())
                .or_insert_with(|| {
                    let task = tokio::spawn(make());
                    async move { task.await.ok() }.boxed().shared()
                })
                .clone()
        };
        let result = run.clone().await;
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(&key).is_some_and(|r| r.ptr_eq(&run)) {
            running.remove(&key);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let flights = Arc::new(SingleFlight::<u8, usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let callers = (0..20).map(|_| {
            let (flights, runs) = (flights.clone(), runs.clone());
            tokio::spawn(async move {
                flights
                    .run(1, || async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        runs.fetch_add(1, Ordering::SeqCst)
                    })
                    .await
            })
        });
        for c in futures::future::join_all(callers).await {
            assert_eq!(c.ok().flatten(), Some(0));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}

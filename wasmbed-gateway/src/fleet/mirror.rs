//! A KV bucket kept in memory from a JetStream watch (docs/FLEET.md, "Applications"): the
//! reconcile pass reads a snapshot of it instead of the whole bucket (one key listing and one
//! KV get per key) on every pass.
//!
//! One task per bucket opens `watch_with_history(">")` (the last value of every key first, then
//! every change; a delete or purge removes the key) and updates a map. The map is *synced* once
//! the watch delivered the values the bucket held when it was opened (the entry with
//! `delta == 0`, or at once when the bucket was empty); until then [`Mirror::snapshot`] is
//! `None` and the caller reads the bucket itself. A watch that ends or fails is opened again
//! with backoff (backon) and the map rebuilt from scratch, unsynced meanwhile.
//!
//! Bounds: at most [`MAX_RECORDS`] keys; a new key beyond them is left out (counted and logged,
//! as [`super::client::read_bucket`] leaves out keys beyond its listing bound). A bucket with a
//! `max_age` (the claims) drops nothing by itself in a watch (JetStream sends no delete when a
//! message ages out), so the mirror expires each entry `max_age` after it was written: for the
//! values delivered while syncing, from their write time compared with the server's clock (read
//! when the watch opens, as the creation time of a consumer made for the purpose: this host's
//! clock may be off the server's by more than a claim's TTL); for later changes, from when they
//! arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use futures_util::StreamExt;

use super::client::MAX_RECORDS;
use super::now_ms;

/// Longest wait between two attempts to open a watch.
const REOPEN_MAX: Duration = Duration::from_secs(5);
/// Deadline of opening a watch (consumer creation, bucket info).
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed openings in a row after which (and after every as many more) a warning is logged.
const UNSYNCED_WARN_EVERY: u64 = 5;

#[derive(Debug, Clone)]
struct Held {
    value: bytes::Bytes,
    expires: Option<Instant>,
}

/// The map of one bucket and whether it is complete (no IO: unit-tested).
#[derive(Debug)]
pub(crate) struct MirrorMap {
    entries: HashMap<String, Held>,
    synced: bool,
    cap: usize,
    max_age: Option<Duration>,
    /// New keys left out because the map was full (since the last reset).
    pub(crate) dropped: u64,
}

impl MirrorMap {
    pub(crate) fn new(cap: usize) -> Self {
        MirrorMap {
            entries: HashMap::new(),
            synced: false,
            cap,
            max_age: None,
            dropped: 0,
        }
    }

    /// Forgets everything (a new watch rebuilds it); `max_age` is the bucket's (`None`: none).
    pub(crate) fn reset(&mut self, max_age: Option<Duration>) {
        self.entries.clear();
        self.synced = false;
        self.max_age = max_age;
        self.dropped = 0;
    }

    /// Applies one entry of the watch: `put` false for a delete or purge; `age` how old the
    /// value already is when it arrives. Returns whether the map changed.
    pub(crate) fn apply(
        &mut self,
        key: &str,
        put: Option<bytes::Bytes>,
        age: Duration,
        now: Instant,
    ) -> bool {
        match put {
            None => self.entries.remove(key).is_some(),
            Some(value) => {
                let expires = self.max_age.map(|m| now + m.saturating_sub(age.min(m)));
                if let Some(h) = self.entries.get_mut(key) {
                    *h = Held { value, expires };
                    return true;
                }
                if self.entries.len() >= self.cap {
                    self.dropped += 1;
                    return false;
                }
                self.entries
                    .insert(key.to_string(), Held { value, expires });
                true
            }
        }
    }

    /// The initial values are all in: snapshots may be taken.
    pub(crate) fn mark_synced(&mut self) {
        self.synced = true;
    }

    /// Every live `(key, value)`, sorted by key; `None` until synced.
    pub(crate) fn snapshot(&self, now: Instant) -> Option<Vec<(String, bytes::Bytes)>> {
        if !self.synced {
            return None;
        }
        let mut out: Vec<(String, bytes::Bytes)> = self
            .entries
            .iter()
            .filter(|(_, h)| h.expires.is_none_or(|e| e > now))
            .map(|(k, h)| (k.clone(), h.value.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }
}

struct Shared {
    map: Mutex<MirrorMap>,
    /// Raised on every change of a synced map, when it becomes synced, and when it is reset.
    changes: tokio::sync::watch::Sender<u64>,
    /// Watches opened so far (1 after the first; more after reopenings).
    opened: std::sync::atomic::AtomicU64,
}

/// A bucket kept in memory; cloning shares it. The watch task stops when the last clone drops.
#[derive(Clone)]
pub struct Mirror {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Mirror {
    /// Starts mirroring `bucket` (it may not exist yet: the task retries until it does).
    pub fn spawn(js: async_nats::jetstream::Context, bucket: &str) -> Mirror {
        Self::spawn_with_cap(js, bucket, MAX_RECORDS)
    }

    /// [`Mirror::spawn`] holding at most `cap` keys.
    pub fn spawn_with_cap(js: async_nats::jetstream::Context, bucket: &str, cap: usize) -> Mirror {
        Self::spawn_with_clock(js, bucket, cap, now_ms)
    }

    /// [`Mirror::spawn_with_cap`] on a host whose wall clock (Unix milliseconds) is `clock`
    /// (tests: a host whose clock is off the server's).
    pub fn spawn_with_clock(
        js: async_nats::jetstream::Context,
        bucket: &str,
        cap: usize,
        clock: fn() -> u64,
    ) -> Mirror {
        let shared = Arc::new(Shared {
            map: Mutex::new(MirrorMap::new(cap)),
            changes: tokio::sync::watch::Sender::new(0),
            opened: Default::default(),
        });
        let task = tokio::spawn(run(js, bucket.to_string(), shared.clone(), clock));
        Mirror {
            shared,
            _task: Arc::new(AbortOnDrop(task.abort_handle())),
        }
    }

    /// Every live `(key, value)` sorted by key, or `None` while the map is not synced (first
    /// watch still delivering, or a watch being reopened): read the bucket instead.
    pub fn snapshot(&self) -> Option<Vec<(String, bytes::Bytes)>> {
        self.shared
            .map
            .lock()
            .expect("mirror lock")
            .snapshot(Instant::now())
    }

    /// A receiver whose `changed()` resolves on every change of the map.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changes.subscribe()
    }

    /// How many watches were opened (a reopened watch counts again).
    pub fn watches_opened(&self) -> u64 {
        self.shared
            .opened
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

async fn run(
    js: async_nats::jetstream::Context,
    bucket: String,
    shared: Arc<Shared>,
    clock: fn() -> u64,
) {
    use backon::BackoffBuilder;
    let backoff = || {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(REOPEN_MAX)
            .without_max_times()
            .build()
    };
    let mut delays = backoff();
    // Failed openings in a row: the pass reads the whole bucket meanwhile, which should not go
    // on unnoticed.
    let mut failures = 0u64;
    loop {
        let synced = follow(&js, &bucket, &shared, clock).await;
        shared.map.lock().expect("mirror lock").reset(None);
        shared.changes.send_modify(|n| *n += 1);
        if matches!(synced, Ok(()) | Err((true, _))) {
            failures = 0;
        }
        match synced {
            Ok(()) => tracing::warn!(bucket, "fleet: watch ended; opening it again"),
            Err((true, e)) => {
                tracing::warn!(
                    bucket,
                    "fleet: watch failed after syncing: {e}; opening it again"
                );
                delays = backoff();
            }
            Err((false, e)) => {
                failures += 1;
                if failures % UNSYNCED_WARN_EVERY == 0 {
                    tracing::warn!(
                        bucket,
                        "fleet: cannot follow the bucket ({failures} attempts in a row): {e}; \
                         the reconcile pass reads the whole bucket each time meanwhile: check \
                         the NATS server's logs and the stream's limits (max_consumers)"
                    );
                } else {
                    tracing::debug!(bucket, "fleet: watch: {e}; retrying");
                }
            }
        }
        tokio::time::sleep(delays.next().unwrap_or(REOPEN_MAX)).await;
    }
}

/// Opens one watch and applies it to the map until it ends (`Ok`) or fails (`Err`, with whether
/// it had synced).
async fn follow(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    shared: &Shared,
    clock: fn() -> u64,
) -> Result<(), (bool, String)> {
    let err = |e: &dyn std::fmt::Display| (false, e.to_string());
    let (store, mut watch) = tokio::time::timeout(OPEN_TIMEOUT, async {
        let store = js.get_key_value(bucket).await.map_err(|e| err(&e))?;
        let watch = store.watch_with_history(">").await.map_err(|e| err(&e))?;
        Ok::<_, (bool, String)>((store, watch))
    })
    .await
    .map_err(|_| err(&format!("no answer within {OPEN_TIMEOUT:?}")))??;
    // The bucket's info after the watch opened: empty then, synced at once (a value written
    // meanwhile arrives as a change); otherwise synced at the entry with `delta == 0`.
    let status = tokio::time::timeout(OPEN_TIMEOUT, store.status())
        .await
        .map_err(|_| err(&format!("no answer within {OPEN_TIMEOUT:?}")))?
        .map_err(|e| err(&e))?;
    let max_age = status.info.config.max_age;
    let empty = status.info.state.messages == 0;
    // The ages of the values found are measured on the server's clock alone (this host's may be
    // off by more than a claim's TTL: every live claim looked expired, or an expired one lived
    // a TTL longer); only a bucket with a `max_age` needs it.
    let server = if max_age.is_zero() {
        None
    } else {
        let at = tokio::time::timeout(OPEN_TIMEOUT, server_clock(&store))
            .await
            .map_err(|_| err(&format!("no answer within {OPEN_TIMEOUT:?}")))?
            .map_err(|e| err(&e))?;
        let skew = at.0.abs_diff(clock());
        if skew > 2_000 {
            tracing::warn!(
                bucket,
                "fleet: this host's clock is {skew} ms off the NATS server's: the Gateway records' \
                 online status compares heartbeats across hosts; synchronise the clocks (NTP)"
            );
        }
        Some(at)
    };
    {
        let mut map = shared.map.lock().expect("mirror lock");
        map.reset((!max_age.is_zero()).then_some(max_age));
        if empty {
            map.mark_synced();
        }
    }
    shared
        .opened
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.changes.send_modify(|n| *n += 1);
    let mut synced = empty;
    let mut warned = false;
    while let Some(e) = watch.next().await {
        let e = e.map_err(|e| (synced, e.to_string()))?;
        let age = match server {
            Some((server_ms, at)) if !synced => {
                let written_ms = (e.created.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
                let now_ms = server_ms + at.elapsed().as_millis() as u64;
                Duration::from_millis(now_ms.saturating_sub(written_ms))
            }
            _ => Duration::ZERO,
        };
        let put = (e.operation == kv::Operation::Put).then_some(e.value);
        let mut map = shared.map.lock().expect("mirror lock");
        let mut changed = map.apply(&e.key, put, age, Instant::now());
        if !synced && e.delta == 0 {
            map.mark_synced();
            synced = true;
            changed = true;
        }
        if map.dropped > 0 && !warned {
            warned = true;
            tracing::warn!(
                bucket,
                "fleet: over {} keys: the reconcile pass does not see the others",
                map.cap
            );
        }
        drop(map);
        // While syncing nobody may read the map: one change when it is complete.
        if changed && synced {
            shared.changes.send_modify(|n| *n += 1);
        }
    }
    Ok(())
}

/// The server's clock (Unix milliseconds) at the returned instant: the creation time of a
/// consumer it makes for the purpose (then deleted; it would also go away unused by itself).
async fn server_clock(store: &kv::Store) -> Result<(u64, Instant), String> {
    use async_nats::jetstream::consumer::{pull, DeliverPolicy};
    let sent = Instant::now();
    let probe = store
        .stream
        .create_consumer(pull::Config {
            description: Some("wasmbed mirror: the server's clock".into()),
            deliver_policy: DeliverPolicy::New,
            inactive_threshold: Duration::from_secs(5),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("reading the server's clock: {e}"))?;
    // Created about half way through the request.
    let at = sent + sent.elapsed() / 2;
    let info = probe.cached_info();
    let created_ms = (info.created.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    if let Err(e) = store.stream.delete_consumer(&info.name).await {
        tracing::debug!("fleet: deleting the clock probe {}: {e}", info.name);
    }
    Ok((created_ms, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<bytes::Bytes> {
        Some(bytes::Bytes::from(s.to_string()))
    }

    fn keys(m: &MirrorMap, now: Instant) -> Vec<(String, String)> {
        m.snapshot(now)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn nothing_until_synced_then_puts_updates_deletes() {
        let now = Instant::now();
        let mut m = MirrorMap::new(10);
        assert!(m.apply("b", b("1"), Duration::ZERO, now));
        assert!(m.apply("a", b("2"), Duration::ZERO, now));
        assert!(m.snapshot(now).is_none(), "partial view handed out");
        m.mark_synced();
        assert_eq!(
            keys(&m, now),
            [("a".into(), "2".into()), ("b".into(), "1".into())]
        );
        assert!(m.apply("a", b("3"), Duration::ZERO, now));
        assert!(m.apply("b", None, Duration::ZERO, now));
        assert!(
            !m.apply("zz", None, Duration::ZERO, now),
            "deleting nothing changes nothing"
        );
        assert_eq!(keys(&m, now), [("a".into(), "3".into())]);
        m.reset(None);
        assert!(m.snapshot(now).is_none(), "a reset map is unsynced");
    }

    #[test]
    fn bounded_new_keys_left_out_updates_kept() {
        let now = Instant::now();
        let mut m = MirrorMap::new(2);
        m.mark_synced();
        m.apply("a", b("1"), Duration::ZERO, now);
        m.apply("b", b("1"), Duration::ZERO, now);
        assert!(!m.apply("c", b("1"), Duration::ZERO, now));
        assert_eq!(m.dropped, 1);
        assert!(
            m.apply("b", b("2"), Duration::ZERO, now),
            "an update of a held key"
        );
        m.apply("a", None, Duration::ZERO, now);
        assert!(
            m.apply("c", b("1"), Duration::ZERO, now),
            "room again after a delete"
        );
        assert_eq!(
            keys(&m, now),
            [("b".into(), "2".into()), ("c".into(), "1".into())]
        );
    }

    #[test]
    fn max_age_expires_entries_not_renewed() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut m = MirrorMap::new(10);
        m.reset(Some(10 * s));
        m.apply("fresh", b("1"), Duration::ZERO, t0);
        m.apply("old", b("1"), 8 * s, t0);
        m.apply("older", b("1"), 30 * s, t0);
        m.mark_synced();
        assert_eq!(
            keys(&m, t0 + s).len(),
            2,
            "an entry older than max_age is dead"
        );
        assert_eq!(keys(&m, t0 + 3 * s), [("fresh".into(), "1".into())]);
        m.apply("old", b("2"), Duration::ZERO, t0 + 3 * s);
        assert_eq!(keys(&m, t0 + 12 * s), [("old".into(), "2".into())]);
        assert!(keys(&m, t0 + 14 * s).is_empty());
    }
}

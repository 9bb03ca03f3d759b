//! The bounded reply queue of one Wasmbed-dialect connection and the gateway-wide buffer budget.
//!
//! Replies and events are serialized when queued, so the queue is counted in bytes. Three bounds:
//! - `soft`: above it the connection stops reading requests (the host is slowed by TCP flow
//!   control) and log followers skip lines (they send a "lines skipped" notice when there is room
//!   again);
//! - `hard`: a host that lets this much pile up is not reading: the connection is closed;
//! - the gateway-wide [`Budget`]: above it every connection stops reading requests and followers
//!   skip, whatever their own queue holds. Upload bodies being received and served count in it
//!   too, up to three quarters of it ([`Budget::upload_share`]).
//!
//! The writer closes the connection when the host takes no bytes for `stall` (see [`Outbox::run_writer`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Bytes queued for hosts, gateway-wide (replies and upload bodies being received).
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes in use now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// True while under the limit.
    pub fn has_room(&self) -> bool {
        self.used() < self.limit
    }

    /// Takes `n` bytes if they fit; the returned charge gives them back when dropped.
    pub fn try_charge(self: &Arc<Self>, n: usize) -> Option<Charge> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(n) > self.limit {
                return None;
            }
            match self.used.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Charge {
                        budget: self.clone(),
                        n,
                    })
                }
                Err(now) => cur = now,
            }
        }
    }

    /// Bytes upload bodies may hold at once: three quarters of the limit, so that uploads
    /// being received never take the room replies need (a full budget stops every
    /// connection's reading of requests).
    pub fn upload_share(&self) -> usize {
        self.limit - self.limit / 4
    }

    /// Takes `n` bytes for an upload body if they fit in [`Budget::upload_share`] (counting
    /// everything held, replies included).
    pub fn try_charge_upload(self: &Arc<Self>, n: usize) -> Option<Charge> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(n) > self.upload_share() {
                return None;
            }
            match self.used.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Charge {
                        budget: self.clone(),
                        n,
                    })
                }
                Err(now) => cur = now,
            }
        }
    }

    /// [`Budget::try_charge_upload`], waiting up to `wait` for other bodies and replies to give
    /// their bytes back.
    pub async fn charge_upload(self: &Arc<Self>, n: usize, wait: Duration) -> Option<Charge> {
        let end = tokio::time::Instant::now() + wait;
        loop {
            if let Some(c) = self.try_charge_upload(n) {
                return Some(c);
            }
            if tokio::time::Instant::now() >= end {
                return None;
            }
            // Charges are given back by other connections without a wake-up: poll.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn charge(self: &Arc<Self>, n: usize) -> Charge {
        self.used.fetch_add(n, Ordering::Relaxed);
        Charge {
            budget: self.clone(),
            n,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Bytes taken from a [`Budget`], given back on drop.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    n: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::Relaxed);
    }
}

/// The outbox was closed (host gone, or closed for not reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Queue bounds of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Above this many queued bytes the connection stops reading and followers skip.
    pub soft: usize,
    /// A host letting this many bytes pile up is closed.
    pub hard: usize,
    /// A host taking no bytes for this long is closed.
    pub stall: Duration,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<(Vec<u8>, Charge)>,
    bytes: usize,
    closed: Option<String>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Wakes the writer (new item, closed) and waiters for room (item written, closed).
    changed: Notify,
    budget: Arc<Budget>,
    bounds: Bounds,
    peer: SocketAddr,
}

/// The sending side of a connection's reply queue (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbox(Arc<Inner>);

impl Outbox {
    /// An empty outbox for the connection from `peer`.
    pub fn new(budget: Arc<Budget>, bounds: Bounds, peer: SocketAddr) -> Self {
        Self(Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            budget,
            bounds,
            peer,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().expect("outbox lock")
    }

    fn line(v: &Value) -> Vec<u8> {
        let mut line = serde_json::to_vec(v).expect("JSON value");
        line.push(b'\n');
        line
    }

    /// Queues a reply or event that must not be lost. A host that has let `hard` bytes pile up
    /// is not reading: the connection is closed and the reason logged.
    pub fn send(&self, v: Value) -> Result<(), Closed> {
        let line = Self::line(&v);
        let mut st = self.lock();
        if st.closed.is_some() {
            return Err(Closed);
        }
        if st.bytes + line.len() > self.0.bounds.hard {
            let reason = format!(
                "host not reading its replies: {} bytes queued (limits.reply_queue_max)",
                st.bytes
            );
            tracing::warn!(peer = %self.0.peer, "closing connection: {reason}");
            st.closed = Some(reason);
            st.queue.clear();
            st.bytes = 0;
            drop(st);
            self.0.changed.notify_waiters();
            return Err(Closed);
        }
        self.push(st, line);
        Ok(())
    }

    /// Queues a line that may be dropped (log follow events): `Ok(false)` when the connection's
    /// queue or the gateway-wide budget is full.
    pub fn offer(&self, v: Value) -> Result<bool, Closed> {
        let line = Self::line(&v);
        let st = self.lock();
        if st.closed.is_some() {
            return Err(Closed);
        }
        if st.bytes + line.len() > self.0.bounds.soft || !self.0.budget.has_room() {
            return Ok(false);
        }
        self.push(st, line);
        Ok(true)
    }

    fn push(&self, mut st: std::sync::MutexGuard<'_, State>, line: Vec<u8>) {
        let charge = self.0.budget.charge(line.len());
        st.bytes += line.len();
        st.queue.push_back((line, charge));
        drop(st);
        self.0.changed.notify_waiters();
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.lock().bytes
    }

    /// Completes when the outbox is closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.0.changed.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Completes when the queue and the gateway-wide budget have room for more requests
    /// (`Err` when closed meanwhile).
    pub async fn room(&self) -> Result<(), Closed> {
        loop {
            let notified = self.0.changed.notified();
            {
                let st = self.lock();
                if st.closed.is_some() {
                    return Err(Closed);
                }
                if st.bytes < self.0.bounds.soft && self.0.budget.has_room() {
                    return Ok(());
                }
            }
            // The budget is freed by other connections, which do not wake this one: poll it.
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Closes the outbox (the connection's reading side ended): the writer sends what is queued,
    /// then shuts the connection down.
    pub fn finish(&self) {
        let mut st = self.lock();
        if st.closed.is_none() {
            st.closed = Some(String::new());
        }
        drop(st);
        self.0.changed.notify_waiters();
    }

    /// Writes queued lines to `w` until the outbox is finished and empty, or the host takes no
    /// bytes for `stall` (then the queue is dropped, the reason logged and the outbox closed).
    pub async fn run_writer<W: AsyncWrite + Unpin>(&self, w: W) {
        self.run_writer_probed(w, None).await
    }

    /// [`Outbox::run_writer`], with `unsent` telling how many written bytes the kernel still
    /// holds for the host (`SIOCOUTQ`): a host that takes none of them for `stall` while
    /// nothing else is queued (it sent its requests and stopped reading; the replies fit in the
    /// socket buffers) is disconnected too, rather than held open until its idle timeout.
    pub async fn run_writer_probed<W: AsyncWrite + Unpin>(
        &self,
        mut w: W,
        unsent: Option<&(dyn Fn() -> Option<usize> + Send + Sync)>,
    ) {
        let stall = self.0.bounds.stall;
        // (unsent bytes, since when they have not gone down)
        let mut pending: Option<(usize, tokio::time::Instant)> = None;
        loop {
            let notified = self.0.changed.notified();
            let next = {
                let mut st = self.lock();
                match st.queue.pop_front() {
                    Some(item) => Some(item),
                    None if st.closed.is_some() => break,
                    None => None,
                }
            };
            let Some((line, charge)) = next else {
                let left = unsent.and_then(|f| f()).filter(|&n| n > 0);
                let Some(n) = left else {
                    pending = None;
                    notified.await;
                    continue;
                };
                let now = tokio::time::Instant::now();
                match pending {
                    Some((m, since)) if n >= m => {
                        if now.duration_since(since) >= stall {
                            let reason = format!(
                                "host took none of its last {n} reply bytes for {} s \
                                 (limits.write_stall_ms)",
                                stall.as_secs_f64()
                            );
                            tracing::warn!(peer = %self.0.peer, "closing connection: {reason}");
                            self.abort(Some(reason));
                            break;
                        }
                    }
                    _ => pending = Some((n, now)),
                }
                let poll = (stall / 8).clamp(Duration::from_millis(20), Duration::from_secs(1));
                let _ = tokio::time::timeout(poll, notified).await;
                continue;
            };
            pending = None;
            let res = tokio::time::timeout(stall, w.write_all(&line)).await;
            {
                let mut st = self.lock();
                st.bytes = st.bytes.saturating_sub(line.len());
            }
            drop(charge);
            self.0.changed.notify_waiters();
            match res {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    self.abort(None);
                    break;
                }
                Err(_) => {
                    let reason = format!(
                        "host took no reply bytes for {} s (limits.write_stall_ms)",
                        stall.as_secs_f64()
                    );
                    tracing::warn!(peer = %self.0.peer, "closing connection: {reason}");
                    self.abort(Some(reason));
                    break;
                }
            }
        }
        if !self.stalled() {
            let _ = tokio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
        }
    }

    /// True when the outbox was closed because the host did not take its replies.
    pub fn stalled(&self) -> bool {
        self.lock().closed.as_ref().is_some_and(|r| !r.is_empty())
    }

    fn abort(&self, reason: Option<String>) {
        let mut st = self.lock();
        st.closed = Some(reason.unwrap_or_default());
        st.queue.clear();
        st.bytes = 0;
        drop(st);
        self.0.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::AsyncReadExt;

    fn outbox(budget: &Arc<Budget>, soft: usize, hard: usize) -> Outbox {
        let b = Bounds {
            soft,
            hard,
            stall: Duration::from_secs(1),
        };
        Outbox::new(budget.clone(), b, "127.0.0.1:1".parse().unwrap())
    }

    #[tokio::test]
    async fn bounded_by_bytes_and_budget() {
        let budget = Budget::new(100);
        let o = outbox(&budget, 30, 60);
        o.send(json!("0123456789")).unwrap(); // 13 bytes
        assert_eq!(o.queued(), 13);
        assert_eq!(budget.used(), 13);
        assert_eq!(o.offer(json!("0123456789")), Ok(true));
        assert_eq!(o.offer(json!("0123456789")), Ok(false), "over soft");
        o.send(json!("0123456789")).unwrap();
        o.send(json!("0123456789")).unwrap();
        assert_eq!(o.send(json!("0123456789")), Err(Closed), "over hard");
        assert!(o.is_closed());
        assert_eq!(budget.used(), 0, "a closed queue gives its bytes back");

        let uploads = Budget::new(100);
        let a = uploads.try_charge_upload(60).unwrap();
        assert!(
            uploads.try_charge_upload(20).is_none(),
            "over 3/4 of the budget"
        );
        let b = uploads.try_charge_upload(15).unwrap();
        assert!(uploads.has_room(), "uploads leave room for replies");
        drop((a, b));
        assert_eq!(uploads.used(), 0);
        let held = uploads.try_charge_upload(75).unwrap();
        let waiter = tokio::spawn({
            let uploads = uploads.clone();
            async move {
                uploads
                    .charge_upload(50, Duration::from_secs(5))
                    .await
                    .is_some()
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(held);
        assert!(
            waiter.await.unwrap(),
            "a waiting body gets the bytes given back"
        );
        assert!(uploads
            .charge_upload(76, Duration::from_millis(100))
            .await
            .is_none());

        let other = outbox(&budget, 1000, 1000);
        let _c = budget.try_charge(100).unwrap();
        assert_eq!(other.offer(json!(1)), Ok(false), "budget exhausted");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), other.room())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn writer_drains_then_stalls_closed() {
        let budget = Budget::new(1 << 20);
        let o = outbox(&budget, 1 << 20, 1 << 20);
        let (a, mut b) = tokio::io::duplex(64);
        o.send(json!({"a": 1})).unwrap();
        o.finish();
        o.run_writer(a).await;
        let mut s = String::new();
        b.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "{\"a\":1}\n");

        let o = outbox(&budget, 1 << 20, 1 << 20);
        let (a, _b) = tokio::io::duplex(16);
        o.send(json!("x".repeat(100))).unwrap();
        o.run_writer(a).await; // never read: stalls, closes
        assert!(o.is_closed());
        assert_eq!(budget.used(), 0);
    }
}

//! A bounded per-device log of what the device said unasked, with sequence numbers hosts follow.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

/// What kind of unsolicited line an entry is (the host API's kinds).
pub use wasmbed_api::LogKind;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Sequence number, increasing from 1 per device.
    pub seq: u64,
    /// Entry kind.
    pub kind: LogKind,
    /// The line as heard (or the gateway note).
    pub line: String,
}

/// The bounded log; followers subscribe to new entries.
#[derive(Debug)]
pub struct DeviceLog {
    inner: Mutex<(VecDeque<LogEntry>, u64)>,
    capacity: usize,
    tx: broadcast::Sender<LogEntry>,
}

impl DeviceLog {
    /// A log keeping the last `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            inner: Mutex::new((VecDeque::new(), 0)),
            capacity: capacity.max(1),
            tx,
        }
    }

    /// Appends an entry and notifies followers; returns its sequence number.
    pub fn push(&self, kind: LogKind, line: impl Into<String>) -> u64 {
        let mut g = self.inner.lock().expect("log lock");
        g.1 += 1;
        let entry = LogEntry {
            seq: g.1,
            kind,
            line: line.into(),
        };
        if g.0.len() == self.capacity {
            g.0.pop_front();
        }
        g.0.push_back(entry.clone());
        // Sent under the lock so followers see entries in sequence order.
        let _ = self.tx.send(entry);
        g.1
    }

    /// How many followers are subscribed right now.
    pub fn followers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Entries with `seq >= since` still held, and a subscription for later ones.
    pub fn since(&self, since: u64) -> (Vec<LogEntry>, broadcast::Receiver<LogEntry>) {
        let g = self.inner.lock().expect("log lock");
        let rx = self.tx.subscribe();
        (g.0.iter().filter(|e| e.seq >= since).cloned().collect(), rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_with_sequence_numbers() {
        let log = DeviceLog::new(2);
        assert_eq!(log.push(LogKind::Console, "a"), 1);
        log.push(LogKind::Log, "b");
        let (_, mut rx) = log.since(0);
        log.push(LogKind::Hello, "c");
        let (held, _) = log.since(0);
        assert_eq!(held.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(log.since(3).0.len(), 1);
        assert_eq!(rx.try_recv().unwrap().line, "c");
    }
}

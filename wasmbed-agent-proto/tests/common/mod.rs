//! Shared helpers for session tests: a virtual clock and a session driver.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use wasmbed_agent_proto::{Event, Item, Line, Session, Transmit};

/// A virtual clock: a fixed base instant plus an offset the test advances.
pub struct Clock {
    base: Instant,
    offset: Duration,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            base: Instant::now(),
            offset: Duration::ZERO,
        }
    }
    pub fn now(&self) -> Instant {
        self.base + self.offset
    }
    pub fn advance(&mut self, d: Duration) -> Instant {
        self.offset += d;
        self.now()
    }
    pub fn ms(&self, at: Instant) -> u128 {
        (at - self.base).as_millis()
    }
}

/// Drives a session: collects transmits as text (payloads as `<N bytes>`) and events.
pub struct Driver<S: Session> {
    pub s: S,
    pub clock: Clock,
    pub sent: Vec<String>,
    pub payloads: Vec<Vec<u8>>,
    pub events: Vec<Event>,
}

impl<S: Session> Driver<S> {
    /// A driver on a fresh clock for the session `open` starts at the clock's now.
    pub fn open(open: impl FnOnce(Instant) -> S) -> Self {
        let clock = Clock::new();
        let s = open(clock.now());
        Driver::new(clock, s)
    }

    pub fn new(clock: Clock, s: S) -> Self {
        let mut d = Driver {
            s,
            clock,
            sent: Vec::new(),
            payloads: Vec::new(),
            events: Vec::new(),
        };
        d.pump();
        d
    }

    pub fn pump(&mut self) {
        while let Some(t) = self.s.poll_transmit() {
            match t {
                Transmit::Line(c) => self.sent.push(c.to_string()),
                Transmit::Tagged(c, seq) => self.sent.push(format!("{c} seq={seq}")),
                Transmit::Payload(p) => {
                    self.sent.push(format!("<{} bytes>", p.len()));
                    self.payloads.push(p);
                }
            }
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push(e);
        }
    }

    /// Feeds one agent line `after` the given delay.
    pub fn recv_after(&mut self, after: Duration, raw: &str) {
        let now = self.clock.advance(after);
        self.s.handle_timeout(now);
        self.s.handle_line(now, Item::Line(Line::parse(raw)));
        self.pump();
    }

    pub fn recv(&mut self, raw: &str) {
        self.recv_after(Duration::from_millis(10), raw);
    }

    /// Advances to just before / at the deadline.
    pub fn run_to_deadline(&mut self) -> Duration {
        let deadline = self.s.poll_timeout().expect("a deadline");
        let now = self.clock.now();
        let wait = deadline - now;
        self.clock.advance(wait - Duration::from_millis(1));
        self.s.handle_timeout(self.clock.now());
        assert!(!self.s.is_done(), "timed out early");
        let now = self.clock.advance(Duration::from_millis(1));
        self.s.handle_timeout(now);
        self.pump();
        wait
    }

    pub fn unsolicited(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Unsolicited(l) => Some(l.raw.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Bytes of length `size` whose CRC-32 is `crc`: a fixed pattern with the last 4 bytes chosen to
/// force the CRC (CRC-32 is affine, and 4 zero-byte steps are invertible). Lets transcripts use
/// the real reference vectors (`size=460 crc32=d40c97d1`) without the module's bytes.
pub fn forge_payload(size: usize, crc: u32) -> Vec<u8> {
    assert!(size >= 4);
    let table: Vec<u32> = (0..256u32)
        .map(|i| {
            (0..8).fold(i, |c, _| {
                if c & 1 != 0 {
                    (c >> 1) ^ 0xedb8_8320
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    let mut rev = [0u8; 256];
    for (i, t) in table.iter().enumerate() {
        rev[(t >> 24) as usize] = i as u8;
    }
    let mut data: Vec<u8> = (0..size - 4).map(|i| (i * 7 + 3) as u8).collect();
    // Register after the prefix, and the register the target CRC needs after 4 more bytes.
    let state = crc32fast::hash(&data) ^ 0xffff_ffff;
    let mut reg = crc ^ 0xffff_ffff;
    for _ in 0..4 {
        let k = rev[(reg >> 24) as usize];
        reg = ((reg ^ table[k as usize]) << 8) | u32::from(k);
    }
    data.extend_from_slice(&(reg ^ state).to_le_bytes());
    assert_eq!(crc32fast::hash(&data), crc, "forged CRC");
    data
}

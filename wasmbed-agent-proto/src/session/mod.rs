//! Gateway-side state machines, one per operation, in the quinn-proto style.
//!
//! A session is created with the current time and queues its command. The caller then loops:
//! write everything from [`Session::poll_transmit`], feed every decoded [`Item`] to
//! [`Session::handle_line`], call [`Session::handle_timeout`] when [`Session::poll_timeout`]
//! passes, forward [`Session::poll_event`]s (lines that belong to no operation: they are never
//! dropped), until [`Session::outcome`] is `Some`. Time is a caller-supplied
//! [`std::time::Instant`]; nothing here reads a clock.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::decoder::{Item, Line};
use crate::message::{AgentLine, Command, ErrorLine};
use crate::wire::ErrorCode;

mod baud;
mod compress;
mod ident;
mod load;
mod resync;
mod simple;
mod start;
mod stop;

pub use baud::{
    pick_rate, probe_deadline, revert_wait, wire_time, BaudOutcome, BaudSession, SpeedPolicy,
};
pub use compress::{deflate_saving, INFLATE_BYTES_PER_SEC, MIN_SAVING};
pub use ident::{IdentOutcome, IdentSession};
pub use load::{LoadOptions, LoadOutcome, LoadSession};
pub use resync::{ResyncOutcome, ResyncSession, RESYNC_ATTEMPTS, RESYNC_MARKER, RESYNC_SETTLE};
pub use simple::{
    InfoOutcome, InfoSession, StatusOutcome, StatusSession, UnloadOutcome, UnloadSession,
    INFO_SETTLE,
};
pub use start::{StartOutcome, StartSession};
pub use stop::{StopOutcome, StopSession};

/// Deadlines and link speed. Defaults follow the legacy gateway, except that waits after payload
/// bytes scale with their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// Each LOAD step: `LOAD_READY`, and the final `LOAD_OK` (plus transfer time). Default 3 s.
    pub load_step: Duration,
    /// First reply to START / STOP / INFO / UNLOAD. Default 3 s.
    pub first_reply: Duration,
    /// The final `RESULT` of START (with wait) and of STOP after PENDING. Default 10 s.
    pub result: Duration,
    /// `STATUS_OK`. Default 2 s.
    pub status: Duration,
    /// Link throughput in bytes/s used to scale payload waits. Default 11 520 (115200 baud 8N1).
    pub link_bytes_per_sec: u32,
    /// How many `CHUNK_ERR`s (or out-of-order acks) in a row are tolerated per chunk. Default 5.
    pub chunk_retries: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            load_step: Duration::from_secs(3),
            first_reply: Duration::from_secs(3),
            result: Duration::from_secs(10),
            status: Duration::from_secs(2),
            link_bytes_per_sec: 11_520,
            chunk_retries: 5,
        }
    }
}

impl Timeouts {
    /// Time to push `bytes` through the link at `link_bytes_per_sec` (rounded up to 1 ms).
    pub fn transfer(&self, bytes: usize) -> Duration {
        let rate = u64::from(self.link_bytes_per_sec.max(1));
        Duration::from_millis((bytes as u64 * 1000).div_ceil(rate))
    }
}

/// What a session wants written to the link, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A command line (write [`Command::to_wire`], which adds the `\n`).
    Line(Command),
    /// Raw payload bytes (LOAD body or one CHUNK), no framing.
    Payload(Vec<u8>),
    /// A command line with ` seq=<n>` appended (see [`Session::set_seq`]).
    Tagged(Command, u32),
}

impl Transmit {
    /// The exact bytes to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Transmit::Line(c) => c.to_wire(),
            Transmit::Payload(p) => p.clone(),
            Transmit::Tagged(c, seq) => {
                let mut b = c.to_wire();
                b.pop(); // the '\n'
                b.extend_from_slice(format!(" seq={seq}\n").as_bytes());
                b
            }
        }
    }
}

/// Upload progress: bytes acknowledged by the agent out of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes the agent has acknowledged (v1: 0 until `LOAD_OK`).
    pub acked: u32,
    /// Module size.
    pub total: u32,
}

/// Something the caller must see that is not the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line that belongs to no pending step: HELLO after a reboot, LOG, console text, a late
    /// RESULT of another slot, an unrelated `ERROR`.
    Unsolicited(Line),
    /// The decoder dropped an over-long line.
    LineTooLong {
        /// Its length in bytes.
        len: usize,
        /// Its first bytes.
        head: String,
    },
    /// The decoder stripped a telnet prefix of `len` bytes.
    Telnet {
        /// Bytes stripped.
        len: usize,
    },
    /// Upload progress changed.
    Progress(Progress),
}

/// The step a session was waiting in (named in timeout errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// After SIG (a signed LOAD), before `SIG_OK`.
    Sig,
    /// After LOAD, before `LOAD_READY`.
    LoadReady,
    /// After a CHUNK, before its ack; `acked` bytes confirmed so far.
    Chunk {
        /// Bytes acknowledged before this chunk.
        acked: u32,
    },
    /// After the payload (or the last chunk), before `LOAD_OK`.
    LoadFinal,
    /// After START, before `START_OK` or an immediate `RESULT`.
    StartReply,
    /// After `START_OK`, before the job's `RESULT`.
    Result,
    /// After STOP, before `STOP_OK`.
    StopReply,
    /// After `STOP_OK status=PENDING`, before the stopped job's `RESULT`.
    StopResult,
    /// After STATUS.
    Status,
    /// After INFO.
    Info,
    /// After UNLOAD.
    Unload,
    /// After IDENT.
    Ident,
    /// Resynchronising after a timeout (marker, then STATUS).
    Resync,
    /// After BAUD, before `BAUD_OK`/`BAUD_ERR`.
    Baud,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Sig => f.write_str("waiting for SIG_OK/SIG_ERR"),
            Phase::LoadReady => f.write_str("waiting for LOAD_READY/LOAD_ERR"),
            Phase::Chunk { acked } => {
                write!(
                    f,
                    "waiting for CHUNK_OK/CHUNK_ERR (acked offset {acked}, resumable)"
                )
            }
            Phase::LoadFinal => f.write_str("waiting for LOAD_OK/LOAD_ERR"),
            Phase::StartReply => f.write_str("waiting for START_OK/RESULT/ERROR"),
            Phase::Result => f.write_str("waiting for RESULT"),
            Phase::StopReply => f.write_str("waiting for STOP_OK/RESULT/ERROR"),
            Phase::StopResult => f.write_str("waiting for RESULT (stop)"),
            Phase::Status => f.write_str("waiting for STATUS_OK"),
            Phase::Resync => f.write_str(
                "resynchronising: waiting for ERROR code=UNKNOWN_COMMAND (the marker) then STATUS_OK",
            ),
            Phase::Info => f.write_str("waiting for INFO_OK/ERROR"),
            Phase::Unload => f.write_str("waiting for UNLOAD_OK/UNLOAD_ERR"),
            Phase::Ident => f.write_str("waiting for IDENT_OK/IDENT_ERR"),
            Phase::Baud => f.write_str("waiting for BAUD_OK/BAUD_ERR"),
        }
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No decisive line before the deadline.
    #[error("timeout {phase}; last line heard: {}", last_line.as_deref().unwrap_or("<none>"))]
    Timeout {
        /// Where it was waiting.
        phase: Phase,
        /// The last line received during the session (any line), for diagnostics.
        last_line: Option<String>,
    },
    /// The agent answered with a failure (`LOAD_ERR`, `ERROR`, `UNLOAD_ERR`, a non-OK `RESULT`).
    #[error("agent answered: {}", line.raw)]
    Rejected {
        /// The line, raw and typed.
        line: Line,
    },
    /// The agent's reply contradicts the request (e.g. `LOAD_READY` with another size).
    #[error("protocol violation: {reason}; line: {line}")]
    Protocol {
        /// What is wrong.
        reason: String,
        /// The offending line.
        line: String,
    },
    /// A chunk was refused too many times in a row.
    #[error("chunk at offset {acked} refused {attempts} times; last line: {last_line}")]
    RetriesExhausted {
        /// Bytes acknowledged (resume from here).
        acked: u32,
        /// Attempts made.
        attempts: u32,
        /// The last refusal.
        last_line: String,
    },
}

/// The common interface of all sessions (see the module docs for the driving loop).
pub trait Session {
    /// What a successful operation yields.
    type Outcome;
    /// Feeds one decoded item received at `now`.
    fn handle_line(&mut self, now: Instant, item: Item);
    /// The next thing to write, in order.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// When [`Session::handle_timeout`] must be called; `None` once done.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Tells the session the time is `now`; it fails with a timeout if its deadline passed.
    fn handle_timeout(&mut self, now: Instant);
    /// The next event (lines belonging to nothing, progress).
    fn poll_event(&mut self) -> Option<Event>;
    /// The result, once the operation is over.
    fn outcome(&self) -> Option<&Result<Self::Outcome, SessionError>>;
    /// True once [`Session::outcome`] is `Some`.
    /// Correlate this operation's lines with `seq` (devices whose `INFO_OK` carries `seq=1`,
    /// see [`correlates`]): its command lines carry `seq=<seq>`, a reply carrying another seq
    /// (a late answer to an earlier command) or none is an event, and so is a job's `RESULT`
    /// without `module_id`. The lines it takes lose their trailing ` seq=<seq>` (outcomes and
    /// errors show the reply as an uncorrelated device would send it); events keep theirs.
    /// Call before the first [`Session::poll_transmit`].
    fn set_seq(&mut self, seq: u32);
    /// True once the session is done.
    fn is_done(&self) -> bool {
        self.outcome().is_some()
    }
}

/// State shared by every session: queues, deadline, last line, outcome.
#[derive(Debug)]
pub(crate) struct Core<O> {
    transmit: VecDeque<Transmit>,
    events: VecDeque<Event>,
    deadline: Option<Instant>,
    pub(crate) phase: Phase,
    /// The last line this session took (without its seq), for timeouts and detaching callers.
    last: Option<Line>,
    outcome: Option<Result<O, SessionError>>,
    done: bool,
    seq: Option<u32>,
}

/// The numbering of one link's commands (docs/PROTOCOL.md, "Sequence numbers"): off until an
/// `INFO_OK` announces `seq=1`, then every command gets the next number (1, 2, …, wrapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Correlation {
    last: Option<u32>,
}

impl Correlation {
    /// No numbering (legacy firmware, or before INFO: INFO itself goes without `seq=`).
    pub fn off() -> Self {
        Correlation::default()
    }

    /// Numbering iff this `INFO_OK` line announces it ([`correlates`]).
    pub fn from_info(info_ok: &Line) -> Self {
        Correlation {
            last: correlates(info_ok).then_some(0),
        }
    }

    /// True when commands are numbered.
    pub fn is_on(&self) -> bool {
        self.last.is_some()
    }

    /// Numbers `session`'s command with the next seq (nothing when off) and returns it. Call
    /// before the session's first [`Session::poll_transmit`].
    pub fn tag<S: Session + ?Sized>(&mut self, session: &mut S) -> Option<u32> {
        let seq = self.last.as_mut()?;
        *seq = seq.wrapping_add(1);
        session.set_seq(*seq);
        Some(*seq)
    }
}

/// True if an `INFO_OK` line announces `seq=1`: the agent echoes `seq=<n>` in every reply.
pub fn correlates(info_ok: &Line) -> bool {
    matches!(info_ok.msg, AgentLine::InfoOk(_)) && seq_field(&info_ok.raw).as_deref() == Some("1")
}

/// The value of the first `seq=` field of a line.
fn seq_field(raw: &str) -> Option<String> {
    crate::parse::fields(raw)
        .into_iter()
        .skip(1)
        .find(|f| f.key == "seq")
        .and_then(|f| f.value.map(|v| v.into_owned()))
}

/// A correlated reply without its trailing ` seq=<seq>`: the tag belongs to the link (it says
/// which command the line answers), not to the reply, so outcomes, errors and the last line a
/// timeout names read the same with and without correlation. A line whose seq is not its last
/// field (not written by our agent) stays as it came.
fn untagged(line: Line, seq: u32) -> Line {
    match line.raw.strip_suffix(&format!(" seq={seq}")) {
        Some(reply) => Line::parse(reply.trim_end_matches(' ')),
        None => line,
    }
}

/// Whether a line from a correlating agent must carry the seq of the command it answers: every
/// reply does; module output (LOG), HELLO, console text and the RESULT ending a job do not.
fn answers_a_command(msg: &AgentLine) -> bool {
    match msg {
        AgentLine::Log(_) | AgentLine::Hello(_) | AgentLine::Other(_) | AgentLine::Malformed(_) => {
            false
        }
        AgentLine::Result(r) => r.class() == crate::message::ResultClass::Immediate,
        AgentLine::Error(e) => is_reply_error(e),
        _ => true,
    }
}

impl<O> Core<O> {
    pub(crate) fn new(command: Command, phase: Phase, deadline: Instant) -> Self {
        Core {
            transmit: VecDeque::from([Transmit::Line(command)]),
            events: VecDeque::new(),
            deadline: Some(deadline),
            phase,
            last: None,
            outcome: None,
            done: false,
            seq: None,
        }
    }

    pub(crate) fn set_seq(&mut self, seq: u32) {
        self.seq = Some(seq);
        for t in self.transmit.iter_mut() {
            if let Transmit::Line(c) | Transmit::Tagged(c, _) = t {
                *t = Transmit::Tagged(c.clone(), seq);
            }
        }
    }

    pub(crate) fn send(&mut self, t: Transmit) {
        let t = match (t, self.seq) {
            (Transmit::Line(c), Some(seq)) => Transmit::Tagged(c, seq),
            (t, _) => t,
        };
        self.transmit.push_back(t);
    }

    pub(crate) fn wait(&mut self, phase: Phase, deadline: Instant) {
        self.phase = phase;
        self.deadline = Some(deadline);
    }

    pub(crate) fn event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(crate) fn unsolicited(&mut self, line: Line) {
        self.events.push_back(Event::Unsolicited(line));
    }

    pub(crate) fn finish(&mut self, r: Result<O, SessionError>) {
        self.deadline = None;
        self.done = true;
        self.outcome = Some(r);
    }

    pub(crate) fn reject(&mut self, line: Line) {
        self.finish(Err(SessionError::Rejected { line }));
    }

    pub(crate) fn protocol(&mut self, reason: impl Into<String>, line: &Line) {
        self.finish(Err(SessionError::Protocol {
            reason: reason.into(),
            line: line.raw.clone(),
        }));
    }

    /// Turns decoder items into lines for the session: non-line items and everything after the
    /// outcome become events. Records the last line heard.
    pub(crate) fn accept(&mut self, item: Item) -> Option<Line> {
        let line = match item {
            Item::Line(line) => line,
            Item::LineTooLong { len, head } => {
                self.event(Event::LineTooLong { len, head });
                return None;
            }
            Item::Telnet { len } => {
                self.event(Event::Telnet { len });
                return None;
            }
        };
        if self.done || !self.correlated(&line) {
            self.unsolicited(line);
            return None;
        }
        let line = match self.seq {
            Some(seq) => untagged(line, seq),
            None => line,
        };
        self.last = Some(line.clone());
        Some(line)
    }

    /// With a seq: a reply is ours only with our seq; a job's RESULT without module_id is
    /// nobody's.
    fn correlated(&self, line: &Line) -> bool {
        let Some(want) = self.seq else { return true };
        // The end of a job always names its module on our firmware (immediate refusals never do).
        if matches!(&line.msg, AgentLine::Result(r)
            if r.module_id.is_none() && r.class() == crate::message::ResultClass::RunTime)
        {
            return false;
        }
        match seq_field(&line.raw) {
            Some(got) => got == want.to_string(),
            None => !answers_a_command(&line.msg),
        }
    }

    /// Fails with a timeout if the deadline has passed.
    pub(crate) fn check_timeout(&mut self, now: Instant) {
        if !self.done && self.deadline.is_some_and(|d| now >= d) {
            let phase = self.phase;
            let last_line = self.last.as_ref().map(|l| l.raw.clone());
            self.finish(Err(SessionError::Timeout { phase, last_line }));
        }
    }

    pub(crate) fn last_line(&self) -> Option<&str> {
        self.last.as_ref().map(|l| l.raw.as_str())
    }

    pub(crate) fn last(&self) -> Option<&Line> {
        self.last.as_ref()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.pop_front()
    }
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
    pub(crate) fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
    pub(crate) fn outcome(&self) -> Option<&Result<O, SessionError>> {
        self.outcome.as_ref()
    }
    pub(crate) fn take_outcome(&mut self) -> Option<Result<O, SessionError>> {
        self.outcome.take()
    }
}

/// True for `ERROR` codes that answer a command (as opposed to unsolicited boot/overflow
/// reports, which are events).
pub(crate) fn is_reply_error(e: &ErrorLine) -> bool {
    matches!(
        e.code,
        ErrorCode::UnknownCommand | ErrorCode::LineTooLong | ErrorCode::Unknown(_)
    )
}

/// True if a RESULT is an immediate answer that can be the reply to our START: immediate class
/// (see [`RunResult::class`](crate::message::RunResult::class)) and not naming another module
/// (immediate replies name none).
pub(crate) fn immediate_is_ours(r: &crate::message::RunResult, ours: &str) -> bool {
    r.class() == crate::message::ResultClass::Immediate
        && r.module_id.as_deref().is_none_or(|m| m == ours)
}

/// Shorthand for the reply lines every session treats the same way.
pub(crate) fn reply_error(line: &Line) -> bool {
    matches!(&line.msg, AgentLine::Error(e) if is_reply_error(e))
}

/// Implements [`Session`] for a type with a `core: Core<Outcome>` field and an
/// `on_line(&mut self, now, line)` method.
macro_rules! impl_session {
    ($ty:ty, $outcome:ty) => {
        impl_session!($ty, $outcome, |s: &mut $ty, now| s.core.check_timeout(now));
    };
    ($ty:ty, $outcome:ty, $on_timeout:expr) => {
        impl $crate::session::Session for $ty {
            type Outcome = $outcome;
            fn handle_line(&mut self, now: std::time::Instant, item: $crate::decoder::Item) {
                if let Some(line) = self.core.accept(item) {
                    self.on_line(now, line);
                }
            }
            fn poll_transmit(&mut self) -> Option<$crate::session::Transmit> {
                self.core.poll_transmit()
            }
            fn set_seq(&mut self, seq: u32) {
                self.core.set_seq(seq)
            }
            fn poll_timeout(&self) -> Option<std::time::Instant> {
                self.core.poll_timeout()
            }
            fn handle_timeout(&mut self, now: std::time::Instant) {
                let on_timeout: fn(&mut $ty, std::time::Instant) = $on_timeout;
                on_timeout(self, now)
            }
            fn poll_event(&mut self) -> Option<$crate::session::Event> {
                self.core.poll_event()
            }
            fn outcome(&self) -> Option<&Result<$outcome, $crate::session::SessionError>> {
                self.core.outcome()
            }
        }

        impl $ty {
            /// The step the session is in (the one a timeout would name). Lets a caller hand a
            /// START or STOP that reached [`Phase::Result`] / [`Phase::StopResult`] over to a
            /// waiter outside the link's command queue.
            ///
            /// [`Phase::Result`]: $crate::session::Phase::Result
            /// [`Phase::StopResult`]: $crate::session::Phase::StopResult
            pub fn phase(&self) -> $crate::session::Phase {
                self.core.phase
            }

            /// The last line this session took as a reply (without its `seq=`), e.g. the
            /// `STOP_OK status=PENDING` that made it leave its first step.
            pub fn last_reply(&self) -> Option<&$crate::decoder::Line> {
                self.core.last()
            }

            /// Takes the outcome out of a finished session (later lines still become events).
            pub fn take_outcome(
                &mut self,
            ) -> Option<Result<$outcome, $crate::session::SessionError>> {
                self.core.take_outcome()
            }
        }
    };
}
pub(crate) use impl_session;

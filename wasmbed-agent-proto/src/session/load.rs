//! LOAD: v1 raw payload, or v2 chunked with acknowledgements, resend and resume.

use std::time::Instant;

use super::{
    impl_session, reply_error, Core, Event, Phase, Progress, SessionError, Timeouts, Transmit,
};
use crate::crc::Crc32;
use crate::decoder::Line;
use crate::frame;
use crate::ident::{InvalidField, ModuleId};
use crate::message::{AgentLine, Chunk, Command, Load, LoadOk, LoadReady, Sig};
use crate::signing::ModuleSignature;

/// How to upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Ask for a chunked upload (`chunked=1 framed=1`). An agent that answers `LOAD_READY`
    /// without `chunk=` (any legacy agent, which ignores the unknown keys) gets the v1 raw payload
    /// instead; one that answers `chunk=` without `framed=1` (Wasmbed firmware before framing)
    /// gets raw `CHUNK` payloads.
    pub chunked: bool,
    /// Ask the agent to continue a pending partial chunked upload (`resume=1`).
    pub resume: bool,
    /// `replace=1`.
    pub replace: bool,
    /// `replace_victim=` (implies `replace=1` on the wire).
    pub replace_victim: Option<ModuleId>,
    /// Cap on the chunk size, below the agent's `chunk=`.
    pub max_chunk: Option<u32>,
    /// Sign the upload: `SIG` goes first and must be answered `SIG_OK` (a device without INFO
    /// `sig=` answers `ERROR code=UNKNOWN_COMMAND`: only send it to devices that check).
    pub signature: Option<ModuleSignature>,
    /// With `chunked`: the payload as one raw deflate stream (RFC 1951), offered with
    /// `compress=deflate csize=<len>` (only to agents whose INFO has `compress=deflate`). An agent
    /// that answers `LOAD_READY` without `compress=deflate` gets the uncompressed payload. The
    /// LOAD's size and CRC-32 (and a signature) are always those of the uncompressed payload.
    pub deflated: Option<Vec<u8>>,
}

/// Successful LOAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOutcome {
    /// The typed `LOAD_OK` (with `warn=` if any).
    pub ok: LoadOk,
    /// The raw `LOAD_OK` line.
    pub line: Line,
    /// True if the upload went in acknowledged chunks.
    pub chunked: bool,
    /// Offset the agent resumed from (0 for a fresh upload).
    pub resumed_from: u32,
    /// True if the chunks carried the deflate stream (`compress=deflate` confirmed).
    pub deflated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `SIG` sent, waiting for `SIG_OK`; the LOAD follows.
    Sig,
    Ready,
    /// A chunk of `len` bytes at the acked offset is in flight.
    Chunk {
        len: u32,
    },
    Final,
}

/// LOAD state machine.
///
/// Deadlines: `load_step` for `LOAD_READY`; v1: `load_step + transfer(size)` for `LOAD_OK`
/// after the payload; v2: `load_step + transfer(chunk)` per chunk (the agent's own per-chunk
/// timeout is 2 s, so its `CHUNK_ERR code=TIMEOUT` normally arrives first), then `load_step` for
/// `LOAD_OK`. A `CHUNK_ERR` resends from the offset it names, up to `chunk_retries` times in a
/// row. A timeout during chunks fails with [`Phase::Chunk`] carrying the acked offset: run a new
/// session with `resume: true` to continue from there.
#[derive(Debug)]
pub struct LoadSession {
    core: Core<LoadOutcome>,
    module_id: String,
    payload: Vec<u8>,
    crc32: Crc32,
    options: LoadOptions,
    timeouts: Timeouts,
    state: State,
    chunked: bool,
    /// The agent confirmed `framed=1`: chunks go as frames, a silent chunk is resent.
    framed: bool,
    /// The agent confirmed `compress=deflate`: the chunks (offsets, progress) are of the stream.
    deflate: bool,
    chunk_size: u32,
    acked: u32,
    resumed_from: u32,
    attempts: u32,
    /// The agent cleared the target (or victim) slot: see [`LoadSession::slot_cleared`].
    slot_cleared: bool,
    /// The LOAD line, sent after `SIG_OK` in a signed upload.
    load: Option<Load>,
}

impl LoadSession {
    /// Queues the LOAD line for `payload` at `now`. Fails (naming `size`) on an empty payload or
    /// one over 4 GiB.
    pub fn new(
        now: Instant,
        module_id: ModuleId,
        payload: Vec<u8>,
        options: LoadOptions,
        timeouts: &Timeouts,
    ) -> Result<Self, InvalidField> {
        let mut load = Load::for_payload(module_id.clone(), &payload)?;
        load.chunked = options.chunked;
        load.framed = options.chunked;
        load.resume = options.resume;
        load.replace = options.replace;
        load.replace_victim = options.replace_victim.clone();
        if options.chunked {
            load.deflated_size = options.deflated.as_ref().map(|d| d.len() as u32);
        }
        let crc32 = load.crc32;
        let (first, phase, state, load) = match &options.signature {
            Some(s) => (
                Command::Sig(Sig {
                    module_id: module_id.clone(),
                    ver: s.ver,
                    key: s.key,
                    sig: s.sig,
                }),
                Phase::Sig,
                State::Sig,
                Some(load),
            ),
            None => (Command::Load(load), Phase::LoadReady, State::Ready, None),
        };
        Ok(LoadSession {
            core: Core::new(first, phase, now + timeouts.load_step),
            module_id: module_id.to_string(),
            payload,
            crc32,
            options,
            timeouts: timeouts.clone(),
            state,
            chunked: false,
            framed: false,
            deflate: false,
            chunk_size: 0,
            acked: 0,
            resumed_from: 0,
            attempts: 0,
            slot_cleared: false,
            load,
        })
    }

    /// Bytes acknowledged so far out of the total.
    pub fn progress(&self) -> Progress {
        Progress {
            acked: self.acked,
            total: self.total(),
        }
    }

    /// True once the agent has cleared the slot this LOAD goes to: `LOAD_READY` came, or a
    /// `LOAD_ERR` the agent sends only after choosing and clearing the slot (`NO_MEM` and later
    /// codes; not `BAD_PARAMS`, `BUSY`, `FULL`, `BAD_VICTIM`, `NO_SLOT`). A job that was running
    /// in that slot (the module itself with `replace=1`, or the victim) was killed **without a
    /// RESULT** (FW-B1+ and FW-A semantics), so whoever waits for that job's RESULT must be told.
    pub fn slot_cleared(&self) -> bool {
        self.slot_cleared
    }

    /// The bytes the chunks carry: the deflate stream once the agent took it, else the payload.
    fn sent(&self) -> &[u8] {
        match &self.options.deflated {
            Some(d) if self.deflate => d,
            _ => &self.payload,
        }
    }

    fn total(&self) -> u32 {
        self.sent().len() as u32
    }

    fn on_line(&mut self, now: Instant, line: Line) {
        match (&line.msg, self.state) {
            (AgentLine::SigOk(_), State::Sig) => {
                if let Some(load) = self.load.take() {
                    self.core.send(Transmit::Line(Command::Load(load)));
                }
                self.state = State::Ready;
                self.core
                    .wait(Phase::LoadReady, now + self.timeouts.load_step);
            }
            (AgentLine::SigErr(_), State::Sig) => self.core.reject(line),
            (AgentLine::LoadReady(r), State::Ready) => self.on_ready(now, r.clone(), line),
            (AgentLine::ChunkOk(c), State::Chunk { len }) => {
                let expected = self.acked + len;
                self.resync(now, c.offset, c.offset != expected, line);
            }
            (AgentLine::ChunkErr(e), State::Chunk { .. })
                if e.code == crate::wire::ChunkErrCode::NoUpload =>
            {
                // The agent parked or dropped the upload: only a new LOAD (resume=1) goes on.
                self.core.reject(line)
            }
            (AgentLine::ChunkErr(e), State::Chunk { .. }) => self.resync(now, e.offset, true, line),
            (AgentLine::LoadOk(ok), State::Final)
            | (AgentLine::LoadOk(ok), State::Chunk { .. })
                if self.state == State::Final || self.chunk_completes() =>
            {
                self.set_acked(self.total());
                let outcome = LoadOutcome {
                    ok: ok.clone(),
                    line,
                    chunked: self.chunked,
                    resumed_from: self.resumed_from,
                    deflated: self.deflate,
                };
                self.core.finish(Ok(outcome));
            }
            (AgentLine::LoadErr(e), state) => {
                use crate::wire::LoadErrCode as C;
                let before_slot = matches!(
                    e.code,
                    C::BadParams | C::Busy | C::Full | C::BadVictim | C::NoSlot
                );
                if !matches!(state, State::Ready | State::Sig) || !before_slot {
                    self.slot_cleared = true;
                }
                self.core.reject(line)
            }
            // A framed chunk is answered by CHUNK_OK/CHUNK_ERR only: an ERROR there is some
            // other line's (an echo, a late reply), never this chunk's.
            _ if reply_error(&line)
                && !(self.framed && matches!(self.state, State::Chunk { .. })) =>
            {
                self.core.reject(line)
            }
            _ => self.core.unsolicited(line),
        }
    }

    /// A deadline passed. A framed chunk that got no answer is sent again from the acked offset
    /// after a lone `\n` (which ends whatever partial frame the agent holds), up to
    /// `chunk_retries` times; everything else fails with the phase it waited in.
    fn on_timeout(&mut self, now: Instant) {
        let due = self.core.poll_timeout().is_some_and(|d| now >= d);
        if !(due && self.framed && matches!(self.state, State::Chunk { .. })) {
            return self.core.check_timeout(now);
        }
        self.attempts += 1;
        if self.attempts > self.timeouts.chunk_retries {
            let err = SessionError::RetriesExhausted {
                acked: self.acked,
                attempts: self.attempts,
                last_line: format!(
                    "no answer to the chunk at offset {} (last line heard: {})",
                    self.acked,
                    self.core.last_line().unwrap_or("<none>")
                ),
            };
            return self.core.finish(Err(err));
        }
        self.core.send(Transmit::Payload(b"\n".to_vec()));
        self.next_chunk(now);
    }

    fn chunk_completes(&self) -> bool {
        matches!(self.state, State::Chunk { len } if self.acked + len == self.total())
    }

    fn on_ready(&mut self, now: Instant, r: LoadReady, line: Line) {
        if r.module_id.as_deref().is_some_and(|m| m != self.module_id) {
            // A stale reply to someone else's LOAD.
            return self.core.unsolicited(line);
        }
        self.slot_cleared = true;
        let size = self.payload.len() as u32;
        if r.size != size {
            return self
                .core
                .protocol(format!("LOAD_READY size {} != {size}", r.size), &line);
        }
        if let Some(csize) = r.deflated_size {
            let offered = self.options.deflated.as_ref().map(|d| d.len() as u32);
            if !self.options.chunked || !r.framed || offered != Some(csize) {
                return self.core.protocol(
                    format!("LOAD_READY compress=deflate csize={csize} for a LOAD that did not offer it"),
                    &line,
                );
            }
            self.deflate = true;
        }
        if Crc32::parse_hex(&r.crc32) != Some(self.crc32) {
            return self.core.protocol(
                format!("LOAD_READY crc32 {} != {}", r.crc32, self.crc32),
                &line,
            );
        }
        match (self.options.chunked, r.chunk) {
            (true, Some(chunk)) => {
                let cap = self.options.max_chunk.unwrap_or(u32::MAX);
                self.chunk_size = chunk.min(cap);
                let offset = r.offset.unwrap_or(0);
                if self.chunk_size == 0 || offset > self.total() {
                    return self
                        .core
                        .protocol("LOAD_READY chunk=0 or offset beyond size", &line);
                }
                self.chunked = true;
                self.framed = r.framed;
                self.resumed_from = offset;
                self.set_acked(offset);
                self.next_chunk(now);
            }
            _ => {
                let wait = self.timeouts.load_step + self.timeouts.transfer(self.payload.len());
                self.core.send(Transmit::Payload(self.payload.clone()));
                self.state = State::Final;
                self.core.wait(Phase::LoadFinal, now + wait);
            }
        }
    }

    /// Handles an ack (`CHUNK_OK`, `refused == false` when it is the expected offset) or a
    /// refusal (`CHUNK_ERR` or an unexpected ack offset): the agent's offset is the truth.
    fn resync(&mut self, now: Instant, offset: u32, refused: bool, line: Line) {
        if offset > self.total() {
            return self
                .core
                .protocol(format!("acked offset {offset} beyond size"), &line);
        }
        if refused {
            self.attempts += 1;
            if self.attempts > self.timeouts.chunk_retries {
                let err = SessionError::RetriesExhausted {
                    acked: offset,
                    attempts: self.attempts,
                    last_line: line.raw,
                };
                self.set_acked(offset);
                return self.core.finish(Err(err));
            }
            self.core.unsolicited(line);
        } else {
            self.attempts = 0;
        }
        self.set_acked(offset);
        self.next_chunk(now);
    }

    fn set_acked(&mut self, acked: u32) {
        if acked != self.acked || acked == 0 {
            self.acked = acked;
            let p = self.progress();
            self.core.event(Event::Progress(p));
        }
    }

    fn next_chunk(&mut self, now: Instant) {
        if self.acked == self.total() {
            self.state = State::Final;
            return self
                .core
                .wait(Phase::LoadFinal, now + self.timeouts.load_step);
        }
        let start = self.acked as usize;
        let len = self.chunk_size.min(self.total() - self.acked);
        let bytes = self.sent()[start..start + len as usize].to_vec();
        let chunk = Chunk {
            offset: self.acked,
            size: len,
            crc32: Crc32::of(&bytes),
        };
        if self.framed {
            self.core
                .send(Transmit::Payload(frame::chunk_frame(self.acked, &bytes)));
        } else {
            self.core.send(Transmit::Line(Command::Chunk(chunk)));
            self.core.send(Transmit::Payload(bytes));
        }
        self.state = State::Chunk { len };
        let wait = self.timeouts.load_step + self.timeouts.transfer(len as usize + 64);
        self.core
            .wait(Phase::Chunk { acked: self.acked }, now + wait);
    }
}

impl_session!(LoadSession, LoadOutcome, |s: &mut LoadSession, now| s
    .on_timeout(now));

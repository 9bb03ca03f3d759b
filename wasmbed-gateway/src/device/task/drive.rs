//! One session over the link: its transmits written, the link read until its outcome (or its
//! deadline on a silent link), progress forwarded; and what the device says unasked, which the
//! job table routes ([`crate::device::jobs::JobTable::unasked`]).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use wasmbed_agent_proto::session::{Event, Session, SessionError};
use wasmbed_agent_proto::{AgentLine, Item, Line};

use super::{closed, now_std, DeviceTask, DriveError};
use crate::device::handshake::heard;
use crate::device::jobs::Heard;
use crate::device::{LogKind, Progress};
use crate::link::BoxLink;

/// How a drive ended: the session's outcome, or the detach condition held (the session left
/// its first step: a START or STOP now waits for its RESULT outside the command queue).
pub(super) enum Driven<O> {
    Done(Result<O, SessionError>),
    Detached,
}

/// The device said something: the state's clock.
fn heard_now(s: &mut crate::device::DeviceState) {
    heard(s, std::time::Instant::now());
}

impl DeviceTask {
    /// Feeds bytes heard between commands; returns the last HELLO among them, which asks for
    /// the handshake again.
    pub(super) fn idle_bytes(&mut self, data: &[u8]) -> Option<Line> {
        self.decoder.feed(data);
        let mut hello = None;
        while let Some(item) = self.decoder.next_item() {
            if let Item::Line(line) = &item {
                if matches!(line.msg, AgentLine::Hello(_)) {
                    hello = Some(line.clone());
                }
            }
            self.unsolicited(item_event(item));
        }
        hello
    }

    /// Something the device said outside a command's answer: the job table decides where it
    /// goes ([`crate::device::jobs::JobTable::unasked`]).
    pub(super) fn unsolicited(&self, ev: Event) {
        self.set_state(heard_now);
        match ev {
            Event::Unsolicited(line) => {
                if let AgentLine::Hello(h) = &line.msg {
                    let (board, fw) = (h.device_id.clone(), h.fw_version.clone());
                    self.set_state(|s| {
                        s.board.get_or_insert(board);
                        s.firmware.get_or_insert(fw);
                    });
                }
                if let Heard::Log(kind) = self.waiters.unasked(&line) {
                    let seq = self.log.push(kind, line.raw.clone());
                    self.waiters.late_result(&line, seq);
                }
            }
            Event::LineTooLong { len, head } => {
                self.log.push(
                    LogKind::Gateway,
                    format!("dropped a {len}-byte line: {head}…"),
                );
            }
            Event::Telnet { .. } | Event::Progress(_) => {}
        }
    }

    /// Before each write: a job's commands go out only while the lease allows (fleet fencing);
    /// `Some(why)` when they may not.
    pub(super) fn fenced(&self) -> Option<String> {
        if !self.in_job {
            return None;
        }
        self.lease.may_write(Instant::now()).err()
    }

    /// Runs one session to its outcome over the link. Returns the outcome and the time from the
    /// first byte written to the outcome.
    pub(super) async fn drive<S: Session>(
        &mut self,
        link: &mut BoxLink,
        mut session: S,
        progress: Option<&mpsc::UnboundedSender<Progress>>,
        abort_on_hello: bool,
    ) -> Result<(Result<S::Outcome, SessionError>, Duration), DriveError>
    where
        S::Outcome: Clone,
    {
        match self
            .drive_until(link, &mut session, progress, abort_on_hello, None)
            .await?
        {
            (Driven::Done(r), d) => Ok((r, d)),
            (Driven::Detached, _) => unreachable!("no detach condition"),
        }
    }

    /// [`DeviceTask::drive`], but returns as soon as `detach` holds for the session (then the
    /// session stays with the caller, e.g. to wait for a RESULT outside the command queue).
    pub(super) async fn drive_until<S: Session>(
        &mut self,
        link: &mut BoxLink,
        session: &mut S,
        progress: Option<&mpsc::UnboundedSender<Progress>>,
        abort_on_hello: bool,
        detach: Option<fn(&S) -> bool>,
    ) -> Result<(Driven<S::Outcome>, Duration), DriveError>
    where
        S::Outcome: Clone,
    {
        let t0 = Instant::now();
        self.correlation.tag(session);
        loop {
            while let Some(t) = session.poll_transmit() {
                if let Some(why) = self.fenced() {
                    return Err(DriveError::Fenced(why));
                }
                let bytes = t.to_bytes();
                link.write_all(&bytes).await.map_err(DriveError::Io)?;
                link.flush().await.map_err(DriveError::Io)?;
            }
            while let Some(ev) = session.poll_event() {
                match ev {
                    Event::Progress(p) => {
                        if let Some(tx) = progress {
                            let _ = tx.send(Progress {
                                done: p.acked.into(),
                                total: p.total.into(),
                            });
                        }
                    }
                    Event::Unsolicited(line)
                        if abort_on_hello && matches!(line.msg, AgentLine::Hello(_)) =>
                    {
                        self.unsolicited(Event::Unsolicited(line.clone()));
                        return Err(DriveError::Rebooted(line));
                    }
                    other => self.unsolicited(other),
                }
            }
            if let Some(out) = session.outcome() {
                return Ok((Driven::Done(out.clone()), t0.elapsed()));
            }
            if let Some(detach) = detach {
                if detach(session) {
                    return Ok((Driven::Detached, t0.elapsed()));
                }
            }
            // Items already decoded go first.
            if let Some(item) = self.decoder.next_item() {
                self.set_state(heard_now);
                session.handle_line(now_std(), item);
                continue;
            }
            let deadline = session.poll_timeout().map(Instant::from_std);
            // A device that keeps sending lines, none of them the answer, must not hold the
            // session past its deadline: the read below only times out on a silent link.
            if deadline.is_some_and(|d| Instant::now() >= d) {
                session.handle_timeout(now_std());
                continue;
            }
            let read = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, link.read(&mut self.buf))
                        .await
                        .ok(),
                    None => Some(link.read(&mut self.buf).await),
                }
            };
            match read.await {
                None => session.handle_timeout(now_std()),
                Some(Ok(0)) => return Err(DriveError::Io(closed())),
                Some(Ok(n)) => self.decoder.feed(&self.buf[..n]),
                Some(Err(e)) => return Err(DriveError::Io(e)),
            }
        }
    }
}

fn item_event(item: Item) -> Event {
    match item {
        Item::Line(l) => Event::Unsolicited(l),
        Item::LineTooLong { len, head } => Event::LineTooLong { len, head },
        Item::Telnet { len } => Event::Telnet { len },
    }
}

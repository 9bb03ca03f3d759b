//! The Wasmbed agent line protocol (see `docs/PROTOCOL.md`), sans-IO.
//!
//! - [`wire`]: the command table and wire code enums — the protocol on one screen.
//! - [`message`]: typed [`Command`]s (gateway → agent) and [`AgentLine`]s (agent → gateway).
//! - [`parse`]: total nom parsers for both directions.
//! - [`encode`]: the injection-proof encoder (`Display` of both message types).
//! - [`decoder`]: incremental byte-stream [`Decoder`] (line limit, telnet prefix).
//! - [`crc`]: CRC-32 as printed on the wire.
//! - [`identity`]: the device identity challenge's rules (message, fingerprint, verification).
//! - [`session`]: gateway-side state machines, one per operation.
//!
//! Time: the crate never reads a clock. Every function that needs the time takes a
//! `std::time::Instant` from the caller, and deadlines are returned as `Instant`s; tests use a
//! virtual clock (`base + Duration`), a tokio gateway converts with
//! `tokio::time::Instant::{into_std, from_std}`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use wasmbed_agent_proto::*;
//!
//! let t0 = Instant::now();
//! let start = Start {
//!     module_id: ModuleId::new("math_ops")?,
//!     func: Some(FuncName::new("add")?),
//!     args: Args::new(vec![200, 26])?,
//! };
//! let mut s = StartSession::new(t0, start, true, &Timeouts::default());
//! let Some(Transmit::Line(cmd)) = s.poll_transmit() else { unreachable!() };
//! assert_eq!(cmd.to_string(), r#"START module_id=math_ops func=add args="a0=200,a1=26""#);
//!
//! let mut decoder = Decoder::new();
//! decoder.feed(b"START_OK\r\n[B] hello\nRESULT status=OK module_id=math_ops func=add ret_i32=226\n");
//! for item in decoder.by_ref() {
//!     s.handle_line(t0 + Duration::from_millis(5), item);
//! }
//! let out = s.outcome().unwrap().as_ref().unwrap();
//! assert_eq!(out.result.as_ref().unwrap().ret_i32_signed(), Some(226));
//! assert!(matches!(s.poll_event(), Some(Event::Unsolicited(l)) if l.raw == "[B] hello"));
//! # Ok::<(), InvalidField>(())
//! ```

pub mod crc;
pub mod decoder;
pub mod encode;
pub mod frame;
pub mod ident;
pub mod identity;
pub mod message;
pub mod parse;
pub mod session;
pub mod signing;
pub mod wire;

pub use crc::Crc32;
pub use decoder::{Decoder, Item, Line, AGENT_LINE_MAX};
pub use encode::escape;
pub use ident::{Args, FuncName, InvalidField, ModuleId, ARGS_MAX, FUNC_MAX, MODULE_ID_MAX};
pub use message::*;
pub use parse::{parse_agent_line, parse_command, CommandError, COMMAND_LINE_MAX};
pub use session::{
    correlates, BaudOutcome, BaudSession, Correlation, Event, IdentOutcome, IdentSession,
    InfoOutcome, InfoSession, LoadOptions, LoadOutcome, LoadSession, Phase, Progress,
    ResyncOutcome, ResyncSession, Session, SessionError, SpeedPolicy, StartOutcome, StartSession,
    StatusOutcome, StatusSession, StopOutcome, StopSession, Timeouts, Transmit, UnloadOutcome,
    UnloadSession,
};
pub use session::{INFO_SETTLE, RESYNC_ATTEMPTS, RESYNC_MARKER, RESYNC_SETTLE};
pub use signing::{signed_message, AotTarget, KeyId, ModuleKind, ModuleSignature, Signature};
pub use wire::{
    BaudErrCode, ChunkErrCode, ErrorCode, IdentErrCode, LoadErrCode, ResultStatus, RunnerState,
    SlotState, StopMode, StopStatus, UnloadErrCode, COMMANDS,
};

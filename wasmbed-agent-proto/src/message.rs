//! Typed messages: [`Command`] (gateway → agent) and [`AgentLine`] (agent → gateway).
//!
//! Command fields are validated types ([`ModuleId`], [`FuncName`], [`Args`]) so an encoded command
//! is always well-formed. Agent-line fields are plain strings: they are what the device said.

use crate::crc::Crc32;
use crate::ident::{Args, FuncName, InvalidField, ModuleId};
use crate::identity::Nonce;
use crate::wire::{
    BaudErrCode, ChunkErrCode, ErrorCode, IdentErrCode, LoadErrCode, ResultStatus, RunnerState,
    SlotState, StopMode, StopStatus, UnloadErrCode,
};

/// A gateway → agent command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `LOAD`: announce a module upload (v1 raw payload, or v2 `chunked=1`).
    Load(Load),
    /// `CHUNK` (v2): one chunk of a chunked upload; `size` raw bytes follow the line.
    Chunk(Chunk),
    /// `START`: run an exported function.
    Start(Start),
    /// `STOP`: stop the running job of a module.
    Stop(ModuleRef),
    /// `STATUS`: slot list and pool figures.
    Status,
    /// `INFO` (v2): capabilities; v1 agents answer `ERROR code=UNKNOWN_COMMAND`.
    Info,
    /// `UNLOAD` (v2): free a slot.
    Unload(ModuleRef),
    /// `IDENT nonce=<64 hex>` (v2, devices whose INFO announces `identity=`): prove the
    /// identity key (docs/PROTOCOL.md "Device identity (IDENT)").
    Ident(Nonce),
    /// `SIG` (v2, devices with INFO `sig=`): the signature of the next LOAD of a module.
    Sig(Sig),
    /// `MINVER` (v2, devices with INFO `sig=`): raise or read a module's minimum version.
    MinVer(MinVer),
    /// `BAUD rate=<n>` (v2, agents with `baud_rates=` in `INFO_OK`): switch the link speed.
    Baud(Baud),
}

impl Command {
    /// The wire name (first word) of this command.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Load(_) => "LOAD",
            Command::Chunk(_) => "CHUNK",
            Command::Start(_) => "START",
            Command::Stop(_) => "STOP",
            Command::Status => "STATUS",
            Command::Info => "INFO",
            Command::Unload(_) => "UNLOAD",
            Command::Ident(_) => "IDENT",
            Command::Sig(_) => "SIG",
            Command::MinVer(_) => "MINVER",
            Command::Baud(_) => "BAUD",
        }
    }
}

/// Fields of `LOAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// Target slot.
    pub module_id: ModuleId,
    /// Payload size in bytes.
    pub size: u32,
    /// CRC-32 of the whole payload.
    pub crc32: Crc32,
    /// v2: chunked, acknowledged upload.
    pub chunked: bool,
    /// `replace=1`: allow replacing a running module or evicting a victim (FW-B1+).
    pub replace: bool,
    /// Slot to evict when all slots are used (FW-B1+). The encoder adds `replace=1` with it.
    pub replace_victim: Option<ModuleId>,
    /// v2: continue a pending partial chunked upload.
    pub resume: bool,
    /// v2: send the chunks as frames (`framed=1`, see [`crate::frame`]), never as raw bytes.
    pub framed: bool,
    /// v2 compressed upload (`compress=deflate csize=<M>`, with `framed=1`): the frames carry a
    /// raw deflate stream of this many bytes that inflates to the `size` bytes `crc32` covers.
    pub deflated_size: Option<u32>,
}

impl Load {
    /// A plain v1 LOAD of `payload` (computes size and CRC).
    pub fn for_payload(module_id: ModuleId, payload: &[u8]) -> Result<Self, InvalidField> {
        let size = u32::try_from(payload.len())
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| InvalidField::new("size", "payload must be 1..=4294967295 bytes"))?;
        Ok(Load {
            module_id,
            size,
            crc32: Crc32::of(payload),
            chunked: false,
            replace: false,
            replace_victim: None,
            resume: false,
            framed: false,
            deflated_size: None,
        })
    }
}

/// Fields of `SIG` (docs/PROTOCOL.md "Signed modules"): sent right before the LOAD it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sig {
    /// The module the next LOAD uploads.
    pub module_id: ModuleId,
    /// The signed version (anti-rollback): the device refuses it below its minimum.
    pub ver: u32,
    /// Id of the key that signed.
    pub key: crate::signing::KeyId,
    /// Ed25519 over [`crate::signing::signed_message`].
    pub sig: crate::signing::Signature,
}

/// Fields of `MINVER`: without `ver`, only reads the minimum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinVer {
    /// The module id.
    pub module_id: ModuleId,
    /// Raise the minimum to this (never lowers).
    pub ver: Option<u32>,
}

/// `SIG_OK`/`MINVER_OK` and their `_ERR` forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigReply {
    /// `code=` of an `_ERR` line (`BAD_PARAMS`, `VERSION_TABLE_FULL`).
    pub code: Option<String>,
    /// `module_id=`.
    pub module_id: Option<String>,
    /// `ver=` of `MINVER_OK`: the module's minimum version now.
    pub ver: Option<u32>,
    /// `msg=`.
    pub msg: Option<String>,
}

/// Fields of `CHUNK` (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the first byte of this chunk in the module.
    pub offset: u32,
    /// Number of raw bytes following the line.
    pub size: u32,
    /// CRC-32 of these bytes.
    pub crc32: Crc32,
}

/// Fields of `START`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// Module to run.
    pub module_id: ModuleId,
    /// Export to call; `None` = FW-B3 default `app_main` (FW-A..B2 require it).
    pub func: Option<FuncName>,
    /// Up to 4 i32 arguments.
    pub args: Args,
}

/// Fields of `BAUD` (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baud {
    /// The new line speed (8N1), one of the agent's `baud_rates=`.
    pub rate: u32,
}

/// A command whose only field is `module_id=` (`STOP`, `UNLOAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRef {
    /// The module.
    pub module_id: ModuleId,
}

/// One agent → gateway line, typed. Anything that is not a protocol line is [`AgentLine::Other`]
/// (console output); a line that starts with a protocol keyword but lacks required fields is
/// [`AgentLine::Malformed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentLine {
    /// `HELLO` boot banner.
    Hello(Hello),
    /// `LOAD_READY`: send the payload (v1) or chunks (v2) now.
    LoadReady(LoadReady),
    /// `LOAD_OK`.
    LoadOk(LoadOk),
    /// `LOAD_ERR`.
    LoadErr(LoadErr),
    /// `CHUNK_OK offset=<acked>` (v2).
    ChunkOk(ChunkOk),
    /// `CHUNK_ERR code=<c> offset=<acked>` (v2).
    ChunkErr(ChunkErr),
    /// `START_OK`: the job is queued, a `RESULT` follows.
    StartOk,
    /// `RESULT`: immediate START failure or the end of a job.
    Result(RunResult),
    /// `STOP_OK status=<..>`.
    StopOk(StopOk),
    /// `STATUS_OK` (every generation's form).
    StatusOk(StatusOk),
    /// `INFO_OK` (v2).
    InfoOk(Box<InfoOk>),
    /// `UNLOAD_OK module_id=<id>` (v2).
    UnloadOk(UnloadOk),
    /// `UNLOAD_ERR code=<c>` (v2).
    UnloadErr(UnloadErr),
    /// `IDENT_OK key=<hex> sig=<hex>` (v2 identity).
    IdentOk(IdentOk),
    /// `IDENT_ERR code=<c>[ msg="…"]` (v2 identity).
    IdentErr(IdentErr),
    /// `LOG module_id=<id> msg="…"` (v2).
    Log(Log),
    /// `SIG_OK module_id=<id>`.
    SigOk(SigReply),
    /// `SIG_ERR code=<c>[ module_id=<id>] msg="…"`.
    SigErr(SigReply),
    /// `MINVER_OK module_id=<id> ver=<n>`.
    MinVerOk(SigReply),
    /// `MINVER_ERR code=<c>[ module_id=<id>] msg="…"`.
    MinVerErr(SigReply),
    /// `BAUD_OK rate=<n> revert_ms=<ms>` (v2): sent at the old speed, then the agent switches.
    BaudOk(BaudOk),
    /// `BAUD_ERR code=<c>` (v2): the speed is unchanged.
    BaudErr(BaudErr),
    /// `ERROR code=<c>`.
    Error(ErrorLine),
    /// A protocol keyword with missing/invalid required fields.
    Malformed(Malformed),
    /// Any other text: console output, printk, `uart_print` lines.
    Other(String),
}

/// `HELLO device_id=… rtos=… runtime=… fw_version=…[ proto=2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// `device_id=`.
    pub device_id: String,
    /// `rtos=`.
    pub rtos: String,
    /// `runtime=`.
    pub runtime: String,
    /// `fw_version=`.
    pub fw_version: String,
    /// `proto=` (v2 agents only).
    pub proto: Option<u32>,
}

/// `LOAD_READY[ module_id=<id>] size=<n> crc32=<text>[ chunk=<c> offset=<o>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReady {
    /// Absent in FW-A's form, present from FW-B0 on.
    pub module_id: Option<String>,
    /// Announced size.
    pub size: u32,
    /// The crc text exactly as the agent echoed it (not re-formatted by legacy firmware).
    pub crc32: String,
    /// v2 chunked: largest chunk accepted.
    pub chunk: Option<u32>,
    /// v2 chunked: bytes already acknowledged (resume), else 0.
    pub offset: Option<u32>,
    /// v2 `framed=1`: the chunks go as frames.
    pub framed: bool,
    /// v2 `compress=deflate csize=<M>`: the agent takes the deflate stream of `M` bytes the LOAD
    /// offered (its chunk and offset count stream bytes). Absent: the upload goes uncompressed.
    pub deflated_size: Option<u32>,
}

/// `LOAD_OK[ warn=<w> replace_victim=<id>]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoadOk {
    /// `warn=` (FW-B1+: `VICTIM_IGNORED`).
    pub warn: Option<String>,
    /// `replace_victim=` echoed with the warning.
    pub replace_victim: Option<String>,
}

/// `LOAD_ERR code=<c>[ msg="…"][ offset=<acked>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErr {
    /// Error code.
    pub code: LoadErrCode,
    /// Message text, unescaped.
    pub msg: Option<String>,
    /// v2: acknowledged bytes of a chunked upload (resumable).
    pub offset: Option<u32>,
}

/// `CHUNK_OK offset=<acked>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOk {
    /// Bytes acknowledged so far.
    pub offset: u32,
}

/// `CHUNK_ERR code=<c> offset=<acked>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkErr {
    /// Why the chunk was discarded.
    pub code: ChunkErrCode,
    /// Resend from here.
    pub offset: u32,
}

/// `RESULT status=<s>[ forced=1][ module_id=<id>][ func=<f>][ name=<f>][ ret_i32=<u32>][ msg="…"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Outcome.
    pub status: ResultStatus,
    /// Present in FW-B run-time results; absent in FW-A and in immediate replies.
    pub module_id: Option<String>,
    /// `func=`.
    pub func: Option<String>,
    /// `ret_i32=` as printed (unsigned decimal); see [`RunResult::ret_i32_signed`].
    pub ret_i32: Option<u32>,
    /// `msg=` (exception text, etc.), unescaped.
    pub msg: Option<String>,
    /// `forced=1` (FW-B2+ forced stop).
    pub forced: bool,
    /// `name=` (FW-A `NO_FUNC`).
    pub name: Option<String>,
}

impl RunResult {
    /// A bare `RESULT status=<s>`.
    pub fn new(status: ResultStatus) -> Self {
        RunResult {
            status,
            module_id: None,
            func: None,
            ret_i32: None,
            msg: None,
            forced: false,
            name: None,
        }
    }

    /// The return value as the i32 the function returned (the wire prints it unsigned).
    pub fn ret_i32_signed(&self) -> Option<i32> {
        self.ret_i32.map(|v| v as i32)
    }

    /// True for `status=OK`.
    pub fn is_ok(&self) -> bool {
        self.status == ResultStatus::Ok
    }

    /// Whether this RESULT is an immediate answer to a START (the agent refused to start a job)
    /// or the run-time result of a job (after `START_OK`). RESULT lines carry no request id, so
    /// this is what routes them: an immediate RESULT belongs to the START awaiting its first
    /// reply, a run-time RESULT to whoever waits for its module's job.
    ///
    /// - immediate: `BUSY`, `NO_MODULE`, `BAD_PARAMS`, `NO_ENTRYPOINT`, `NO_MEM`, and `NO_FUNC`
    ///   *with* `name=` (FW-A's export check before `START_OK`);
    /// - run-time: `OK`, `EXCEPTION`, `STOPPED` (also `forced=1`), `NO_EXEC_ENV`, and `NO_FUNC`
    ///   without `name=` (FW-B's export check in the worker).
    ///
    /// An unknown status is run-time iff it names a module (no firmware puts `module_id=` on an
    /// immediate reply). FW-A's run-time `NO_FUNC name=` (a race the legacy stack documents, the
    /// export vanishing between the check and the call) is classified immediate: such a job's
    /// waiter times out instead of taking another START's refusal.
    pub fn class(&self) -> ResultClass {
        match &self.status {
            ResultStatus::Busy
            | ResultStatus::NoModule
            | ResultStatus::BadParams
            | ResultStatus::NoEntrypoint
            | ResultStatus::NoMem => ResultClass::Immediate,
            ResultStatus::NoFunc if self.name.is_some() => ResultClass::Immediate,
            ResultStatus::NoFunc
            | ResultStatus::Ok
            | ResultStatus::Exception
            | ResultStatus::Stopped
            | ResultStatus::NoExecEnv => ResultClass::RunTime,
            ResultStatus::Unknown(_) if self.module_id.is_some() => ResultClass::RunTime,
            ResultStatus::Unknown(_) => ResultClass::Immediate,
        }
    }

    /// True if this is a run-time RESULT (see [`RunResult::class`]) that can be the one of a
    /// job of module `module_id`: it names that module, or names none (FW-A, and FW-B's bare
    /// `NO_FUNC` / `NO_EXEC_ENV`).
    pub fn is_runtime_of(&self, module_id: &str) -> bool {
        self.class() == ResultClass::RunTime
            && self.module_id.as_deref().is_none_or(|m| m == module_id)
    }
}

/// The two kinds of RESULT line (see [`RunResult::class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultClass {
    /// An immediate answer to START, instead of `START_OK`: no job was started.
    Immediate,
    /// The end of a job that `START_OK` started.
    RunTime,
}

/// `STOP_OK status=<s>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOk {
    /// PENDING, IDLE or NO_JOB.
    pub status: StopStatus,
}

/// `STATUS_OK …`: all generations' forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOk {
    /// `modules="…"`.
    pub modules: Modules,
    /// FW-A only: `runner=`.
    pub runner: Option<RunnerState>,
    /// FW-B1+: `low_stack="<ids|none>"` (`none` → empty list).
    pub low_stack: Option<Vec<String>>,
    /// WAMR pool figures, in the form the firmware printed.
    pub pool: Option<Pool>,
    /// v2: lines dropped because the input queue was full.
    pub rx_overflow: Option<u32>,
    /// v2: lines rejected for length.
    pub rx_too_long: Option<u32>,
}

/// The `modules="…"` value of `STATUS_OK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modules {
    /// `none`.
    None,
    /// FW-B list of `<id>:<STATE>:wasm=<n>:stack_free=<n>[:crc32=<hex>]` entries.
    Slots(Vec<ModuleEntry>),
    /// Anything else, verbatim (FW-A `wasm_module(loaded)`, a truncated list).
    Text(String),
}

/// One slot of a `STATUS_OK` module list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEntry {
    /// Slot key.
    pub module_id: String,
    /// LOADED / RUNNING.
    pub state: SlotState,
    /// `wasm=`: module binary size.
    pub wasm_size: u32,
    /// `stack_free=`: unused worker stack bytes.
    pub stack_free: u32,
    /// v2: `crc32=` of the loaded module.
    pub crc32: Option<Crc32>,
}

/// WAMR pool figures of `STATUS_OK` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Pool size.
    pub total: u32,
    /// Free bytes.
    pub free: u32,
    /// Used bytes (`total - free`).
    pub used: u32,
    /// High-water mark.
    pub highmark: u32,
}

/// Which pool fields a `STATUS_OK` line carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// FW-B0: `wamr_heap_total= wamr_heap_free= wamr_heap_used= wamr_heap_highmark=`.
    Heap(PoolStats),
    /// FW-B1+ and v2: `wamr_total= wamr_free= wamr_used= wamr_highmark=`.
    Wamr(PoolStats),
    /// `wamr_heap=NA`: the firmware could not read the pool.
    NotAvailable,
}

impl Pool {
    /// The figures, whichever naming was used.
    pub fn stats(&self) -> Option<PoolStats> {
        match self {
            Pool::Heap(s) | Pool::Wamr(s) => Some(*s),
            Pool::NotAvailable => None,
        }
    }
}

/// `INFO_OK` (v2). Only `proto` is required; parsers accept any field order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InfoOk {
    /// Protocol version (2).
    pub proto: u32,
    /// `board=`.
    pub board: Option<String>,
    /// `fw=` build id.
    pub fw: Option<String>,
    /// `wamr=` version.
    pub wamr: Option<String>,
    /// `aot_arch=` (`none` without an AOT loader).
    pub aot_arch: Option<String>,
    /// `aot_cpu=`.
    pub aot_cpu: Option<String>,
    /// `aot_abi=`.
    pub aot_abi: Option<String>,
    /// `aot_version=`.
    pub aot_version: Option<u32>,
    /// `aot_features=` (LLVM cpu features AOT code must be built with; `none`). Wasmbed agents.
    pub aot_features: Option<String>,
    /// `aot_bounds_checks=`: `required` (no hardware bounds checks: AOT files must carry their
    /// own) or `optional`. Wasmbed agents.
    pub aot_bounds_checks: Option<String>,
    /// `slots=`.
    pub slots: Option<u32>,
    /// `max_module=` bytes.
    pub max_module: Option<u32>,
    /// `pool_total=` bytes.
    pub pool_total: Option<u32>,
    /// `pool_free=` bytes.
    pub pool_free: Option<u32>,
    /// `chunk_max=` bytes.
    pub chunk_max: Option<u32>,
    /// `line_max=` bytes.
    pub line_max: Option<u32>,
    /// `baud=`: the speed of the agent's UART (optional; absent where the link has no line
    /// speed, e.g. the simulated board without `--baud`).
    pub baud: Option<u32>,
    /// `stop=`.
    pub stop: Option<StopMode>,
    /// `baud_rates=<n>,<n>,…`: the speeds `BAUD` accepts (empty: the agent cannot switch).
    pub baud_rates: Vec<u32>,
    /// `compress=<method>,…`: the compressed uploads `LOAD … compress=` takes (`deflate`;
    /// empty: none, docs/PROTOCOL.md "Compressed uploads").
    pub compress: Vec<String>,
    /// `natives="name:sig,…"`.
    pub natives: Vec<Native>,
    /// `identity=`: `ed25519:<fingerprint>`, or `none` (see [`crate::identity::announced`]).
    /// Absent on firmware without the `IDENT` command.
    pub identity: Option<String>,
    /// `sig=`: `required` (every LOAD needs a valid signature) or `optional`; absent: the
    /// device does not check signatures (docs/PROTOCOL.md "Signed modules").
    pub sig: Option<String>,
    /// `sig_keys=`: ids of the keys the device trusts (comma-separated, or `none`).
    pub sig_keys: Option<String>,
}

/// A native function offered to modules (`INFO_OK natives=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Native {
    /// Import name in module `env`.
    pub name: String,
    /// WAMR signature string, e.g. `(i)`, `()i`.
    pub signature: String,
}

/// `UNLOAD_OK module_id=<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadOk {
    /// The freed slot.
    pub module_id: String,
}

/// `UNLOAD_ERR code=<c>[ module_id=<id>][ msg="…"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadErr {
    /// Error code.
    pub code: UnloadErrCode,
    /// The id asked for.
    pub module_id: Option<String>,
    /// Message.
    pub msg: Option<String>,
}

/// `IDENT_OK key=<64 hex> sig=<128 hex>`: the device's public key and its signature of the
/// challenge (checked by [`crate::identity::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentOk {
    /// Public key, hex as sent.
    pub key: String,
    /// Signature, hex as sent.
    pub sig: String,
}

/// `IDENT_ERR code=<c>[ msg="…"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentErr {
    /// Error code.
    pub code: IdentErrCode,
    /// Message.
    pub msg: Option<String>,
}

/// `LOG module_id=<id> msg="…"[ truncated=1][ dropped=<n>]`: module output (the `log` and
/// `uart_print` natives of Wasmbed firmware). Never an answer to any command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Module that logged.
    pub module_id: String,
    /// Text, unescaped.
    pub msg: String,
    /// The text was cut at 200 bytes.
    pub truncated: bool,
    /// Output lines of this module dropped by the agent's rate bound just before this one.
    pub dropped: Option<u32>,
}

/// `BAUD_OK rate=<n> revert_ms=<ms>` (v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaudOk {
    /// The speed the agent switches to right after this line.
    pub rate: u32,
    /// The agent goes back to the old speed by itself unless a command arrives at the new
    /// speed within this many milliseconds.
    pub revert_ms: u32,
}

/// `BAUD_ERR code=<c>` (v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaudErr {
    /// Why the switch was refused.
    pub code: BaudErrCode,
}

/// `ERROR code=<c>[ dropped=<n>][ msg="…"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLine {
    /// Error code.
    pub code: ErrorCode,
    /// `dropped=` of `RX_OVERFLOW`.
    pub dropped: Option<u32>,
    /// Optional message.
    pub msg: Option<String>,
}

/// A line starting with a protocol keyword whose required fields are missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The keyword (`LOAD_READY`, `RESULT`, …).
    pub keyword: String,
    /// What was wrong.
    pub reason: String,
}

impl AgentLine {
    /// The first word of the line as the agent sent it, or `None` for console text.
    pub fn keyword(&self) -> Option<&str> {
        Some(match self {
            AgentLine::Hello(_) => "HELLO",
            AgentLine::LoadReady(_) => "LOAD_READY",
            AgentLine::LoadOk(_) => "LOAD_OK",
            AgentLine::LoadErr(_) => "LOAD_ERR",
            AgentLine::ChunkOk(_) => "CHUNK_OK",
            AgentLine::ChunkErr(_) => "CHUNK_ERR",
            AgentLine::StartOk => "START_OK",
            AgentLine::Result(_) => "RESULT",
            AgentLine::StopOk(_) => "STOP_OK",
            AgentLine::StatusOk(_) => "STATUS_OK",
            AgentLine::InfoOk(_) => "INFO_OK",
            AgentLine::UnloadOk(_) => "UNLOAD_OK",
            AgentLine::UnloadErr(_) => "UNLOAD_ERR",
            AgentLine::IdentOk(_) => "IDENT_OK",
            AgentLine::IdentErr(_) => "IDENT_ERR",
            AgentLine::Log(_) => "LOG",
            AgentLine::SigOk(_) => "SIG_OK",
            AgentLine::SigErr(_) => "SIG_ERR",
            AgentLine::MinVerOk(_) => "MINVER_OK",
            AgentLine::MinVerErr(_) => "MINVER_ERR",
            AgentLine::BaudOk(_) => "BAUD_OK",
            AgentLine::BaudErr(_) => "BAUD_ERR",
            AgentLine::Error(_) => "ERROR",
            AgentLine::Malformed(m) => &m.keyword,
            AgentLine::Other(_) => return None,
        })
    }
}

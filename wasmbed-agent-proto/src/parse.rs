//! nom parsers for agent → gateway lines ([`parse_agent_line`]) and for commands as an agent
//! receives them ([`parse_command`]).
//!
//! Both are total: any input gives a value (agent lines) or a typed error (commands), never a
//! panic. Fields are `key=value` tokens separated by spaces; the first occurrence of a key wins,
//! unknown keys are ignored, field order is free.
//!
//! Quoted values (`msg="…"`, `modules="…"`, `args="…"`): the opening `"` follows `=`; the value
//! ends at the first unescaped `"` that is followed by the end of the line (trailing spaces
//! allowed) or by ` <key>=`. Legacy firmware does not escape `"` inside `msg`, and its `msg` is
//! always the last field, so this takes such a message up to the last quote of the line. Inside
//! the value `\"`, `\\` and `\xHH` are unescaped (v2); any other backslash is kept literally.
//! A value with no closing quote runs to the end of the line.

use std::borrow::Cow;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::opt;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use crate::crc::Crc32;
use crate::ident::{parse_i32, Args, FuncName, InvalidField, ModuleId};
use crate::identity::{Nonce, NONCE_LEN};
use crate::message::*;
use crate::wire::*;

/// Longest command line an agent accepts (bytes, without terminator).
pub const COMMAND_LINE_MAX: usize = 255;

/// One `key=value` (or bare `key`) token of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// The key (text before `=`).
    pub key: &'a str,
    /// The value, unescaped if it was quoted; `None` for a token without `=`.
    pub value: Option<Cow<'a, str>>,
    /// True if the value was written in quotes.
    pub quoted: bool,
}

fn spaces(i: &str) -> IResult<&str, &str> {
    take_while1(|c| c == ' ').parse(i)
}

fn keyword(i: &str) -> IResult<&str, &str> {
    take_while1(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_').parse(i)
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// True if `rest` (the text after a `"`) shows that this quote closes the value.
fn closes_value(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    if trimmed.is_empty() {
        return true;
    }
    if !rest.starts_with(' ') {
        return false;
    }
    let key_len = trimmed
        .find(|c: char| !is_key_char(c))
        .unwrap_or(trimmed.len());
    key_len > 0 && trimmed[key_len..].starts_with('=')
}

/// Parses `"…"` following the rule in the module docs; returns the raw (still escaped) text.
fn quoted_raw(i: &str) -> IResult<&str, &str> {
    let (body, _) = char('"').parse(i)?;
    let bytes = body.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() {
        match bytes[pos] {
            b'\\' if pos + 1 < bytes.len() && matches!(bytes[pos + 1], b'"' | b'\\') => pos += 2,
            b'"' if closes_value(&body[pos + 1..]) => return Ok((&body[pos + 1..], &body[..pos])),
            _ => pos += 1,
        }
    }
    Ok(("", body))
}

/// Undoes the v2 escapes `\"`, `\\`, `\xHH`; other backslashes stay.
pub fn unescape(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                c @ (b'"' | b'\\') => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                b'x' if i + 4 <= b.len() => {
                    if let Some(v) = std::str::from_utf8(&b[i + 2..i + 4])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn field(i: &str) -> IResult<&str, Field<'_>> {
    let (i, key) = take_while1(|c| c != ' ' && c != '=').parse(i)?;
    let (i, eq) = opt(tag("=")).parse(i)?;
    if eq.is_none() {
        return Ok((
            i,
            Field {
                key,
                value: None,
                quoted: false,
            },
        ));
    }
    let (i, (quoted, raw)) = alt((
        quoted_raw.map(|v| (true, v)),
        take_while(|c| c != ' ').map(|v| (false, v)),
    ))
    .parse(i)?;
    let value = if quoted {
        unescape(raw)
    } else {
        Cow::Borrowed(raw)
    };
    Ok((
        i,
        Field {
            key,
            value: Some(value),
            quoted,
        },
    ))
}

/// Splits the parameter part of a line into fields. Never fails: a lone `=` or other debris is
/// skipped.
pub fn fields(mut i: &str) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    loop {
        if let Ok((r, _)) = spaces(i) {
            i = r;
        }
        if i.is_empty() {
            return out;
        }
        match field(i) {
            Ok((r, f)) => {
                out.push(f);
                i = r;
            }
            // Only a leading `=` can fail `field`: skip one character.
            Err(_) => i = &i[i.chars().next().map_or(1, char::len_utf8)..],
        }
    }
}

/// Splits a line into its first word and the rest (legacy `strtok(line, " ")`).
fn head(i: &str) -> IResult<&str, &str> {
    preceded(opt(spaces), take_while(|c| c != ' ')).parse(i)
}

/// Typed access to the fields of one line; errors are the reason text of `Malformed`.
struct Fields<'a>(Vec<Field<'a>>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.value.as_deref())
    }
    fn quoted(&self, key: &str) -> Option<(&str, bool)> {
        self.0
            .iter()
            .find(|f| f.key == key)
            .and_then(|f| f.value.as_deref().map(|v| (v, f.quoted)))
    }
    fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_string)
    }
    fn req(&self, key: &str) -> Result<&str, String> {
        self.get(key).ok_or_else(|| format!("missing {key}="))
    }
    fn u32(&self, key: &str) -> Result<Option<u32>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| format!("{key}={v:?} is not a u32")),
        }
    }
    fn req_u32(&self, key: &str) -> Result<u32, String> {
        self.u32(key)?.ok_or_else(|| format!("missing {key}="))
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.starts_with('1'))
    }
}

/// Parses one agent → gateway line (without its terminator). Total: unknown text is
/// [`AgentLine::Other`], a known keyword with bad fields is [`AgentLine::Malformed`].
pub fn parse_agent_line(line: &str) -> AgentLine {
    let line = line.trim_end_matches(['\r', '\n']);
    let Ok((after, kw)) = keyword(line) else {
        return AgentLine::Other(line.to_string());
    };
    if !(after.is_empty() || after.starts_with(' ')) {
        return AgentLine::Other(line.to_string());
    }
    let f = Fields(fields(after));
    let typed = match kw {
        "HELLO" => hello(&f),
        "LOAD_READY" => load_ready(&f),
        "LOAD_OK" => Ok(AgentLine::LoadOk(LoadOk {
            warn: f.string("warn"),
            replace_victim: f.string("replace_victim"),
        })),
        "LOAD_ERR" => load_err(&f),
        "CHUNK_OK" => f
            .req_u32("offset")
            .map(|offset| AgentLine::ChunkOk(ChunkOk { offset })),
        "CHUNK_ERR" => chunk_err(&f),
        "START_OK" => Ok(AgentLine::StartOk),
        "RESULT" => run_result(&f),
        "STOP_OK" => f.req("status").map(|s| {
            AgentLine::StopOk(StopOk {
                status: StopStatus::from_wire(s),
            })
        }),
        "STATUS_OK" => status_ok(&f),
        "INFO_OK" => info_ok(&f),
        "UNLOAD_OK" => f.req("module_id").map(|m| {
            AgentLine::UnloadOk(UnloadOk {
                module_id: m.to_string(),
            })
        }),
        "UNLOAD_ERR" => f.req("code").map(|c| {
            AgentLine::UnloadErr(UnloadErr {
                code: UnloadErrCode::from_wire(c),
                module_id: f.string("module_id"),
                msg: f.string("msg"),
            })
        }),
        "IDENT_OK" => ident_ok(&f),
        "IDENT_ERR" => f.req("code").map(|c| {
            AgentLine::IdentErr(IdentErr {
                code: IdentErrCode::from_wire(c),
                msg: f.string("msg"),
            })
        }),
        "LOG" => log(&f),
        "SIG_OK" => Ok(AgentLine::SigOk(sig_reply(&f))),
        "SIG_ERR" => f.req("code").map(|_| AgentLine::SigErr(sig_reply(&f))),
        "MINVER_OK" => f
            .req("module_id")
            .map(|_| AgentLine::MinVerOk(sig_reply(&f))),
        "MINVER_ERR" => f.req("code").map(|_| AgentLine::MinVerErr(sig_reply(&f))),
        "BAUD_OK" => baud_ok(&f),
        "BAUD_ERR" => f.req("code").map(|c| {
            AgentLine::BaudErr(BaudErr {
                code: BaudErrCode::from_wire(c),
            })
        }),
        "ERROR" => error_line(&f),
        _ => return AgentLine::Other(line.to_string()),
    };
    typed.unwrap_or_else(|reason| {
        AgentLine::Malformed(Malformed {
            keyword: kw.to_string(),
            reason,
        })
    })
}

type Parsed = Result<AgentLine, String>;

fn hello(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::Hello(Hello {
        device_id: f.req("device_id")?.to_string(),
        rtos: f.req("rtos")?.to_string(),
        runtime: f.req("runtime")?.to_string(),
        fw_version: f.req("fw_version")?.to_string(),
        proto: f.u32("proto")?,
    }))
}

fn load_ready(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::LoadReady(LoadReady {
        module_id: f.string("module_id"),
        size: f.req_u32("size")?,
        crc32: f.req("crc32")?.to_string(),
        chunk: f.u32("chunk")?,
        offset: f.u32("offset")?,
        framed: f.flag("framed"),
        deflated_size: match f.get("compress") {
            Some("deflate") => Some(f.req_u32("csize")?),
            _ => None,
        },
    }))
}

fn load_err(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::LoadErr(LoadErr {
        code: LoadErrCode::from_wire(f.req("code")?),
        msg: f.string("msg"),
        offset: f.u32("offset")?,
    }))
}

fn chunk_err(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::ChunkErr(ChunkErr {
        code: ChunkErrCode::from_wire(f.req("code")?),
        offset: f.req_u32("offset")?,
    }))
}

fn run_result(f: &Fields<'_>) -> Parsed {
    let ret_i32 = match f.get("ret_i32") {
        None => None,
        // Printed unsigned (`%lu`); accept a signed form too.
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .or_else(|| parse_i32(v).map(|s| s as u32))
                .ok_or_else(|| format!("ret_i32={v:?} is not a 32-bit integer"))?,
        ),
    };
    Ok(AgentLine::Result(RunResult {
        status: ResultStatus::from_wire(f.req("status")?),
        module_id: f.string("module_id"),
        func: f.string("func"),
        ret_i32,
        msg: f.string("msg"),
        forced: f.flag("forced"),
        name: f.string("name"),
    }))
}

fn status_ok(f: &Fields<'_>) -> Parsed {
    let modules = parse_modules(f.req("modules")?);
    let low_stack = f.get("low_stack").map(|v| {
        if v == "none" || v.is_empty() {
            Vec::new()
        } else {
            v.split(',').map(str::to_string).collect()
        }
    });
    let stats = |prefix: &str| -> Result<Option<PoolStats>, String> {
        let total = f.u32(&format!("{prefix}total"))?;
        let Some(total) = total else { return Ok(None) };
        Ok(Some(PoolStats {
            total,
            free: f.req_u32(&format!("{prefix}free"))?,
            used: f.req_u32(&format!("{prefix}used"))?,
            highmark: f.req_u32(&format!("{prefix}highmark"))?,
        }))
    };
    let pool = if f.get("wamr_heap") == Some("NA") {
        Some(Pool::NotAvailable)
    } else if let Some(s) = stats("wamr_heap_")? {
        Some(Pool::Heap(s))
    } else {
        stats("wamr_")?.map(Pool::Wamr)
    };
    Ok(AgentLine::StatusOk(StatusOk {
        modules,
        runner: f.get("runner").map(RunnerState::from_wire),
        low_stack,
        pool,
        rx_overflow: f.u32("rx_overflow")?,
        rx_too_long: f.u32("rx_too_long")?,
    }))
}

/// Parses the value of `modules="…"`: `none`, a slot list, or anything else kept as text.
pub fn parse_modules(text: &str) -> Modules {
    if text == "none" {
        return Modules::None;
    }
    text.split(',')
        .map(parse_module_entry)
        .collect::<Option<Vec<_>>>()
        .map_or_else(|| Modules::Text(text.to_string()), Modules::Slots)
}

/// `<id>:<STATE>:wasm=<n>:stack_free=<n>[:crc32=<hex>]`, parsed from the right so that an id may
/// contain `:`.
fn parse_module_entry(entry: &str) -> Option<ModuleEntry> {
    let mut parts: Vec<&str> = entry.split(':').collect();
    let crc32 = match parts.last()?.strip_prefix("crc32=") {
        Some(hex) => {
            parts.pop();
            Some(Crc32::parse_hex(hex)?)
        }
        None => None,
    };
    let stack_free = parts.pop()?.strip_prefix("stack_free=")?.parse().ok()?;
    let wasm_size = parts.pop()?.strip_prefix("wasm=")?.parse().ok()?;
    let state = SlotState::from_wire(parts.pop()?);
    let module_id = parts.join(":");
    if module_id.is_empty() {
        return None;
    }
    Some(ModuleEntry {
        module_id,
        state,
        wasm_size,
        stack_free,
        crc32,
    })
}

fn info_ok(f: &Fields<'_>) -> Parsed {
    let natives = f
        .get("natives")
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.split(',')
                .map(|n| match n.split_once(':') {
                    Some((name, sig)) => Native {
                        name: name.into(),
                        signature: sig.into(),
                    },
                    None => Native {
                        name: n.into(),
                        signature: String::new(),
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(AgentLine::InfoOk(Box::new(InfoOk {
        proto: f.req_u32("proto")?,
        board: f.string("board"),
        fw: f.string("fw"),
        wamr: f.string("wamr"),
        aot_arch: f.string("aot_arch"),
        aot_cpu: f.string("aot_cpu"),
        aot_abi: f.string("aot_abi"),
        aot_version: f.u32("aot_version")?,
        aot_features: f.string("aot_features"),
        aot_bounds_checks: f.string("aot_bounds_checks"),
        slots: f.u32("slots")?,
        max_module: f.u32("max_module")?,
        pool_total: f.u32("pool_total")?,
        pool_free: f.u32("pool_free")?,
        chunk_max: f.u32("chunk_max")?,
        line_max: f.u32("line_max")?,
        baud: f.u32("baud")?,
        stop: f.get("stop").map(StopMode::from_wire),
        baud_rates: f
            .get("baud_rates")
            .map(|v| v.split(',').filter_map(|r| r.parse().ok()).collect())
            .unwrap_or_default(),
        compress: f
            .get("compress")
            .filter(|v| !v.is_empty())
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        natives,
        identity: f.string("identity"),
        sig: f.string("sig"),
        sig_keys: f.string("sig_keys"),
    })))
}

fn sig_reply(f: &Fields<'_>) -> SigReply {
    SigReply {
        code: f.string("code"),
        module_id: f.string("module_id"),
        ver: f.u32("ver").ok().flatten(),
        msg: f.string("msg"),
    }
}

fn ident_ok(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::IdentOk(IdentOk {
        key: f.req("key")?.to_string(),
        sig: f.req("sig")?.to_string(),
    }))
}

fn baud_ok(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::BaudOk(BaudOk {
        rate: f.req_u32("rate")?,
        revert_ms: f.req_u32("revert_ms")?,
    }))
}

fn log(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::Log(Log {
        module_id: f.req("module_id")?.to_string(),
        msg: f.req("msg")?.to_string(),
        truncated: f.flag("truncated"),
        dropped: f.u32("dropped")?,
    }))
}

fn error_line(f: &Fields<'_>) -> Parsed {
    Ok(AgentLine::Error(ErrorLine {
        code: ErrorCode::from_wire(f.req("code")?),
        dropped: f.u32("dropped")?,
        msg: f.string("msg"),
    }))
}

/// Why a command line was rejected by [`parse_command`]. An agent answers `Unknown` with
/// `ERROR code=UNKNOWN_COMMAND`, `TooLong` with `ERROR code=LINE_TOO_LONG`, and the others with
/// the command's BAD_PARAMS reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The line is empty or only spaces (the legacy agent ignores it).
    #[error("empty line")]
    Empty,
    /// Longer than [`COMMAND_LINE_MAX`] bytes.
    #[error("command line of {0} bytes, at most 255 allowed")]
    TooLong(usize),
    /// The first word is not a command (commands are case-sensitive).
    #[error("unknown command {0:?}")]
    Unknown(String),
    /// A required field is absent.
    #[error("{command}: missing {field}=")]
    Missing {
        /// The command.
        command: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field is present but invalid.
    #[error("{command}: {source}")]
    Invalid {
        /// The command.
        command: &'static str,
        /// The field and what is wrong.
        #[source]
        source: InvalidField,
    },
}

/// Parses a command line as an agent receives it (terminator optional; a NUL byte ends the line
/// like a C string; non-UTF-8 bytes are replaced).
///
/// Differences from the legacy agent, which finds `key=` as a *substring* anywhere in the
/// parameters and silently truncates long values: here keys are whole tokens (so `func=` inside
/// `args="…"` is not a `func`, and `replace_victim=` is never `replace=`), values over the
/// length limits are an error, numbers must be decimal (`size`, `offset`, arg values) or 1..8
/// hex digits (`crc32`, optional `0x`), and more than 4 args is an error. Everything a legacy
/// gateway sends is accepted: `args=` names are ignored (only order matters), tokens without `=`
/// inside `args` are skipped like the legacy agent does, unquoted `args=` is ignored (argc 0),
/// and `replace=` is true iff its value starts with `1`.
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    if text.len() > COMMAND_LINE_MAX {
        return Err(CommandError::TooLong(text.len()));
    }
    let Ok((params, name)) = head(text) else {
        return Err(CommandError::Empty);
    };
    if name.is_empty() {
        return Err(CommandError::Empty);
    }
    let f = Fields(fields(params));
    match name {
        "LOAD" => load_cmd(&f),
        "CHUNK" => chunk_cmd(&f),
        "START" => start_cmd(&f),
        "STOP" => Ok(Command::Stop(module_ref("STOP", &f)?)),
        "UNLOAD" => Ok(Command::Unload(module_ref("UNLOAD", &f)?)),
        "STATUS" => Ok(Command::Status),
        "INFO" => Ok(Command::Info),
        "IDENT" => {
            let c = CmdFields {
                command: "IDENT",
                f: &f,
            };
            let text = c.req("nonce")?;
            Nonce::from_hex(text).map(Command::Ident).ok_or_else(|| {
                c.invalid(
                    "nonce",
                    format!("{text:?} is not {} hex digits", 2 * NONCE_LEN),
                )
            })
        }
        "SIG" => sig_cmd(&f),
        "MINVER" => {
            let c = CmdFields {
                command: "MINVER",
                f: &f,
            };
            Ok(Command::MinVer(MinVer {
                module_id: c.module_id("module_id")?,
                ver: if f.get("ver").is_some() {
                    Some(c.u32("ver")?)
                } else {
                    None
                },
            }))
        }
        "BAUD" => {
            let c = CmdFields {
                command: "BAUD",
                f: &f,
            };
            let v = c.req("rate")?;
            let rate = v
                .parse::<u32>()
                .ok()
                .filter(|&r| r > 0)
                .ok_or_else(|| c.invalid("rate", format!("{v:?} is not a positive decimal")))?;
            Ok(Command::Baud(Baud { rate }))
        }
        other => Err(CommandError::Unknown(other.to_string())),
    }
}

struct CmdFields<'f, 'a> {
    command: &'static str,
    f: &'f Fields<'a>,
}

impl CmdFields<'_, '_> {
    fn req(&self, field: &'static str) -> Result<&str, CommandError> {
        self.f
            .get(field)
            .filter(|v| !v.is_empty())
            .ok_or(CommandError::Missing {
                command: self.command,
                field,
            })
    }
    fn invalid(&self, field: &'static str, reason: String) -> CommandError {
        CommandError::Invalid {
            command: self.command,
            source: InvalidField::new(field, reason),
        }
    }
    fn wrap(&self, source: InvalidField) -> CommandError {
        CommandError::Invalid {
            command: self.command,
            source,
        }
    }
    fn u32(&self, field: &'static str) -> Result<u32, CommandError> {
        let v = self.req(field)?;
        if !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid(field, format!("{v:?} is not a decimal number")));
        }
        v.parse()
            .map_err(|_| self.invalid(field, format!("{v:?} does not fit in 32 bits")))
    }
    fn crc(&self) -> Result<Crc32, CommandError> {
        let v = self.req("crc32")?;
        Crc32::parse_hex(v)
            .ok_or_else(|| self.invalid("crc32", format!("{v:?} is not 1..8 hex digits")))
    }
    fn module_id(&self, field: &'static str) -> Result<ModuleId, CommandError> {
        ModuleId::for_field(field, self.req(field)?).map_err(|e| self.wrap(e))
    }
}

fn load_cmd(f: &Fields<'_>) -> Result<Command, CommandError> {
    let c = CmdFields { command: "LOAD", f };
    Ok(Command::Load(Load {
        module_id: c.module_id("module_id")?,
        size: c.u32("size")?,
        crc32: c.crc()?,
        chunked: f.flag("chunked"),
        replace: f.flag("replace"),
        replace_victim: match f.get("replace_victim") {
            Some(_) => Some(c.module_id("replace_victim")?),
            None => None,
        },
        resume: f.flag("resume"),
        framed: f.flag("framed"),
        deflated_size: match f.get("compress") {
            Some("deflate") => Some(c.u32("csize")?),
            _ => None,
        },
    }))
}

fn chunk_cmd(f: &Fields<'_>) -> Result<Command, CommandError> {
    let c = CmdFields {
        command: "CHUNK",
        f,
    };
    Ok(Command::Chunk(Chunk {
        offset: c.u32("offset")?,
        size: c.u32("size")?,
        crc32: c.crc()?,
    }))
}

fn start_cmd(f: &Fields<'_>) -> Result<Command, CommandError> {
    let c = CmdFields {
        command: "START",
        f,
    };
    let module_id = c.module_id("module_id")?;
    let func = match f.get("func").filter(|v| !v.is_empty()) {
        Some(v) => Some(FuncName::new(v).map_err(|e| c.wrap(e))?),
        None => None,
    };
    let args = match f.quoted("args") {
        Some((text, true)) => {
            let with_eq: Vec<&str> = text.split(',').filter(|t| t.contains('=')).collect();
            Args::parse_legacy(&with_eq.join(",")).map_err(|e| c.wrap(e))?
        }
        _ => Args::none(),
    };
    Ok(Command::Start(Start {
        module_id,
        func,
        args,
    }))
}

fn sig_cmd(f: &Fields<'_>) -> Result<Command, CommandError> {
    let c = CmdFields { command: "SIG", f };
    let key = c.req("key")?;
    let sig = c.req("sig")?;
    Ok(Command::Sig(Sig {
        module_id: c.module_id("module_id")?,
        ver: c.u32("ver")?,
        key: crate::signing::KeyId::parse(key)
            .ok_or_else(|| c.invalid("key", format!("{key:?} is not 16 hex digits")))?,
        sig: crate::signing::Signature::parse(sig)
            .ok_or_else(|| c.invalid("sig", format!("{sig:?} is not 128 hex digits")))?,
    }))
}

fn module_ref(command: &'static str, f: &Fields<'_>) -> Result<ModuleRef, CommandError> {
    let c = CmdFields { command, f };
    Ok(ModuleRef {
        module_id: c.module_id("module_id")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(line: &str) -> RunResult {
        match parse_agent_line(line) {
            AgentLine::Result(r) => r,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn legacy_results() {
        let r = result("RESULT status=OK func=add ret_i32=226");
        assert_eq!(
            (r.status, r.module_id, r.ret_i32),
            (ResultStatus::Ok, None, Some(226))
        );
        let r = result("RESULT status=OK module_id=math_ops func=add ret_i32=4294967293");
        assert_eq!(r.ret_i32_signed(), Some(-3));
        assert_eq!(r.module_id.as_deref(), Some("math_ops"));
        let r = result("RESULT status=STOPPED forced=1 module_id=m func=<unknown>");
        assert!(r.forced);
        assert_eq!(r.func.as_deref(), Some("<unknown>"));
        let r = result("RESULT status=NO_FUNC name=foo");
        assert_eq!(r.name.as_deref(), Some("foo"));
        let r = result("RESULT status=WEIRD");
        assert_eq!(r.status, ResultStatus::Unknown("WEIRD".into()));
    }

    #[test]
    fn legacy_msg_with_unescaped_quotes_runs_to_last_quote() {
        let r =
            result(r#"RESULT status=EXCEPTION module_id=m func=f msg="Exception: bad "x" here""#);
        assert_eq!(r.msg.as_deref(), Some(r#"Exception: bad "x" here"#));
        let r = result(r#"RESULT status=NO_MEM msg="free=100 need>=4096 exec_env=no""#);
        assert_eq!(r.msg.as_deref(), Some("free=100 need>=4096 exec_env=no"));
    }

    #[test]
    fn info_baud_is_optional() {
        let info = |line: &str| match parse_agent_line(line) {
            AgentLine::InfoOk(i) => i,
            other => panic!("{line:?} gave {other:?}"),
        };
        assert_eq!(
            info("INFO_OK proto=2 line_max=255 baud=9600 stop=forced").baud,
            Some(9600)
        );
        assert_eq!(info("INFO_OK proto=2 line_max=255 stop=forced").baud, None);
        assert!(matches!(
            parse_agent_line("INFO_OK proto=2 baud=fast"),
            AgentLine::Malformed(_)
        ));
    }

    #[test]
    fn v2_escapes_and_fields_after_msg() {
        let line = r#"LOG module_id=m msg="a\"b\\c\x41 \xc3\xa9" truncated=1"#;
        match parse_agent_line(line) {
            AgentLine::Log(l) => {
                assert_eq!(l.msg, "a\"b\\cA é");
                assert!(l.truncated);
            }
            other => panic!("{other:?}"),
        }
        match parse_agent_line(r#"LOAD_ERR code=TIMEOUT msg="no chunk" offset=4096"#) {
            AgentLine::LoadErr(e) => {
                assert_eq!(e.msg.as_deref(), Some("no chunk"));
                assert_eq!(e.offset, Some(4096));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn load_ready_forms() {
        let forms = [
            ("LOAD_READY size=460 crc32=d40c97d1", None, None),
            (
                "LOAD_READY module_id=math_ops size=460 crc32=d40c97d1",
                Some("math_ops"),
                None,
            ),
            (
                "LOAD_READY module_id=math_ops size=460 crc32=d40c97d1 chunk=256 offset=0",
                Some("math_ops"),
                Some(256),
            ),
        ];
        for (line, id, chunk) in forms {
            match parse_agent_line(line) {
                AgentLine::LoadReady(r) => {
                    assert_eq!(r.module_id.as_deref(), id);
                    assert_eq!(
                        (r.size, r.crc32.as_str(), r.chunk),
                        (460, "d40c97d1", chunk)
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            parse_agent_line("LOAD_READY size=x crc32=1"),
            AgentLine::Malformed(_)
        ));
    }

    #[test]
    fn status_forms() {
        let st = |l: &str| match parse_agent_line(l) {
            AgentLine::StatusOk(s) => s,
            other => panic!("{other:?}"),
        };
        let a = st(r#"STATUS_OK modules="wasm_module(loaded)" runner=RUNNING"#);
        assert_eq!(a.modules, Modules::Text("wasm_module(loaded)".into()));
        assert_eq!(a.runner, Some(RunnerState::Running));
        let b0 = st(
            r#"STATUS_OK modules="m:LOADED:wasm=460:stack_free=3000" wamr_heap_total=10 wamr_heap_free=4 wamr_heap_used=6 wamr_heap_highmark=7"#,
        );
        assert!(matches!(
            b0.pool,
            Some(Pool::Heap(PoolStats {
                total: 10,
                free: 4,
                used: 6,
                highmark: 7
            }))
        ));
        let na = st(r#"STATUS_OK modules="none" low_stack="none" wamr_heap=NA"#);
        assert_eq!(
            (na.modules, na.low_stack, na.pool),
            (Modules::None, Some(vec![]), Some(Pool::NotAvailable))
        );
        let v2 = st(
            r#"STATUS_OK modules="a:b:RUNNING:wasm=460:stack_free=100:crc32=d40c97d1" low_stack="a:b" wamr_total=1 wamr_free=1 wamr_used=0 wamr_highmark=0 rx_overflow=2 rx_too_long=3"#,
        );
        match v2.modules {
            Modules::Slots(e) => {
                assert_eq!(e[0].module_id, "a:b");
                assert_eq!(e[0].state, SlotState::Running);
                assert_eq!(e[0].crc32, Some(Crc32(0xd40c97d1)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((v2.rx_overflow, v2.rx_too_long), (Some(2), Some(3)));
    }

    #[test]
    fn other_and_malformed() {
        assert_eq!(
            parse_agent_line("LED ON (thread 0x2000)"),
            AgentLine::Other("LED ON (thread 0x2000)".into())
        );
        assert_eq!(
            parse_agent_line("[A] hello\r"),
            AgentLine::Other("[A] hello".into())
        );
        assert_eq!(
            parse_agent_line("RESULTS x"),
            AgentLine::Other("RESULTS x".into())
        );
        assert_eq!(parse_agent_line("START_OK"), AgentLine::StartOk);
        assert!(matches!(
            parse_agent_line("RESULT"),
            AgentLine::Malformed(_)
        ));
        assert!(matches!(
            parse_agent_line("ERROR code=UNKNOWN_COMMAND"),
            AgentLine::Error(ErrorLine {
                code: ErrorCode::UnknownCommand,
                ..
            })
        ));
    }

    #[test]
    fn commands_as_the_agent_sees_them() {
        let c =
            parse_command(b"START module_id=math_ops func=add args=\"a=200,b=26\"\r\n").unwrap();
        match c {
            Command::Start(s) => {
                assert_eq!(s.args.values(), &[200, 26]);
                assert_eq!(s.func.unwrap().as_str(), "add");
            }
            other => panic!("{other:?}"),
        }
        // `func=` inside args is not a func; tokens without `=` are skipped.
        match parse_command(b"START module_id=m args=\"func=3,x\"").unwrap() {
            Command::Start(s) => {
                assert!(s.func.is_none());
                assert_eq!(s.args.values(), &[3]);
            }
            other => panic!("{other:?}"),
        }
        match parse_command(b"LOAD crc32=D40C97D1 size=460 module_id=m replace_victim=v").unwrap() {
            Command::Load(l) => {
                assert!(!l.replace);
                assert_eq!(l.crc32, Crc32(0xd40c97d1));
                assert_eq!(l.replace_victim.unwrap().as_str(), "v");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_command(b"   "), Err(CommandError::Empty));
        assert_eq!(
            parse_command(b"status"),
            Err(CommandError::Unknown("status".into()))
        );
        assert_eq!(parse_command(b"STATUS extra"), Ok(Command::Status));
        assert_eq!(
            parse_command(b"LOAD size=1 crc32=1"),
            Err(CommandError::Missing {
                command: "LOAD",
                field: "module_id"
            })
        );
        assert!(matches!(
            parse_command(b"LOAD module_id=m size=abc crc32=1"),
            Err(CommandError::Invalid { .. })
        ));
        assert!(matches!(
            parse_command(&[b'A'; 300]),
            Err(CommandError::TooLong(300))
        ));
        assert_eq!(parse_command(b"STATUS\0garbage"), Ok(Command::Status));
        assert!(matches!(
            parse_command(b"START module_id=m args=\"a=1,b=2,c=3,d=4,e=5\""),
            Err(CommandError::Invalid { .. })
        ));
    }
}

//! Encoding: `Display` for [`Command`] and [`AgentLine`] gives the exact wire line, without the
//! `\n` terminator ([`Command::to_wire`] adds it). Commands are injection-proof because their
//! fields are validated types; agent lines (used by simulated agents and tests) escape quoted
//! values the v2 way (`\"`, `\\`, `\xHH`).

use std::fmt::{self, Write as _};

use crate::message::*;

/// Escapes a quoted value the v2 way: `"` → `\"`, `\` → `\\`, bytes outside 0x20..=0x7e →
/// `\xHH` (lowercase hex, one per UTF-8 byte).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Writes `KEYWORD key=value …` lines.
struct LineWriter<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
}

impl<'a, 'b> LineWriter<'a, 'b> {
    fn start(f: &'a mut fmt::Formatter<'b>, keyword: &str) -> Result<Self, fmt::Error> {
        f.write_str(keyword)?;
        Ok(LineWriter { f })
    }

    fn field(&mut self, key: &str, value: impl fmt::Display) -> fmt::Result {
        write!(self.f, " {key}={value}")
    }

    fn opt(&mut self, key: &str, value: Option<impl fmt::Display>) -> fmt::Result {
        match value {
            Some(v) => self.field(key, v),
            None => Ok(()),
        }
    }

    fn flag(&mut self, key: &str, on: bool) -> fmt::Result {
        if on {
            self.field(key, 1)
        } else {
            Ok(())
        }
    }

    fn quoted(&mut self, key: &str, value: &str) -> fmt::Result {
        write!(self.f, " {key}=\"{}\"", escape(value))
    }

    fn opt_quoted(&mut self, key: &str, value: Option<&str>) -> fmt::Result {
        match value {
            Some(v) => self.quoted(key, v),
            None => Ok(()),
        }
    }
}

impl Command {
    /// The full line including the `\n` terminator, as bytes ready for the link.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut s = self.to_string();
        s.push('\n');
        s.into_bytes()
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = LineWriter::start(f, self.name())?;
        match self {
            Command::Load(l) => {
                w.field("module_id", &l.module_id)?;
                w.field("size", l.size)?;
                w.field("crc32", l.crc32)?;
                w.flag("chunked", l.chunked)?;
                w.flag("framed", l.framed)?;
                if let Some(csize) = l.deflated_size {
                    w.field("compress", "deflate")?;
                    w.field("csize", csize)?;
                }
                // Like GW-2/GW-3: a victim implies replace=1.
                w.flag("replace", l.replace || l.replace_victim.is_some())?;
                w.opt("replace_victim", l.replace_victim.as_ref())?;
                w.flag("resume", l.resume)
            }
            Command::Chunk(c) => {
                w.field("offset", c.offset)?;
                w.field("size", c.size)?;
                w.field("crc32", c.crc32)
            }
            Command::Start(s) => {
                w.field("module_id", &s.module_id)?;
                w.opt("func", s.func.as_ref())?;
                if !s.args.is_empty() {
                    let mut text = String::new();
                    for (i, v) in s.args.values().iter().enumerate() {
                        let sep = if i == 0 { "" } else { "," };
                        let _ = write!(text, "{sep}a{i}={v}");
                    }
                    // Values are decimal digits and names a0..a3: nothing to escape.
                    w.field("args", format_args!("\"{text}\""))?;
                }
                Ok(())
            }
            Command::Stop(m) | Command::Unload(m) => w.field("module_id", &m.module_id),
            Command::Status | Command::Info => Ok(()),
            Command::Ident(nonce) => w.field("nonce", nonce),
            Command::Sig(s) => {
                w.field("module_id", &s.module_id)?;
                w.field("ver", s.ver)?;
                w.field("key", s.key)?;
                w.field("sig", s.sig)
            }
            Command::MinVer(m) => {
                w.field("module_id", &m.module_id)?;
                w.opt("ver", m.ver)
            }
            Command::Baud(b) => w.field("rate", b.rate),
        }
    }
}

impl AgentLine {
    /// The full line including the `\n` terminator.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut s = self.to_string();
        s.push('\n');
        s.into_bytes()
    }
}

impl fmt::Display for AgentLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyword = match self {
            AgentLine::Other(text) => return f.write_str(text),
            AgentLine::Malformed(m) => return write!(f, "{} {}", m.keyword, m.reason),
            other => other.keyword().unwrap_or_default(),
        };
        let mut w = LineWriter::start(f, keyword)?;
        match self {
            AgentLine::Hello(h) => {
                w.field("device_id", &h.device_id)?;
                w.field("rtos", &h.rtos)?;
                w.field("runtime", &h.runtime)?;
                w.field("fw_version", &h.fw_version)?;
                w.opt("proto", h.proto)
            }
            AgentLine::LoadReady(r) => {
                w.opt("module_id", r.module_id.as_ref())?;
                w.field("size", r.size)?;
                w.field("crc32", &r.crc32)?;
                w.opt("chunk", r.chunk)?;
                w.opt("offset", r.offset)?;
                w.flag("framed", r.framed)?;
                if let Some(csize) = r.deflated_size {
                    w.field("compress", "deflate")?;
                    w.field("csize", csize)?;
                }
                Ok(())
            }
            AgentLine::LoadOk(o) => {
                w.opt("warn", o.warn.as_ref())?;
                w.opt("replace_victim", o.replace_victim.as_ref())
            }
            AgentLine::LoadErr(e) => {
                w.field("code", &e.code)?;
                w.opt_quoted("msg", e.msg.as_deref())?;
                w.opt("offset", e.offset)
            }
            AgentLine::ChunkOk(c) => w.field("offset", c.offset),
            AgentLine::ChunkErr(c) => {
                w.field("code", &c.code)?;
                w.field("offset", c.offset)
            }
            AgentLine::StartOk => Ok(()),
            AgentLine::Result(r) => {
                w.field("status", &r.status)?;
                w.flag("forced", r.forced)?;
                w.opt("module_id", r.module_id.as_ref())?;
                w.opt("func", r.func.as_ref())?;
                w.opt("name", r.name.as_ref())?;
                w.opt("ret_i32", r.ret_i32)?;
                w.opt_quoted("msg", r.msg.as_deref())
            }
            AgentLine::StopOk(s) => w.field("status", &s.status),
            AgentLine::StatusOk(s) => write_status(&mut w, s),
            AgentLine::InfoOk(i) => write_info(&mut w, i),
            AgentLine::UnloadOk(u) => w.field("module_id", &u.module_id),
            AgentLine::UnloadErr(e) => {
                w.field("code", &e.code)?;
                w.opt("module_id", e.module_id.as_ref())?;
                w.opt_quoted("msg", e.msg.as_deref())
            }
            AgentLine::IdentOk(o) => {
                w.field("key", &o.key)?;
                w.field("sig", &o.sig)
            }
            AgentLine::IdentErr(e) => {
                w.field("code", &e.code)?;
                w.opt_quoted("msg", e.msg.as_deref())
            }
            AgentLine::SigOk(r)
            | AgentLine::SigErr(r)
            | AgentLine::MinVerOk(r)
            | AgentLine::MinVerErr(r) => {
                w.opt("code", r.code.as_ref())?;
                w.opt("module_id", r.module_id.as_ref())?;
                w.opt("ver", r.ver)?;
                w.opt_quoted("msg", r.msg.as_deref())
            }
            AgentLine::Log(l) => {
                w.field("module_id", &l.module_id)?;
                w.quoted("msg", &l.msg)?;
                w.flag("truncated", l.truncated)?;
                w.opt("dropped", l.dropped)
            }
            AgentLine::BaudOk(b) => {
                w.field("rate", b.rate)?;
                w.field("revert_ms", b.revert_ms)
            }
            AgentLine::BaudErr(b) => w.field("code", &b.code),
            AgentLine::Error(e) => {
                w.field("code", &e.code)?;
                w.opt("dropped", e.dropped)?;
                w.opt_quoted("msg", e.msg.as_deref())
            }
            AgentLine::Other(_) | AgentLine::Malformed(_) => Ok(()),
        }
    }
}

fn write_status(w: &mut LineWriter<'_, '_>, s: &StatusOk) -> fmt::Result {
    w.quoted("modules", &modules_text(&s.modules))?;
    w.opt("runner", s.runner.as_ref())?;
    if let Some(low) = &s.low_stack {
        let text = if low.is_empty() {
            "none".to_string()
        } else {
            low.join(",")
        };
        w.quoted("low_stack", &text)?;
    }
    match s.pool {
        Some(Pool::Heap(p)) => {
            w.field("wamr_heap_total", p.total)?;
            w.field("wamr_heap_free", p.free)?;
            w.field("wamr_heap_used", p.used)?;
            w.field("wamr_heap_highmark", p.highmark)?;
        }
        Some(Pool::Wamr(p)) => {
            w.field("wamr_total", p.total)?;
            w.field("wamr_free", p.free)?;
            w.field("wamr_used", p.used)?;
            w.field("wamr_highmark", p.highmark)?;
        }
        Some(Pool::NotAvailable) => w.field("wamr_heap", "NA")?,
        None => {}
    }
    w.opt("rx_overflow", s.rx_overflow)?;
    w.opt("rx_too_long", s.rx_too_long)
}

/// The text inside `modules="…"`.
pub fn modules_text(m: &Modules) -> String {
    match m {
        Modules::None => "none".to_string(),
        Modules::Text(t) => t.clone(),
        Modules::Slots(entries) => {
            let mut out = String::new();
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{}:{}:wasm={}:stack_free={}",
                    e.module_id, e.state, e.wasm_size, e.stack_free
                );
                if let Some(crc) = e.crc32 {
                    let _ = write!(out, ":crc32={crc}");
                }
            }
            out
        }
    }
}

fn write_info(w: &mut LineWriter<'_, '_>, i: &InfoOk) -> fmt::Result {
    w.field("proto", i.proto)?;
    w.opt("board", i.board.as_ref())?;
    w.opt("fw", i.fw.as_ref())?;
    w.opt("wamr", i.wamr.as_ref())?;
    w.opt("aot_arch", i.aot_arch.as_ref())?;
    w.opt("aot_cpu", i.aot_cpu.as_ref())?;
    w.opt("aot_abi", i.aot_abi.as_ref())?;
    w.opt("aot_version", i.aot_version)?;
    w.opt("aot_features", i.aot_features.as_ref())?;
    w.opt("aot_bounds_checks", i.aot_bounds_checks.as_ref())?;
    w.opt("slots", i.slots)?;
    w.opt("max_module", i.max_module)?;
    w.opt("pool_total", i.pool_total)?;
    w.opt("pool_free", i.pool_free)?;
    w.opt("chunk_max", i.chunk_max)?;
    w.opt("line_max", i.line_max)?;
    w.opt("baud", i.baud)?;
    w.opt("stop", i.stop.as_ref())?;
    if !i.baud_rates.is_empty() {
        let rates: Vec<String> = i.baud_rates.iter().map(u32::to_string).collect();
        w.field("baud_rates", rates.join(","))?;
    }
    if !i.compress.is_empty() {
        w.field("compress", i.compress.join(","))?;
    }
    let natives: Vec<String> = i
        .natives
        .iter()
        .map(|n| format!("{}:{}", n.name, n.signature))
        .collect();
    w.quoted("natives", &natives.join(","))?;
    w.opt("sig", i.sig.as_ref())?;
    w.opt("sig_keys", i.sig_keys.as_ref())?;
    w.opt("identity", i.identity.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crc::Crc32;
    use crate::ident::{Args, FuncName, ModuleId};
    use crate::wire::ResultStatus;

    fn id(s: &str) -> ModuleId {
        ModuleId::new(s).unwrap()
    }

    #[test]
    fn legacy_command_lines() {
        let load = Load {
            module_id: id("math_ops"),
            size: 460,
            crc32: Crc32(0xd40c97d1),
            chunked: false,
            replace: false,
            replace_victim: None,
            resume: false,
            framed: false,
            deflated_size: None,
        };
        assert_eq!(
            Command::Load(load.clone()).to_string(),
            "LOAD module_id=math_ops size=460 crc32=d40c97d1"
        );
        let victim = Load {
            replace_victim: Some(id("old")),
            ..load
        };
        assert_eq!(
            Command::Load(victim).to_string(),
            "LOAD module_id=math_ops size=460 crc32=d40c97d1 replace=1 replace_victim=old"
        );
        let start = Start {
            module_id: id("math_ops"),
            func: Some(FuncName::new("add").unwrap()),
            args: Args::new(vec![200, -26]).unwrap(),
        };
        assert_eq!(
            String::from_utf8(Command::Start(start).to_wire()).unwrap(),
            "START module_id=math_ops func=add args=\"a0=200,a1=-26\"\n"
        );
        let bare = Start {
            module_id: id("m"),
            func: None,
            args: Args::none(),
        };
        assert_eq!(Command::Start(bare).to_string(), "START module_id=m");
        assert_eq!(Command::Status.to_string(), "STATUS");
    }

    #[test]
    fn agent_lines_escape_quoted_values() {
        let r = RunResult {
            msg: Some("a\"b\\c\u{1}é".into()),
            module_id: Some("m".into()),
            func: Some("f".into()),
            ..RunResult::new(ResultStatus::Exception)
        };
        assert_eq!(
            AgentLine::Result(r).to_string(),
            "RESULT status=EXCEPTION module_id=m func=f msg=\"a\\\"b\\\\c\\x01\\xc3\\xa9\""
        );
    }
}

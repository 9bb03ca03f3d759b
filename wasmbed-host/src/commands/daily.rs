//! What `run`, `test` and `watch` share: the slot a file goes to, deploying it there (replacing
//! the module of that id), calling a function while the module's output streams, and compiler
//! diagnostics that point at the user's file.

use std::io::Write;
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmbed_agent_proto::{parse_agent_line, AgentLine};
use wasmbed_api::{DeployResult, ErrorCode, Event, LogKind, OpResult, StartResult};

use super::{read_file, unexpected, Ctx, Outcome};
use crate::cli::{CallArgs, Mode, ModuleFileArgs, ReplaceArgs};
use crate::error::HostError;
use crate::{requests, validate};

/// A file and the slot of one device it is deployed to.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// Device name.
    pub device: String,
    /// Module id on the device.
    pub module_id: String,
    /// The file as given.
    pub file: PathBuf,
    /// `Some` for a C source (built on the gateway).
    pub mode: Option<Mode>,
    /// The module evicted when all slots are used (`--replace-victim`).
    pub replace_victim: Option<String>,
}

impl Slot {
    /// The slot of `a` on the one device of `ctx`.
    pub fn resolve(ctx: &Ctx, a: &ModuleFileArgs, command: &str) -> Result<Slot, HostError> {
        let device = ctx.one_device(command)?;
        let module_id = match &a.module_id {
            Some(id) => id.clone(),
            None => default_module_id(&a.file)?,
        };
        validate::module_id(&module_id)?;
        let ext = a
            .file
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let mode = match ext.as_str() {
            "wasm" | "aot" => None,
            _ => Some(a.mode),
        };
        Ok(Slot {
            device,
            module_id,
            file: a.file.clone(),
            mode,
            replace_victim: a.replace_victim.clone(),
        })
    }
}

/// The module id a file gets when none is given: its name without extension, with every
/// character an id cannot hold replaced by `_`, cut to the longest id the agent stores.
pub(crate) fn default_module_id(path: &Path) -> Result<String, HostError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let id: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(validate::MAX_MODULE_ID)
        .collect();
    if id.is_empty() {
        return Err(HostError::Usage(format!(
            "cannot make a module id from {}: pass --module-id ID",
            path.display()
        )));
    }
    Ok(id)
}

/// Deploys the slot's file, replacing a module of the same id (its running job is killed).
/// `force` uploads even an identical module (a fresh instance). Compiler diagnostics name the
/// user's file.
pub(crate) fn deploy(ctx: &Ctx, slot: &Slot, force: bool) -> Result<DeployResult, HostError> {
    let data = read_file(&slot.file)?;
    let replace = ReplaceArgs {
        replace: true,
        replace_victim: slot.replace_victim.clone(),
        force,
        ..ReplaceArgs::default()
    };
    let req = requests::upload(
        &slot.device,
        &slot.module_id,
        &data,
        slot.mode,
        &replace,
        None,
    )?;
    let default_s = if slot.mode.is_some() { 60.0 } else { 20.0 };
    let timeout = ctx.timeout(default_s + data.len() as f64 / 5000.0);
    match ctx.call(&slot.device, req, Some(&data), timeout) {
        Ok(r) => match r.result {
            OpResult::Deploy(d) => Ok(d),
            other => Err(unexpected("deploy", &other)),
        },
        Err(f) => Err(diagnose(ctx, &slot.device, Some(&slot.file), f.error)),
    }
}

/// Makes a compile failure point at the user's file (the gateway compiles a copy named
/// `module.c`) and, for an undefined symbol, lists the natives the device offers.
pub(crate) fn diagnose(
    ctx: &Ctx,
    device: &str,
    source: Option<&Path>,
    err: HostError,
) -> HostError {
    let HostError::Gateway(mut g) = err else {
        return err;
    };
    if g.code != ErrorCode::CompileFailed {
        return HostError::Gateway(g);
    }
    if let (Some(src), Some(stderr)) = (source, g.detail.stderr.take()) {
        g.detail.stderr = Some(point_at(&stderr, &src.display().to_string()));
    }
    let symbols = undefined_symbols(g.detail.stderr.as_deref().unwrap_or(""));
    if !symbols.is_empty() {
        let natives = natives_of(ctx, device);
        g.help = Some(undefined_help(&symbols, natives.as_deref()));
    }
    HostError::Gateway(g)
}

/// Replaces the gateway's temporary `…/module.c` in compiler output by `user_path`.
pub(crate) fn point_at(text: &str, user_path: &str) -> String {
    const NAME: &str = "module.c";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(NAME) {
        let after = &rest[i + NAME.len()..];
        // The path token: back to the previous white space or quote.
        let start = rest[..i]
            .rfind(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .map_or(0, |p| p + 1);
        let token = &rest[start..i];
        let is_path = token.is_empty() || token.ends_with('/');
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| c == ':' || c == '\'' || c == '"' || c.is_whitespace());
        if is_path && ends {
            out.push_str(&rest[..start]);
            out.push_str(user_path);
        } else {
            out.push_str(&rest[..i + NAME.len()]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The names of `wasm-ld`'s `undefined symbol: X` lines, in order, without duplicates.
pub(crate) fn undefined_symbols(stderr: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if let Some((_, name)) = line.split_once("undefined symbol: ") {
            let name = name.trim().to_string();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The help for undefined symbols: the device's natives (or how to list them).
pub(crate) fn undefined_help(symbols: &[String], natives: Option<&[String]>) -> String {
    let what = symbols.join(", ");
    match natives {
        Some(n) if !n.is_empty() => format!(
            "{what} is not on the device: a module can call only the device's natives ({}), \
             declared in wasmbed.h, and its own code",
            n.join(", ")
        ),
        _ => format!(
            "{what} is not on the device: a module can call only the device's natives \
             (`wasmbed-host info` lists them) and its own code"
        ),
    }
}

fn natives_of(ctx: &Ctx, device: &str) -> Option<Vec<String>> {
    let r = ctx
        .call(device, requests::info(device), None, ctx.timeout(5.0))
        .ok()?;
    match r.result {
        OpResult::Info(i) => i.natives,
        _ => None,
    }
}

/// A progress note on stderr (`deployed …`), unless `-q` or `--json`.
pub(crate) fn note(ctx: &Ctx, text: &str) {
    if ctx.globals.verbosity >= 0 && !ctx.globals.json {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// One line about a deploy, for [`note`].
pub(crate) fn deploy_note(slot: &Slot, d: &DeployResult) -> String {
    let what = if d.skipped {
        "unchanged (identical module already loaded)".to_string()
    } else {
        format!("loaded {} B", d.size)
    };
    format!("deployed {} to {}: {what}", slot.module_id, slot.device)
}

/// The module's output gathered from the device log: its `LOG` lines and console lines.
#[derive(Debug)]
pub(crate) struct Output {
    module_id: String,
    /// Print each line to stdout as it arrives.
    echo: bool,
    last_seq: u64,
    /// The lines so far.
    pub lines: Vec<String>,
}

impl Output {
    fn take(&mut self, seq: Option<u64>, kind: LogKind, line: &str) {
        let Some(seq) = seq else { return };
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        let text = match kind {
            LogKind::Console => line.to_string(),
            LogKind::Log => match parse_agent_line(line) {
                AgentLine::Log(l) if l.module_id == self.module_id => l.msg,
                _ => return,
            },
            _ => return,
        };
        if self.echo {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        self.lines.push(text);
    }
}

/// The device log after `since` (all buffered lines with `None`), fed to `output`; returns the
/// last sequence number seen.
fn read_log(
    ctx: &Ctx,
    device: &str,
    since: Option<u64>,
) -> Result<Vec<(u64, LogKind, String)>, HostError> {
    let r = ctx
        .call(
            device,
            requests::logs(device, since, false),
            None,
            ctx.timeout(5.0),
        )
        .map_err(|f| f.error)?;
    match r.result {
        OpResult::Logs(l) => Ok(l
            .lines
            .into_iter()
            .map(|l| (l.seq, l.kind, l.line))
            .collect()),
        other => Err(unexpected("logs", &other)),
    }
}

/// Calls `call` of the slot's module and waits up to `result_timeout` seconds for its result,
/// gathering the module's output meanwhile (echoed to stdout as it comes when `echo`).
pub(crate) fn call(
    ctx: &Ctx,
    slot: &Slot,
    call: &CallArgs,
    result_timeout: f64,
    echo: bool,
) -> Result<(Outcome, Vec<String>), HostError> {
    let req = requests::start(
        &slot.device,
        &slot.module_id,
        call.func.as_deref(),
        call.args.as_deref(),
        true,
        result_timeout,
    )?;
    let since = read_log(ctx, &slot.device, None)?
        .last()
        .map_or(0, |(seq, _, _)| *seq);
    let output = Arc::new(Mutex::new(Output {
        module_id: slot.module_id.clone(),
        echo,
        last_seq: since,
        lines: Vec::new(),
    }));
    // The follower: the device log from `since` on, until its socket is shut down below.
    let limit = Duration::from_secs_f64(result_timeout + 60.0);
    let mut conn = ctx.connect(limit)?;
    let socket = conn.socket()?;
    let follower = {
        let output = output.clone();
        let device = slot.device.clone();
        std::thread::spawn(move || {
            let mut take = |ev: &Event| {
                if let Event::Log {
                    seq, kind, line, ..
                } = ev
                {
                    output.lock().expect("output lock").take(*seq, *kind, line);
                }
            };
            let req = requests::logs(&device, Some(since), true);
            if let Ok(r) = conn.request(req, None, limit, &mut take) {
                if let OpResult::Logs(l) = r.result {
                    for l in l.lines {
                        take(&Event::Log {
                            seq: Some(l.seq),
                            device: String::new(),
                            line: l.line,
                            kind: l.kind,
                        });
                    }
                }
                let deadline = Instant::now() + limit;
                while let Ok(Some(ev)) = conn.next_event(deadline, limit) {
                    take(&ev);
                }
            }
        })
    };
    let out = ctx.call(&slot.device, req, None, ctx.timeout(result_timeout + 5.0));
    let _ = socket.shutdown(Shutdown::Both);
    let _ = follower.join();
    // The device task logs a module's output before it hands on the RESULT that follows it:
    // whatever the follower had not received yet is in the log now.
    let last = output.lock().expect("output lock").last_seq;
    if let Ok(rest) = read_log(ctx, &slot.device, Some(last)) {
        let mut o = output.lock().expect("output lock");
        for (seq, kind, line) in rest {
            o.take(Some(seq), kind, &line);
        }
    }
    let lines = std::mem::take(&mut output.lock().expect("output lock").lines);
    Ok((out, lines))
}

/// The typed RESULT of a `start` outcome, if it carries one.
pub(crate) fn start_result(out: &Outcome) -> Option<&StartResult> {
    match out {
        Ok(r) => match &r.result {
            OpResult::Start(s) => Some(s),
            _ => None,
        },
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_name_the_users_file() {
        let stderr = "/tmp/.tmpAbC/module.c:3:1: error: expected ';'\n\
                      In file included from module.c:1:\n\
                      note: 'module.c' here; my_module.c:2 stays; module.cpp stays\n";
        let got = point_at(stderr, "src/blink.c");
        assert_eq!(
            got,
            "src/blink.c:3:1: error: expected ';'\n\
             In file included from src/blink.c:1:\n\
             note: 'src/blink.c' here; my_module.c:2 stays; module.cpp stays\n"
        );
    }

    #[test]
    fn undefined_symbols_and_their_help() {
        let stderr = "wasm-ld: error: /tmp/x/module.o: undefined symbol: printf\n\
                      wasm-ld: error: /tmp/x/module.o: undefined symbol: malloc\n\
                      wasm-ld: error: /tmp/x/module.o: undefined symbol: printf\n";
        let syms = undefined_symbols(stderr);
        assert_eq!(syms, ["printf", "malloc"]);
        let natives = vec!["log".to_string(), "uart_print".to_string()];
        let help = undefined_help(&syms, Some(&natives));
        assert!(
            help.starts_with("printf, malloc is not on the device"),
            "{help}"
        );
        assert!(help.contains("(log, uart_print)"), "{help}");
        assert!(undefined_help(&syms, None).contains("wasmbed-host info"));
    }

    #[test]
    fn module_ids_from_file_names() {
        assert_eq!(
            default_module_id(Path::new("a/math_ops.c")).unwrap(),
            "math_ops"
        );
        assert_eq!(
            default_module_id(Path::new("my prog.wasm")).unwrap(),
            "my_prog"
        );
        let long = "x".repeat(40) + ".c";
        assert_eq!(
            default_module_id(Path::new(&long)).unwrap().len(),
            validate::MAX_MODULE_ID
        );
        assert!(default_module_id(Path::new("")).is_err());
    }
}

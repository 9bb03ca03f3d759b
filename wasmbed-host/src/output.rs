//! Human-readable rendering: tables (comfy-table) and text. Pure functions of the gateway's
//! result objects, so they can be snapshot-tested.

use std::cell::Cell as StdCell;
use std::io::IsTerminal;

use comfy_table::{presets, Cell, ContentArrangement, Table};
use serde_json::Value;
use wasmbed_api::{
    DeployResult, DeviceIdentity, DeviceSummary, IdentityState, InfoResult, StartResult,
    StatusResult,
};

use crate::error::HostError;

thread_local! {
    /// A width that overrides the terminal's (snapshot tests).
    static WIDTH: StdCell<Option<u16>> = const { StdCell::new(None) };
}

/// Runs `f` with tables laid out for a terminal of `columns` columns.
pub fn with_width<R>(columns: u16, f: impl FnOnce() -> R) -> R {
    let before = WIDTH.with(|w| w.replace(Some(columns)));
    let r = f();
    WIDTH.with(|w| w.set(before));
    r
}

/// The width tables must fit: `COLUMNS` when set, else the terminal's when stdout is one;
/// `None` when piped (rows stay one line each, for `grep` and `awk`).
fn layout_width() -> Option<u16> {
    if let Some(w) = WIDTH.with(StdCell::get) {
        return Some(w);
    }
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 20)
    {
        return Some(w);
    }
    if std::io::stdout().is_terminal() {
        return terminal_width();
    }
    None
}

fn terminal_width() -> Option<u16> {
    // Below 80 columns tables still get 80 (and the terminal wraps): narrower is unreadable.
    Table::new().width().map(|w| w.max(80))
}

/// Keeps the given columns (numbers) whole, so only the text columns wrap.
fn keep_whole(t: &mut Table, columns: &[usize]) {
    if layout_width().is_none() {
        return;
    }
    for &i in columns {
        if let Some(c) = t.column_mut(i) {
            c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
}

/// A `line: …` echo of a device line, cut to the layout width (whole when piped).
fn line_echo(line: &str) -> String {
    let text = format!("line: {line}");
    match layout_width().map(usize::from) {
        Some(w) if text.chars().count() > w => {
            let cut: String = text.chars().take(w.saturating_sub(1)).collect();
            format!("{cut}…\n")
        }
        _ => text + "\n",
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(header.iter().map(|h| Cell::new(*h)));
    match layout_width() {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t
}

/// Renders a JSON value for a table cell: strings bare, null/absent as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) if s.is_empty() => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.1}"),
            _ => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn ms_ago(v: Option<u64>) -> String {
    match v.map(|ms| ms as f64) {
        None => "-".into(),
        Some(ms) if ms < 1000.0 => format!("{ms:.0} ms ago"),
        Some(ms) if ms < 120_000.0 => format!("{:.1} s ago", ms / 1e3),
        Some(ms) => format!("{:.0} min ago", ms / 60e3),
    }
}

/// The `devices` table.
pub fn devices_table(devices: &[DeviceSummary]) -> String {
    if devices.is_empty() {
        return "no devices configured on the gateway".into();
    }
    let mut t = table(&[
        "NAME",
        "ENDPOINT",
        "ONLINE",
        "LAST SEEN",
        "BOARD",
        "FIRMWARE",
        "PROTO",
        "SLOTS",
    ]);
    for d in devices {
        let slots = match (d.slots_used, d.slots_total) {
            (Some(u), Some(t)) => format!("{u}/{t}"),
            _ => "-".into(),
        };
        t.add_row(vec![
            d.name.clone(),
            cell(Some(&Value::from(d.endpoint.as_str()))),
            if d.online { "yes" } else { "no" }.into(),
            ms_ago(d.last_seen_ms_ago),
            opt(d.board.as_deref()),
            opt(d.firmware.as_deref()),
            opt(d.proto),
            slots,
        ]);
    }
    keep_whole(&mut t, &[2, 6, 7]);
    t.to_string() + &offline_notes(devices) + &identity_notes(devices)
}

/// One line per device with an identity key: its enrollment state and short fingerprint, and
/// what to do when commands are refused.
fn identity_notes(devices: &[DeviceSummary]) -> String {
    let mut out = String::new();
    for d in devices {
        let Some(id) = &d.identity else { continue };
        if matches!(id.state, IdentityState::None | IdentityState::Unknown) && id.pinned.is_none() {
            continue;
        }
        for line in identity_text(&d.name, id).lines() {
            let text = line.trim_start();
            note(&mut out, line.len() - text.len(), text);
        }
    }
    out
}

/// `NAME identity: STATE key SHORT[, pinned SHORT]` and, when refused, what to do.
pub fn identity_text(name: &str, id: &DeviceIdentity) -> String {
    use wasmbed_agent_proto::identity::short;
    let mut s = format!("{name} identity: {}", id.state);
    if let Some(fp) = &id.fingerprint {
        s.push_str(&format!(" key {}", short(fp)));
    }
    match &id.pinned {
        Some(p) if id.fingerprint.as_deref() != Some(p.as_str()) => {
            s.push_str(&format!(" (approved key {})", short(p)))
        }
        _ => {}
    }
    match id.state {
        IdentityState::Pending => s.push_str(&format!(
            "\n  commands refused: approve with `wasmbed-host devices approve {name}`"
        )),
        IdentityState::Mismatch | IdentityState::Failed => {
            if let Some(r) = &id.reason {
                s.push_str(&format!("\n  commands refused: {r}"));
            }
        }
        IdentityState::None if !id.allowed => {
            s.push_str("\n  commands refused: the gateway requires an identity key")
        }
        _ => {}
    }
    s
}

/// A note line under a table, `indent` spaces in: wrapped at spaces to the layout width, its
/// continuation lines two spaces further in (whole when piped).
fn note(out: &mut String, indent: usize, text: &str) {
    let first = " ".repeat(indent);
    let rest = " ".repeat(indent + 2);
    match layout_width().map(usize::from) {
        Some(w) => {
            let options = textwrap::Options::new(w)
                .initial_indent(&first)
                .subsequent_indent(&rest);
            for line in textwrap::wrap(text, options) {
                out.push('\n');
                out.push_str(&line);
            }
        }
        None => {
            out.push('\n');
            out.push_str(&first);
            out.push_str(text);
        }
    }
}

/// Why each offline device is offline, and the USB serial ports of the gateway's machine that
/// could be it (from the gateway's `offline_reason` and `candidates`), fitted to the width.
fn offline_notes(devices: &[DeviceSummary]) -> String {
    let mut out = String::new();
    for d in devices.iter().filter(|d| !d.online) {
        let Some(reason) = &d.offline_reason else {
            continue;
        };
        note(&mut out, 0, &format!("{} is offline: {reason}", d.name));
        if !d.candidates.is_empty() {
            note(&mut out, 2, "USB serial ports on the gateway's machine:");
            for c in &d.candidates {
                note(&mut out, 4, c);
            }
        }
    }
    out
}

/// Key/value table of a device's INFO.
pub fn info_table(device: &str, info: &InfoResult) -> String {
    let mut t = table(&["FIELD", "VALUE"]);
    t.add_row(vec!["device".to_string(), device.to_string()]);
    // Every field by its wire name, in the order of the type.
    let fields = match serde_json::to_value(info) {
        Ok(Value::Object(m)) => m,
        _ => Default::default(),
    };
    for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != "line") {
        let value = match v {
            Value::Array(items) => items
                .iter()
                .map(|i| cell(Some(i)))
                .collect::<Vec<_>>()
                .join(", "),
            other => cell(Some(other)),
        };
        t.add_row(vec![k.clone(), value]);
    }
    t.to_string()
}

/// The `status` output of one device: slot table and memory line.
pub fn status_text(device: &str, status: &StatusResult) -> String {
    let mut out = format!("device {device}\n");
    if status.slots.is_empty() {
        out.push_str("no modules loaded\n");
    } else {
        let mut t = table(&["MODULE", "STATE", "SIZE", "CRC32", "STACK FREE"]);
        for s in &status.slots {
            t.add_row(vec![
                s.module_id.clone(),
                s.state.clone(),
                s.size.to_string(),
                opt(s.crc32.as_deref()),
                s.stack_free.to_string(),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    match &status.memory {
        Some(m) => out.push_str(&format!(
            "memory: total={} used={} free={} highmark={}\n",
            m.total, m.used, m.free, m.highmark
        )),
        None => out.push_str("memory: not reported by this firmware\n"),
    }
    out.push_str(&line_echo(&status.line));
    out
}

/// One device's outcome of a deploy / build-and-deploy.
#[derive(Debug)]
pub struct DeployRow<'a> {
    /// Device name.
    pub device: &'a str,
    /// Module id.
    pub module_id: &'a str,
    /// The gateway's result object, or the error.
    pub outcome: Result<&'a DeployResult, &'a HostError>,
    /// Upload time reported by the gateway, ms.
    pub transfer_ms: Option<f64>,
    /// Compile time reported by the gateway, ms.
    pub compile_ms: Option<f64>,
    /// Host-measured end-to-end latency, ms.
    pub e2e_ms: f64,
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// A duration for people: `41 ms`, `1.2 s`, `123 s`.
fn human_ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(ms) if ms < 999.5 => format!("{ms:.0} ms"),
        Some(ms) if ms < 99_950.0 => format!("{:.1} s", ms / 1e3),
        Some(ms) => format!("{:.0} s", ms / 1e3),
    }
}

/// The cells of one deploy row: result, size, CRC32 and rate.
fn deploy_cells(r: &DeployRow<'_>) -> [String; 4] {
    match r.outcome {
        Ok(res) => {
            let state = match (res.skipped, res.chunked) {
                (true, _) => "skipped (identical)",
                (false, true) => "loaded (chunked)",
                (false, false) => "loaded",
            };
            let rate = if res.skipped {
                "-".into()
            } else {
                format!("{:.0}", res.bytes_per_s)
            };
            [
                state.to_string(),
                res.size.to_string(),
                res.crc32.clone(),
                rate,
            ]
        }
        // The message goes to stderr with the other errors: the cell stays short.
        Err(e) => [
            format!("FAILED {}", e.code()),
            "-".into(),
            "-".into(),
            "-".into(),
        ],
    }
}

/// The table that ends every deploy: one row per device. Piped, and on a terminal wide enough,
/// it has every figure in ms and bytes per second, one line per row; on a narrower terminal
/// (80 columns) the same figures come without the vertical rules and with times in ms or s.
pub fn deploy_table(rows: &[DeployRow<'_>]) -> String {
    let mut t = table(&[
        "DEVICE",
        "MODULE",
        "RESULT",
        "SIZE",
        "CRC32",
        "BUILD MS",
        "UPLOAD MS",
        "B/S",
        "E2E MS",
    ]);
    for r in rows {
        let [result, size, crc, rate] = deploy_cells(r);
        t.add_row(vec![
            r.device.to_string(),
            r.module_id.to_string(),
            result,
            size,
            crc,
            opt_ms(r.compile_ms),
            opt_ms(r.transfer_ms),
            rate,
            format!("{:.1}", r.e2e_ms),
        ]);
    }
    let Some(width) = layout_width() else {
        return t.to_string();
    };
    // The full table when it fits whole.
    let mut whole = t.clone();
    whole.set_content_arrangement(ContentArrangement::Disabled);
    let natural = whole.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    if natural <= usize::from(width) {
        return whole.to_string();
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_style(comfy_table::TableComponent::HeaderLines, '─')
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width)
        .set_header(
            [
                "DEVICE", "MODULE", "RESULT", "SIZE", "CRC32", "BUILD", "UPLOAD", "B/S", "TOTAL",
            ]
            .map(Cell::new),
        );
    for r in rows {
        let [result, size, crc, rate] = deploy_cells(r);
        t.add_row(vec![
            r.device.to_string(),
            r.module_id.to_string(),
            result,
            size,
            crc,
            human_ms(r.compile_ms),
            human_ms(r.transfer_ms),
            rate,
            human_ms(Some(r.e2e_ms)),
        ]);
    }
    // One space between columns; the figures never wrap, the names do when they must.
    for c in t.column_iter_mut() {
        c.set_padding((0, 1));
    }
    if let Some(last) = t.column_mut(8) {
        last.set_padding((0, 0));
    }
    keep_whole(&mut t, &[3, 4, 5, 6, 7, 8]);
    t.to_string()
}

/// Text of a `start` result.
pub fn start_text(module_id: &str, result: &StartResult, waited: bool) -> String {
    let line = &result.line;
    if !waited {
        return format!("started {module_id}\n{}", line_echo(line));
    }
    let status = opt(result.status.as_ref());
    let ret = opt(result.ret);
    let mut out = format!("status={status} ret={ret}\n");
    if result.forced {
        out.push_str("forced: the job did not stop by itself and was aborted\n");
    }
    if let Some(msg) = &result.msg {
        out.push_str(&format!("msg: {msg}\n"));
    }
    out.push_str(&line_echo(line));
    out
}

/// Text of a result that is just a device line (`stop`, `unload`) and maybe its status.
pub fn line_text(verb: &str, module_id: &str, line: &str, status: Option<&str>) -> String {
    let mut out = format!("{verb} {module_id}");
    if let Some(status) = status {
        out.push_str(&format!(": status={status}"));
    }
    out.push('\n');
    out.push_str(&line_echo(line));
    out
}

/// One log line as text.
pub fn log_line(seq: u64, device: &str, kind: &str, line: &str) -> String {
    if device.is_empty() {
        format!("[{seq}] {kind:<7} {line}")
    } else {
        format!("[{seq}] {device} {kind:<7} {line}")
    }
}

/// The error report printed on stderr in text mode.
pub fn error_text(err: &HostError) -> String {
    let mut out = format!("error[{}]: {err}\n", err.code());
    if let Some(help) = err.help() {
        out.push_str(&format!("  help: {help}\n"));
    }
    if let HostError::Gateway(g) = err {
        if let Ok(Value::Object(detail)) = serde_json::to_value(&g.detail) {
            for (k, v) in &detail {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if text.trim().is_empty() {
                    continue;
                }
                if text.contains('\n') {
                    out.push_str(&format!("  {k}:\n"));
                    for l in text.lines() {
                        out.push_str(&format!("    {l}\n"));
                    }
                } else {
                    out.push_str(&format!("  {k}: {text}\n"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::GatewayError;
    use serde_json::json;

    /// A typed result from its JSON (the wire shape of docs/HOST-API.md).
    fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn devices_snapshot() {
        let devices = json!([
            {"name": "sim", "endpoint": "sim:stdio", "online": true, "last_seen_ms_ago": 120,
             "board": "posix", "firmware": "0.1.0", "proto": 2, "slots_used": 1, "slots_total": 2},
            {"name": "nucleo", "endpoint": "/dev/ttyACM0", "online": false, "last_seen_ms_ago": null,
             "board": null, "firmware": null, "proto": null, "slots_used": null, "slots_total": null}
        ]);
        let devices: Vec<DeviceSummary> = obj(devices);
        insta::assert_snapshot!(devices_table(&devices));
        assert_eq!(devices_table(&[]), "no devices configured on the gateway");
    }

    #[test]
    fn devices_identity_notes() {
        let devices = json!([
            {"name": "a", "identity": {"state": "approved", "fingerprint": "0e02a50225b4baaa18a0470ed9bfc7dc",
             "pinned": "0e02a50225b4baaa18a0470ed9bfc7dc", "allowed": true}},
            {"name": "b", "identity": {"state": "pending", "fingerprint": "3fa9c01d2e77aaaa18a0470ed9bfc7dc", "allowed": false}},
            {"name": "c", "identity": {"state": "mismatch", "fingerprint": "77aa9c01d2e7aaaa18a0470ed9bfc7dc",
             "pinned": "0e02a50225b4baaa18a0470ed9bfc7dc", "reason": "another key", "allowed": false}},
            {"name": "legacy", "identity": {"state": "none", "reason": "legacy firmware (protocol v1)", "allowed": true}}
        ]);
        let devices: Vec<DeviceSummary> = obj(devices);
        let text = devices_table(&devices);
        let notes = &text[text.rfind('┘').unwrap() + '┘'.len_utf8()..];
        insta::assert_snapshot!(notes, @r"
        a identity: approved key 0e02a50225b4
        b identity: pending key 3fa9c01d2e77
          commands refused: approve with `wasmbed-host devices approve b`
        c identity: mismatch key 77aa9c01d2e7 (approved key 0e02a50225b4)
          commands refused: another key
        ");
        assert!(notes.lines().all(|l| l.chars().count() <= 80), "{notes}");
    }

    #[test]
    fn devices_offline_reason_and_candidates() {
        let devices = json!([
            {"name": "nucleo", "endpoint": "usb:0483:374b", "online": false,
             "offline_reason": "no serial port is USB 0483:374b",
             "candidates": ["/dev/ttyUSB0 1a86:7523 [WCH CH340 (USB-UART)] -> usb:1a86:7523"]},
            {"name": "renode", "endpoint": "tcp:localhost:3456", "online": false,
             "offline_reason": "Connection refused (os error 111)", "candidates": []},
            {"name": "sim", "endpoint": "tcp:127.0.0.1:1", "online": true,
             "offline_reason": null, "candidates": []}
        ]);
        let devices: Vec<DeviceSummary> = obj(devices);
        let text = devices_table(&devices);
        let notes = &text[text.rfind('┘').unwrap() + '┘'.len_utf8()..];
        insta::assert_snapshot!(notes, @r"
        nucleo is offline: no serial port is USB 0483:374b
          USB serial ports on the gateway's machine:
            /dev/ttyUSB0 1a86:7523 [WCH CH340 (USB-UART)] -> usb:1a86:7523
        renode is offline: Connection refused (os error 111)
        ");
    }

    #[test]
    fn offline_notes_fit_80_columns() {
        let devices: Vec<DeviceSummary> = obj(json!([
            {"name": "nucleo-f446re-lab-bench-3", "endpoint": "usb:0483:374b:066DFF535155878281123456",
             "online": false,
             "offline_reason": "no serial port is USB 0483:374b serial 066DFF535155878281123456 (not plugged in, or no permission to see it: `wasmbed-host ports` on this machine lists what is there)",
             "candidates": [
                "/dev/ttyACM1 0483:374b [STMicroelectronics ST-LINK/V2-1 VCP (debug probe)] serial 066DFF535155878281999999 -> usb:0483:374b:066DFF535155878281999999",
                "/dev/ttyUSB0 1a86:7523 [WCH CH340 (USB-UART)] -> usb:1a86:7523"]}
        ]));
        let text = with_width(80, || devices_table(&devices));
        assert_fits(&text, 80);
        let notes = &text[text.rfind('┘').unwrap() + '┘'.len_utf8()..];
        insta::assert_snapshot!(notes, @r"
        nucleo-f446re-lab-bench-3 is offline: no serial port is USB 0483:374b serial
          066DFF535155878281123456 (not plugged in, or no permission to see it:
          `wasmbed-host ports` on this machine lists what is there)
          USB serial ports on the gateway's machine:
            /dev/ttyACM1 0483:374b [STMicroelectronics ST-LINK/V2-1 VCP (debug probe)]
              serial 066DFF535155878281999999 -> usb:0483:374b:066DFF535155878281999999
            /dev/ttyUSB0 1a86:7523 [WCH CH340 (USB-UART)] -> usb:1a86:7523
        ");
        // Piped: one line per note, whole, for grep.
        let piped = devices_table(&devices);
        let piped_notes = &piped[piped.rfind('┘').unwrap()..];
        assert!(
            piped_notes.contains("\n    /dev/ttyACM1 0483:374b [STMicroelectronics ST-LINK/V2-1 VCP (debug probe)] serial 066DFF535155878281999999 -> usb:0483:374b:066DFF535155878281999999\n"),
            "{piped}"
        );
    }

    #[test]
    fn status_snapshot() {
        let status: StatusResult = obj(json!({
            "line": "STATUS_OK modules=\"m:RUNNING:wasm=460:stack_free=3000:crc32=d40c97d1\"",
            "slots": [{"module_id": "m", "state": "RUNNING", "size": 460, "crc32": "d40c97d1", "stack_free": 3000}],
            "memory": {"total": 65536, "free": 40000, "used": 25536, "highmark": 30000},
            "jobs": {}
        }));
        insta::assert_snapshot!(status_text("sim", &status));
        let empty: StatusResult =
            obj(json!({"line": "STATUS_OK runner=idle", "slots": [], "memory": null, "jobs": {}}));
        let text = status_text("old", &empty);
        assert!(text.contains("no modules loaded"), "{text}");
        assert!(text.contains("not reported"), "{text}");
    }

    /// The gateway's `DEVICE_OFFLINE` with `message`.
    fn offline(message: &str) -> HostError {
        HostError::Gateway(Box::new(GatewayError::new(
            "DEVICE_OFFLINE".into(),
            message,
        )))
    }

    /// A deploy table row of a device that failed with `err` after 1 ms.
    fn failed_row<'a>(device: &'a str, module_id: &'a str, err: &'a HostError) -> DeployRow<'a> {
        DeployRow {
            device,
            module_id,
            outcome: Err(err),
            transfer_ms: None,
            compile_ms: None,
            e2e_ms: 1.0,
        }
    }

    #[test]
    fn deploy_table_snapshot() {
        let ok: DeployResult = obj(
            json!({"line": "LOAD_OK", "module_id": "m", "size": 460, "crc32": "d40c97d1",
                            "skipped": false, "chunked": true, "bytes_per_s": 11230.4}),
        );
        let skipped: DeployResult = obj(
            json!({"line": "", "module_id": "m", "size": 460, "crc32": "d40c97d1",
                                 "skipped": true, "chunked": false, "bytes_per_s": 0.0}),
        );
        let err = offline("device 'b' is offline");
        let rows = [
            DeployRow {
                device: "a",
                module_id: "m",
                outcome: Ok(&ok),
                transfer_ms: Some(41.0),
                compile_ms: Some(120.25),
                e2e_ms: 170.0,
            },
            DeployRow {
                device: "c",
                module_id: "m",
                outcome: Ok(&skipped),
                transfer_ms: None,
                compile_ms: None,
                e2e_ms: 3.0,
            },
            failed_row("b", "m", &err),
        ];
        insta::assert_snapshot!(deploy_table(&rows));
    }

    /// Every line of `text` fits `columns` terminal columns.
    fn assert_fits(text: &str, columns: usize) {
        for line in text.lines() {
            let width = line.chars().count();
            assert!(width <= columns, "{width} columns: {line}\n{text}");
        }
    }

    #[test]
    fn tables_fit_80_columns() {
        let devices: Vec<DeviceSummary> = obj(json!([
            {"name": "nucleo-f446re-lab-bench-3", "endpoint": "usb:0483:374b:066DFF535155878281123456?baud=115200",
             "online": true, "last_seen_ms_ago": 1200, "board": "nucleo_f446re", "firmware": "0.1.0-dirty",
             "proto": 2, "slots_used": 2, "slots_total": 4},
            {"name": "sim", "endpoint": "sim:stdio", "online": false, "last_seen_ms_ago": null,
             "board": null, "firmware": null, "proto": null, "slots_used": null, "slots_total": null}
        ]));
        let status: StatusResult = obj(json!({
            "line": "STATUS_OK modules=\"fft_bench_with_a_long_name:RUNNING:wasm=123456:stack_free=3000:crc32=d40c97d1\" low_stack=\"none\"",
            "slots": [{"module_id": "fft_bench_with_a_long_name", "state": "RUNNING", "size": 123456,
                       "crc32": "d40c97d1", "stack_free": 3000}],
            "memory": {"total": 65536, "free": 40000, "used": 25536, "highmark": 30000}, "jobs": {}
        }));
        let ok: DeployResult = obj(
            json!({"line": "LOAD_OK", "module_id": "fft_bench_with_a_long_name",
            "size": 123456, "crc32": "d40c97d1", "skipped": false, "chunked": true, "bytes_per_s": 11230.4}),
        );
        let err = offline(
            "device 'nucleo-f446re-lab-bench-3' is offline: cannot open serial port /dev/ttyACM0",
        );
        let rows = [
            DeployRow {
                device: "nucleo-f446re-lab-bench-3",
                module_id: "fft_bench_with_a_long_name",
                outcome: Ok(&ok),
                transfer_ms: Some(10993.2),
                compile_ms: Some(1201.25),
                e2e_ms: 12345.6,
            },
            failed_row("sim", "fft_bench_with_a_long_name", &err),
        ];
        let info: InfoResult = obj(json!({
            "line": "INFO proto=2 board=nucleo_f446re fw=0.1.0 natives=uart_print,delay_ms,gpio_write,gpio_read,get_tick_ms,wb_log,rand_u32",
            "proto": 2, "board": "nucleo_f446re", "fw": "0.1.0-dirty", "wamr": "2.4.4",
            "aot_arch": "thumbv7em", "aot_cpu": "cortex-m4", "aot_abi": "eabihf", "slots": 2,
            "natives": ["uart_print", "delay_ms", "gpio_write", "gpio_read", "get_tick_ms",
                        "wb_log", "rand_u32", "i2c_write", "i2c_read", "spi_transfer", "adc_read"]
        }));
        let (d, st, dep, inf) = with_width(80, || {
            (
                devices_table(&devices),
                status_text("sim", &status),
                deploy_table(&rows),
                info_table("nucleo-f446re-lab-bench-3", &info),
            )
        });
        assert!(inf.contains("spi_transfer"), "{inf}");
        for t in [&d, &st, &dep, &inf] {
            assert_fits(t, 80);
        }
        insta::assert_snapshot!("devices_80", d);
        insta::assert_snapshot!("status_80", st);
        // Usual names: nothing wraps but the headers.
        let usual = [DeployRow {
            device: "nucleo",
            module_id: "fft_bench",
            ..rows[0]
        }];
        // Usual names at 80 columns: no rules between the columns, times in ms or s, and every
        // row on one line (nothing wraps, not even the headers).
        let compact = with_width(80, || deploy_table(&usual));
        assert_fits(&compact, 80);
        assert_eq!(compact.lines().count(), 3, "{compact}");
        insta::assert_snapshot!("deploy_80", compact);
        // Long names wrap in their own columns; the figures stay whole.
        let long = with_width(80, || deploy_table(&rows));
        assert!(
            long.contains(" 10993.2 ") || long.contains(" 11.0 s "),
            "{long}"
        );
        assert!(long.contains(" d40c97d1 "), "{long}");
        // A wider terminal gets the full table, in ms, when it fits.
        let wide = with_width(132, || deploy_table(&usual));
        assert_fits(&wide, 132);
        assert!(
            wide.contains("│ nucleo ┆ fft_bench ┆ loaded (chunked) ┆"),
            "{wide}"
        );
        assert!(
            wide.contains(" UPLOAD MS ┆") && wide.contains("┆ 10993.2 "),
            "{wide}"
        );
        assert_eq!(wide.lines().count(), 5, "{wide}");
        // Piped (no width): one line per row, whatever its length, for grep and awk.
        let piped = deploy_table(&rows);
        assert!(piped.lines().any(|l| l.chars().count() > 80), "{piped}");
        assert_eq!(
            piped
                .lines()
                .filter(|l| l.contains("fft_bench_with"))
                .count(),
            2
        );
    }

    #[test]
    fn start_and_error_text() {
        let r: StartResult = obj(
            json!({"line": "RESULT status=OK module_id=m func=add ret_i32=4294967295",
                           "status": "OK", "ret": -1, "ret_u32": 4294967295u32, "msg": null}),
        );
        insta::assert_snapshot!(start_text("m", &r, true));
        let started: StartResult = obj(json!({"line": "START_OK", "status": null, "ret": null,
                                               "ret_u32": null, "msg": null}));
        assert!(start_text("m", &started, false).starts_with("started m"));
        let mut g = GatewayError::new("COMPILE_FAILED".into(), "clang failed");
        g.help = Some("fix the C source".into());
        g.detail.stderr = Some("m.c:3:1: error: expected ';'\n1 error generated.".into());
        let e = HostError::Gateway(Box::new(g));
        insta::assert_snapshot!(error_text(&e));
    }
}

//! `wasmbed-host`: the command-line client of the Wasmbed gateway, as a library.
//!
//! The binary only calls [`main_with_args`]. The pieces: [`cli`] (arguments, legacy
//! spellings), [`client`] (the gateway's Wasmbed dialect over TCP, with deadlines: typed
//! requests and results of `wasmbed-api`), [`requests`] (the typed requests the commands send,
//! validated first), [`commands`] (one file per subcommand, each returning a
//! [`commands::Report`]), [`output`] (tables and text), [`progress`] (bars and the log writer),
//! [`error`] (errors; exit codes are `wasmbed-api`'s).

pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod error;
pub mod fleet;
pub mod output;
pub mod progress;
pub mod requests;
pub mod tls;
pub mod validate;

use std::ffi::OsString;
use std::io::Write;

use clap::{CommandFactory, Parser};
use serde_json::Value;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::commands::{Ctx, Report};
use crate::error::{ExitCode, HostError};
use crate::progress::Ui;

/// Parses `args` (including the program name), runs the command, prints its output and returns
/// the process exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    let wants_json = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, wants_json),
    };
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "wasmbed-host",
            &mut std::io::stdout(),
        );
        return 0;
    }
    let name = commands::command_name(&cli.command);
    let mut globals = match cli.globals(std::env::var("WASMBED_GATEWAY").ok()) {
        Ok(g) => g,
        Err(e) => return emit(&Report::from_error(name, e), wants_json),
    };
    // Applications: straight to the fleet's NATS servers.
    if let Some(cmd) = commands::app_command(&cli.command) {
        let report = commands::apps::run(cmd, cli.fleet.as_deref(), globals.timeout);
        return emit(&report, globals.json);
    }
    // --fleet: every command goes through a bridge to the fleet (kept until exit).
    let _bridge = match &cli.fleet {
        Some(url) => match fleet::Bridge::start(url, cli.selector.as_deref()) {
            Ok(b) => {
                b.apply(&mut globals);
                Some(b)
            }
            Err(e) => return emit(&Report::from_error(name, e), wants_json),
        },
        None => None,
    };
    let ui = Ui::new(globals.verbosity >= 0);
    init_tracing(globals.verbosity, &ui);
    let json = globals.json;
    let quiet = globals.verbosity < 0;
    let ctx = Ctx { globals, ui };
    let mut report = commands::run(&cli.command, &ctx);
    if quiet && !json {
        // `-q`: errors only (they go to stderr below).
        report.text.clear();
        report.e2e_ms = None;
    }
    emit(&report, json)
}

fn usage_error(e: clap::Error, json: bool) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return e.exit_code();
    }
    if json {
        let report = Report::from_error("", clap_usage_error(&e));
        println!("{}", Value::Object(report.doc));
    }
    let _ = e.print();
    ExitCode::Usage.code()
}

/// A clap error as a usage error that keeps clap's detail: its message (which argument, which
/// value) and its tips, without the usage block.
fn clap_usage_error(e: &clap::Error) -> HostError {
    let text = e.render().to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    let tips: Vec<&str> = lines.filter_map(|l| l.strip_prefix("tip: ")).collect();
    if tips.is_empty() {
        HostError::Usage(message.to_string())
    } else {
        HostError::Usage(format!("{message} ({})", tips.join("; ")))
    }
}

fn init_tracing(verbosity: i8, ui: &Ui) {
    let level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("WASMBED_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("wasmbed_host={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time()
        .with_writer(ui.log_writer())
        .try_init();
}

/// Prints a report: one JSON document, or the `e2e_latency_ms=` line, the text and the error.
/// A report with an empty document (a streamed `logs --follow`) prints nothing more.
pub fn emit(report: &Report, json: bool) -> i32 {
    let code = report.exit_code().code();
    if report.doc.is_empty() {
        return code;
    }
    let mut out = std::io::stdout().lock();
    if json {
        let mut doc = report.doc.clone();
        doc.entry("exit_code").or_insert(code.into());
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default()
        );
    } else {
        if let Some(ms) = report.e2e_ms {
            let _ = writeln!(out, "e2e_latency_ms={ms:.2}");
        }
        let _ = write!(out, "{}", report.text);
    }
    let _ = out.flush();
    if let Some(err) = &report.error {
        if report.exit_code() != ExitCode::Success {
            let text = report
                .stderr
                .clone()
                .unwrap_or_else(|| output::error_text(err));
            let _ = write!(std::io::stderr().lock(), "{text}");
        }
    }
    code
}

//! `watch`: deploy and run once, then again every time the file is saved. Only the watched
//! module's slot is reloaded (`replace`): the other slots of the device keep running. A build or
//! run that fails is reported and watching goes on; Ctrl-C ends it.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};

use super::daily::{self, Slot};
use super::{Ctx, Report};
use crate::cli::WatchArgs;
use crate::error::HostError;
use crate::output;

/// Saves closer together than this are one change (editors write a file in several steps).
const SETTLE: Duration = Duration::from_millis(200);

/// Runs `watch` (returns only on an error of the watcher itself).
pub(super) fn run(ctx: &Ctx, a: &WatchArgs) -> Result<Report, HostError> {
    let slot = Slot::resolve(ctx, &a.module, "watch")?;
    let name = slot
        .file
        .file_name()
        .map(|n| n.to_os_string())
        .ok_or_else(|| HostError::Usage(format!("{} is not a file", slot.file.display())))?;
    let dir = match slot.file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => Path::new(".").to_path_buf(),
    };
    let (tx, rx) = mpsc::channel();
    let watch_err =
        |e: notify::Error| HostError::Internal(format!("cannot watch {}: {e}", dir.display()));
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let _ = tx.send(ev);
    })
    .map_err(watch_err)?;
    // The directory, not the file: editors often save by writing a new file and renaming it.
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(watch_err)?;
    let touches = |ev: &notify::Event| {
        matches!(ev.kind, EventKind::Create(_) | EventKind::Modify(_))
            && ev
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
    };
    daily::note(
        ctx,
        &format!(
            "watching {} (slot {} on {}); Ctrl-C ends",
            slot.file.display(),
            slot.module_id,
            slot.device
        ),
    );
    once(ctx, &slot, a);
    loop {
        match rx.recv() {
            Ok(Ok(ev)) if touches(&ev) => {}
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => return Err(watch_err(e)),
            Err(_) => return Err(HostError::Internal("the file watcher stopped".into())),
        }
        // Let the save finish, and take the events it made as one change.
        while rx.recv_timeout(SETTLE).is_ok() {}
        daily::note(ctx, &format!("{} changed", slot.file.display()));
        once(ctx, &slot, a);
    }
}

/// One build + deploy + run; failures are printed, not returned.
fn once(ctx: &Ctx, slot: &Slot, a: &WatchArgs) {
    let deployed = match daily::deploy(ctx, slot, false) {
        Ok(d) => d,
        Err(e) => {
            let _ = write!(std::io::stderr().lock(), "{}", output::error_text(&e));
            return;
        }
    };
    daily::note(ctx, &daily::deploy_note(slot, &deployed));
    match daily::call(ctx, slot, &a.call, a.result_timeout, true) {
        Ok((Ok(r), _)) => {
            if let wasmbed_api::OpResult::Start(s) = &r.result {
                let text = output::start_text(&slot.module_id, s, true);
                let first = text.lines().next().unwrap_or_default();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{first}");
                let _ = out.flush();
            }
        }
        Ok((Err(f), _)) => {
            let _ = write!(std::io::stderr().lock(), "{}", output::error_text(&f.error));
        }
        Err(e) => {
            let _ = write!(std::io::stderr().lock(), "{}", output::error_text(&e));
        }
    }
}

//! `run`: deploy a file to its slot (building a C source on the gateway), call a function, print
//! the module's output as it comes, and exit with the code of the function's result (0 for
//! `status=OK`, 7 when it trapped or was stopped, 5 when the device refused the call, 6 when
//! the result did not come in time).

use serde_json::Value;

use super::daily::{self, Slot};
use super::{single, start, Ctx, Report};
use crate::cli::RunArgs;
use crate::error::HostError;
use crate::output;

/// Runs `run`.
pub(super) fn run(ctx: &Ctx, a: &RunArgs) -> Result<Report, HostError> {
    let slot = Slot::resolve(ctx, &a.module, "run")?;
    let deployed = daily::deploy(ctx, &slot, false)?;
    daily::note(ctx, &daily::deploy_note(&slot, &deployed));
    let echo = !ctx.globals.json;
    let (out, lines) = daily::call(ctx, &slot, &a.call, a.result_timeout, echo)?;
    let result = daily::start_result(&out).map(|s| (s.status.clone(), s.ret));
    let mut report = single("run", Some(&slot.device), out, |r| match &r.result {
        wasmbed_api::OpResult::Start(s) => output::start_text(&slot.module_id, s, true),
        _ => String::new(),
    });
    report.e2e_ms = None;
    report
        .doc
        .insert("module_id".into(), slot.module_id.clone().into());
    report.doc.insert(
        "deploy".into(),
        serde_json::to_value(&deployed).unwrap_or(Value::Null),
    );
    report.doc.insert(
        "output".into(),
        Value::Array(lines.into_iter().map(Value::from).collect()),
    );
    if let Some(HostError::Gateway(g)) = &report.error {
        if let Some(status) = start::error_status(g) {
            report.text = format!("status={status}\n");
        }
    }
    start::finish_wait(&mut report, result);
    Ok(report)
}

//! `test`: every exported `test_*` function of a module, each in a fresh instance (the module is
//! loaded again before each one), with libtest-style output and optional JUnit XML.
//!
//! A test passes when it returns 0 (or returns nothing) and fails when it returns anything else,
//! traps (an `assert` that calls `__builtin_trap()`), is refused or does not end in time.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use wasmbed_api::{OpResult, RunStatus};

use super::daily::{self, Slot};
use super::{Ctx, Outcome, Report};
use crate::cli::{CallArgs, Mode, TestArgs};
use crate::error::HostError;

/// One test's outcome.
#[derive(Debug, Clone)]
pub(crate) struct TestOutcome {
    /// The function.
    pub name: String,
    /// `None` when it passed, else why it failed.
    pub failure: Option<String>,
    /// The module's output while it ran.
    pub output: Vec<String>,
    /// From START to its result.
    pub duration: Duration,
}

/// Why a test's call failed, or `None` when it passed.
fn verdict(out: &Outcome) -> Option<String> {
    match out {
        Ok(r) => match &r.result {
            OpResult::Start(s) => match (&s.status, s.ret) {
                (Some(RunStatus::Ok), None | Some(0)) => None,
                (Some(RunStatus::Ok), Some(v)) => {
                    Some(format!("returned {v} (a test passes by returning 0)"))
                }
                (Some(st), _) => Some(format!(
                    "status={st}{}",
                    s.msg
                        .as_deref()
                        .map(|m| format!(" msg={m}"))
                        .unwrap_or_default()
                )),
                (None, _) => Some(format!("no result: {}", s.line)),
            },
            _ => Some("the gateway answered with another op's result".into()),
        },
        Err(f) => Some(format!("{}: {}", f.error.code(), f.error)),
    }
}

/// Runs `test`.
pub(super) fn run(ctx: &Ctx, a: &TestArgs) -> Result<Report, HostError> {
    let slot = Slot::resolve(ctx, &a.module, "test")?;
    let no_exports = || {
        HostError::Usage(format!(
            "`test` needs the module's exports, which the gateway reads from wasm only: give a \
             C source with --mode wasm or a .wasm file, not {}",
            slot.file.display()
        ))
    };
    // Refused before anything is built or sent (an AOT build would take a slot for nothing).
    let aot_file = slot
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("aot"));
    if aot_file || slot.mode == Some(Mode::Aot) {
        return Err(no_exports());
    }
    let started = Instant::now();
    let first = daily::deploy(ctx, &slot, false)?;
    daily::note(ctx, &daily::deploy_note(&slot, &first));
    let exports = first.exports.clone().ok_or_else(no_exports)?;
    let mut names: Vec<String> = exports
        .into_iter()
        .filter(|e| e.starts_with("test_"))
        .collect();
    names.sort();
    names.dedup();
    let all = names.len();
    if let Some(f) = &a.filter {
        names.retain(|n| n.contains(f.as_str()));
    }
    let filtered_out = all - names.len();
    let live = !ctx.globals.json && ctx.globals.verbosity >= 0;
    let say = |text: &str| {
        if live {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    };
    if all == 0 {
        daily::note(
            ctx,
            &format!(
                "warning: {} exports no `test_*` function",
                slot.file.display()
            ),
        );
    }
    say(&format!(
        "\nrunning {} test{}",
        names.len(),
        if names.len() == 1 { "" } else { "s" }
    ));
    let mut results = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // A fresh instance for each test: the first deploy gave one unless it was skipped.
        if i > 0 || first.skipped {
            daily::deploy(ctx, &slot, true)?;
        }
        let call = CallArgs {
            func: Some(name.clone()),
            args: None,
        };
        let t0 = Instant::now();
        let (out, output) = daily::call(ctx, &slot, &call, a.result_timeout, false)?;
        let r = TestOutcome {
            name: name.clone(),
            failure: verdict(&out),
            output,
            duration: t0.elapsed(),
        };
        say(&format!(
            "test {} ... {}",
            r.name,
            if r.failure.is_none() { "ok" } else { "FAILED" }
        ));
        results.push(r);
    }
    let elapsed = started.elapsed();
    let failed = results.iter().filter(|r| r.failure.is_some()).count();
    if let Some(path) = &a.junit {
        let xml = junit(&slot.module_id, &results)?;
        std::fs::write(path, xml).map_err(|source| HostError::ReadFile {
            path: path.display().to_string(),
            source,
        })?;
    }
    let mut doc = Map::new();
    doc.insert("ok".into(), (failed == 0).into());
    doc.insert("command".into(), "test".into());
    doc.insert("device".into(), slot.device.clone().into());
    doc.insert("module_id".into(), slot.module_id.clone().into());
    doc.insert("passed".into(), (results.len() - failed).into());
    doc.insert("failed".into(), failed.into());
    doc.insert("filtered_out".into(), filtered_out.into());
    doc.insert(
        "tests".into(),
        Value::Array(
            results
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name,
                        "ok": r.failure.is_none(),
                        "failure": r.failure,
                        "output": r.output,
                        "duration_ms": super::round2(r.duration.as_secs_f64() * 1e3),
                    })
                })
                .collect(),
        ),
    );
    let error = (failed > 0).then_some(HostError::TestsFailed {
        failed,
        names: results
            .iter()
            .filter(|r| r.failure.is_some())
            .map(|r| r.name.clone())
            .collect(),
        total: results.len(),
    });
    if let Some(e) = &error {
        doc.insert("exit_code".into(), e.exit_code().code().into());
        doc.insert("error".into(), e.to_json());
    }
    Ok(Report {
        doc,
        text: summary(&results, filtered_out, elapsed),
        e2e_ms: None,
        error,
        stderr: None,
    })
}

/// The failures (with each one's output) and the `test result:` line, as libtest prints them.
pub(crate) fn summary(results: &[TestOutcome], filtered_out: usize, elapsed: Duration) -> String {
    let failed: Vec<&TestOutcome> = results.iter().filter(|r| r.failure.is_some()).collect();
    let mut out = String::new();
    if !failed.is_empty() {
        out.push_str("\nfailures:\n");
        for r in &failed {
            out.push_str(&format!("\n---- {} ----\n", r.name));
            for l in &r.output {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(r.failure.as_deref().unwrap_or_default());
            out.push('\n');
        }
        out.push_str("\nfailures:\n");
        for r in &failed {
            out.push_str(&format!("    {}\n", r.name));
        }
    }
    out.push_str(&format!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {filtered_out} filtered \
         out; finished in {:.2}s\n\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        results.len() - failed.len(),
        failed.len(),
        elapsed.as_secs_f64()
    ));
    out
}

/// The results as JUnit XML: one suite named after the module, one case per test.
pub(crate) fn junit(module_id: &str, results: &[TestOutcome]) -> Result<String, HostError> {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(module_id);
    for r in results {
        let status = match &r.failure {
            None => TestCaseStatus::success(),
            Some(why) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(why.as_str());
                s
            }
        };
        let mut case = TestCase::new(r.name.as_str(), status);
        case.set_classname(module_id);
        case.set_time(r.duration);
        if !r.output.is_empty() {
            case.set_system_out(r.output.join("\n"));
        }
        suite.add_test_case(case);
    }
    let mut report = quick_junit::Report::new("wasmbed-host test");
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| HostError::Internal(format!("JUnit XML: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(name: &str, failure: Option<&str>, output: &[&str]) -> TestOutcome {
        TestOutcome {
            name: name.into(),
            failure: failure.map(String::from),
            output: output.iter().map(|s| s.to_string()).collect(),
            duration: Duration::from_millis(12),
        }
    }

    #[test]
    fn libtest_summary_and_junit() {
        let results = [
            outcome("test_add", None, &[]),
            outcome(
                "test_sub",
                Some("returned 3 (a test passes by returning 0)"),
                &["a=1"],
            ),
        ];
        let text = summary(&results, 1, Duration::from_millis(1500));
        insta::assert_snapshot!(text, @r"
        failures:

        ---- test_sub ----
        a=1
        returned 3 (a test passes by returning 0)

        failures:
            test_sub

        test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 1 filtered out; finished in 1.50s
        ");
        let xml = junit("m", &results).unwrap();
        assert!(xml.contains(r#"<testsuite name="m" tests="2""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains("returned 3"), "{xml}");
        assert!(xml.contains("<system-out>a=1</system-out>"), "{xml}");
    }
}

//! BAUD on the simulated board (docs/PROTOCOL.md "Baud switching"): the switch is kept once a
//! command arrives at the new speed and undone by the board itself when none does. Over TCP the
//! sim has no peer port speed to disagree with, so these tests see the agent's own bookkeeping
//! (INFO `baud=`) and its pacing; the PTY end-to-end tests (wasmbed-gateway/tests/baud_switch.rs)
//! see the speeds disagree.

mod common;

use common::{Link, Sim};
use std::time::{Duration, Instant};

fn info_baud(l: &mut Link) -> String {
    let info = l.ask("INFO", "INFO_OK");
    Link::field(&info, "baud").unwrap_or("none").to_string()
}

#[test]
fn a_command_at_the_new_speed_keeps_the_switch() {
    let sim = Sim::tcp(&["--baud", "115200"]);
    let mut l = sim.hello();
    let info = l.ask("INFO", "INFO_OK");
    assert_eq!(
        Link::field(&info, "baud_rates"),
        Some("9600,19200,38400,57600,115200,230400,460800,921600")
    );
    l.answers("BAUD rate=921600", "BAUD_OK rate=921600 revert_ms=1000");
    assert_eq!(info_baud(&mut l), "921600");
    // confirmed: still there after the revert bound
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(info_baud(&mut l), "921600");
    // the pacing follows the switch: down to 9600, a reply takes its wire time
    l.answers("BAUD rate=9600", "BAUD_OK rate=9600 revert_ms=1000");
    let t = Instant::now();
    let info = l.ask("INFO", "INFO_OK");
    // >= the wire time of the INFO_OK line at 9600 baud (10 bits per byte): pacing is real
    let wire = Duration::from_millis((info.len() as u64 + 1) * 10 * 1000 / 9600);
    assert!(t.elapsed() >= wire, "{:?} < {wire:?}", t.elapsed());
}

#[test]
fn no_command_within_the_bound_reverts() {
    let sim = Sim::tcp(&["--baud", "115200"]);
    let mut l = sim.hello();
    l.answers("BAUD rate=460800", "BAUD_OK rate=460800 revert_ms=1000");
    std::thread::sleep(Duration::from_millis(1400));
    assert_eq!(info_baud(&mut l), "115200");
}

#[test]
fn refusals_leave_the_speed_alone() {
    let sim = Sim::tcp(&["--baud", "115200"]);
    let mut l = sim.hello();
    l.answers("BAUD rate=12345", "BAUD_ERR code=BAD_RATE");
    l.answers("BAUD", "BAUD_ERR code=BAD_PARAMS");
    l.answers("BAUD rate=fast", "BAUD_ERR code=BAD_PARAMS");
    // during an upload: BUSY
    l.send("LOAD module_id=m size=100 crc32=00000000 chunked=1 framed=1");
    l.expect("LOAD_READY");
    l.answers("BAUD rate=921600", "BAUD_ERR code=BUSY");
    assert_eq!(info_baud(&mut l), "115200");
    // without a line speed there is nothing to switch: not offered, not understood
    let plain = Sim::tcp(&[]);
    let mut p = plain.hello();
    let info = p.ask("INFO", "INFO_OK");
    assert_eq!(Link::field(&info, "baud_rates"), None);
    p.answers("BAUD rate=921600", "ERROR code=UNKNOWN_COMMAND");
}

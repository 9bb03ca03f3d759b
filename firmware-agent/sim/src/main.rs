//! `wasmbed-agent-sim`: the simulated Wasmbed board. The whole board is C (the portable agent
//! core, WAMR 2.4.3 and the POSIX port, built by `build.rs`); this binary only hands its
//! arguments to the C entry point. Run `wasmbed-agent-sim --help` for the options.

use std::ffi::{c_char, c_int, CString};
use std::os::unix::ffi::OsStringExt;

extern "C" {
    fn wasmbed_agent_sim_main(argc: c_int, argv: *mut *mut c_char) -> c_int;
}

fn main() {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()).expect("argument contains a NUL byte"))
        .collect();
    let mut ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr() as *mut c_char).collect();
    ptrs.push(std::ptr::null_mut());
    let argc = c_int::try_from(args.len()).expect("too many arguments");
    // SAFETY: argv is a NULL-terminated array of `argc` valid C strings that outlive the call;
    // the C side only reads them.
    let code = unsafe { wasmbed_agent_sim_main(argc, ptrs.as_mut_ptr()) };
    std::process::exit(code);
}

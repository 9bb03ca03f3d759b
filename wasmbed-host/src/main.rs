//! `wasmbed-host`: the Wasmbed command-line tool. All logic lives in the library.

fn main() {
    std::process::exit(wasmbed_host::main_with_args(std::env::args_os().collect()));
}

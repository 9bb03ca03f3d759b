//! Builds the simulated board: WAMR 2.4.3 from the `wamrx-sys` crate's bundled sources (a copy with
//! `firmware-agent/wamr/patches` applied) with CMake
//! (interpreter + AOT loader + thread manager, see `firmware-agent/wamr/CMakeLists.txt`), then the
//! portable agent core and the POSIX port with `cc`, and links them into this binary.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const WAMRX: &str = "wamrx-sys-0.3.0";

/// `$CARGO_HOME/registry/src/*/wamrx-sys-0.3.0/wasm-micro-runtime`, else ask `cargo metadata`.
fn find_wamr() -> PathBuf {
    if let Ok(dir) = env::var("WAMR_ROOT_DIR") {
        return PathBuf::from(dir);
    }
    let cargo_home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if let Some(home) = cargo_home {
        if let Ok(entries) = std::fs::read_dir(home.join("registry").join("src")) {
            for e in entries.flatten() {
                let cand = e.path().join(WAMRX).join("wasm-micro-runtime");
                if cand.join("build-scripts/runtime_lib.cmake").exists() {
                    return cand;
                }
            }
        }
    }
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(env::var("CARGO_MANIFEST_DIR").unwrap())
        .output()
        .expect("running cargo metadata");
    let text = String::from_utf8_lossy(&out.stdout);
    let needle = format!("{WAMRX}/Cargo.toml");
    for part in text.split('"') {
        if part.ends_with(&needle) {
            let dir = Path::new(part).parent().unwrap().join("wasm-micro-runtime");
            if dir.exists() {
                return dir;
            }
        }
    }
    panic!("WAMR sources not found: run `cargo fetch` (wamrx-sys 0.3.0) or set WAMR_ROOT_DIR");
}

/// A copy of the WAMR tree with `firmware-agent/wamr/patches/*.patch` applied (by
/// `firmware-agent/wamr/patch-wamr.sh`; the registry's sources are never edited).
fn patched_wamr(src: &Path, wamr_dir: &Path, dest: &Path) -> PathBuf {
    run(Command::new("bash")
        .arg(wamr_dir.join("patch-wamr.sh"))
        .arg(src)
        .arg(dest)
        .stdout(std::process::Stdio::null()));
    dest.to_path_buf()
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let agent = manifest.parent().unwrap().to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    let wamr = patched_wamr(&find_wamr(), &agent.join("wamr"), &out.join("wamr-src"));
    let wamr_build = out.join("wamr");

    run(Command::new("cmake")
        .arg("-S")
        .arg(agent.join("wamr"))
        .arg("-B")
        .arg(&wamr_build)
        .arg(format!("-DWAMR_ROOT_DIR={}", wamr.display()))
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg("-DCMAKE_C_FLAGS=-w")
        .stdout(std::process::Stdio::null()));
    run(Command::new("cmake")
        .arg("--build")
        .arg(&wamr_build)
        .arg("-j2")
        .stdout(std::process::Stdio::null()));

    // Monocypher (Ed25519 for signed modules), vendored in third_party/monocypher (see its README)
    let mono = agent.join("third_party").join("monocypher");
    cc::Build::new()
        .std("c11")
        .include(&mono)
        .file(mono.join("monocypher.c"))
        .file(mono.join("optional").join("monocypher-ed25519.c"))
        .compile("monocypher");

    let core = agent.join("core");
    let posix = agent.join("ports").join("posix");
    let mut build = cc::Build::new();
    build
        .std("c11")
        .include(&core)
        .include(&mono)
        .include(mono.join("optional"))
        .include(&posix)
        .include(wamr.join("core/iwasm/include"))
        .define("_GNU_SOURCE", None)
        .flag("-Wall")
        .flag("-Wextra")
        .warnings_into_errors(true);
    for dir in [&core, &posix] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "c") {
                build.file(&p);
            }
        }
    }
    build.compile("wasmbed_agent");

    // module linear memory from the WAMR pool (ports/posix/posix_mem.c); WAMR's mutexes and
    // memory.grow defer a forced stop until the worker is out of them (ports/posix/posix_jobs.c)
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--wrap=os_mmap,--wrap=os_munmap,--wrap=os_mremap,--wrap=os_mprotect"
    );
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--wrap=os_mutex_lock,--wrap=os_mutex_unlock,--wrap=wasm_enlarge_memory,--wrap=wasm_enlarge_memory_with_idx"
    );
    println!("cargo:rustc-link-search=native={}", wamr_build.display());
    println!("cargo:rustc-link-lib=static=vmlib");
    for lib in ["pthread", "m", "dl"] {
        println!("cargo:rustc-link-lib={lib}");
    }
    for dir in [&core, &posix, &agent.join("wamr"), &mono] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    println!("cargo:rerun-if-env-changed=WAMR_ROOT_DIR");
}

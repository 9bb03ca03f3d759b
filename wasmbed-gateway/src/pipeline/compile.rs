//! C → wasm with clang and wasm → AOT with wamrc, through the cache.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::{OnceCell, Semaphore};

use super::cache::Cache;
use super::confine::{toolchain_dirs, ConfineError, Confinement, GroupGuard};
use crate::config::CompilerConfig;

/// The module API header (`modules/wasmbed.h`: natives of the agent, export/import helpers),
/// written next to every uploaded source so `#include "wasmbed.h"` works.
pub const MODULE_API_HEADER: &str = include_str!("../../../modules/wasmbed.h");

/// What to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildMode {
    /// A `.wasm` module for the interpreter.
    Wasm,
    /// A `.aot` file for the device's architecture.
    Aot,
}

/// The target of an AOT build.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AotTarget {
    /// `--target=` (`thumbv7em`, `x86_64`).
    pub target: String,
    /// `--cpu=`, if any.
    pub cpu: Option<String>,
    /// `--cpu-features=`, if any: INFO `aot_features` other than `none` (the NUCLEO-F746ZG:
    /// `-fp64`, its Cortex-M7 FPU being single precision).
    pub features: Option<String>,
    /// `--target-abi=`, if any.
    pub abi: Option<String>,
}

/// A failed build.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A tool could not be started.
    #[error("cannot run {tool}: {message}")]
    Spawn {
        /// `compile_wasm` (clang) or `compile_aot` (wamrc).
        step: &'static str,
        /// The executable.
        tool: String,
        /// The OS error.
        message: String,
    },
    /// The compiler exited with an error.
    #[error("{step} failed ({status}){hint}")]
    Failed {
        /// `compile_wasm` or `compile_aot`.
        step: &'static str,
        /// The exit status text.
        status: String,
        /// What the failure means when it is the confinement (`; ...`), else empty.
        hint: String,
        /// Compiler standard error.
        stderr: String,
        /// Compiler standard output.
        stdout: String,
    },
    /// The compiler ran too long.
    #[error("{step} timed out after {seconds} s")]
    Timeout {
        /// `compile_wasm` or `compile_aot`.
        step: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The compiler was stopped by a resource limit.
    #[error("{step} stopped: {what}")]
    Limit {
        /// `compile_wasm` or `compile_aot`.
        step: &'static str,
        /// Which limit, and its setting.
        what: String,
    },
    /// The compiler cannot be confined on this system.
    #[error(transparent)]
    Confine(#[from] ConfineError),
    /// No AOT target known for the device.
    #[error(
        "no AOT target for this device: set aot_target in the device's config or use mode wasm"
    )]
    NoTarget,
    /// Cache or temp-file IO failed.
    #[error("build IO error: {0}")]
    Io(#[from] std::io::Error),
}

impl CompileError {
    /// The legacy `step` name (`compile_wasm` / `compile_aot`), if this was a compiler failure.
    pub fn step(&self) -> &'static str {
        match self {
            CompileError::Failed { step, .. }
            | CompileError::Spawn { step, .. }
            | CompileError::Timeout { step, .. }
            | CompileError::Limit { step, .. } => step,
            CompileError::NoTarget => "compile_aot",
            _ => "compile_wasm",
        }
    }

    /// What to do next, when the error code's own help text ("fix the source") is not it.
    pub fn help(&self) -> Option<String> {
        match self {
            CompileError::Spawn {
                step: "compile_aot",
                tool,
                ..
            } => Some(format!(
                "wamrc (the AOT compiler) is missing at {tool}: build it with tools/wamrc/build.sh \
                 (needs llvm-19-dev, which scripts/setup.sh installs: README \"Quick start\"); it \
                 lands in target/wamrc/wamrc, where the gateway finds it, or set `compiler.wamrc` \
                 in the gateway's config; `--mode wasm` needs no wamrc"
            )),
            CompileError::Spawn { tool, .. } => Some(format!(
                "clang is missing at {tool}: install it (scripts/setup.sh does) or set \
                 `compiler.clang` in the gateway's config"
            )),
            CompileError::Timeout { .. } => Some(
                "simplify the source or raise `compiler.timeout_ms` in the gateway's config".into(),
            ),
            CompileError::Confine(_) => Some(
                "the gateway cannot confine its compiler on this machine, the source is not at \
                 fault: see wasmbed-gateway/README.md \"Confinement\" and the gateway's log"
                    .into(),
            ),
            CompileError::Io(_) => Some(
                "the gateway cannot write its build files (cache_dir, $TMPDIR), the source is not \
                 at fault: see the gateway's log"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Finds wamrc: the configured path, `<repo>/target/wamrc/wamrc`, or `wamrc` on PATH.
pub fn find_wamrc(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(
            exe.ancestors()
                .skip(1)
                .map(|d| d.join("target/wamrc/wamrc")),
        );
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wamrc/wamrc"));
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("wamrc"))
}

/// Runs the compilers, caching outputs by content.
#[derive(Debug)]
pub struct Compiler {
    cfg: CompilerConfig,
    wamrc: PathBuf,
    cache: Cache,
    clang_version: OnceCell<String>,
    wamrc_version: OnceCell<String>,
    /// One permit per compiler allowed to run at once.
    slots: Semaphore,
    confinement: Confinement,
}

/// A build output.
#[derive(Debug, Clone)]
pub struct Built {
    /// The module bytes.
    pub bytes: Vec<u8>,
    /// True when it came from the cache.
    pub cached: bool,
}

impl Compiler {
    /// A compiler with the given settings and cache directory.
    pub fn new(cfg: CompilerConfig, cache_dir: PathBuf) -> Self {
        let wamrc = find_wamrc(cfg.wamrc.as_deref());
        let mut read_paths = cfg.read_paths.clone();
        read_paths.extend(toolchain_dirs(&cfg.clang));
        read_paths.extend(toolchain_dirs(&wamrc));
        // At start: removes what dead gateways left in $TMPDIR, and makes this one's directory.
        if let Err(e) = super::workdirs::prepare() {
            tracing::warn!(
                "cannot make the compile directory in {}: {e} (builds will fail until it can)",
                std::env::temp_dir().display()
            );
        }
        let confinement = Confinement {
            landlock: cfg.confine,
            read_paths,
            max_memory: cfg.max_memory_mb.saturating_mul(1024 * 1024),
            max_cpu_secs: cfg.max_cpu_secs.max(1),
        };
        Self {
            slots: Semaphore::new(cfg.max_concurrent.max(1)),
            cfg,
            wamrc,
            cache: Cache::new(cache_dir),
            clang_version: OnceCell::new(),
            wamrc_version: OnceCell::new(),
            confinement,
        }
    }

    /// The extra wamrc flags of every AOT build (`compiler.wamrc_flags`).
    pub fn wamrc_flags(&self) -> &[String] {
        &self.cfg.wamrc_flags
    }

    /// The first lines of `clang --version` and `wamrc --version` (provenance of a build).
    pub async fn tool_versions(&self) -> (String, String) {
        let first = |v: &String| v.lines().next().unwrap_or_default().trim().to_string();
        let clang = self
            .clang_version
            .get_or_init(|| tool_version(&self.cfg.clang))
            .await;
        let wamrc = self
            .wamrc_version
            .get_or_init(|| tool_version(&self.wamrc))
            .await;
        (first(clang), first(wamrc))
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.timeout_ms)
    }

    /// Builds C `source` into a `.wasm` or, with `aot`, an `.aot` file.
    pub async fn build(
        &self,
        source: &[u8],
        mode: BuildMode,
        aot: Option<&AotTarget>,
    ) -> Result<Built, CompileError> {
        self.build_notify(source, mode, aot, &|| {}).await
    }

    /// Like [`Compiler::build`]; `queued` is called when the build has to wait for one of the
    /// `compiler.max_concurrent` slots. Dropping the future kills the compiler's process group.
    pub async fn build_notify(
        &self,
        source: &[u8],
        mode: BuildMode,
        aot: Option<&AotTarget>,
        queued: &(dyn Fn() + Sync),
    ) -> Result<Built, CompileError> {
        let wasm = self.build_wasm(source, queued).await?;
        match mode {
            BuildMode::Wasm => Ok(wasm),
            BuildMode::Aot => {
                let target = aot
                    .filter(|t| !t.target.is_empty())
                    .ok_or(CompileError::NoTarget)?;
                let aot = self.build_aot(&wasm.bytes, target, queued).await?;
                Ok(Built {
                    cached: wasm.cached && aot.cached,
                    bytes: aot.bytes,
                })
            }
        }
    }

    async fn build_wasm(
        &self,
        source: &[u8],
        queued: &(dyn Fn() + Sync),
    ) -> Result<Built, CompileError> {
        let version = self
            .clang_version
            .get_or_init(|| tool_version(&self.cfg.clang))
            .await;
        let flags = self.cfg.clang_flags.join("\0");
        let key = Cache::key(&[
            b"wasm",
            source,
            MODULE_API_HEADER.as_bytes(),
            flags.as_bytes(),
            version.as_bytes(),
        ]);
        if let Some(bytes) = self.cache.get(&key) {
            return Ok(Built {
                bytes,
                cached: true,
            });
        }
        let dir = private_tempdir()?;
        let src = dir.path().join("module.c");
        let out = dir.path().join("module.wasm");
        tokio::fs::write(&src, source).await?;
        // Uploaded sources may `#include "wasmbed.h"`: the device API header ships with the
        // gateway, like an SDK header, so the host sends only its own file.
        tokio::fs::write(dir.path().join("wasmbed.h"), MODULE_API_HEADER).await?;
        let mut cmd = Command::new(&self.cfg.clang);
        cmd.args(&self.cfg.clang_flags)
            .arg(&src)
            .arg("-o")
            .arg(&out);
        self.run(cmd, dir.path(), "compile_wasm", &self.cfg.clang, queued)
            .await?;
        let bytes = tokio::fs::read(&out).await?;
        self.cache.put(&key, &bytes)?;
        Ok(Built {
            bytes,
            cached: false,
        })
    }

    async fn build_aot(
        &self,
        wasm: &[u8],
        t: &AotTarget,
        queued: &(dyn Fn() + Sync),
    ) -> Result<Built, CompileError> {
        let version = self
            .wamrc_version
            .get_or_init(|| tool_version(&self.wamrc))
            .await;
        let mut args = vec![format!("--target={}", t.target)];
        if let Some(cpu) = &t.cpu {
            args.push(format!("--cpu={cpu}"));
        }
        if let Some(features) = &t.features {
            args.push(format!("--cpu-features={features}"));
        }
        if let Some(abi) = &t.abi {
            args.push(format!("--target-abi={abi}"));
        }
        args.extend(self.cfg.wamrc_flags.iter().cloned());
        let joined = args.join("\0");
        let key = Cache::key(&[b"aot", wasm, joined.as_bytes(), version.as_bytes()]);
        if let Some(bytes) = self.cache.get(&key) {
            return Ok(Built {
                bytes,
                cached: true,
            });
        }
        let dir = private_tempdir()?;
        let input = dir.path().join("module.wasm");
        let out = dir.path().join("module.aot");
        tokio::fs::write(&input, wasm).await?;
        let mut cmd = Command::new(&self.wamrc);
        cmd.args(&args).arg("-o").arg(&out).arg(&input);
        self.run(cmd, dir.path(), "compile_aot", &self.wamrc, queued)
            .await?;
        let bytes = tokio::fs::read(&out).await?;
        self.cache.put(&key, &bytes)?;
        Ok(Built {
            bytes,
            cached: false,
        })
    }

    async fn run(
        &self,
        mut cmd: Command,
        workdir: &Path,
        step: &'static str,
        tool: &Path,
        queued: &(dyn Fn() + Sync),
    ) -> Result<(), CompileError> {
        let _slot = match self.slots.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                queued();
                self.slots
                    .acquire()
                    .await
                    .expect("compile slots never close")
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir(workdir)
            .env("TMPDIR", workdir)
            .kill_on_drop(true);
        self.confinement.apply(&mut cmd, workdir)?;
        let mut child = cmd.spawn().map_err(|e| CompileError::Spawn {
            step,
            tool: tool.display().to_string(),
            message: e.to_string(),
        })?;
        // Kills the whole group (clang's own children too) on every way out of here.
        let _group = child.id().map(GroupGuard::new);
        // The output is read to its end but only its first OUTPUT_MAX bytes are kept: a source
        // that makes the compiler print without end (a warning flood) must not grow the gateway.
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let run =
            async { tokio::try_join!(read_capped(stdout), read_capped(stderr), child.wait()) };
        let (stdout, stderr, status) =
            tokio::time::timeout(self.timeout(), run)
                .await
                .map_err(|_| CompileError::Timeout {
                    step,
                    seconds: self.timeout().as_secs(),
                })??;
        if status.success() {
            return Ok(());
        }
        let out = (status, stdout);
        let stderr = capped(&stderr);
        if let Some(what) = self.limit_hit(&out.0, &stderr) {
            return Err(CompileError::Limit { step, what });
        }
        // Landlock makes files outside look unreadable (`#include`) or missing (`.incbin`).
        let refused =
            stderr.contains("Permission denied") || stderr.contains("Could not find incbin file");
        let hint = if self.cfg.confine && refused {
            "; the compiler may read only its toolchain, the uploaded source and wasmbed.h \
             (#include and .incbin of other files are refused)"
                .to_string()
        } else {
            String::new()
        };
        Err(CompileError::Failed {
            step,
            status: out.0.to_string(),
            hint,
            stderr,
            stdout: capped(&out.1),
        })
    }

    /// Which resource limit stopped a failed compiler, if one did.
    fn limit_hit(&self, status: &std::process::ExitStatus, stderr: &str) -> Option<String> {
        use std::os::unix::process::ExitStatusExt;
        let memory = || {
            format!(
                "the compiler ran out of its memory limit of {} MiB (compiler.max_memory_mb)",
                self.cfg.max_memory_mb
            )
        };
        match status.signal() {
            Some(libc::SIGXCPU) | Some(libc::SIGKILL) => Some(format!(
                "the compiler used up its CPU-time limit of {} s (compiler.max_cpu_secs)",
                self.confinement.max_cpu_secs
            )),
            _ if stderr.contains("out of memory")
                || stderr.contains("Allocation failed")
                || stderr.contains("bad_alloc")
                || stderr.contains("Cannot allocate memory") =>
            {
                Some(memory())
            }
            Some(libc::SIGABRT) | Some(libc::SIGSEGV) | Some(libc::SIGBUS) => {
                Some(format!("{} (or crashed: {status})", memory()))
            }
            _ => None,
        }
    }
}

/// `--version` output of a tool plus its file metadata, so a rebuilt tool invalidates the cache.
async fn tool_version(tool: &Path) -> String {
    let mut v = String::new();
    if let Ok(out) = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
    {
        v.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    let resolved = which(tool).unwrap_or_else(|| tool.to_path_buf());
    if let Ok(meta) = std::fs::metadata(&resolved) {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        v.push_str(&format!("|{}|{}|{mtime}", resolved.display(), meta.len()));
    }
    v
}

fn which(tool: &Path) -> Option<PathBuf> {
    if tool.components().count() > 1 {
        return Some(tool.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The start of a compiler's output stream: at most [`OUTPUT_MAX`] bytes kept, all counted.
#[derive(Debug, Default)]
struct Captured {
    kept: Vec<u8>,
    total: usize,
}

/// Reads `r` to its end, keeping only its first [`OUTPUT_MAX`] bytes (the rest is counted and
/// dropped as it comes, so the gateway's memory does not follow the compiler's output).
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> std::io::Result<Captured> {
    use tokio::io::AsyncReadExt;
    let mut c = Captured::default();
    let Some(mut r) = r else { return Ok(c) };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(c);
        }
        c.total += n;
        let room = OUTPUT_MAX.saturating_sub(c.kept.len());
        c.kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// Compiler output kept for the reply: the first [`OUTPUT_MAX`] bytes (the first diagnostics are
/// the ones that matter), then a note of how much was cut. A warning bomb must not make a reply
/// larger than a host connection's queue (`limits.reply_queue_max`).
fn capped(c: &Captured) -> String {
    let mut s = String::from_utf8_lossy(&c.kept).into_owned();
    if c.total > c.kept.len() {
        s.push_str(&format!(
            "\n[... {} more bytes of compiler output cut]\n",
            c.total - c.kept.len()
        ));
    }
    s
}

/// Bytes of compiler stdout/stderr kept in a reply (each).
pub const OUTPUT_MAX: usize = 64 * 1024;

/// A compile's temporary directory, mode 0700 (tempfile's default is 0777 less the umask):
/// other local users cannot read the uploaded source or swap its files. It lies in the
/// gateway's own directory, which the next gateway removes if this one dies without cleaning
/// up (see [`super::workdirs`]).
fn private_tempdir() -> std::io::Result<tempfile::TempDir> {
    super::workdirs::compile_dir()
}

#[cfg(test)]
mod tests {

    #[test]
    fn compile_dirs_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = private_tempdir().unwrap();
        let mode = std::fs::metadata(d.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn compiler_output_is_capped_with_a_note() {
        let read = |bytes: Vec<u8>| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(super::read_capped(Some(&bytes[..])))
                .unwrap()
        };
        assert_eq!(super::capped(&read(b"short".to_vec())), "short");
        let c = super::capped(&read(vec![b'w'; super::OUTPUT_MAX + 10]));
        assert!(c.len() < super::OUTPUT_MAX + 100, "{}", c.len());
        assert!(
            c.ends_with("[... 10 more bytes of compiler output cut]\n"),
            "{}",
            &c[c.len() - 60..]
        );
    }

    use super::*;

    fn compiler(dir: &Path) -> Compiler {
        Compiler::new(CompilerConfig::default(), dir.join("cache"))
    }

    #[tokio::test]
    async fn compiles_c_and_caches() {
        let dir = tempfile::tempdir().unwrap();
        let c = compiler(dir.path());
        let src =
            b"__attribute__((export_name(\"add\"))) int add(int a, int b) { return a + b; }\n";
        let first = c.build(src, BuildMode::Wasm, None).await.unwrap();
        assert!(!first.cached);
        assert!(first.bytes.starts_with(b"\0asm"));
        wasmparser::validate(&first.bytes).unwrap();
        let second = c.build(src, BuildMode::Wasm, None).await.unwrap();
        assert!(second.cached);
        assert_eq!(first.bytes, second.bytes);
    }

    #[tokio::test]
    async fn uploaded_source_can_include_the_module_api_header() {
        let dir = tempfile::tempdir().unwrap();
        let c = compiler(dir.path());
        let src =
            b"#include \"wasmbed.h\"\nWB_EXPORT(\"blink\") void blink(void) { led_toggle(5); }\n";
        let built = c.build(src, BuildMode::Wasm, None).await.unwrap();
        let imports: Vec<String> = wasmparser::Parser::new(0)
            .parse_all(&built.bytes)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::ImportSection(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| r.into_iter().map(|i| i.unwrap()))
            .map(|i| format!("{}.{}", i.module, i.name))
            .collect();
        assert_eq!(imports, ["env.led_toggle"]);
    }

    #[tokio::test]
    async fn compile_errors_carry_output() {
        let dir = tempfile::tempdir().unwrap();
        let c = compiler(dir.path());
        let e = c
            .build(b"int f( { syntax", BuildMode::Wasm, None)
            .await
            .unwrap_err();
        match e {
            CompileError::Failed { step, stderr, .. } => {
                assert_eq!(step, "compile_wasm");
                assert!(stderr.contains("error"), "{stderr}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = c.build(b"int x;", BuildMode::Aot, None).await.unwrap_err();
        assert!(matches!(e, CompileError::NoTarget));
    }

    /// The AOT target's cpu features reach wamrc (a stand-in that records its arguments).
    #[tokio::test]
    async fn aot_build_passes_cpu_features() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let args_file = dir.path().join("args");
        let fake = dir.path().join("wamrc");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo fake; exit 0; }}\n\
                 echo \"$@\" > {args}\nwhile [ $# -gt 0 ]; do [ \"$1\" = -o ] && echo aot > \"$2\"; shift; done\n",
                args = args_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cfg = CompilerConfig {
            wamrc: Some(fake),
            confine: false,
            ..Default::default()
        };
        let c = Compiler::new(cfg, dir.path().join("cache"));
        let target = AotTarget {
            target: "thumbv7em".into(),
            cpu: Some("cortex-m7".into()),
            features: Some("-fp64".into()),
            abi: Some("eabihf".into()),
        };
        let built = c
            .build(b"int x;", BuildMode::Aot, Some(&target))
            .await
            .unwrap();
        assert_eq!(built.bytes, b"aot\n");
        let args = std::fs::read_to_string(&args_file).unwrap();
        assert!(
            args.starts_with(
                "--target=thumbv7em --cpu=cortex-m7 --cpu-features=-fp64 --target-abi=eabihf "
            ),
            "{args}"
        );
    }

    #[tokio::test]
    async fn missing_tool_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CompilerConfig {
            clang: "/nonexistent/clang".into(),
            ..Default::default()
        };
        let c = Compiler::new(cfg, dir.path().join("cache"));
        let e = c.build(b"int x;", BuildMode::Wasm, None).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/clang"), "{e}");
        assert_eq!(e.step(), "compile_wasm");
        assert!(e.help().unwrap().contains("clang is missing"), "{e:?}");
    }

    #[tokio::test]
    async fn a_missing_wamrc_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CompilerConfig {
            wamrc: Some("/nonexistent/wamrc".into()),
            ..Default::default()
        };
        let c = Compiler::new(cfg, dir.path().join("cache"));
        let target = AotTarget {
            target: "x86_64".into(),
            cpu: None,
            abi: None,
            features: None,
        };
        let e = c
            .build(b"int x;", BuildMode::Aot, Some(&target))
            .await
            .unwrap_err();
        assert!(matches!(e, CompileError::Spawn { .. }), "{e:?}");
        assert!(e.to_string().contains("/nonexistent/wamrc"), "{e}");
        assert_eq!(e.step(), "compile_aot");
        let help = e.help().expect("help");
        assert!(
            help.contains("wamrc") && help.contains("tools/wamrc/build.sh"),
            "{help}"
        );
    }
}

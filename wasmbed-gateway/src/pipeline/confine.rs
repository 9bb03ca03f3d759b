//! Confinement and limits of one compiler run: Landlock (read the toolchain only, write only the
//! compile's own temporary directory), `RLIMIT_AS`/`RLIMIT_CPU`, its own process group (killed
//! as a whole on timeout, cancel and gateway shutdown) and `PR_SET_PDEATHSIG`.
//!
//! The Landlock ruleset is built in the gateway before `fork`; the child only runs the
//! async-signal-safe system calls (`prctl`, `landlock_restrict_self`, `setrlimit`) before `exec`.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use landlock::{
    path_beneath_rules, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, ABI,
};
use tokio::process::Command;

/// Paths every confined compiler may read and execute: the system's programs and shared
/// libraries (where distribution toolchains live), the dynamic loader's cache and `/dev/null`.
pub const SYSTEM_READ_PATHS: &[&str] = &[
    "/usr/bin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/bin",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/dev/null",
    "/dev/urandom",
];

/// How one compiler process is confined and bounded.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// Apply Landlock (fail closed when the kernel lacks it).
    pub landlock: bool,
    /// Readable (and executable) paths besides [`SYSTEM_READ_PATHS`].
    pub read_paths: Vec<PathBuf>,
    /// `RLIMIT_AS` in bytes.
    pub max_memory: u64,
    /// `RLIMIT_CPU` in seconds.
    pub max_cpu_secs: u64,
}

/// Landlock could not be set up.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot confine the compiler with Landlock: {0}. The gateway refuses to compile unconfined; \
     use a kernel with Landlock enabled (5.13+, `lsm=...,landlock`), or set compiler.confine = \
     false in the gateway config if every host that can reach the gateway is trusted"
)]
pub struct ConfineError(pub String);

impl Confinement {
    /// Prepares `cmd` to run confined with `workdir` as its only writable directory, in its own
    /// process group, with the resource limits.
    pub fn apply(&self, cmd: &mut Command, workdir: &Path) -> Result<(), ConfineError> {
        let ruleset = if self.landlock {
            Some(self.ruleset(workdir)?)
        } else {
            None
        };
        let mem = self.max_memory;
        let cpu = self.max_cpu_secs;
        // The group dies with the gateway even when it is SIGKILLed (crate::reaper).
        let watch = crate::reaper::pipe()
            .map_err(|e| ConfineError(format!("cannot create the death-watch pipe: {e}")))?;
        cmd.process_group(0);
        // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
        // system calls on values prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                crate::reaper::watch_group(watch)?;
                // Dies with the gateway even if the gateway is killed without cleaning up.
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                let as_limit = libc::rlimit {
                    rlim_cur: mem,
                    rlim_max: mem,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &as_limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Soft limit: SIGXCPU; the hard limit one second later: SIGKILL.
                let cpu_limit = libc::rlimit {
                    rlim_cur: cpu,
                    rlim_max: cpu + 1,
                };
                if libc::setrlimit(libc::RLIMIT_CPU, &cpu_limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = &ruleset {
                    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(())
    }

    fn ruleset(&self, workdir: &Path) -> Result<OwnedFd, ConfineError> {
        let abi = ABI::V1;
        let err = |e: landlock::RulesetError| ConfineError(e.to_string());
        let read: Vec<PathBuf> = SYSTEM_READ_PATHS
            .iter()
            .map(PathBuf::from)
            .chain(self.read_paths.iter().cloned())
            .collect();
        let created = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .map_err(err)?
            .create()
            .map_err(err)?
            .add_rules(path_beneath_rules(&read, AccessFs::from_read(abi)))
            .map_err(err)?
            .add_rules(path_beneath_rules([workdir], AccessFs::from_all(abi)))
            .map_err(err)?;
        let fd: Option<OwnedFd> = created.into();
        fd.ok_or_else(|| ConfineError("this kernel does not support Landlock".into()))
    }
}

/// Checks that this kernel can confine compilers (a Landlock ruleset can be created).
pub fn check_available() -> Result<(), ConfineError> {
    let dir = std::env::temp_dir();
    Confinement {
        landlock: true,
        read_paths: Vec::new(),
        max_memory: 0,
        max_cpu_secs: 0,
    }
    .ruleset(&dir)
    .map(drop)
}

/// The directory holding `tool` (resolved through symlinks and `PATH`) and, when that is a
/// `bin` directory, its parent (the toolchain's prefix, with its `lib` resources). `/` and the
/// home directory are never granted (a tool in `/bin` of a system without merged `/usr`, or in
/// `~/bin`, would otherwise open every file of the machine or of the user to uploaded sources):
/// such a toolchain needs its directories in `compiler.read_paths`.
pub fn toolchain_dirs(tool: &Path) -> Vec<PathBuf> {
    let found = if tool.components().count() > 1 {
        Some(tool.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
    };
    let Some(real) = found.and_then(|p| std::fs::canonicalize(p).ok()) else {
        return Vec::new();
    };
    let home = std::env::var_os("HOME").and_then(|h| std::fs::canonicalize(h).ok());
    let (dirs, refused) = grantable_dirs(&real, home.as_deref());
    for d in refused {
        tracing::warn!(
            "not letting the confined compilers read {} (the directory of {}): it is too              broad; list the toolchain's own directories in compiler.read_paths",
            d.display(),
            real.display()
        );
    }
    dirs
}

/// The directories [`toolchain_dirs`] grants for the resolved `real` tool path, and those it
/// refuses as too broad (`/`, `home`).
fn grantable_dirs(real: &Path, home: Option<&Path>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut wanted = Vec::new();
    if let Some(dir) = real.parent() {
        wanted.push(dir.to_path_buf());
        if dir.file_name().is_some_and(|n| n == "bin") {
            if let Some(prefix) = dir.parent() {
                wanted.push(prefix.to_path_buf());
            }
        }
    }
    wanted
        .into_iter()
        .partition(|d| d.parent().is_some() && Some(d.as_path()) != home)
}

/// Process groups of compilers running now, killed by [`kill_all`] at gateway shutdown.
static GROUPS: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// A running compiler's process group: killed (SIGKILL to the whole group) when dropped, so a
/// timeout, a cancelled request and an error all leave no process behind.
#[derive(Debug)]
pub struct GroupGuard(i32);

impl GroupGuard {
    /// Tracks the process group led by `pid`.
    pub fn new(pid: u32) -> Self {
        let pgid = pid as i32;
        GROUPS
            .lock()
            .expect("groups lock")
            .get_or_insert_with(HashSet::new)
            .insert(pgid);
        Self(pgid)
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // SAFETY: plain system call; a group that already ended gives ESRCH, which is fine.
        unsafe {
            libc::killpg(self.0, libc::SIGKILL);
        }
        if let Some(set) = GROUPS.lock().expect("groups lock").as_mut() {
            set.remove(&self.0);
        }
    }
}

/// Kills every running compiler's process group (gateway shutdown).
pub fn kill_all() {
    let groups: Vec<i32> = GROUPS
        .lock()
        .expect("groups lock")
        .as_ref()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    for g in groups {
        // SAFETY: plain system call.
        unsafe {
            libc::killpg(g, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toolchain_prefix_is_granted() {
        let (ok, refused) = grantable_dirs(Path::new("/usr/lib/llvm-19/bin/clang"), None);
        assert_eq!(
            ok,
            [
                PathBuf::from("/usr/lib/llvm-19/bin"),
                PathBuf::from("/usr/lib/llvm-19")
            ]
        );
        assert!(refused.is_empty());
    }

    #[test]
    fn the_root_and_home_directories_are_never_granted() {
        // /bin/clang on a system without merged /usr: its prefix would be `/`.
        let (ok, refused) = grantable_dirs(Path::new("/bin/clang"), None);
        assert_eq!(ok, [PathBuf::from("/bin")]);
        assert_eq!(refused, [PathBuf::from("/")]);
        // ~/bin/wamrc: its prefix would be the whole home directory (keys, tokens).
        let home = Path::new("/home/gw");
        let (ok, refused) = grantable_dirs(Path::new("/home/gw/bin/wamrc"), Some(home));
        assert_eq!(ok, [PathBuf::from("/home/gw/bin")]);
        assert_eq!(refused, [PathBuf::from("/home/gw")]);
        // A tool lying directly in `/`.
        let (ok, refused) = grantable_dirs(Path::new("/wamrc"), None);
        assert!(ok.is_empty());
        assert_eq!(refused, [PathBuf::from("/")]);
    }
}

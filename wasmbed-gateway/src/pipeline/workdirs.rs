//! Compile directories, and the removal of those a dead gateway left behind.
//!
//! Every compile works in a directory `wasmbed-compile-*` (mode 0700) inside its gateway's own
//! `$TMPDIR/wasmbed-gateway-*` directory (mode 0700). That directory holds `owner.lock`, locked
//! with `flock` by the gateway for as long as its process lives: the kernel drops the lock
//! however the process ends, SIGKILL included, and a recycled pid cannot hold it. The lock file
//! is locked under another name and then renamed, so an `owner.lock` that can be locked belongs
//! to a gateway that is gone.
//!
//! When a gateway starts (its [`crate::pipeline::Compiler`] is made), it removes every
//! `wasmbed-gateway-*` directory of `$TMPDIR` that its user owns and whose lock it can take
//! (or that has no lock file and is over a minute old: a gateway killed while creating it). A
//! live gateway's directory is locked and left alone; other users' directories are not touched.
//! At a clean shutdown the gateway removes its own ([`remove_own`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Name prefix of a gateway's directory in `$TMPDIR`.
pub const GATEWAY_DIR_PREFIX: &str = "wasmbed-gateway-";
/// Name prefix of a compile's directory inside it.
pub const COMPILE_DIR_PREFIX: &str = "wasmbed-compile-";
const LOCK: &str = "owner.lock";
/// A lock-less gateway directory younger than this may be one being created right now.
const CREATING: Duration = Duration::from_secs(60);

/// This process's gateway directory and the locked file that marks it alive.
struct Own {
    dir: PathBuf,
    _lock: File,
}

static OWN: Mutex<Option<Own>> = Mutex::new(None);

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `flock(LOCK_EX | LOCK_NB)`: true when taken.
fn try_lock(f: &File) -> bool {
    // SAFETY: flock on a descriptor `f` owns.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Makes this gateway's directory (removing dead gateways' first) if it has none yet.
pub fn prepare() -> std::io::Result<PathBuf> {
    let mut own = OWN.lock().expect("workdirs lock");
    if let Some(o) = own.as_ref() {
        return Ok(o.dir.clone());
    }
    let tmp = std::env::temp_dir();
    for d in sweep(&tmp) {
        tracing::info!(
            "removed {}: compile directory of a gateway that is gone",
            d.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix(GATEWAY_DIR_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&tmp)?
        .keep();
    let staging = dir.join(".owner.lock.new");
    let lock = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staging)?;
    if !try_lock(&lock) {
        return Err(std::io::Error::last_os_error());
    }
    std::fs::rename(&staging, dir.join(LOCK))?;
    *own = Some(Own {
        dir: dir.clone(),
        _lock: lock,
    });
    Ok(dir)
}

/// A new private directory for one compile, removed when dropped.
pub fn compile_dir() -> std::io::Result<tempfile::TempDir> {
    let root = prepare()?;
    tempfile::Builder::new()
        .prefix(COMPILE_DIR_PREFIX)
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(root)
}

/// Removes this gateway's directory (at shutdown, once its compilers are killed).
pub fn remove_own() {
    if let Some(o) = OWN.lock().expect("workdirs lock").take() {
        let _ = std::fs::remove_dir_all(&o.dir);
    }
}

/// Removes the gateway directories in `tmp` whose gateway is gone and that this user owns;
/// returns them.
pub fn sweep(tmp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return Vec::new();
    };
    let me = euid();
    let mut removed = Vec::new();
    for e in entries.flatten() {
        if !e
            .file_name()
            .to_string_lossy()
            .starts_with(GATEWAY_DIR_PREFIX)
        {
            continue;
        }
        let dir = e.path();
        // Not followed: a symlink is nobody's gateway directory.
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let lock = File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(LOCK));
        // Held until the removal is done.
        let mut _held = None;
        let gone = match lock {
            // Taken: its gateway is gone.
            Ok(f) => {
                let taken = try_lock(&f);
                _held = Some(f);
                taken
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > CREATING),
            Err(_) => false,
        };
        if gone && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_kept_an_unlocked_one_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join(format!("{GATEWAY_DIR_PREFIX}live"));
        let dead = tmp.path().join(format!("{GATEWAY_DIR_PREFIX}dead"));
        let other = tmp.path().join("wasmbed-something-else");
        for d in [&live, &dead, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join(LOCK), "").unwrap();
        }
        std::fs::create_dir(dead.join(format!("{COMPILE_DIR_PREFIX}x"))).unwrap();
        let held = File::open(live.join(LOCK)).unwrap();
        assert!(try_lock(&held));
        // A fresh directory without its lock yet (a gateway creating it) stays too.
        let creating = tmp.path().join(format!("{GATEWAY_DIR_PREFIX}new"));
        std::fs::create_dir(&creating).unwrap();
        assert_eq!(sweep(tmp.path()), vec![dead.clone()]);
        assert!(live.exists() && other.exists() && creating.exists() && !dead.exists());
        drop(held);
        assert_eq!(sweep(tmp.path()), vec![live.clone()]);
    }
}

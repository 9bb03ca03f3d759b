//! Child processes that die with the gateway however it ends, SIGKILL included.
//!
//! `PR_SET_PDEATHSIG` reaches only the process it is set on, and is cleared in its children:
//! clang's own children (the linker, a spawned cc1) would outlive a killed gateway. So every
//! compiler runs in a process group of its own with a *watcher* in it: a process forked just
//! before `exec` that blocks reading a pipe whose only write end the gateway holds. When the
//! gateway's process ends, the kernel closes that end, the read returns, and the watcher
//! SIGKILLs its whole group (itself included). The gateway's own killing of the group (timeout,
//! cancel, shutdown: [`crate::pipeline::confine::GroupGuard`]) takes the watcher down with the
//! rest.

use std::os::fd::RawFd;
use std::sync::Mutex;

/// The gateway-wide pipe: (read end, write end), both close-on-exec.
static PIPE: Mutex<Option<(RawFd, RawFd)>> = Mutex::new(None);

/// The death-watch pipe, created on first use.
pub fn pipe() -> std::io::Result<(RawFd, RawFd)> {
    let mut p = PIPE.lock().expect("reaper pipe lock");
    if let Some(fds) = *p {
        return Ok(fds);
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    *p = Some((fds[0], fds[1]));
    Ok((fds[0], fds[1]))
}

/// Closes every descriptor but `keep` (in a freshly forked single-threaded process).
///
/// # Safety
/// Only between `fork` and `exec`/`_exit`: it closes descriptors other code may own.
unsafe fn close_all_but(keep: RawFd) {
    // SAFETY: plain system calls on descriptor numbers.
    unsafe {
        let lo = libc::syscall(libc::SYS_close_range, 0u32, (keep - 1) as u32, 0u32);
        let hi = libc::syscall(libc::SYS_close_range, (keep + 1) as u32, u32::MAX, 0u32);
        if lo != 0 || hi != 0 {
            // A kernel before 5.9: close them one by one.
            for fd in 0..65536 {
                if fd != keep {
                    libc::close(fd);
                }
            }
        }
    }
}

/// For `pre_exec`: makes the calling process lead a process group of its own and forks the
/// watcher that kills that group when the gateway's process ends. Uses only async-signal-safe
/// system calls.
///
/// # Safety
/// Only in a `pre_exec` closure (between `fork` and `exec`), with `fds` from [`pipe`].
pub unsafe fn watch_group(fds: (RawFd, RawFd)) -> std::io::Result<()> {
    // SAFETY: async-signal-safe system calls; the forked watcher never returns to Rust code
    // that could allocate or take locks.
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let group = libc::getpid();
        match libc::fork() {
            -1 => Err(std::io::Error::last_os_error()),
            0 => {
                let (read_end, _) = fds;
                // Holds nothing of the gateway's: no sockets, no pipes of the compiler's output
                // (the gateway reads those to their end).
                close_all_but(read_end);
                let mut b = [0u8; 1];
                loop {
                    let n = libc::read(read_end, b.as_mut_ptr().cast(), 1);
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    break;
                }
                libc::killpg(group, libc::SIGKILL);
                libc::_exit(0)
            }
            _ => Ok(()),
        }
    }
}

/// Makes `cmd`'s process (a single process that starts no children of its own, like the
/// simulated board) die with the gateway: `PR_SET_PDEATHSIG` = SIGKILL.
pub fn die_with_gateway(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure makes one async-signal-safe system call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
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
            Ok(())
        });
    }
}

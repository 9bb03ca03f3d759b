//! Paths on the gateway's disk in legacy generation-1 requests (`wasm_path`, `source_path`):
//! refused unless the gateway allows directories (`legacy.path_dirs`), and then only files under
//! them. Both the directories and the requested path are canonicalised (symlinks resolved), and
//! the file actually opened is checked again through `/proc/self/fd` on Linux, so neither `..`
//! nor a symlink inside an allowed directory (nor one swapped in between check and open) reaches
//! a file outside.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Which directories legacy requests may name files under; empty = paths are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathPolicy {
    dirs: Vec<PathBuf>,
}

/// Why a path was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No directory is allowed.
    #[error(
        "paths on the gateway's disk are not accepted (legacy host.py generation 1 sends them): \
         upload the bytes (legacy host.py generation 2 or 3, or wasmbed-host), or allow the \
         directories holding the files with the gateway setting `legacy.path_dirs` \
         (--legacy-path-dir DIR)"
    )]
    Disabled,
    /// The file does not exist (or cannot be resolved).
    #[error("{path}: {reason}")]
    NotFound {
        /// The path as sent.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The file is outside every allowed directory (after resolving `..` and symlinks).
    #[error("{path} resolves to {resolved}, outside the directories allowed by `legacy.path_dirs` ({allowed})")]
    Outside {
        /// The path as sent.
        path: String,
        /// Where it leads.
        resolved: String,
        /// The allowed directories.
        allowed: String,
    },
    /// Not a regular file, or unreadable, or too large.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The path as sent.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

impl PathPolicy {
    /// Allows files under `dirs`, each canonicalised now (so each must exist and be a
    /// directory). Errors name the directory.
    pub fn new(dirs: &[PathBuf]) -> Result<Self, String> {
        let mut out = Vec::new();
        for d in dirs {
            let c = std::fs::canonicalize(d).map_err(|e| format!("{}: {e}", d.display()))?;
            if !c.is_dir() {
                return Err(format!("{} is not a directory", d.display()));
            }
            out.push(c);
        }
        Ok(PathPolicy { dirs: out })
    }

    /// True when some directory is allowed.
    pub fn enabled(&self) -> bool {
        !self.dirs.is_empty()
    }

    fn check(&self, path: &str, resolved: &Path) -> Result<(), PathError> {
        if self.dirs.iter().any(|d| resolved.starts_with(d)) {
            return Ok(());
        }
        Err(PathError::Outside {
            path: path.to_string(),
            resolved: resolved.display().to_string(),
            allowed: self
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Reads the file `path` (relative paths are taken from the gateway's working directory, as
    /// the legacy gateway did) if it lies under an allowed directory, at most `max` bytes.
    pub fn read(&self, path: &str, max: usize) -> Result<Vec<u8>, PathError> {
        if !self.enabled() {
            return Err(PathError::Disabled);
        }
        let unreadable = |reason: String| PathError::Unreadable {
            path: path.to_string(),
            reason,
        };
        let resolved = std::fs::canonicalize(path).map_err(|e| PathError::NotFound {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        self.check(path, &resolved)?;
        let file = std::fs::File::open(&resolved).map_err(|e| unreadable(e.to_string()))?;
        // What was opened, not what the path pointed to a moment before.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_err(|e| unreadable(format!("cannot check the opened file: {e}")))?;
            self.check(path, &opened)?;
        }
        let meta = file.metadata().map_err(|e| unreadable(e.to_string()))?;
        if !meta.is_file() {
            return Err(unreadable("not a regular file".into()));
        }
        if meta.len() > max as u64 {
            return Err(unreadable(format!(
                "{} bytes is more than limits.max_body ({max})",
                meta.len()
            )));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        if bytes.len() > max {
            return Err(unreadable(format!(
                "more than limits.max_body ({max}) bytes"
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tree {
        _root: tempfile::TempDir,
        allowed: PathBuf,
        outside: PathBuf,
    }

    fn tree() -> Tree {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("modules");
        let outside = root.path().join("secret");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("sub/m.wasm"), b"\0asm inside").unwrap();
        std::fs::write(outside.join("key"), b"secret").unwrap();
        Tree {
            _root: root,
            allowed,
            outside,
        }
    }

    fn s(p: &Path) -> String {
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn off_by_default() {
        let t = tree();
        let p = PathPolicy::default();
        assert!(!p.enabled());
        let e = p.read(&s(&t.allowed.join("sub/m.wasm")), 1000).unwrap_err();
        assert_eq!(e, PathError::Disabled);
        assert!(e.to_string().contains("legacy.path_dirs"), "{e}");
    }

    #[test]
    fn inside_is_read() {
        let t = tree();
        let p = PathPolicy::new(std::slice::from_ref(&t.allowed)).unwrap();
        assert_eq!(
            p.read(&s(&t.allowed.join("sub/m.wasm")), 1000).unwrap(),
            b"\0asm inside"
        );
        // `..` that stays inside is fine.
        let dotted = t.allowed.join("sub/../sub/m.wasm");
        assert_eq!(p.read(&s(&dotted), 1000).unwrap(), b"\0asm inside");
    }

    #[test]
    fn outside_is_refused() {
        let t = tree();
        let p = PathPolicy::new(std::slice::from_ref(&t.allowed)).unwrap();
        let e = p.read(&s(&t.outside.join("key")), 1000).unwrap_err();
        assert!(matches!(e, PathError::Outside { .. }), "{e:?}");
        let e = p
            .read(&s(&t.allowed.join("../secret/key")), 1000)
            .unwrap_err();
        assert!(matches!(e, PathError::Outside { .. }), "{e:?}");
        assert!(e.to_string().contains("legacy.path_dirs"), "{e}");
        let e = p.read("/etc/passwd", 100_000).unwrap_err();
        assert!(matches!(e, PathError::Outside { .. }), "{e:?}");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_is_refused() {
        let t = tree();
        std::os::unix::fs::symlink(t.outside.join("key"), t.allowed.join("link.wasm")).unwrap();
        std::os::unix::fs::symlink(&t.outside, t.allowed.join("dirlink")).unwrap();
        let p = PathPolicy::new(std::slice::from_ref(&t.allowed)).unwrap();
        for via in ["link.wasm", "dirlink/key"] {
            let e = p.read(&s(&t.allowed.join(via)), 1000).unwrap_err();
            assert!(matches!(e, PathError::Outside { .. }), "{via}: {e:?}");
        }
        // A symlink that stays inside is followed.
        std::os::unix::fs::symlink(t.allowed.join("sub/m.wasm"), t.allowed.join("alias.wasm"))
            .unwrap();
        assert_eq!(
            p.read(&s(&t.allowed.join("alias.wasm")), 1000).unwrap(),
            b"\0asm inside"
        );
    }

    #[cfg(unix)]
    #[test]
    fn allowed_dir_given_through_a_symlink_is_resolved() {
        let t = tree();
        let link = t.allowed.parent().unwrap().join("modules-link");
        std::os::unix::fs::symlink(&t.allowed, &link).unwrap();
        let p = PathPolicy::new(std::slice::from_ref(&link)).unwrap();
        assert_eq!(
            p.read(&s(&link.join("sub/m.wasm")), 1000).unwrap(),
            b"\0asm inside"
        );
        assert!(p.read(&s(&t.outside.join("key")), 1000).is_err());
    }

    #[test]
    fn missing_large_and_non_files() {
        let t = tree();
        let p = PathPolicy::new(std::slice::from_ref(&t.allowed)).unwrap();
        let e = p.read(&s(&t.allowed.join("nope.wasm")), 1000).unwrap_err();
        assert!(matches!(e, PathError::NotFound { .. }), "{e:?}");
        let e = p.read(&s(&t.allowed.join("sub/m.wasm")), 4).unwrap_err();
        assert!(e.to_string().contains("max_body"), "{e}");
        let e = p.read(&s(&t.allowed.join("sub")), 1000).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(PathPolicy::new(&[t.allowed.join("nope")]).is_err());
        assert!(PathPolicy::new(&[t.allowed.join("sub/m.wasm")]).is_err());
    }
}

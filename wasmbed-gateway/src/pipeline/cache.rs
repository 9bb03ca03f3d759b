//! A content-addressed cache of build outputs on disk.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Build outputs keyed by the SHA-256 of everything that determines them.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// A cache rooted at `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a list of inputs (each length-prefixed so boundaries cannot collide).
    pub fn key(parts: &[&[u8]]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.bin"))
    }

    /// The stored output for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Stores an output atomically (write to a temp file, then rename).
    pub fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(tmp.path(), bytes)?;
        tmp.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_keys_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path().join("c"));
        let k1 = Cache::key(&[b"ab", b"c"]);
        assert_ne!(k1, Cache::key(&[b"a", b"bc"]));
        assert_eq!(k1, Cache::key(&[b"ab", b"c"]));
        assert!(c.get(&k1).is_none());
        c.put(&k1, b"out").unwrap();
        assert_eq!(c.get(&k1).unwrap(), b"out");
    }
}

//! Compressed uploads (docs/PROTOCOL.md "Compressed uploads"): the module goes as one raw deflate
//! stream when the agent takes one (INFO `compress=deflate`) and it saves time at the link's
//! speed ([`deflate_saving`]); an instant link (an emulator over TCP, no INFO `baud=`) never
//! compresses. The CRC-32, size and signature of the LOAD stay those of the uncompressed module.

use std::io::Write as _;

use flate2::write::DeflateEncoder;
use flate2::Compression;
use wasmbed_agent_proto::session::deflate_saving;

use super::DeviceTask;
use crate::device::LogKind;

/// The raw deflate stream (RFC 1951) of `bytes`, at miniz's best level.
pub(crate) fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::with_capacity(bytes.len() / 2), Compression::best());
    e.write_all(bytes)
        .and_then(|()| e.finish())
        .expect("deflating into memory cannot fail")
}

impl DeviceTask {
    /// The deflate stream to offer for the upload of `bytes`, or `None` (uncompressed): the
    /// agent must take `deflate`, the upload be chunked and the line slow enough that the
    /// smaller stream saves more than the agent spends inflating it.
    pub(super) fn deflated_upload(
        &self,
        module_id: &str,
        bytes: &[u8],
        chunked: bool,
    ) -> Option<Vec<u8>> {
        if !chunked || !self.compress.iter().any(|m| m == "deflate") {
            return None;
        }
        let rate = self.line_baud.map(|b| (b / 10).max(1))?;
        let deflated = deflate(bytes);
        let saving = deflate_saving(bytes.len(), deflated.len(), Some(rate))?;
        let line = format!(
            "upload of {module_id} compressed: {} -> {} bytes (deflate), about {} ms less at {} baud",
            bytes.len(),
            deflated.len(),
            saving.as_millis(),
            rate * 10
        );
        tracing::info!(device = %self.opts.name, "{line}");
        self.log.push(LogKind::Gateway, line);
        Some(deflated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_inflates_to_the_module() {
        let m: Vec<u8> = (0..20_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect();
        let d = deflate(&m);
        assert!(d.len() < m.len() / 2, "{} of {}", d.len(), m.len());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(&d[..]), &mut back)
            .unwrap();
        assert_eq!(back, m);
    }
}

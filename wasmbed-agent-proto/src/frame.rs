//! Framed chunks (v2 `framed=1`, docs/PROTOCOL.md "Framed chunks").
//!
//! A frame is one line that no agent can execute: the mark byte 0x01 (never printable, so never
//! a command), then the COBS encoding (Cheshire & Baker) of the body with every byte XORed with
//! `\n` (so the line holds no `\n`), then the end byte 0x04 (never printable: no tail of a frame
//! is a command either), then `\n`. The body is the kind byte 0x01, the module offset
//! (u32 little endian), the data, and the CRC-32 of kind, offset and data (u32 little endian).
//! COBS costs at most one byte per 254, the frame 12 bytes more.

use crate::crc::Crc32;

/// First byte of every frame line.
pub const FRAME_MARK: u8 = 0x01;
/// Last byte of every frame line before its `\n`: not printable, so a frame whose start was
/// lost (or a board that reset in the middle of one) never leaves a printable tail.
pub const FRAME_END: u8 = 0x04;
/// Body kind of a module chunk.
pub const FRAME_KIND_CHUNK: u8 = 0x01;
/// Body bytes besides the data: kind, offset, CRC.
const BODY_EXTRA: usize = 1 + 4 + 4;

/// Encodes `data` at module `offset` as one frame line, terminator included.
pub fn chunk_frame(offset: u32, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + BODY_EXTRA);
    body.push(FRAME_KIND_CHUNK);
    body.extend_from_slice(&offset.to_le_bytes());
    body.extend_from_slice(data);
    let crc = Crc32::of(&body);
    body.extend_from_slice(&crc.0.to_le_bytes());
    let mut line = Vec::with_capacity(frame_len(data.len()));
    line.push(FRAME_MARK);
    line.extend_from_slice(&cobs::encode_vec_with_sentinel(&body, b'\n'));
    line.push(FRAME_END);
    line.push(b'\n');
    line
}

/// The longest frame line (terminator included) for `n` data bytes.
pub fn frame_len(n: usize) -> usize {
    1 + cobs::max_encoding_length(n + BODY_EXTRA) + 2
}

/// Decodes a frame line (with or without its `\n`): the offset and data, or `None` if it is not
/// an intact chunk frame (mark, COBS, kind, length or CRC wrong).
pub fn decode_chunk_frame(line: &[u8]) -> Option<(u32, Vec<u8>)> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let enc = line
        .strip_prefix(&[FRAME_MARK])?
        .strip_suffix(&[FRAME_END])?;
    if enc.contains(&b'\n') {
        return None;
    }
    let mut buf = enc.to_vec();
    let n = cobs::decode_in_place_with_sentinel(&mut buf, b'\n').ok()?;
    let body = buf.get(..n).filter(|b| b.len() > BODY_EXTRA)?;
    let (head, crc) = body.split_at(body.len() - 4);
    if head[0] != FRAME_KIND_CHUNK || Crc32::of(head).0.to_le_bytes() != crc {
        return None;
    }
    let offset = u32::from_le_bytes(head[1..5].try_into().ok()?);
    Some((offset, head[5..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_has_no_line_terminator_inside() {
        for n in [1usize, 2, 244, 245, 253, 254, 255, 508, 4096, 16384] {
            let data: Vec<u8> = (0..n).map(|i| [0u8, b'\n', b'\r', 0xff][i % 4]).collect();
            let f = chunk_frame(7 * n as u32, &data);
            assert_eq!(f[0], FRAME_MARK);
            assert_eq!(f[f.len() - 2], FRAME_END);
            assert_eq!(f.iter().filter(|&&b| b == b'\n').count(), 1, "n={n}");
            assert!(f.len() <= frame_len(n));
            assert_eq!(decode_chunk_frame(&f), Some((7 * n as u32, data)));
        }
    }

    #[test]
    fn the_byte_after_the_mark_is_never_printable() {
        // the kind byte 0x01 is encoded as 0x0b: a frame that lost its mark is junk to an agent
        let f = chunk_frame(0, b"UNLOAD module_id=victim");
        assert_eq!(f[2], FRAME_KIND_CHUNK ^ b'\n');
    }

    #[test]
    fn a_damaged_frame_does_not_decode() {
        let f = chunk_frame(512, b"0123456789");
        for i in 1..f.len() - 1 {
            let mut g = f.clone();
            g[i] ^= 0x20;
            assert_eq!(decode_chunk_frame(&g), None, "flip at {i}");
        }
    }
}

//! Incremental decoder for the agent → gateway byte stream.
//!
//! Feed it fragments of any size; it yields exactly the items the same bytes would give in one
//! piece. Lines end at `\n` or `\r` (so `\r\n` is one terminator); empty and all-space lines are
//! skipped; NUL bytes are dropped (UART noise around resets); other non-UTF-8 bytes are replaced
//! with U+FFFD. A line longer than the limit (default [`AGENT_LINE_MAX`]) is not buffered past the
//! limit: it becomes one [`Item::LineTooLong`] when its terminator arrives.
//!
//! A device that resets while it writes a line never ends it: its boot banner follows the cut
//! start on the same line (`INFO_OK proto=2 boaHELLO device_id=…`). The decoder splits such a
//! line in two: the cut start as console text ([`AgentLine::Other`], so it can never be taken
//! for a reply) and the HELLO, a line of its own (docs/PROTOCOL.md "Handshake restart"). Module
//! output (`LOG`) may quote anything and is never split.
//!
//! At stream start the decoder strips telnet negotiation (Renode's socket terminal in telnet mode
//! sends e.g. `FF FD 00 FF FB 01 FF FB 03 FF FC 22`, newer builds add `FF FD 1F`): any run of
//! 3-byte `IAC DO/DONT/WILL/WONT <opt>`, 2-byte `IAC <cmd>` and `IAC SB … IAC SE` sequences before
//! the first data byte. `IAC IAC` is a data byte 0xFF and ends the prefix. When the prefix ends it
//! reports [`Item::Telnet`] with the number of bytes stripped. Later 0xFF bytes are data.

use std::collections::VecDeque;

use crate::message::AgentLine;
use crate::parse::parse_agent_line;

/// Longest agent → gateway line accepted, in bytes without the terminator.
pub const AGENT_LINE_MAX: usize = 1024;

/// How many bytes of an over-long line are kept for [`Item::LineTooLong`].
const TOO_LONG_HEAD: usize = 64;

/// Longest telnet subnegotiation accepted in the prefix.
const SB_MAX: usize = 64;

const IAC: u8 = 0xff;
const SB: u8 = 0xfa;
const SE: u8 = 0xf0;

/// One agent line: the text as received and its typed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line text without terminator (NULs dropped, invalid UTF-8 replaced).
    pub raw: String,
    /// The parsed message.
    pub msg: AgentLine,
}

impl Line {
    /// Parses `raw` (used by tests and transcript replays).
    pub fn parse(raw: &str) -> Self {
        Line {
            raw: raw.to_string(),
            msg: parse_agent_line(raw),
        }
    }
}

/// What the decoder produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete line.
    Line(Line),
    /// A line over the length limit was discarded.
    LineTooLong {
        /// Its full length in bytes.
        len: usize,
        /// Its first bytes, for diagnostics.
        head: String,
    },
    /// A telnet negotiation prefix of `len` bytes was stripped at stream start.
    Telnet {
        /// Bytes stripped.
        len: usize,
    },
}

#[derive(Debug)]
enum Telnet {
    /// Still at stream start: `stripped` bytes of complete sequences, `partial` of an open one.
    Start { stripped: usize, partial: Vec<u8> },
    /// Prefix over (or absent).
    Done,
}

/// The incremental decoder. See the module docs.
#[derive(Debug)]
pub struct Decoder {
    max_line: usize,
    buf: Vec<u8>,
    /// Length of the current line once it exceeded `max_line`.
    overflow: Option<usize>,
    telnet: Telnet,
    saw_telnet: Option<usize>,
    out: VecDeque<Item>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with the default line limit of [`AGENT_LINE_MAX`] bytes.
    pub fn new() -> Self {
        Self::with_max_line(AGENT_LINE_MAX)
    }

    /// A decoder with a custom line limit (at least 1).
    pub fn with_max_line(max_line: usize) -> Self {
        Decoder {
            max_line: max_line.max(1),
            buf: Vec::new(),
            overflow: None,
            telnet: Telnet::Start {
                stripped: 0,
                partial: Vec::new(),
            },
            saw_telnet: None,
            out: VecDeque::new(),
        }
    }

    /// Feeds received bytes; complete items become available from [`Decoder::next_item`].
    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            self.byte(b);
        }
    }

    /// Ends the stream: a pending telnet prefix is reported and an unterminated last line is
    /// emitted as if terminated.
    pub fn finish(&mut self) {
        if let Telnet::Start { partial, .. } = &mut self.telnet {
            let partial = std::mem::take(partial);
            self.end_prefix();
            for b in partial {
                self.data(b);
            }
        }
        self.end_line();
    }

    /// The next decoded item, if any.
    pub fn next_item(&mut self) -> Option<Item> {
        self.out.pop_front()
    }

    /// Length of the telnet prefix stripped at stream start, once it has ended.
    pub fn saw_telnet(&self) -> Option<usize> {
        self.saw_telnet
    }

    /// Bytes of an unfinished line currently buffered.
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    fn byte(&mut self, b: u8) {
        let Telnet::Start { stripped, partial } = &mut self.telnet else {
            return self.data(b);
        };
        partial.push(b);
        match partial.as_slice() {
            [IAC] => {}
            [IAC, 0xfb..=0xfe] => {}
            [IAC, 0xfb..=0xfe, _] => {
                *stripped += 3;
                partial.clear();
            }
            [IAC, SB, ..] if partial.ends_with(&[IAC, SE]) => {
                *stripped += partial.len();
                partial.clear();
            }
            [IAC, SB, ..] if partial.len() <= SB_MAX => {}
            [IAC, 0xf0..=0xf9] => {
                *stripped += 2;
                partial.clear();
            }
            _ => {
                // Not (or no longer) telnet: everything still pending is data. `IAC IAC` is
                // one data byte 0xFF.
                let mut pending = std::mem::take(partial);
                if pending == [IAC, IAC] {
                    pending.pop();
                }
                self.end_prefix();
                for b in pending {
                    self.data(b);
                }
            }
        }
    }

    fn end_prefix(&mut self) {
        if let Telnet::Start { stripped, .. } = self.telnet {
            if stripped > 0 {
                self.saw_telnet = Some(stripped);
                self.out.push_back(Item::Telnet { len: stripped });
            }
            self.telnet = Telnet::Done;
        }
    }

    fn data(&mut self, b: u8) {
        match b {
            b'\n' | b'\r' => self.end_line(),
            0 => {}
            _ => match &mut self.overflow {
                Some(len) => *len += 1,
                None if self.buf.len() < self.max_line => self.buf.push(b),
                None => self.overflow = Some(self.buf.len() + 1),
            },
        }
    }

    fn end_line(&mut self) {
        if let Some(len) = self.overflow.take() {
            let head_len = self.buf.len().min(TOO_LONG_HEAD);
            let head = String::from_utf8_lossy(&self.buf[..head_len]).into_owned();
            self.buf.clear();
            self.out.push_back(Item::LineTooLong { len, head });
            return;
        }
        if self.buf.iter().all(|&b| b == b' ') {
            self.buf.clear();
            return;
        }
        let mut raw = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        let msg = parse_agent_line(&raw);
        if let Some((at, hello)) = glued_hello(&raw, &msg) {
            let hello_raw = raw.split_off(at);
            self.out.push_back(Item::Line(Line {
                msg: AgentLine::Other(raw.clone()),
                raw,
            }));
            self.out.push_back(Item::Line(Line {
                raw: hello_raw,
                msg: hello,
            }));
            return;
        }
        self.out.push_back(Item::Line(Line { raw, msg }));
    }
}

/// Where a HELLO starts in the middle of `raw` (a device that reset while writing the line's
/// start), and the HELLO parsed; `None` for a line that is a HELLO, module output (`LOG`), or
/// holds no complete HELLO.
fn glued_hello(raw: &str, msg: &AgentLine) -> Option<(usize, AgentLine)> {
    if matches!(msg, AgentLine::Hello(_) | AgentLine::Log(_)) {
        return None;
    }
    raw.match_indices("HELLO ")
        .filter(|&(at, _)| at > 0)
        .find_map(|(at, _)| match parse_agent_line(&raw[at..]) {
            hello @ AgentLine::Hello(_) => Some((at, hello)),
            _ => None,
        })
}

impl Iterator for Decoder {
    type Item = Item;
    /// Same as [`Decoder::next_item`].
    fn next(&mut self) -> Option<Item> {
        self.next_item()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Item> {
        let mut d = Decoder::new();
        for c in chunks {
            d.feed(c);
        }
        d.finish();
        d.collect()
    }

    fn raws(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Line(l) => l.raw.clone(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn lines_crlf_blank_nul() {
        let items = decode(&[
            b"HELLO device_id=x rtos=Zephyr runtime=WAMR fw_version=1.0.0\r\n\r\n  \nST",
            b"ART_OK\n\0\0LOAD_OK\n",
        ]);
        assert_eq!(raws(&items)[1..], ["START_OK", "LOAD_OK"]);
        assert!(matches!(
            items[0],
            Item::Line(Line {
                msg: AgentLine::Hello(_),
                ..
            })
        ));
    }

    #[test]
    fn a_hello_glued_to_a_cut_line_is_a_line_of_its_own() {
        let hello =
            "HELLO device_id=nucleo-f446re rtos=baremetal runtime=WAMR fw_version=0.2.0 proto=2";
        // A reset in the middle of INFO_OK: the cut start would parse as an INFO_OK (proto=2 is
        // there); it must be console text, never a reply.
        for cut in [
            "INFO_OK proto=2 boa",
            "INFO_OK pro",
            "IDENT_OK key=d75a98",
            "LED ON (th",
        ] {
            let items = decode(&[format!("{cut}{hello}\nSTATUS_OK modules=\"none\"\n").as_bytes()]);
            assert_eq!(
                raws(&items),
                [cut, hello, "STATUS_OK modules=\"none\""],
                "{cut}"
            );
            assert_eq!(
                items[0],
                Item::Line(Line {
                    raw: cut.into(),
                    msg: AgentLine::Other(cut.into())
                })
            );
            assert!(
                matches!(&items[1], Item::Line(Line { msg: AgentLine::Hello(h), .. }) if h.proto == Some(2))
            );
        }
        // Module output may quote a HELLO; text that only looks like one stays whole.
        for whole in [
            format!("LOG module_id=m msg=\"{hello}\""),
            "console: HELLO world".to_string(),
            hello.to_string(),
        ] {
            assert_eq!(
                raws(&decode(&[format!("{whole}\n").as_bytes()])),
                [whole.as_str()]
            );
        }
    }

    #[test]
    fn renode_telnet_prefixes_are_stripped() {
        let p12: &[u8] = &[
            0xff, 0xfd, 0x00, 0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfc, 0x22,
        ];
        let p15: &[u8] = &[
            0xff, 0xfd, 0x00, 0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfc, 0x22, 0xff, 0xfd,
            0x1f,
        ];
        for p in [p12, p15] {
            let mut d = Decoder::new();
            for b in p.iter().chain(b"START_OK\n") {
                d.feed(&[*b]);
            }
            let items: Vec<Item> = d.by_ref().collect();
            assert_eq!(items[0], Item::Telnet { len: p.len() });
            assert_eq!(raws(&items[1..]), ["START_OK"]);
            assert_eq!(d.saw_telnet(), Some(p.len()));
        }
        // Subnegotiation and IAC IAC.
        let items = decode(&[&[0xff, 0xfa, 0x18, 0x01, 0xff, 0xf0, 0xff, 0xff], b"A\n"]);
        assert_eq!(items[0], Item::Telnet { len: 6 });
        assert_eq!(raws(&items[1..]), ["\u{fffd}A"]);
        // No prefix: nothing reported, 0xFF later is data.
        let items = decode(&[b"X\n", &[0xff, 0xfd, 0x00]]);
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn too_long_lines_are_bounded() {
        let mut d = Decoder::with_max_line(8);
        d.feed(b"0123456789abc\nOK_LINE\n");
        assert_eq!(d.pending_len(), 0);
        let items: Vec<Item> = d.collect();
        assert_eq!(
            items[0],
            Item::LineTooLong {
                len: 13,
                head: "01234567".into()
            }
        );
        assert_eq!(raws(&items[1..]), ["OK_LINE"]);
        // Exactly at the limit is fine.
        assert_eq!(
            raws(&decode(&[&[b'a'; AGENT_LINE_MAX], b"\n"]))[0].len(),
            AGENT_LINE_MAX
        );
    }
}

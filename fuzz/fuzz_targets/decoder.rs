//! Fuzz target `decoder`: arbitrary bytes, fed in arbitrary splits, to the decoder and both
//! parsers. Oracles: nothing panics, the split does not change the decoded items, decoded lines
//! are bounded and terminator-free, and every line re-encodes to a line with the same keyword.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmbed_agent_proto::{parse_agent_line, parse_command, Decoder, Item, AGENT_LINE_MAX};

fn decode(parts: &[&[u8]]) -> Vec<Item> {
    let mut d = Decoder::new();
    for p in parts {
        d.feed(p);
    }
    d.finish();
    d.collect()
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the fragment sizes (1..=16 each, cycling), the rest is the stream.
    let (sizes, stream) = data.split_at(data.len().min(8));
    let mut parts = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes.get(i % sizes.len().max(1)).map_or(1, |s| usize::from(s % 16) + 1);
        let (head, tail) = rest.split_at(n.min(rest.len()));
        parts.push(head);
        rest = tail;
        i += 1;
    }
    let whole = decode(&[stream]);
    assert_eq!(decode(&parts), whole, "fragmentation changed the decoded items");
    for item in &whole {
        if let Item::Line(line) = item {
            // U+FFFD replacement can triple a byte.
            assert!(line.raw.len() <= AGENT_LINE_MAX * 3);
            assert!(!line.raw.contains(['\n', '\r', '\0']));
            let again = parse_agent_line(&line.msg.to_string());
            assert_eq!(again.keyword(), line.msg.keyword(), "{:?}", line.raw);
        }
    }
    let _ = parse_command(stream);
});

//! The shared identifier table (testdata/identifiers.txt), also checked by the C agent's unit
//! tests: every accepted identifier builds, every refused one is refused naming its field.

use wasmbed_agent_proto::{FuncName, ModuleId};

/// `(field, accepted, value)` rows of the table.
fn table() -> Vec<(String, bool, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/identifiers.txt");
    let text = std::fs::read_to_string(path).expect("testdata/identifiers.txt");
    let mut rows = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut parts = line.splitn(3, ' ');
        let field = parts.next().unwrap().to_string();
        let accepted = match parts.next() {
            Some("accept") => true,
            Some("refuse") => false,
            other => panic!("bad verdict {other:?} in {line:?}"),
        };
        rows.push((field, accepted, unescape(parts.next().unwrap_or(""))));
    }
    rows
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("table values are UTF-8")
}

#[test]
fn identifier_table_holds() {
    let rows = table();
    assert!(rows.len() > 20, "the table is too short: {}", rows.len());
    for (field, accepted, value) in rows {
        let result = match field.as_str() {
            "module_id" => ModuleId::new(value.clone()).map(|_| ()),
            "func" => FuncName::new(value.clone()).map(|_| ()),
            other => panic!("unknown field {other}"),
        };
        match result {
            Ok(()) => assert!(
                accepted,
                "{field} {value:?} was accepted, the table refuses it"
            ),
            Err(e) => {
                assert!(
                    !accepted,
                    "{field} {value:?} was refused ({e}), the table accepts it"
                );
                assert_eq!(e.field, field);
            }
        }
    }
}

//! Local validation of user input before anything goes over the wire.
//!
//! Identifiers end up inside agent protocol lines (`key=value` separated by spaces), so a space,
//! a quote or `=` in them would inject protocol text. The rule is the one identifier rule of
//! `wasmbed-agent-proto` (docs/PROTOCOL.md); this module only words its refusals for the
//! command line (naming the flag).

use wasmbed_agent_proto::ident::{validate_ident, IDENT_FORBIDDEN};

use crate::error::HostError;

/// Longest module id the agent stores without truncating it.
pub const MAX_MODULE_ID: usize = wasmbed_agent_proto::MODULE_ID_MAX;
/// Longest function name the agent stores without truncating it.
pub const MAX_FUNC: usize = wasmbed_agent_proto::FUNC_MAX;
/// Most arguments a `START` can carry.
pub const MAX_ARGS: usize = wasmbed_agent_proto::ARGS_MAX;

/// Checks that `value` is usable as an identifier named `what` of at most `max` bytes.
pub fn identifier(what: &str, value: &str, max: usize) -> Result<(), HostError> {
    if validate_ident("identifier", value, max).is_ok() {
        return Ok(());
    }
    if value.is_empty() {
        return Err(HostError::Usage(format!("{what} must not be empty")));
    }
    if value.len() > max {
        return Err(HostError::Usage(format!(
            "{what} '{value}' is {} bytes long; at most {max} are allowed",
            value.len()
        )));
    }
    let c = value
        .chars()
        .find(|c| !c.is_ascii_graphic() || IDENT_FORBIDDEN.contains(c))
        .expect("a refused identifier has a refused character");
    Err(HostError::Usage(format!(
        "{what} '{}' contains {}; use letters, digits, '_', '-' or '.'",
        value.escape_default(),
        describe(c)
    )))
}

fn describe(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '"' | '\'' => "a quote".into(),
        c if c.is_control() => format!("the control character {:?}", c),
        c => format!("'{c}'"),
    }
}

/// Checks a module id (`--module-id`).
pub fn module_id(value: &str) -> Result<(), HostError> {
    identifier("--module-id", value, MAX_MODULE_ID)
}

/// Checks a function name (`--func`).
pub fn func(value: &str) -> Result<(), HostError> {
    identifier("--func", value, MAX_FUNC)
}

/// Checks a device name (`--device`).
pub fn device(value: &str) -> Result<(), HostError> {
    identifier("--device", value, 64)
}

/// Parses `--args` / the legacy `--func-args`: `a=1,b=2` or `1,2`. Names are ignored, values are
/// taken in order as signed 32-bit integers; at most [`MAX_ARGS`].
pub fn parse_args(text: &str) -> Result<Vec<i32>, HostError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > MAX_ARGS {
        return Err(HostError::Usage(format!(
            "--args has {} values; a function takes at most {MAX_ARGS}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|item| {
            let value = match item.split_once('=') {
                Some((name, value)) => {
                    if name.trim().is_empty() || name.contains(['"', '\'', ' ']) {
                        return Err(HostError::Usage(format!(
                            "--args item '{item}': expected NAME=VALUE or VALUE"
                        )));
                    }
                    value.trim()
                }
                None => item,
            };
            value.parse::<i32>().map_err(|_| {
                HostError::Usage(format!(
                    "--args item '{item}': '{value}' is not a 32-bit signed integer"
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_named_positional_and_negative() {
        assert_eq!(parse_args("a=200,b=26").unwrap(), vec![200, 26]);
        assert_eq!(parse_args("1, -2 ,3").unwrap(), vec![1, -2, 3]);
        assert_eq!(parse_args("x=-2147483648").unwrap(), vec![i32::MIN]);
        assert_eq!(parse_args("").unwrap(), Vec::<i32>::new());
        assert_eq!(parse_args("  ").unwrap(), Vec::<i32>::new());
    }

    #[test]
    fn args_rejects_bad_input() {
        for bad in [
            "a=1,b=2,c=3,d=4,e=5",
            "a=x",
            "a=2147483648",
            "a=1,,b=2",
            "=5",
            "a=",
            "1.5",
        ] {
            let err = parse_args(bad).unwrap_err();
            assert!(matches!(err, HostError::Usage(_)), "{bad}: {err}");
        }
        assert!(parse_args("a=1,b=2,c=3,d=4")
            .unwrap()
            .iter()
            .eq([1, 2, 3, 4].iter()));
    }

    #[test]
    fn identifiers() {
        module_id("math_ops").unwrap();
        module_id("m-1.v2").unwrap();
        for bad in [
            "",
            "a b",
            "a=b",
            "a\"b",
            "x'",
            "a,b",
            "tab\there",
            "a:b",
            "a\\b",
        ] {
            assert!(module_id(bad).is_err(), "{bad:?}");
        }
        assert!(module_id(&"m".repeat(31)).is_ok());
        let long = module_id(&"m".repeat(32)).unwrap_err().to_string();
        assert!(long.contains("at most 31"), "{long}");
        assert!(func(&"f".repeat(63)).is_ok());
        assert!(func(&"f".repeat(64)).is_err());
        let msg = func("add now").unwrap_err().to_string();
        assert!(msg.contains("a space"), "{msg}");
    }
}

//! Validated values that go into command lines. Construction is the only place where validation
//! happens, so an encoded command can never carry a space, quote, `=`, `,` or control character
//! that would change the meaning of the line (protocol injection).
//!
//! **The identifier rule** (module ids and function names), the one rule of the whole stack:
//! 1 to `max` bytes (31 for a module id, 63 for a function name), each printable ASCII
//! (`!`..=`~`) except `"` `'` `,` `:` `=` `\`. The host and the gateway check it through this
//! module ([`validate_ident`]); the C agent mirrors it (`agent_ident_valid` in
//! firmware-agent/core/agent_util.c). `testdata/identifiers.txt` lists accepted and refused
//! identifiers that both the Rust tests and the C unit tests check, so the copies cannot drift.

use std::fmt;

/// Maximum `module_id` length in bytes (the agent's buffer is 32 bytes with the NUL).
pub const MODULE_ID_MAX: usize = 31;
/// Maximum `func` length in bytes (the agent's buffer is 64 bytes with the NUL).
pub const FUNC_MAX: usize = 63;
/// Maximum number of START arguments (`MAX_CALL_ARGS` in the agent).
pub const ARGS_MAX: usize = 4;

/// A value rejected by the encoder, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct InvalidField {
    /// Wire name of the field (`module_id`, `func`, `args`, `replace_victim`, `size`, ...).
    pub field: &'static str,
    /// What is wrong with the value.
    pub reason: String,
}

impl InvalidField {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

/// Characters refused in identifiers besides space and non-printable ones: `"` and `\` (quoted
/// values), `'` (legacy Python JSON quoting), `,` (lists), `:` (the `id:state:...` fields of
/// STATUS and `name:sig` of INFO), `=` (key=value).
pub const IDENT_FORBIDDEN: &[char] = &['"', '\'', ',', ':', '=', '\\'];

/// Checks an identifier against the identifier rule (module docs): non-empty, at most `max`
/// bytes, printable ASCII except [`IDENT_FORBIDDEN`].
pub fn validate_ident(field: &'static str, value: &str, max: usize) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::new(field, "empty"));
    }
    if value.len() > max {
        return Err(InvalidField::new(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if let Some(c) = value.chars().find(|&c| !is_ident_char(c)) {
        return Err(InvalidField::new(
            field,
            format!(
                "character {c:?} not allowed (letters, digits and printable ASCII except space \
                 \" ' , : = \\)"
            ),
        ));
    }
    Ok(())
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_graphic() && !IDENT_FORBIDDEN.contains(&c)
}

macro_rules! ident_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` (see [`validate_ident`]); the error names the field.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidField> {
                Self::for_field($field, value)
            }

            /// Like `new`, but the error names `field` (e.g. `replace_victim`).
            pub fn for_field(field: &'static str, value: impl Into<String>) -> Result<Self, InvalidField> {
                let value = value.into();
                validate_ident(field, &value, $max)?;
                Ok($name(value))
            }

            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = InvalidField;
            fn try_from(s: &str) -> Result<Self, InvalidField> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

ident_type!(
    /// A module id (slot key): 1..=31 bytes under the identifier rule (module docs).
    ModuleId, "module_id", MODULE_ID_MAX
);
ident_type!(
    /// An exported function name: 1..=63 bytes under the identifier rule (module docs).
    FuncName, "func", FUNC_MAX
);

/// START arguments: at most 4 i32 values, passed positionally.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args(Vec<i32>);

impl Args {
    /// Validates the count (≤ 4).
    pub fn new(values: impl Into<Vec<i32>>) -> Result<Self, InvalidField> {
        let values = values.into();
        if values.len() > ARGS_MAX {
            return Err(InvalidField::new(
                "args",
                format!("{} values, at most {ARGS_MAX} allowed", values.len()),
            ));
        }
        Ok(Args(values))
    }

    /// No arguments.
    pub fn none() -> Self {
        Args(Vec::new())
    }

    /// The values in order.
    pub fn values(&self) -> &[i32] {
        &self.0
    }

    /// True if there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the legacy host convention `a=1,b=2` (names ignored, order kept; a bare `1,2` is
    /// accepted too). Every value must be a decimal i32; an empty string gives no arguments.
    pub fn parse_legacy(text: &str) -> Result<Self, InvalidField> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Args::none());
        }
        let mut values = Vec::new();
        for token in text.split(',') {
            let raw = token.rsplit('=').next().unwrap_or(token).trim();
            let v = parse_i32(raw).ok_or_else(|| {
                InvalidField::new("args", format!("{token:?} is not a decimal i32"))
            })?;
            values.push(v);
        }
        Args::new(values)
    }
}

/// Parses a decimal i32 with an optional sign; `None` on anything else or overflow.
pub(crate) fn parse_i32(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_id_rules() {
        assert!(ModuleId::new("math_ops").is_ok());
        assert!(ModuleId::new("a".repeat(31)).is_ok());
        let e = ModuleId::new("a".repeat(32)).unwrap_err();
        assert_eq!(e.field, "module_id");
        for bad in ["", "a b", "a\"b", "a=b", "a,b", "a\nb", "é"] {
            assert!(ModuleId::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ModuleId::for_field("replace_victim", "x y")
                .unwrap_err()
                .field,
            "replace_victim"
        );
        assert!(FuncName::new("f".repeat(63)).is_ok());
        assert_eq!(FuncName::new("f".repeat(64)).unwrap_err().field, "func");
    }

    #[test]
    fn args_rules() {
        assert_eq!(
            Args::parse_legacy("a=200,b=26").unwrap().values(),
            &[200, 26]
        );
        assert_eq!(Args::parse_legacy("-1, 7").unwrap().values(), &[-1, 7]);
        assert!(Args::parse_legacy("").unwrap().is_empty());
        assert_eq!(Args::parse_legacy("a=x").unwrap_err().field, "args");
        assert!(Args::parse_legacy("a=2147483648").is_err());
        assert!(Args::new(vec![1, 2, 3, 4, 5]).is_err());
    }
}

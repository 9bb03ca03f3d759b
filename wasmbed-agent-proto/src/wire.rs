//! The protocol on one screen: every command's wire name, its fields and its possible replies,
//! plus the enums of wire codes (status and error codes). Unknown codes are kept as text
//! (`Unknown(String)`), never an error: newer firmware may add codes.

use std::fmt;

/// Which protocol version introduced a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Legacy protocol (FW-A, FW-B0..B3).
    V1,
    /// Wasmbed extension, negotiated with `INFO`.
    V2,
}

/// One row of [`COMMANDS`]: a gateway→agent command as it appears on the wire.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// The first word of the line.
    pub name: &'static str,
    /// The `key=value` fields, in the order the encoder writes them; `[..]` = optional.
    pub fields: &'static str,
    /// The first word of every agent line that answers this command.
    pub replies: &'static [&'static str],
    /// Whether raw payload bytes follow (after `LOAD_READY`, or right after the `CHUNK` line).
    pub payload: bool,
    /// Protocol version that introduced the command.
    pub since: Since,
}

/// Every gateway→agent command. `docs/PROTOCOL.md` has the full grammar.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "LOAD",
        fields: "module_id=<id> size=<n> crc32=<hex8> [chunked=1] [replace=1] [replace_victim=<id>] [resume=1]",
        replies: &["LOAD_READY", "LOAD_OK", "LOAD_ERR"],
        payload: true,
        since: Since::V1,
    },
    CommandSpec {
        name: "CHUNK",
        fields: "offset=<n> size=<n> crc32=<hex8>",
        replies: &["CHUNK_OK", "CHUNK_ERR", "LOAD_OK", "LOAD_ERR"],
        payload: true,
        since: Since::V2,
    },
    CommandSpec {
        name: "START",
        fields: "module_id=<id> [func=<name>] [args=\"a0=<i32>,..,a3=<i32>\"]",
        replies: &["START_OK", "RESULT", "ERROR"],
        payload: false,
        since: Since::V1,
    },
    CommandSpec {
        name: "STOP",
        fields: "module_id=<id>",
        replies: &["STOP_OK", "RESULT", "ERROR"],
        payload: false,
        since: Since::V1,
    },
    CommandSpec {
        name: "STATUS",
        fields: "",
        replies: &["STATUS_OK", "ERROR"],
        payload: false,
        since: Since::V1,
    },
    CommandSpec {
        name: "INFO",
        fields: "",
        replies: &["INFO_OK", "ERROR"],
        payload: false,
        since: Since::V2,
    },
    CommandSpec {
        name: "UNLOAD",
        fields: "module_id=<id>",
        replies: &["UNLOAD_OK", "UNLOAD_ERR", "RESULT", "ERROR"],
        payload: false,
        since: Since::V2,
    },
    CommandSpec {
        name: "IDENT",
        fields: "nonce=<hex64>",
        replies: &["IDENT_OK", "IDENT_ERR", "ERROR"],
        payload: false,
        since: Since::V2,
    },
    CommandSpec {
        name: "SIG",
        fields: "module_id=<id> ver=<n> key=<hex16> sig=<hex128>",
        replies: &["SIG_OK", "SIG_ERR", "ERROR"],
        payload: false,
        since: Since::V2,
    },
    CommandSpec {
        name: "MINVER",
        fields: "module_id=<id> [ver=<n>]",
        replies: &["MINVER_OK", "MINVER_ERR", "ERROR"],
        payload: false,
        since: Since::V2,
    },
    CommandSpec {
        name: "BAUD",
        fields: "rate=<baud>",
        replies: &["BAUD_OK", "BAUD_ERR", "ERROR"],
        payload: false,
        since: Since::V2,
    },
];

/// Unsolicited agent lines (not replies to a command).
pub const UNSOLICITED: &[&str] = &["HELLO", "LOG", "RESULT", "ERROR"];

/// Looks up a command by its wire name (case-sensitive, like the agent).
pub fn command_spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Defines an enum of wire codes with an `Unknown(String)` catch-all, `as_str`, `from_wire`
/// and `Display`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this crate does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every known variant with its wire text.
            pub const KNOWN: &'static [(&'static str, $name)] = &[$(($wire, $name::$variant),)*];

            /// The wire text of this code.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Unknown(s) => s,
                }
            }

            /// Maps wire text to a code; unknown text becomes `Unknown`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => $name::$variant,)*
                    other => $name::Unknown(other.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// `status=` of a `RESULT` line.
    ResultStatus {
        /// The function returned normally.
        Ok = "OK",
        /// The function trapped (`msg=` has WAMR's exception text).
        Exception = "EXCEPTION",
        /// The job was stopped (`forced=1` if the worker was aborted).
        Stopped = "STOPPED",
        /// The export does not exist.
        NoFunc = "NO_FUNC",
        /// Creating the execution environment failed.
        NoExecEnv = "NO_EXEC_ENV",
        /// No such module loaded (immediate reply to START).
        NoModule = "NO_MODULE",
        /// START was missing parameters (immediate reply).
        BadParams = "BAD_PARAMS",
        /// The module is already running (immediate reply).
        Busy = "BUSY",
        /// Not enough pool memory to start (FW-B1+, immediate reply).
        NoMem = "NO_MEM",
        /// No `func=` and no `app_main` export (FW-B3, immediate reply).
        NoEntrypoint = "NO_ENTRYPOINT",
    }
}

wire_enum! {
    /// `code=` of a `LOAD_ERR` line.
    LoadErrCode {
        /// Missing or zero parameter.
        BadParams = "BAD_PARAMS",
        /// The module is running and `replace=1` was not given.
        Busy = "BUSY",
        /// All slots used, `replace=1` without a victim.
        Full = "FULL",
        /// The named victim is not loaded.
        BadVictim = "BAD_VICTIM",
        /// All slots used and no `replace=1`.
        NoSlot = "NO_SLOT",
        /// Buffer allocation failed.
        NoMem = "NO_MEM",
        /// The payload did not arrive in time (v2: no CHUNK line for 10 s).
        Timeout = "TIMEOUT",
        /// Whole-module CRC mismatch.
        BadCrc = "BAD_CRC",
        /// `wasm_runtime_load` failed.
        LoadFail = "LOAD_FAIL",
        /// `wasm_runtime_instantiate` failed.
        InstantiateFail = "INSTANTIATE_FAIL",
        /// Creating the persistent exec env failed (FW-B1+).
        NoExecEnv = "NO_EXEC_ENV",
        /// The start function (or a constructor) did not return in time and was stopped
        /// (Wasmbed agents, docs/PROTOCOL.md "Module code is bounded").
        StartTimeout = "START_TIMEOUT",
        /// An `.aot` for another target, or without a target descriptor (Wasmbed agents).
        AotTarget = "AOT_TARGET",
        /// An `.aot` without bounds checks for a device without hardware bounds checks.
        AotNoBoundsChecks = "AOT_NO_BOUNDS_CHECKS",
        /// Unsigned on a device that requires signatures, or the signature does not match the
        /// module's bytes, id, kind, AOT target or version (docs/PROTOCOL.md "Signed modules").
        BadSignature = "BAD_SIGNATURE",
        /// Signed by a key the device does not trust.
        UntrustedKey = "UNTRUSTED_KEY",
        /// A validly signed version older than the device's minimum for the module.
        Rollback = "ROLLBACK",
        /// The device has no room to remember another module's minimum version.
        VersionTableFull = "VERSION_TABLE_FULL",
        /// A compressed upload's deflate stream is corrupt, ends early or late, or inflates to
        /// another size than the LOAD's (Wasmbed agents, docs/PROTOCOL.md "Compressed uploads").
        BadStream = "BAD_STREAM",
    }
}

wire_enum! {
    /// `code=` of a `CHUNK_ERR` line (v2).
    ChunkErrCode {
        /// The chunk's CRC did not match; resend from the acked offset.
        BadCrc = "BAD_CRC",
        /// The chunk did not start at the acked offset.
        BadOffset = "BAD_OFFSET",
        /// Fewer bytes than announced arrived in time.
        Timeout = "TIMEOUT",
        /// No chunked upload of this kind is active (never started, finished or parked).
        NoUpload = "NO_UPLOAD",
    }
}

wire_enum! {
    /// `status=` of a `STOP_OK` line.
    StopStatus {
        /// Stop requested; a `RESULT` follows.
        Pending = "PENDING",
        /// Nothing was running.
        Idle = "IDLE",
        /// No such job (or no `module_id=`).
        NoJob = "NO_JOB",
    }
}

wire_enum! {
    /// `code=` of an `UNLOAD_ERR` line (v2).
    UnloadErrCode {
        /// No module with that id is loaded.
        NotFound = "NOT_FOUND",
        /// `module_id=` missing.
        BadParams = "BAD_PARAMS",
    }
}

wire_enum! {
    /// `code=` of an `IDENT_ERR` line (v2 identity).
    IdentErrCode {
        /// `nonce=` missing or not 64 hex digits.
        BadParams = "BAD_PARAMS",
        /// The firmware holds no identity key (its INFO says `identity=none`).
        NoIdentity = "NO_IDENTITY",
    }
}

wire_enum! {
    /// `code=` of a `BAUD_ERR` line (v2, "Baud switching").
    BaudErrCode {
        /// The rate is not one of the agent's `baud_rates=`.
        BadRate = "BAD_RATE",
        /// An upload is in progress; switch between operations.
        Busy = "BUSY",
        /// `rate=` missing or not a number.
        BadParams = "BAD_PARAMS",
        /// The agent's UART cannot run at that rate.
        Failed = "FAILED",
    }
}

wire_enum! {
    /// `code=` of an `ERROR` line.
    ErrorCode {
        /// The first word of the command line is not a command.
        UnknownCommand = "UNKNOWN_COMMAND",
        /// WAMR initialisation failed at boot.
        WamrInitFail = "WAMR_INIT_FAIL",
        /// GPIO initialisation failed at boot.
        GpioInitFail = "GPIO_INIT_FAIL",
        /// WAMR thread environment initialisation failed.
        WamrThreadEnvInitFail = "WAMR_THREAD_ENV_INIT_FAIL",
        /// v2: a command line exceeded 255 bytes and was not executed.
        LineTooLong = "LINE_TOO_LONG",
        /// v2: the input queue overflowed, `dropped=` lines were lost.
        RxOverflow = "RX_OVERFLOW",
    }
}

wire_enum! {
    /// State of one slot in a `STATUS_OK` module list.
    SlotState {
        /// Loaded and idle.
        Loaded = "LOADED",
        /// A job is running.
        Running = "RUNNING",
    }
}

wire_enum! {
    /// FW-A `runner=` field of `STATUS_OK`.
    RunnerState {
        /// No job.
        Idle = "IDLE",
        /// A job is running.
        Running = "RUNNING",
    }
}

wire_enum! {
    /// `stop=` of `INFO_OK`: how STOP ends a job on this agent.
    StopMode {
        /// STOP always ends a job within the grace period.
        Forced = "forced",
        /// Only modules polling `should_stop` stop.
        Cooperative = "cooperative",
        /// Forced for interpreted code; an AOT busy loop cannot be stopped.
        ForcedInterpOnly = "forced_interp_only",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_unique_and_uppercase() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(c.name.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(COMMANDS[i + 1..].iter().all(|d| d.name != c.name));
        }
        assert!(command_spec("LOAD").unwrap().payload);
        assert!(command_spec("load").is_none());
    }

    #[test]
    fn codes_round_trip_and_keep_unknown() {
        for (text, code) in LoadErrCode::KNOWN {
            assert_eq!(&LoadErrCode::from_wire(text), code);
            assert_eq!(code.as_str(), *text);
        }
        let u = ResultStatus::from_wire("WEIRD");
        assert_eq!(u, ResultStatus::Unknown("WEIRD".into()));
        assert_eq!(u.to_string(), "WEIRD");
    }
}

//! Device endpoint strings: `serial:/dev/ttyACM0?baud=115200`, bare `COM3` / `/dev/ttyUSB0`,
//! `usb:VID:PID[:SERIAL]` (the serial port of that USB device, looked up at every connect),
//! `tcp:host:port` and the legacy `tcp:port` (host defaults to localhost). Every form but the
//! bare port name takes `?baud=N`: the line speed a serial port is opened at, and the speed the
//! gateway's deadlines assume (for a TCP bridge only the latter), and `?max_baud=N`: the highest
//! speed the gateway may switch the link to with the agent's BAUD command for large uploads
//! (docs/PROTOCOL.md "Baud switching"; USB-UART bridges differ in what they can do; without it
//! the link stays at its speed).

use std::fmt;
use std::str::FromStr;

pub use wasmbed_ports::UsbSelector;

/// The default UART speed of the legacy firmware.
pub const DEFAULT_BAUD: u32 = 115_200;

/// Where a device is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial port (real UART, USB CDC, or a PTY).
    Serial {
        /// Device path or port name (`/dev/ttyACM0`, `COM3`, `/dev/pts/7`).
        path: String,
        /// Line speed in baud, if given (opened at [`DEFAULT_BAUD`] otherwise).
        baud: Option<u32>,
        /// `?max_baud=`: the ceiling for switching up with BAUD (`None`: never switch).
        max_baud: Option<u32>,
    },
    /// The serial port of a USB device, found by its ids at every (re)connect.
    Usb {
        /// `VID:PID[:SERIAL]`.
        selector: UsbSelector,
        /// Line speed in baud, if given.
        baud: Option<u32>,
        /// `?max_baud=`: the ceiling for switching up with BAUD (`None`: never switch).
        max_baud: Option<u32>,
    },
    /// A TCP-to-UART bridge (Renode, QEMU, `wasmbed-agent-sim`).
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
        /// Speed of the emulated UART behind the bridge, if given (for deadlines only).
        baud: Option<u32>,
        /// `?max_baud=`: the ceiling for switching up with BAUD (`None`: never switch).
        max_baud: Option<u32>,
    },
}

/// Why an endpoint string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint `{input}`: {reason}")]
pub struct EndpointError {
    /// The string as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Endpoint {
    /// The line speed given with the endpoint (`?baud=`), if any.
    pub fn baud(&self) -> Option<u32> {
        match self {
            Endpoint::Serial { baud, .. }
            | Endpoint::Usb { baud, .. }
            | Endpoint::Tcp { baud, .. } => *baud,
        }
    }

    /// The ceiling for switching the link up with BAUD (`?max_baud=`), if any.
    pub fn max_baud(&self) -> Option<u32> {
        match self {
            Endpoint::Serial { max_baud, .. }
            | Endpoint::Usb { max_baud, .. }
            | Endpoint::Tcp { max_baud, .. } => *max_baud,
        }
    }

    /// Sets the line speed (a config file's `baud` key for an endpoint without `?baud=`).
    pub fn set_baud(&mut self, value: u32) {
        match self {
            Endpoint::Serial { baud, .. }
            | Endpoint::Usb { baud, .. }
            | Endpoint::Tcp { baud, .. } => *baud = Some(value),
        }
    }

    /// The speed a serial port is opened at and deadlines assume: the given one or
    /// [`DEFAULT_BAUD`].
    pub fn line_baud(&self) -> u32 {
        self.baud().unwrap_or(DEFAULT_BAUD)
    }
}

/// Splits `?key=value&...` off an endpoint and reads `baud`.
/// `?baud=` and `?max_baud=` of an endpoint.
#[derive(Default)]
struct Query {
    baud: Option<u32>,
    max_baud: Option<u32>,
}

fn split_query<'a>(
    rest: &'a str,
    err: &dyn Fn(&str) -> EndpointError,
) -> Result<(&'a str, Query), EndpointError> {
    let Some((head, query)) = rest.split_once('?') else {
        return Ok((rest, Query::default()));
    };
    let mut q = Query::default();
    let positive = |key: &str, v: &str| {
        v.parse()
            .ok()
            .filter(|b| *b > 0)
            .ok_or_else(|| err(&format!("{key} must be a positive number")))
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("baud", v)) => q.baud = Some(positive("baud", v)?),
            Some(("max_baud", v)) => q.max_baud = Some(positive("max_baud", v)?),
            _ => {
                return Err(err(&format!(
                    "unknown option `{pair}` (known: baud, max_baud)"
                )))
            }
        }
    }
    Ok((head, q))
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| EndpointError {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(err("empty endpoint"));
        }
        if let Some(rest) = trimmed.strip_prefix("tcp:") {
            let (rest, q) = split_query(rest, &err)?;
            let (host, port) = match rest.rsplit_once(':') {
                Some((host, port)) => (host.trim_matches(['[', ']']), port),
                None => ("localhost", rest),
            };
            if host.is_empty() {
                return Err(err("empty host"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| err("port must be a number 1..65535"))?;
            if port == 0 {
                return Err(err("port must be a number 1..65535"));
            }
            return Ok(Endpoint::Tcp {
                host: host.to_string(),
                port,
                baud: q.baud,
                max_baud: q.max_baud,
            });
        }
        if let Some(rest) = trimmed.strip_prefix("usb:") {
            let (sel, q) = split_query(rest, &err)?;
            let selector = sel.parse().map_err(|e: wasmbed_ports::SelectorError| {
                err(&format!(
                    "{e}; `wasmbed-host ports` lists the ids of the ports present"
                ))
            })?;
            return Ok(Endpoint::Usb {
                selector,
                baud: q.baud,
                max_baud: q.max_baud,
            });
        }
        let (path, q) = match trimmed.strip_prefix("serial:") {
            Some(rest) => split_query(rest, &err)?,
            None => (trimmed, Query::default()),
        };
        if path.is_empty() {
            return Err(err("empty serial port name"));
        }
        Ok(Endpoint::Serial {
            path: path.to_string(),
            baud: q.baud,
            max_baud: q.max_baud,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial { path, .. } => write!(f, "serial:{path}")?,
            Endpoint::Usb { selector, .. } => write!(f, "usb:{selector}")?,
            Endpoint::Tcp { host, port, .. } if host.contains(':') => {
                write!(f, "tcp:[{host}]:{port}")?
            }
            Endpoint::Tcp { host, port, .. } => write!(f, "tcp:{host}:{port}")?,
        }
        match (self.baud(), self.max_baud()) {
            (Some(b), Some(m)) => write!(f, "?baud={b}&max_baud={m}"),
            (Some(b), None) => write!(f, "?baud={b}"),
            (None, Some(m)) => write!(f, "?max_baud={m}"),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
            baud: None,
            max_baud: None,
        }
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!("tcp:localhost:3456".parse(), Ok(tcp("localhost", 3456)));
        assert_eq!("tcp:3456".parse(), Ok(tcp("localhost", 3456)));
        assert_eq!("tcp:[::1]:80".parse(), Ok(tcp("::1", 80)));
        assert_eq!(
            "serial:/dev/ttyACM0?baud=9600".parse(),
            Ok(Endpoint::Serial {
                path: "/dev/ttyACM0".into(),
                baud: Some(9600),
                max_baud: None,
            })
        );
        assert_eq!(
            "COM3".parse(),
            Ok(Endpoint::Serial {
                path: "COM3".into(),
                baud: None,
                max_baud: None,
            })
        );
        assert_eq!(
            "/dev/ttyUSB0".parse::<Endpoint>().unwrap().to_string(),
            "serial:/dev/ttyUSB0"
        );
        assert_eq!(
            "/dev/ttyUSB0".parse::<Endpoint>().unwrap().line_baud(),
            DEFAULT_BAUD
        );
        let t: Endpoint = "tcp:localhost:3456?baud=9600".parse().unwrap();
        assert_eq!(t.baud(), Some(9600));
        assert_eq!(t.to_string(), "tcp:localhost:3456?baud=9600");
        assert_eq!("tcp:3456?baud=9600".parse::<Endpoint>().unwrap(), t);
        let u: Endpoint = "usb:0483:374B:066DFF?baud=9600".parse().unwrap();
        match &u {
            Endpoint::Usb { selector, baud, .. } => {
                assert_eq!((selector.vid, selector.pid), (0x0483, 0x374b));
                assert_eq!(selector.serial.as_deref(), Some("066DFF"));
                assert_eq!(*baud, Some(9600));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(u.to_string(), "usb:0483:374b:066DFF?baud=9600");
        let m: Endpoint = "serial:/dev/ttyACM0?max_baud=921600&baud=115200"
            .parse()
            .unwrap();
        assert_eq!((m.baud(), m.max_baud()), (Some(115_200), Some(921_600)));
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "tcp:",
            "tcp:host:x",
            "tcp:0",
            "serial:",
            "serial:/dev/x?baud=0",
            "serial:/dev/x?parity=n",
            "tcp:1?baud=x",
            "tcp:h:1?stop=2",
            "usb:",
            "usb:483:374b",
            "usb:0483:374b:",
            "usb:0483:374b?baud=0",
            "serial:/dev/x?max_baud=0",
            "tcp:1?max_baud=fast",
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "tcp:h:1",
            "serial:/dev/pts/3?baud=115200",
            "tcp:[::1]:9?baud=9600",
            "usb:0483:374b",
            "usb:1366:0105:000123?baud=1000000",
            "serial:/dev/pts/3?baud=115200&max_baud=921600",
            "tcp:h:1?max_baud=460800",
        ] {
            let e: Endpoint = s.parse().unwrap();
            assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e);
        }
    }
}

//! Device endpoint strings: `serial:/dev/ttyACM0?baud=115200`, bare `COM3` / `/dev/ttyUSB0`,
//! `tcp:host:port` and the legacy `tcp:port` (host defaults to localhost).

use std::fmt;
use std::str::FromStr;

/// The default UART speed of the legacy firmware.
pub const DEFAULT_BAUD: u32 = 115_200;

/// Where a device is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A serial port (real UART, USB CDC, or a PTY).
    Serial {
        /// Device path or port name (`/dev/ttyACM0`, `COM3`, `/dev/pts/7`).
        path: String,
        /// Line speed in baud.
        baud: u32,
    },
    /// A TCP-to-UART bridge (Renode, QEMU, `wasmbed-agent-sim`).
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
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
    /// The baud rate used for pacing estimates (TCP bridges count as the legacy UART speed).
    pub fn baud(&self) -> u32 {
        match self {
            Endpoint::Serial { baud, .. } => *baud,
            Endpoint::Tcp { .. } => DEFAULT_BAUD,
        }
    }
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
            });
        }
        let (path, query) = match trimmed.strip_prefix("serial:") {
            Some(rest) => match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            },
            None => (trimmed, None),
        };
        if path.is_empty() {
            return Err(err("empty serial port name"));
        }
        let mut baud = DEFAULT_BAUD;
        if let Some(query) = query {
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("baud", v)) => {
                        baud = v
                            .parse()
                            .ok()
                            .filter(|b| *b > 0)
                            .ok_or_else(|| err("baud must be a positive number"))?;
                    }
                    _ => {
                        return Err(err(&format!(
                            "unknown serial option `{pair}` (known: baud)"
                        )))
                    }
                }
            }
        }
        Ok(Endpoint::Serial {
            path: path.to_string(),
            baud,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Serial { path, baud } => write!(f, "serial:{path}?baud={baud}"),
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
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
                baud: 9600
            })
        );
        assert_eq!(
            "COM3".parse(),
            Ok(Endpoint::Serial {
                path: "COM3".into(),
                baud: DEFAULT_BAUD
            })
        );
        assert_eq!(
            "/dev/ttyUSB0".parse::<Endpoint>().unwrap().to_string(),
            "serial:/dev/ttyUSB0?baud=115200"
        );
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
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["tcp:h:1", "serial:/dev/pts/3?baud=115200", "tcp:[::1]:9"] {
            let e: Endpoint = s.parse().unwrap();
            assert_eq!(e.to_string().parse::<Endpoint>().unwrap(), e);
        }
    }
}

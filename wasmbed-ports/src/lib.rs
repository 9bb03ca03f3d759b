//! The serial ports of this machine: USB ids, known debug probes and USB-UART bridges, and
//! `usb:VID:PID[:SERIAL]` selectors that find a board again whichever `/dev/ttyACMn` it got.
//!
//! Enumeration goes through the `serialport` crate without its `libudev` feature: on Linux it
//! reads `/sys/class/tty` (the USB ids, serial number, manufacturer and product come from sysfs),
//! on macOS IOKit, on Windows SetupAPI. Pseudo-terminals are not listed (they have no device).
//! Everything that is not the enumeration itself works on [`PortInfo`] values, so tests use
//! [`FixedPorts`] where no USB device can be had.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// How a port is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// USB (CDC ACM, or a USB-serial driver such as ftdi_sio, cp210x, ch341).
    Usb,
    /// A PCI card.
    Pci,
    /// Bluetooth RFCOMM.
    Bluetooth,
    /// Anything else (on-board UART, platform device).
    Other,
}

/// The USB identity of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbIds {
    /// Vendor id.
    #[serde(serialize_with = "hex4")]
    pub vid: u16,
    /// Product id.
    #[serde(serialize_with = "hex4")]
    pub pid: u16,
    /// `iSerialNumber` string.
    pub serial_number: Option<String>,
    /// `iManufacturer` string.
    pub manufacturer: Option<String>,
    /// `iProduct` string.
    pub product: Option<String>,
}

fn hex4<S: Serializer>(v: &u16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:04x}"))
}

/// What a known USB id is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KnownKind {
    /// A debug probe with a virtual COM port (ST-LINK, J-Link, CMSIS-DAP): the usual way a
    /// development board's UART reaches the PC.
    DebugProbe,
    /// A USB-to-UART bridge chip (FTDI, CP210x, CH340, PL2303).
    UsbUart,
    /// A board or chip with native USB serial.
    Board,
}

impl fmt::Display for KnownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KnownKind::DebugProbe => "debug probe",
            KnownKind::UsbUart => "USB-UART",
            KnownKind::Board => "board",
        })
    }
}

/// One entry of the [`KNOWN`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Known {
    /// Vendor id.
    #[serde(serialize_with = "hex4")]
    pub vid: u16,
    /// Product id; `None` matches every product of the vendor.
    #[serde(skip)]
    pub pid: Option<u16>,
    /// What to call it.
    pub name: &'static str,
    /// What it is.
    pub kind: KnownKind,
}

const fn probe(vid: u16, pid: u16, name: &'static str) -> Known {
    Known {
        vid,
        pid: Some(pid),
        name,
        kind: KnownKind::DebugProbe,
    }
}

const fn uart(vid: u16, pid: u16, name: &'static str) -> Known {
    Known {
        vid,
        pid: Some(pid),
        name,
        kind: KnownKind::UsbUart,
    }
}

/// Known debug probes and USB-UART bridges, the one table every listing uses. Exact product
/// entries come before vendor-wide ones.
pub const KNOWN: &[Known] = &[
    probe(0x0483, 0x374b, "ST-LINK/V2-1 VCP"),
    probe(0x0483, 0x374e, "STLINK-V3 VCP"),
    probe(0x0483, 0x374f, "STLINK-V3 VCP"),
    probe(0x0483, 0x3752, "ST-LINK/V2-1 VCP"),
    probe(0x0483, 0x3753, "STLINK-V3 VCP"),
    probe(0x0483, 0x3754, "STLINK-V3 VCP"),
    probe(0x0d28, 0x0204, "Arm DAPLink CMSIS-DAP VCP"),
    probe(0x2e8a, 0x000c, "Raspberry Pi Debug Probe (CMSIS-DAP)"),
    probe(0x1fc9, 0x0143, "NXP MCU-Link (CMSIS-DAP)"),
    probe(0x03eb, 0x2111, "Microchip EDBG (CMSIS-DAP)"),
    probe(0x303a, 0x1001, "Espressif USB-Serial/JTAG"),
    Known {
        vid: 0x1366,
        pid: None,
        name: "SEGGER J-Link VCOM",
        kind: KnownKind::DebugProbe,
    },
    uart(0x0403, 0x6001, "FTDI FT232R"),
    uart(0x0403, 0x6010, "FTDI FT2232"),
    uart(0x0403, 0x6011, "FTDI FT4232"),
    uart(0x0403, 0x6014, "FTDI FT232H"),
    uart(0x0403, 0x6015, "FTDI FT-X"),
    uart(0x10c4, 0xea60, "Silicon Labs CP210x"),
    uart(0x10c4, 0xea70, "Silicon Labs CP2105"),
    uart(0x1a86, 0x7523, "WCH CH340"),
    uart(0x1a86, 0x5523, "WCH CH341"),
    uart(0x1a86, 0x55d4, "WCH CH9102"),
    uart(0x067b, 0x2303, "Prolific PL2303"),
    Known {
        vid: 0x2341,
        pid: None,
        name: "Arduino",
        kind: KnownKind::Board,
    },
];

/// The [`KNOWN`] entry for a USB id, if any.
pub fn identify(vid: u16, pid: u16) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| k.vid == vid && k.pid.is_none_or(|p| p == pid))
}

/// One serial port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortInfo {
    /// What to open (`/dev/ttyACM0`, `COM3`).
    pub path: String,
    /// How it is attached.
    pub transport: Transport,
    /// USB identity, for USB ports.
    pub usb: Option<UsbIds>,
    /// The [`KNOWN`] entry of its USB id.
    pub known: Option<Known>,
}

impl PortInfo {
    /// A USB port; `known` is looked up from the ids.
    pub fn usb(path: impl Into<String>, ids: UsbIds) -> Self {
        PortInfo {
            path: path.into(),
            transport: Transport::Usb,
            known: identify(ids.vid, ids.pid).copied(),
            usb: Some(ids),
        }
    }

    /// A port without USB identity.
    pub fn other(path: impl Into<String>, transport: Transport) -> Self {
        PortInfo {
            path: path.into(),
            transport,
            usb: None,
            known: None,
        }
    }

    /// `usb:VID:PID[:SERIAL]` that selects this port (with the serial number when it has one).
    pub fn selector(&self) -> Option<UsbSelector> {
        self.usb.as_ref().map(|u| UsbSelector {
            vid: u.vid,
            pid: u.pid,
            serial: u.serial_number.clone(),
        })
    }

    /// One line for logs and error messages:
    /// `/dev/ttyACM0 0483:374b serial 066DFF… (STMicroelectronics STM32 STLink, ST-LINK/V2-1 VCP)`.
    pub fn summary(&self) -> String {
        let Some(u) = &self.usb else {
            return format!("{} ({})", self.path, self.transport);
        };
        let mut s = format!("{} {:04x}:{:04x}", self.path, u.vid, u.pid);
        if let Some(sn) = &u.serial_number {
            s.push_str(&format!(" serial {sn}"));
        }
        let mut what: Vec<String> = [&u.manufacturer, &u.product]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(k) = &self.known {
            what.push(format!("{} ({})", k.name, k.kind));
        }
        if !what.is_empty() {
            s.push_str(&format!(" [{}]", what.join(", ")));
        }
        s
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Usb => "usb",
            Transport::Pci => "pci",
            Transport::Bluetooth => "bluetooth",
            Transport::Other => "other",
        })
    }
}

/// Why the ports could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot list serial ports: {0}")]
pub struct ListError(pub String);

/// Lists serial ports: the machine's ([`SystemPorts`]) or a fixed set ([`FixedPorts`], tests).
pub trait PortLister: Send + Sync + fmt::Debug {
    /// The ports present now, sorted by path.
    fn ports(&self) -> Result<Vec<PortInfo>, ListError>;
}

/// The serial ports of this machine, through `serialport`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemPorts;

impl PortLister for SystemPorts {
    fn ports(&self) -> Result<Vec<PortInfo>, ListError> {
        // serialport panics when /sys/class/tty is missing (a container without sysfs).
        #[cfg(target_os = "linux")]
        if !std::path::Path::new("/sys/class/tty").is_dir() {
            return Err(ListError(
                "/sys/class/tty is missing (is sysfs mounted?)".into(),
            ));
        }
        let found = serialport::available_ports().map_err(|e| ListError(e.to_string()))?;
        let mut ports: Vec<PortInfo> = found
            .into_iter()
            .map(|p| match p.port_type {
                serialport::SerialPortType::UsbPort(u) => PortInfo::usb(
                    p.port_name,
                    UsbIds {
                        vid: u.vid,
                        pid: u.pid,
                        serial_number: u.serial_number,
                        manufacturer: u.manufacturer,
                        product: u.product,
                    },
                ),
                serialport::SerialPortType::PciPort => PortInfo::other(p.port_name, Transport::Pci),
                serialport::SerialPortType::BluetoothPort => {
                    PortInfo::other(p.port_name, Transport::Bluetooth)
                }
                serialport::SerialPortType::Unknown => {
                    PortInfo::other(p.port_name, Transport::Other)
                }
            })
            .collect();
        sort(&mut ports);
        Ok(ports)
    }
}

/// A fixed list of ports (tests, and a machine whose ports are described rather than probed).
#[derive(Debug, Clone, Default)]
pub struct FixedPorts(pub Vec<PortInfo>);

impl PortLister for FixedPorts {
    fn ports(&self) -> Result<Vec<PortInfo>, ListError> {
        let mut ports = self.0.clone();
        sort(&mut ports);
        Ok(ports)
    }
}

/// Sorts by path, numbers in names by value (`ttyACM2` before `ttyACM10`).
fn sort(ports: &mut [PortInfo]) {
    fn key(p: &str) -> (String, u64) {
        let digits = p.len() - p.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (head, num) = p.split_at(p.len() - digits);
        (head.to_string(), num.parse().unwrap_or(0))
    }
    ports.sort_by_key(|p| key(&p.path));
}

/// `VID:PID[:SERIAL]` (hex ids): selects a USB serial port by identity rather than by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsbSelector {
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
    /// Serial number (compared ignoring ASCII case); `None` matches any.
    pub serial: Option<String>,
}

/// Why a [`UsbSelector`] string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not VID:PID[:SERIAL] with 4-digit hex ids (e.g. 0483:374b or 0483:374b:066DFF535155878281123456): {reason}")]
pub struct SelectorError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for UsbSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SelectorError {
            input: s.to_string(),
            reason,
        };
        let mut parts = s.splitn(3, ':');
        let hex = |p: Option<&str>| {
            p.filter(|p| p.len() == 4)
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        let vid = hex(parts.next()).ok_or_else(|| err("bad vendor id"))?;
        let pid = hex(parts.next()).ok_or_else(|| err("bad product id"))?;
        let serial = match parts.next() {
            None => None,
            Some("") => return Err(err("empty serial number")),
            Some(sn) if sn.chars().any(|c| c.is_control() || c == '?') => {
                return Err(err("the serial number has a control character or `?`"))
            }
            Some(sn) => Some(sn.to_string()),
        };
        Ok(UsbSelector { vid, pid, serial })
    }
}

impl fmt::Display for UsbSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vid, self.pid)?;
        if let Some(sn) = &self.serial {
            write!(f, ":{sn}")?;
        }
        Ok(())
    }
}

/// Why a [`UsbSelector`] found no single port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Nothing matches.
    #[error("no serial port is USB {selector}")]
    NotFound {
        /// The selector.
        selector: String,
    },
    /// Several ports match and no serial number tells them apart.
    #[error("{} serial ports are USB {selector}: add the serial number (usb:{selector}:SERIAL) to pick one: {}",
        matches.len(), matches.iter().map(PortInfo::summary).collect::<Vec<_>>().join("; "))]
    Ambiguous {
        /// The selector.
        selector: String,
        /// The matching ports.
        matches: Vec<PortInfo>,
    },
}

impl UsbSelector {
    /// True when `ids` is this device.
    pub fn matches(&self, ids: &UsbIds) -> bool {
        ids.vid == self.vid
            && ids.pid == self.pid
            && self.serial.as_ref().is_none_or(|want| {
                ids.serial_number
                    .as_ref()
                    .is_some_and(|got| got.eq_ignore_ascii_case(want))
            })
    }

    /// The one port among `ports` this selects.
    pub fn resolve<'a>(&self, ports: &'a [PortInfo]) -> Result<&'a PortInfo, ResolveError> {
        let found: Vec<&PortInfo> = ports
            .iter()
            .filter(|p| p.usb.as_ref().is_some_and(|u| self.matches(u)))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(ResolveError::NotFound {
                selector: self.to_string(),
            }),
            many => Err(ResolveError::Ambiguous {
                selector: self.to_string(),
                matches: many.iter().map(|p| (*p).clone()).collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stlink(path: &str, serial: &str) -> PortInfo {
        PortInfo::usb(
            path,
            UsbIds {
                vid: 0x0483,
                pid: 0x374b,
                serial_number: Some(serial.into()),
                manufacturer: Some("STMicroelectronics".into()),
                product: Some("STM32 STLink".into()),
            },
        )
    }

    #[test]
    fn identifies_known_ids() {
        assert_eq!(identify(0x0483, 0x374b).unwrap().name, "ST-LINK/V2-1 VCP");
        assert_eq!(
            identify(0x0483, 0x3753).unwrap().kind,
            KnownKind::DebugProbe
        );
        assert_eq!(identify(0x1366, 0x1051).unwrap().name, "SEGGER J-Link VCOM");
        assert_eq!(identify(0x10c4, 0xea60).unwrap().kind, KnownKind::UsbUart);
        assert_eq!(identify(0x1a86, 0x7523).unwrap().name, "WCH CH340");
        assert_eq!(identify(0x0483, 0x5740), None);
        // Exact entries first: no vendor-wide entry shadows a product entry.
        for (i, k) in KNOWN.iter().enumerate() {
            if let Some(pid) = k.pid {
                assert_eq!(identify(k.vid, pid), Some(&KNOWN[i]), "{k:?}");
            }
        }
    }

    #[test]
    fn selector_parses_and_prints() {
        let s: UsbSelector = "0483:374B".parse().unwrap();
        assert_eq!((s.vid, s.pid, s.serial.as_deref()), (0x0483, 0x374b, None));
        assert_eq!(s.to_string(), "0483:374b");
        let s: UsbSelector = "0483:374b:066DFF:x".parse().unwrap();
        assert_eq!(s.serial.as_deref(), Some("066DFF:x"));
        for bad in [
            "",
            "483:374b",
            "0483",
            "0483:zzzz",
            "0483:374b:",
            "04830:374b",
        ] {
            assert!(bad.parse::<UsbSelector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn resolves_by_ids_and_serial() {
        let ports = vec![
            stlink("/dev/ttyACM0", "AAA1"),
            stlink("/dev/ttyACM1", "BBB2"),
            PortInfo::other("/dev/ttyS0", Transport::Other),
        ];
        let pick = |s: &str| {
            s.parse::<UsbSelector>()
                .unwrap()
                .resolve(&ports)
                .map(|p| p.path.clone())
        };
        assert_eq!(pick("0483:374b:bbb2").unwrap(), "/dev/ttyACM1");
        assert_eq!(pick("0483:374b:AAA1").unwrap(), "/dev/ttyACM0");
        let e = pick("0483:374b").unwrap_err();
        assert!(matches!(&e, ResolveError::Ambiguous { matches, .. } if matches.len() == 2));
        assert!(e.to_string().contains("serial AAA1"), "{e}");
        assert!(matches!(
            pick("0483:374b:CCC3"),
            Err(ResolveError::NotFound { .. })
        ));
    }

    #[test]
    fn fixed_ports_sort_numerically() {
        let l = FixedPorts(vec![
            stlink("/dev/ttyACM10", "a"),
            stlink("/dev/ttyACM2", "b"),
            PortInfo::other("/dev/ttyS0", Transport::Other),
        ]);
        let paths: Vec<_> = l.ports().unwrap().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["/dev/ttyACM2", "/dev/ttyACM10", "/dev/ttyS0"]);
    }

    #[test]
    fn summary_names_ids_and_probe() {
        assert_eq!(
            stlink("/dev/ttyACM0", "066D").summary(),
            "/dev/ttyACM0 0483:374b serial 066D [STMicroelectronics, STM32 STLink, \
             ST-LINK/V2-1 VCP (debug probe)]"
        );
        assert_eq!(
            PortInfo::other("/dev/ttyS0", Transport::Other).summary(),
            "/dev/ttyS0 (other)"
        );
    }

    #[test]
    fn json_has_hex_ids_and_known() {
        let v = serde_json::to_value(stlink("/dev/ttyACM0", "1")).unwrap();
        assert_eq!(v["usb"]["vid"], "0483");
        assert_eq!(v["usb"]["pid"], "374b");
        assert_eq!(v["transport"], "usb");
        assert_eq!(v["known"]["kind"], "debug_probe");
        assert_eq!(v["known"]["name"], "ST-LINK/V2-1 VCP");
    }
}

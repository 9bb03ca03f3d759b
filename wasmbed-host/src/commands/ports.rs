//! `wasmbed-host ports`: the serial ports of the machine the host runs on (not the gateway's:
//! the gateway logs its own list at start, and `devices` shows the candidates of an offline
//! device), with USB ids, serial numbers, and the known debug probes and USB-UART bridges of
//! [`wasmbed_ports::KNOWN`] marked. Needs no gateway.

use serde_json::{Map, Value};
use wasmbed_ports::{PortInfo, PortLister};

use super::Report;
use crate::error::HostError;

/// Lists the ports `lister` sees.
pub fn run(lister: &dyn PortLister) -> Report {
    let list = match lister.ports() {
        Ok(list) => list,
        Err(e) => return Report::from_error("ports", HostError::Internal(e.to_string())),
    };
    let mut doc = Map::new();
    doc.insert("ok".into(), true.into());
    doc.insert("command".into(), "ports".into());
    let json: Vec<Value> = list
        .iter()
        .map(|p| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["endpoint"] = endpoint(p).into();
            v
        })
        .collect();
    doc.insert("ports".into(), json.into());
    Report {
        doc,
        text: text(&list),
        e2e_ms: None,
        error: None,
        stderr: None,
    }
}

/// The gateway endpoint that reaches `p`: `usb:VID:PID[:SERIAL]` for USB ports (found again
/// under any name), else `serial:PATH`.
fn endpoint(p: &PortInfo) -> String {
    match p.selector() {
        Some(sel) => format!("usb:{sel}"),
        None => format!("serial:{}", p.path),
    }
}

/// One block per port, each line within 80 columns for the usual lengths:
///
/// ```text
/// /dev/ttyACM0  0483:374b  ST-LINK/V2-1 VCP (debug probe)
///   serial 066DFF535155878281123456
///   STMicroelectronics, STM32 STLink
///   endpoint usb:0483:374b:066DFF535155878281123456
/// ```
pub fn text(list: &[PortInfo]) -> String {
    if list.is_empty() {
        return "no serial ports found (USB boards appear as /dev/ttyACM* or /dev/ttyUSB*; \
                check the cable, and `dmesg` for the driver)\n"
            .into();
    }
    let mut out = String::new();
    for p in list {
        let mut head = p.path.clone();
        match &p.usb {
            Some(u) => head.push_str(&format!("  {:04x}:{:04x}", u.vid, u.pid)),
            None => head.push_str(&format!("  {}", p.transport)),
        }
        if let Some(k) = &p.known {
            head.push_str(&format!("  {} ({})", k.name, k.kind));
        }
        out.push_str(&head);
        out.push('\n');
        if let Some(u) = &p.usb {
            if let Some(sn) = &u.serial_number {
                out.push_str(&format!("  serial {sn}\n"));
            }
            let names: Vec<&str> = [&u.manufacturer, &u.product]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if !names.is_empty() {
                out.push_str(&format!("  {}\n", names.join(", ")));
            }
        }
        out.push_str(&format!("  endpoint {}\n", endpoint(p)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmbed_ports::{FixedPorts, Transport, UsbIds};

    fn fixture() -> FixedPorts {
        FixedPorts(vec![
            PortInfo::usb(
                "/dev/ttyUSB0",
                UsbIds {
                    vid: 0x1a86,
                    pid: 0x7523,
                    serial_number: None,
                    manufacturer: None,
                    product: Some("USB Serial".into()),
                },
            ),
            PortInfo::usb(
                "/dev/ttyACM0",
                UsbIds {
                    vid: 0x0483,
                    pid: 0x374b,
                    serial_number: Some("066DFF535155878281123456".into()),
                    manufacturer: Some("STMicroelectronics".into()),
                    product: Some("STM32 STLink".into()),
                },
            ),
            PortInfo::usb(
                "/dev/ttyACM1",
                UsbIds {
                    vid: 0x2fe3,
                    pid: 0x0100,
                    serial_number: Some("E6614C311B4D".into()),
                    manufacturer: Some("ZEPHYR".into()),
                    product: Some("USB-DEV".into()),
                },
            ),
            PortInfo::other("/dev/ttyS0", Transport::Other),
        ])
    }

    #[test]
    fn text_fits_80_columns_and_marks_probes() {
        let r = run(&fixture());
        insta::assert_snapshot!(r.text, @r"
        /dev/ttyACM0  0483:374b  ST-LINK/V2-1 VCP (debug probe)
          serial 066DFF535155878281123456
          STMicroelectronics, STM32 STLink
          endpoint usb:0483:374b:066DFF535155878281123456
        /dev/ttyACM1  2fe3:0100
          serial E6614C311B4D
          ZEPHYR, USB-DEV
          endpoint usb:2fe3:0100:E6614C311B4D
        /dev/ttyS0  other
          endpoint serial:/dev/ttyS0
        /dev/ttyUSB0  1a86:7523  WCH CH340 (USB-UART)
          USB Serial
          endpoint usb:1a86:7523
        ");
        assert!(r.text.lines().all(|l| l.chars().count() <= 80));
    }

    #[test]
    fn json_has_ids_known_and_endpoint() {
        let r = run(&fixture());
        let list = r.doc["ports"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list[0]["path"], "/dev/ttyACM0");
        assert_eq!(list[0]["usb"]["vid"], "0483");
        assert_eq!(list[0]["usb"]["serial_number"], "066DFF535155878281123456");
        assert_eq!(list[0]["known"]["kind"], "debug_probe");
        assert_eq!(
            list[0]["endpoint"],
            "usb:0483:374b:066DFF535155878281123456"
        );
        assert_eq!(list[2]["transport"], "other");
        assert_eq!(list[2]["known"], Value::Null);
        assert_eq!(r.doc["ok"], true);
    }

    #[test]
    fn no_ports_says_where_to_look() {
        let r = run(&FixedPorts(vec![]));
        assert!(r.text.starts_with("no serial ports found"), "{}", r.text);
        assert_eq!(r.doc["ports"], serde_json::json!([]));
    }
}

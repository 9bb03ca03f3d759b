//! `usb:VID:PID[:SERIAL]` endpoints and offline reasons, against the real simulated board on
//! pseudo-terminals; the USB enumeration is a fake ([`Ports`]) since no USB device can be had.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wasmbed_gateway::config::Config;
use wasmbed_gateway::run::Running;
use wasmbed_gateway::sim::SimLink;
use wasmbed_ports::{ListError, PortInfo, PortLister, UsbIds};

use common::{start_sim, Client};

/// A USB enumeration the test rewrites while the gateway runs.
#[derive(Debug, Default)]
struct Ports(Mutex<Vec<PortInfo>>);

impl Ports {
    fn set(&self, ports: Vec<PortInfo>) {
        *self.0.lock().unwrap() = ports;
    }
}

impl PortLister for Ports {
    fn ports(&self) -> Result<Vec<PortInfo>, ListError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn usb(path: &str, vid: u16, pid: u16, serial: &str) -> PortInfo {
    PortInfo::usb(
        path,
        UsbIds {
            vid,
            pid,
            serial_number: Some(serial.into()),
            manufacturer: Some("STMicroelectronics".into()),
            product: Some("STM32 STLink".into()),
        },
    )
}

fn pty_path(sim: &wasmbed_gateway::sim::SimChild) -> String {
    match &sim.endpoint {
        wasmbed_gateway::endpoint::Endpoint::Serial { path, .. } => path.clone(),
        other => panic!("not a pty: {other}"),
    }
}

async fn gateway(devices: &[&str], ports: Arc<Ports>) -> Running {
    let mut cfg = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        cache_dir: std::env::temp_dir().join("wasmbed-gw-test-cache"),
        ..Default::default()
    };
    for d in devices {
        cfg.apply_device_flag(d).unwrap();
    }
    wasmbed_gateway::run::start_with_ports(cfg, ports)
        .await
        .unwrap()
}

/// The `devices` entry of `name`.
async fn device(gw: &Running, name: &str) -> Value {
    let mut c = Client::connect(gw.addr).await;
    let a = c.call(json!({"op": "devices"})).await;
    a.ok()["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no device {name}: {}", a.reply))
}

/// Polls `devices` until `pred` holds for `name` (15 s bound: reconnects back off up to 3.2 s
/// in these tests).
async fn wait_for(gw: &Running, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let d = device(gw, name).await;
        if pred(&d) {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never became {what}: {d}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reason(d: &Value) -> &str {
    d["offline_reason"].as_str().unwrap_or("")
}

fn candidates(d: &Value) -> Vec<String> {
    d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usb_endpoint_finds_the_board_again_on_another_port() {
    let ports = Arc::new(Ports::default());
    let mut first = start_sim(SimLink::Pty { baud: 115_200 }).await;
    ports.set(vec![usb(&pty_path(&first), 0x0483, 0x374b, "066DFF01")]);
    let gw = gateway(
        &["nucleo=usb:0483:374b:066dff01?baud=115200"],
        ports.clone(),
    )
    .await;

    let d = wait_for(&gw, "nucleo", "online", |d| d["proto"] == 2).await;
    assert_eq!(d["online"], true, "{d}");
    assert_eq!(d["endpoint"], "usb:0483:374b:066dff01?baud=115200");
    assert_eq!(d["offline_reason"], Value::Null, "{d}");

    // The board's next port (started now so that the kernel cannot hand out the same pty).
    let second = start_sim(SimLink::Pty { baud: 115_200 }).await;
    let second_path = pty_path(&second);
    assert_ne!(second_path, pty_path(&first));

    // Unplugged: another adapter is present, the board is not.
    ports.set(vec![usb("/dev/ttyUSB7", 0x1a86, 0x7523, "CH1")]);
    first.child.kill().await.unwrap();
    let d = wait_for(&gw, "nucleo", "offline with a reason", |d| {
        reason(d).contains("no serial port is USB 0483:374b:066dff01")
    })
    .await;
    assert_eq!(d["online"], false, "{d}");
    let c = candidates(&d);
    assert_eq!(c.len(), 1, "{d}");
    assert!(
        c[0].contains("/dev/ttyUSB7 1a86:7523") && c[0].contains("usb:1a86:7523:CH1"),
        "{c:?}"
    );
    // A command names the reason and the ports present.
    let mut client = Client::connect(gw.addr).await;
    let a = client
        .call(json!({"op": "status", "device": "nucleo"}))
        .await;
    assert_eq!(a.err_code(), "DEVICE_OFFLINE", "{}", a.reply);
    let msg = a.reply["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("no serial port is USB") && msg.contains("/dev/ttyUSB7"),
        "{msg}"
    );

    // Plugged in again, under another name.
    ports.set(vec![
        usb("/dev/ttyUSB7", 0x1a86, 0x7523, "CH1"),
        usb(&second_path, 0x0483, 0x374b, "066DFF01"),
    ]);
    let d = wait_for(&gw, "nucleo", "online again", |d| d["online"] == true).await;
    assert_eq!(d["offline_reason"], Value::Null, "{d}");
    assert_eq!(candidates(&d), Vec::<String>::new());
    let a = client
        .call(json!({"op": "status", "device": "nucleo"}))
        .await;
    a.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_serial_port_lists_candidates() {
    let ports = Arc::new(Ports::default());
    ports.set(vec![
        usb("/dev/ttyACM3", 0x0483, 0x374b, "AAA"),
        PortInfo::other("/dev/ttyS0", wasmbed_ports::Transport::Other),
    ]);
    let gw = gateway(
        &["nucleo=serial:/dev/wasmbed-no-such-port?baud=9600"],
        ports,
    )
    .await;
    let d = wait_for(&gw, "nucleo", "offline with a reason", |d| {
        !reason(d).is_empty()
    })
    .await;
    assert_eq!(d["online"], false);
    assert!(
        reason(&d).contains("cannot open serial port /dev/wasmbed-no-such-port"),
        "{d}"
    );
    // Only USB ports are candidates, each with the endpoint that follows it.
    let c = candidates(&d);
    assert_eq!(c.len(), 1, "{d}");
    assert!(c[0].contains("ST-LINK/V2-1 VCP (debug probe)"), "{c:?}");
    assert!(c[0].ends_with("-> usb:0483:374b:AAA"), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_matching_probes_need_the_serial_number() {
    let ports = Arc::new(Ports::default());
    ports.set(vec![
        usb("/dev/ttyACM0", 0x0483, 0x374b, "AAA"),
        usb("/dev/ttyACM1", 0x0483, 0x374b, "BBB"),
    ]);
    let gw = gateway(&["nucleo=usb:0483:374b"], ports).await;
    let d = wait_for(&gw, "nucleo", "offline with a reason", |d| {
        !reason(d).is_empty()
    })
    .await;
    assert!(
        reason(&d).contains("2 serial ports are USB 0483:374b")
            && reason(&d).contains("usb:0483:374b:SERIAL"),
        "{d}"
    );
    assert_eq!(candidates(&d).len(), 2, "{d}");
}

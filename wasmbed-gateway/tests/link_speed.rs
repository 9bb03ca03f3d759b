//! Deadlines follow the link's speed: the configured one (`?baud=` on any endpoint, the `baud`
//! key), else the one the firmware reports in INFO (`baud=`). Paused clock, in-memory link.

mod common;

use std::sync::Arc;
use std::time::Duration;

use wasmbed_gateway::device::{
    spawn_device, DeployRequest, DeviceError, DeviceOptions, Reply, Request,
};

use common::{Conn, DuplexConnector, INFO_V2, STATUS_V2_EMPTY};

const SIZE: usize = 4000;

/// A v1-style upload of 4000 bytes whose `LOAD_OK` comes 5 s after the payload: in time at
/// 9600 baud (3 s + 4000 B / 960 B/s ≈ 7.2 s), too late at 115200 (3 s + 0.35 s).
async fn slow_upload(opts_baud: Option<u32>, info_baud: Option<u32>) -> Result<Reply, DeviceError> {
    let (connector, mut links) = DuplexConnector::new(0);
    let mut opts = DeviceOptions::new("d", connector);
    opts.baud = opts_baud;
    if let Some(b) = opts_baud {
        opts.timeouts.link_bytes_per_sec = b / 10;
    }
    let dev = spawn_device(opts);
    let mut c = Conn::new(links.recv().await.unwrap());
    c.expect("INFO").await;
    let info = match info_baud {
        Some(b) => INFO_V2.replace(" line_max=255 ", &format!(" line_max=255 baud={b} ")),
        None => INFO_V2.to_string(),
    };
    c.say(&info).await;
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;

    let bytes: Vec<u8> = (0..SIZE).map(|i| (i * 7 + 3) as u8).collect();
    let d = dev.clone();
    let call = tokio::spawn(async move {
        let req = Request::Deploy(DeployRequest {
            module_id: "m".into(),
            bytes: Arc::new(bytes),
            replace: false,
            replace_victim: None,
            force: true,
            version: 0,
            signature: None,
        });
        d.call(req, None).await
    });
    let load = c.expect("LOAD module_id=m").await;
    let crc = load
        .split(' ')
        .find_map(|f| f.strip_prefix("crc32="))
        .unwrap()
        .to_string();
    // No chunk= : the v1 raw payload follows.
    c.say(&format!("LOAD_READY module_id=m size={SIZE} crc32={crc}"))
        .await;
    c.payload(SIZE).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    c.say("LOAD_OK").await;
    let out = call.await.unwrap();
    if out.result.is_ok() {
        // The gateway re-reads STATUS after a successful upload.
        c.expect("STATUS").await;
        c.say(STATUS_V2_EMPTY).await;
    }
    out.result
}

#[tokio::test(start_paused = true)]
async fn info_baud_stretches_the_deadlines() {
    let r = slow_upload(None, Some(9600)).await;
    assert!(matches!(r, Ok(Reply::Loaded { .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn without_a_speed_the_default_deadline_passes() {
    let r = slow_upload(None, None).await;
    assert!(
        matches!(&r, Err(DeviceError::Timeout { phase, .. }) if phase.contains("LOAD_OK")),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_configured_speed_wins_over_info() {
    let r = slow_upload(Some(115_200), Some(9600)).await;
    assert!(matches!(r, Err(DeviceError::Timeout { .. })), "{r:?}");
    let r = slow_upload(Some(9600), None).await;
    assert!(matches!(r, Ok(Reply::Loaded { .. })), "{r:?}");
}

#[tokio::test(start_paused = true)]
async fn the_state_shows_the_speed_in_use() {
    let (connector, mut links) = DuplexConnector::new(0);
    let dev = spawn_device(DeviceOptions::new("d", connector));
    let mut c = Conn::new(links.recv().await.unwrap());
    c.expect("INFO").await;
    c.say(&INFO_V2.replace(" line_max=255 ", " line_max=255 baud=19200 "))
        .await;
    c.expect("STATUS").await;
    c.say(STATUS_V2_EMPTY).await;
    for _ in 0..100 {
        if dev.snapshot().proto.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let s = dev.snapshot();
    assert_eq!(s.link_bytes_per_sec, 1920);
    assert_eq!(s.info.as_ref().unwrap().baud, Some(19200));
}

//! Legacy JSON requests in the legacy host.py byte format against a scripted device.

mod common;

use common::*;

#[tokio::test]
async fn legacy_status_and_start_match_python_format() {
    let dev = FakeDevice::start(legacy_b3()).await;
    let gw = gateway(&[format!("nucleo_f4=tcp:127.0.0.1:{}", dev.port)]).await;
    wait_online(&gw, "nucleo_f4").await;

    // host.py: json.dumps(req).encode() + b"\n"
    let reply = host_raw(
        gw.addr,
        b"{\"cmd\": \"status\", \"device\": \"nucleo_f4\"}\n",
    )
    .await;
    assert!(
        reply.starts_with("{\"ok\": true, \"detail\": \"STATUS_OK modules=\\\"math_ops:LOADED"),
        "{reply}"
    );
    assert!(reply.ends_with("}\n"));

    let req = b"{\"cmd\": \"start\", \"device\": \"nucleo_f4\", \"module_id\": \"math_ops\", \"func_name\": \"add\", \"func_args\": \"a=200,b=26\", \"wait_result\": true, \"result_timeout\": 10.0}\n";
    let reply = host_raw(gw.addr, req).await;
    assert_eq!(reply, "{\"ok\": true, \"detail\": \"RESULT status=OK module_id=math_ops func=add ret_i32=226\"}\n");
    assert!(
        dev.heard()
            .contains(&"START module_id=math_ops func=add args=\"a=200,b=26\"".to_string())
            || dev
                .heard()
                .iter()
                .any(|l| l.starts_with("START module_id=math_ops func=add args=")),
        "{:?}",
        dev.heard()
    );

    let reply = host_raw(gw.addr, b"{\"cmd\": \"start\", \"device\": \"nucleo_f4\", \"module_id\": \"nope\", \"func_name\": \"add\"}\n").await;
    assert_eq!(
        reply,
        "{\"ok\": false, \"error\": \"RESULT status=NO_MODULE\"}\n"
    );
}

#[tokio::test]
async fn every_failure_gets_a_json_reply() {
    let dev = FakeDevice::start(legacy_b3()).await;
    let gw = gateway(&[format!("d=tcp:127.0.0.1:{}", dev.port)]).await;
    wait_online(&gw, "d").await;
    // Online means INFO was answered; the handshake's STATUS may still be on its way.
    for _ in 0..250 {
        if dev.heard().iter().any(|l| l == "STATUS") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = dev.heard().len();

    let r = host_raw(gw.addr, b"{not json\n").await;
    assert!(
        r.starts_with("{\"ok\": false, \"error\": \"malformed JSON"),
        "{r}"
    );
    let r = host_raw(gw.addr, b"{\"cmd\": \"status\", \"device\": \"ghost\"}\n").await;
    assert!(r.contains("no device named 'ghost'"), "{r}");
    let r = host_raw(gw.addr, b"{\"cmd\": \"explode\", \"device\": \"d\"}\n").await;
    assert_eq!(
        r,
        "{\"ok\": false, \"error\": \"comando sconosciuto: explode\"}\n"
    );
    // Injection: a module_id with a space would add fields to the START line.
    let r = host_raw(gw.addr, b"{\"cmd\": \"start\", \"device\": \"d\", \"module_id\": \"m replace=1\", \"func_name\": \"f\"}\n").await;
    assert!(
        r.starts_with("{\"ok\": false") && r.contains("module_id"),
        "{r}"
    );
    let r = host_raw(gw.addr, b"{\"cmd\": \"start\", \"device\": \"d\", \"module_id\": \"m\\nSTOP\", \"func_name\": \"f\"}\n").await;
    assert!(r.starts_with("{\"ok\": false"), "{r}");
    // Oversized line.
    let mut big = vec![b'x'; 70 * 1024];
    big.push(b'\n');
    let r = host_raw(gw.addr, &big).await;
    assert!(r.contains("TOO_LARGE"), "{r}");
    // Oversized body announced.
    let r = host_raw(gw.addr, b"{\"cmd\": \"load\", \"device\": \"d\", \"module_id\": \"m\", \"blob_size\": 99999999, \"blob_crc32\": \"00000000\"}\n").await;
    assert!(r.contains("over the limit"), "{r}");
    // CRC mismatch.
    let r = host_raw(gw.addr, b"{\"cmd\": \"load\", \"device\": \"d\", \"module_id\": \"m\", \"blob_size\": 3, \"blob_crc32\": \"DEADBEEF\"}\nabc").await;
    assert_eq!(
        r,
        "{\"ok\": false, \"error\": \"CRC mismatch expected=deadbeef got=352441c2\"}\n"
    );
    assert_eq!(
        dev.heard().len(),
        before,
        "nothing reached the device: {:?}",
        dev.heard()
    );
}

//! Compressed uploads (docs/PROTOCOL.md "Compressed uploads"): the real agent inflates frames of
//! a raw deflate stream into the module buffer; a stream it cannot inflate to exactly the
//! announced module is refused with `LOAD_ERR code=BAD_STREAM` (or `BAD_CRC` when it inflates to
//! other bytes of the right size) and nothing is loaded.

mod common;

use common::{crc32, module, Link, Sim};
use std::io::Write as _;
use std::time::{Duration, Instant};
use wasmbed_agent_proto::frame;

const T: Duration = Duration::from_secs(5);

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// fft_bench with a 12 KiB custom section of text-like bytes: a module that compresses well.
fn big_module() -> Vec<u8> {
    let mut m = module("fft_bench");
    let body: Vec<u8> = (0..12 * 1024u32)
        .map(|i| b"wasmbed compressed upload "[(i % 26) as usize] ^ ((i / 4096) as u8))
        .collect();
    let mut sec = vec![3u8];
    sec.extend_from_slice(b"pad");
    sec.extend_from_slice(&body);
    m.push(0);
    let mut n = sec.len();
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        m.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    m.extend_from_slice(&sec);
    m
}

/// Sends the compressed LOAD and returns its LOAD_READY (or the refusal).
fn begin(l: &mut Link, id: &str, m: &[u8], csize: usize) -> String {
    l.send(&format!(
        "LOAD module_id={id} size={} crc32={:08x} chunked=1 framed=1 compress=deflate csize={csize}",
        m.len(),
        crc32(m)
    ));
    l.expect("LOAD_")
}

/// Frames `stream` in chunks of `chunk` bytes; returns the line after the last frame sent
/// (a refusal stops early).
fn send_stream(l: &mut Link, stream: &[u8], chunk: usize) -> String {
    let mut off = 0;
    loop {
        let n = chunk.min(stream.len() - off);
        l.send_raw(&frame::chunk_frame(off as u32, &stream[off..off + n]));
        let reply = l.expect_within("", T);
        off += n;
        if reply != format!("CHUNK_OK offset={off}") || off == stream.len() {
            return reply;
        }
    }
}

fn nothing_loaded(l: &mut Link, id: &str) {
    let status = l.ask("STATUS", "STATUS_OK");
    assert!(!status.contains(&format!("{id}:")), "{status}");
    l.send(&format!("START module_id={id} func=fft_bench"));
    let r = l.expect("RESULT ");
    assert!(r.starts_with("RESULT status=NO_MODULE"), "{r}");
}

#[test]
fn paced_compressed_upload_loads_and_runs() {
    let sim = Sim::tcp(&["--baud", "115200"]);
    let mut l = sim.hello();
    let info = l.ask("INFO", "INFO_OK");
    assert!(info.contains(" compress=deflate "), "{info}");
    let m = big_module();
    let z = deflate(&m);
    assert!(z.len() * 3 < m.len(), "{} of {}", z.len(), m.len());
    let ready = begin(&mut l, "big", &m, z.len());
    assert_eq!(
        ready,
        format!(
            "LOAD_READY module_id=big size={} crc32={:08x} chunk=4096 offset=0 framed=1 \
             compress=deflate csize={}",
            m.len(),
            crc32(&m),
            z.len()
        )
    );
    let t0 = Instant::now();
    // small frames: the stream crosses several of them, each inflated when it is acknowledged
    let last = send_stream(&mut l, &z, 300);
    assert_eq!(last, format!("CHUNK_OK offset={}", z.len()));
    assert_eq!(l.expect("LOAD_"), "LOAD_OK");
    let took = t0.elapsed();
    let raw_time = Duration::from_secs_f64(m.len() as f64 * 10.0 / 115_200.0);
    let wire_time = Duration::from_secs_f64(z.len() as f64 * 10.0 / 115_200.0);
    assert!(took >= wire_time, "{took:?}: the link is paced");
    eprintln!(
        "{} bytes as {} compressed: {took:?} at 115200 baud (uncompressed wire time {raw_time:?})",
        m.len(),
        z.len()
    );
    let status = l.ask("STATUS", "STATUS_OK");
    assert!(
        status.contains(&format!("big:LOADED:wasm={}", m.len())),
        "{status}"
    );
    let r = l.run(
        r#"START module_id=big func=fft_bench args="i=1""#,
        Duration::from_secs(20),
    );
    assert_eq!(
        r,
        "RESULT status=OK module_id=big func=fft_bench ret_i32=1536"
    );
}

#[test]
fn a_damaged_frame_is_resent_and_the_inflater_is_untouched() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let m = big_module();
    let z = deflate(&m);
    assert!(begin(&mut l, "big", &m, z.len()).starts_with("LOAD_READY"));
    let mut bad = frame::chunk_frame(0, &z[..500]);
    bad[100] ^= 0x20;
    l.send_raw(&bad);
    assert_eq!(l.expect("CHUNK_"), "CHUNK_ERR code=BAD_CRC offset=0");
    assert_eq!(
        send_stream(&mut l, &z, 500),
        format!("CHUNK_OK offset={}", z.len())
    );
    assert_eq!(l.expect("LOAD_"), "LOAD_OK");
}

#[test]
fn corrupt_streams_are_refused_and_nothing_loads() {
    let sim = Sim::tcp(&[]);
    let mut l = sim.hello();
    let m = big_module();
    let z = deflate(&m);

    // an invalid block type in the first byte
    let mut bad = z.clone();
    bad[0] |= 0x06;
    assert!(begin(&mut l, "big", &m, bad.len()).starts_with("LOAD_READY"));
    let r = send_stream(&mut l, &bad, 1000);
    assert!(
        r.starts_with("LOAD_ERR code=BAD_STREAM msg=\"corrupt or truncated deflate stream"),
        "{r}"
    );
    nothing_loaded(&mut l, "big");

    // the stream ends early: the last frame does not finish it
    let cut = &z[..z.len() - 40];
    assert!(begin(&mut l, "big", &m, cut.len()).starts_with("LOAD_READY"));
    let r = send_stream(&mut l, cut, 1000);
    assert!(r.starts_with("LOAD_ERR code=BAD_STREAM"), "{r}");
    nothing_loaded(&mut l, "big");

    // bytes after the end of the stream
    let mut long = z.clone();
    long.extend_from_slice(b"trailing");
    assert!(begin(&mut l, "big", &m, long.len()).starts_with("LOAD_READY"));
    let r = send_stream(&mut l, &long, 1000);
    assert!(
        r.starts_with("LOAD_ERR code=BAD_STREAM msg=\"the deflate stream ends at compressed byte"),
        "{r}"
    );
    nothing_loaded(&mut l, "big");

    // a stream of more bytes than the LOAD's size
    let mut more = m.clone();
    more.extend_from_slice(&[0; 100]);
    let zm = deflate(&more);
    assert!(begin(&mut l, "big", &m, zm.len()).starts_with("LOAD_READY"));
    let r = send_stream(&mut l, &zm, 1000);
    assert!(
        r.starts_with("LOAD_ERR code=BAD_STREAM msg=\"the deflate stream inflates to more than"),
        "{r}"
    );
    nothing_loaded(&mut l, "big");

    // other bytes of the same size: the CRC over the inflated module refuses them
    let mut other = m.clone();
    *other.last_mut().unwrap() ^= 1;
    let zo = deflate(&other);
    assert!(begin(&mut l, "big", &m, zo.len()).starts_with("LOAD_READY"));
    let last = send_stream(&mut l, &zo, 1000);
    assert_eq!(last, format!("CHUNK_OK offset={}", zo.len()));
    let r = l.expect("LOAD_");
    assert!(r.starts_with("LOAD_ERR code=BAD_CRC"), "{r}");
    nothing_loaded(&mut l, "big");

    // the pool blocks of all those uploads came back: a good one still fits and runs
    assert!(begin(&mut l, "big", &m, z.len()).starts_with("LOAD_READY"));
    assert_eq!(
        send_stream(&mut l, &z, 4096),
        format!("CHUNK_OK offset={}", z.len())
    );
    assert_eq!(l.expect("LOAD_"), "LOAD_OK");
    // compress= without csize= is refused; another method goes uncompressed
    l.send(&format!(
        "LOAD module_id=x size={} crc32={:08x} chunked=1 framed=1 compress=deflate",
        m.len(),
        crc32(&m)
    ));
    assert_eq!(
        l.expect("LOAD_"),
        "LOAD_ERR code=BAD_PARAMS msg=\"compress=deflate needs csize=<compressed bytes>\""
    );
    l.send(&format!(
        "LOAD module_id=x size={} crc32={:08x} chunked=1 framed=1 compress=lz4 csize=10",
        m.len(),
        crc32(&m)
    ));
    let r = l.expect("LOAD_");
    assert!(r.ends_with(" offset=0 framed=1"), "{r}");
}

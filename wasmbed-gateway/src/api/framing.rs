//! Bounded reads of request lines and upload bodies.

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::ApiError;

/// Reads one `\n`-terminated line of at most `max` bytes (without the terminator).
/// `Ok(None)` at a clean end of stream. An over-long line is `TOO_LARGE`.
/// The first byte may take `idle`; from then on the whole line must arrive within `line`
/// (a host trickling a request byte by byte is cut off: `TIMEOUT`, phase `request`).
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
    idle: Duration,
    line: Duration,
) -> Result<Option<Vec<u8>>, ApiError> {
    let timeout = |what: &str, help: &str| {
        ApiError::new("TIMEOUT", format!("timeout waiting for {what}"))
            .with("phase", "request")
            .help(help)
    };
    let started = tokio::time::timeout(idle, r.fill_buf())
        .await
        .map_err(|_| timeout("a request line", IDLE_HELP))?
        .map_err(|e| ApiError::bad_request(format!("read error: {e}")))?;
    if started.is_empty() {
        return Ok(None);
    }
    tokio::time::timeout(line, read_rest(r, max))
        .await
        .map_err(|_| {
            timeout(
                "the rest of a request line (limits.line_timeout_ms)",
                REQUEST_LINE_HELP,
            )
        })?
}

/// The help of a request line that did not arrive in time: the client is at fault, not a device.
pub(crate) const REQUEST_LINE_HELP: &str = "the client sent its request line too slowly: make it \
     send each request as one whole JSON line ending in \\n right after connecting, or raise \
     `line_timeout_ms` / `first_request_timeout_ms` in the `[limits]` table of the gateway's config";

/// The help of a connection closed for sending nothing.
const IDLE_HELP: &str = "the client sent no request for `idle_timeout_ms` (`[limits]` of the \
     gateway's config): reconnect when there is a request to send, or raise it";

async fn read_rest<R: AsyncBufRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    let mut line = Vec::new();
    let mut total = 0usize;
    loop {
        let buf = r
            .fill_buf()
            .await
            .map_err(|e| ApiError::bad_request(format!("read error: {e}")))?;
        if buf.is_empty() {
            return if line.is_empty() {
                Ok(None)
            } else {
                Err(ApiError::bad_request(
                    "connection closed in the middle of a request line",
                ))
            };
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let content = take - usize::from(done);
        total += content;
        if total <= max {
            line.extend_from_slice(&buf[..content]);
        }
        r.consume(take);
        if total > max {
            return Err(ApiError::new(
                "TOO_LARGE",
                format!("request line longer than {max} bytes"),
            ));
        }
        if done {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

/// The refusal of a body over `limits.max_body`.
pub fn too_large(size: u64, max: usize) -> ApiError {
    ApiError::new(
        "TOO_LARGE",
        format!("body of {size} bytes is over the limit of {max}"),
    )
    .help("raise limits.max_body in the gateway config")
}

/// Reads exactly `size` body bytes (bounded by `max`, within `timeout`).
pub async fn read_body<R: AsyncBufRead + Unpin>(
    r: &mut R,
    size: u64,
    max: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ApiError> {
    if size > max as u64 {
        return Err(too_large(size, max));
    }
    let mut body = vec![0u8; size as usize];
    tokio::time::timeout(timeout, r.read_exact(&mut body))
        .await
        .map_err(|_| {
            ApiError::new("TIMEOUT", format!("timeout receiving a {size}-byte body"))
                .with("phase", "body")
                .help(
                    "the client stopped sending the module: send all `size` bytes right after \
                     the request line, or check its network link",
                )
        })?
        .map_err(|_| {
            ApiError::bad_request(format!(
                "connection closed before the {size}-byte body was complete"
            ))
        })?;
    Ok(body)
}

/// Reads and drops `size` body bytes (within `timeout`) through a small buffer: a body refused
/// before it was read is taken off the connection, which stays usable for the next request.
pub async fn discard<R: AsyncBufRead + Unpin>(r: &mut R, size: u64, timeout: Duration) {
    let (mut body, mut sink) = (r.take(size), tokio::io::sink());
    let _ = tokio::time::timeout(timeout, tokio::io::copy(&mut body, &mut sink)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, BufReader};

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn lines_are_bounded() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut r = BufReader::with_capacity(4, b);
        a.write_all(b"abc\r\n12345678\nxyz").await.unwrap();
        drop(a);
        assert_eq!(read_line(&mut r, 4, T, T).await.unwrap().unwrap(), b"abc");
        assert_eq!(
            read_line(&mut r, 4, T, T).await.unwrap_err().code,
            "TOO_LARGE"
        );
        let (mut a, b) = tokio::io::duplex(64);
        let mut r = BufReader::new(b);
        a.write_all(b"x\nbody").await.unwrap();
        drop(a);
        assert_eq!(read_line(&mut r, 4, T, T).await.unwrap().unwrap(), b"x");
        assert_eq!(read_body(&mut r, 4, 10, T).await.unwrap(), b"body");
        assert_eq!(read_line(&mut r, 4, T, T).await.unwrap(), None);
    }

    #[tokio::test]
    async fn body_limits_and_short_bodies() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut r = BufReader::new(b);
        assert_eq!(
            read_body(&mut r, 11, 10, T).await.unwrap_err().code,
            "TOO_LARGE"
        );
        a.write_all(b"abc").await.unwrap();
        drop(a);
        assert_eq!(
            read_body(&mut r, 5, 10, T).await.unwrap_err().code,
            "BAD_REQUEST"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_times_out() {
        let (_a, b) = tokio::io::duplex(64);
        let mut r = BufReader::new(b);
        let e = read_line(&mut r, 10, T, T).await.unwrap_err();
        assert_eq!(e.code, "TIMEOUT");
        let help = e.body().help.unwrap();
        assert!(
            help.contains("client") && !help.contains("device"),
            "{help}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_line_is_cut_off() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut r = BufReader::new(b);
        let trickle = async move {
            for _ in 0..100 {
                a.write_all(b"x").await.unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        let read = read_line(
            &mut r,
            1000,
            Duration::from_secs(600),
            Duration::from_secs(10),
        );
        tokio::select! {
            e = read => {
                let e = e.unwrap_err();
                assert!(e.message.contains("line_timeout_ms"), "{e:?}");
                let help = e.body().help.unwrap();
                assert!(help.contains("client") && !help.contains("device"), "{help}");
            }
            _ = trickle => panic!("the trickled line was waited for"),
        }
    }
}

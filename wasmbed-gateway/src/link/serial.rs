//! Serial ports through tokio-serial (the only file that knows about it).

use std::io;

use tokio_serial::SerialPortBuilderExt;

use super::BoxLink;

/// Opens a serial port 8N1, no flow control.
pub fn open(path: &str, baud: u32) -> io::Result<BoxLink> {
    let port = tokio_serial::new(path, baud)
        .data_bits(tokio_serial::DataBits::Eight)
        .parity(tokio_serial::Parity::None)
        .stop_bits(tokio_serial::StopBits::One)
        .flow_control(tokio_serial::FlowControl::None)
        .open_native_async()
        .map_err(|e| io::Error::other(format!("cannot open serial port {path}: {e}")))?;
    Ok(Box::new(port))
}

//! Serial ports through tokio-serial (the only file that knows about it).

use std::io;

use tokio_serial::{SerialPort, SerialPortBuilderExt, SerialStream};

use super::{BoxLink, LinkIo};

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

/// Sets a serial port's speed (bytes already written are sent first: the caller wrote nothing
/// since the agent's `BAUD_OK`); `Ok(false)` if `link` is no serial port.
pub fn set_speed(link: &mut dyn LinkIo, baud: u32) -> io::Result<bool> {
    let Some(port) = link.as_any_mut().downcast_mut::<SerialStream>() else {
        return Ok(false);
    };
    port.set_baud_rate(baud)
        .map_err(|e| io::Error::other(format!("cannot set the serial port to {baud} baud: {e}")))?;
    Ok(true)
}

//! Device links: any `AsyncRead + AsyncWrite` byte stream (TCP, serial port, PTY, in-memory duplex).

mod serial;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use wasmbed_ports::{PortLister, ResolveError, SystemPorts, UsbSelector};

use crate::endpoint::Endpoint;

/// A byte stream to a device.
pub trait LinkIo: AsyncRead + AsyncWrite + Unpin + Send {
    /// The link as `Any` (see [`set_line_speed`]).
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any;
}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> LinkIo for T {
    fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
        self
    }
}

/// Reprograms the line speed of a serial-port link (BAUD switching); `Ok(false)` for links
/// without one (TCP bridges: only the emulated UART behind them changes speed).
pub fn set_line_speed(link: &mut BoxLink, baud: u32) -> io::Result<bool> {
    serial::set_speed(link.as_mut(), baud)
}

/// An owned, type-erased link.
pub type BoxLink = Box<dyn LinkIo>;

/// A boxed future returned by [`Connector::connect`].
pub type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<BoxLink>> + Send>>;

/// Opens (and re-opens) the link of one device.
pub trait Connector: Send + Sync {
    /// Opens a fresh link.
    fn connect(&self) -> ConnectFuture;
    /// A human-readable description (the endpoint string).
    fn describe(&self) -> String;
    /// Serial ports worth trying when the link cannot be opened, one line each (`None` for
    /// links that are not serial ports).
    fn candidates(&self) -> Option<Vec<String>> {
        None
    }
}

/// A shared connector.
pub type SharedConnector = Arc<dyn Connector>;

/// Connects to a configured [`Endpoint`]; `usb:` endpoints are looked up in `ports` at every
/// connect, so a board that comes back under another name is found again.
#[derive(Debug, Clone)]
pub struct EndpointConnector {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Where serial ports are listed.
    pub ports: Arc<dyn PortLister>,
}

impl EndpointConnector {
    /// A connector listing the machine's own serial ports.
    pub fn new(endpoint: Endpoint) -> Self {
        Self::with_ports(endpoint, Arc::new(SystemPorts))
    }

    /// A connector listing serial ports through `ports` (tests inject a fake enumeration).
    pub fn with_ports(endpoint: Endpoint, ports: Arc<dyn PortLister>) -> Self {
        EndpointConnector { endpoint, ports }
    }
}

impl Connector for EndpointConnector {
    fn connect(&self) -> ConnectFuture {
        let ep = self.endpoint.clone();
        let ports = self.ports.clone();
        Box::pin(async move { open_with(&ep, ports.as_ref()).await })
    }

    fn describe(&self) -> String {
        self.endpoint.to_string()
    }

    fn candidates(&self) -> Option<Vec<String>> {
        match self.endpoint {
            Endpoint::Tcp { .. } => None,
            Endpoint::Serial { .. } | Endpoint::Usb { .. } => {
                Some(usb_candidates(self.ports.as_ref()))
            }
        }
    }
}

/// The USB serial ports present, one summary line each (or why they cannot be listed).
pub fn usb_candidates(ports: &dyn PortLister) -> Vec<String> {
    match ports.ports() {
        Ok(list) => list
            .iter()
            .filter(|p| p.usb.is_some())
            .map(|p| match p.selector() {
                Some(sel) => format!("{} -> usb:{sel}", p.summary()),
                None => p.summary(),
            })
            .collect(),
        Err(e) => vec![e.to_string()],
    }
}

/// Opens a link to an endpoint; TCP links get TCP_NODELAY and quick ACKs ([`TcpLink`]).
pub async fn open(ep: &Endpoint) -> io::Result<BoxLink> {
    open_with(ep, &SystemPorts).await
}

/// Like [`open`], resolving `usb:` endpoints through `ports`.
pub async fn open_with(ep: &Endpoint, ports: &dyn PortLister) -> io::Result<BoxLink> {
    match ep {
        Endpoint::Tcp { host, port, .. } => {
            Ok(Box::new(TcpLink::new(connect_tcp(host, *port).await?)))
        }
        Endpoint::Serial { path, .. } => serial::open(path, ep.line_baud()),
        Endpoint::Usb { selector, .. } => {
            let path = resolve_usb(selector, ports)?;
            serial::open(&path, ep.line_baud())
        }
    }
}

/// The port name of a USB device now.
pub fn resolve_usb(selector: &UsbSelector, ports: &dyn PortLister) -> io::Result<String> {
    let list = ports.ports().map_err(io::Error::other)?;
    let found = selector.resolve(&list).map_err(|e| {
        let hint = match e {
            ResolveError::NotFound { .. } => {
                " (not plugged in, or no permission to see it: `wasmbed-host ports` on this machine lists what is there)"
            }
            ResolveError::Ambiguous { .. } => "",
        };
        io::Error::new(io::ErrorKind::NotFound, format!("{e}{hint}"))
    })?;
    Ok(found.path.clone())
}

/// Connects over TCP with Nagle disabled (bridges otherwise add ~40 ms per exchange).
pub async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A TCP device link that acknowledges every segment at once (Linux `TCP_QUICKACK`, re-armed
/// after each read because the kernel clears it).
///
/// A bridge that writes a reply one byte per `write()` with Nagle on (older Renode builds) sends
/// the first byte and holds the rest until that byte is acknowledged; with delayed ACKs the
/// gateway would acknowledge only after ~40 ms, so every exchange would stall that long. Quick
/// ACKs turn the stall into one extra round trip (docs/benchmarks.md, item 8).
pub struct TcpLink {
    inner: TcpStream,
}

impl TcpLink {
    /// Wraps a connected stream and switches it to quick-ACK mode.
    pub fn new(inner: TcpStream) -> Self {
        quickack(&inner);
        TcpLink { inner }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn quickack(s: &TcpStream) {
    // Best effort: a failure only brings the delayed-ACK stall back.
    let _ = socket2::SockRef::from(s).set_tcp_quickack(true);
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn quickack(_s: &TcpStream) {}

impl AsyncRead for TcpLink {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            quickack(&self.inner);
        }
        r
    }
}

impl AsyncWrite for TcpLink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

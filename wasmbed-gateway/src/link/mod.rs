//! Device links: any `AsyncRead + AsyncWrite` byte stream (TCP, serial port, PTY, in-memory duplex).

mod serial;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::endpoint::Endpoint;

/// A byte stream to a device.
pub trait LinkIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> LinkIo for T {}

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
}

/// A shared connector.
pub type SharedConnector = Arc<dyn Connector>;

/// Connects to a configured [`Endpoint`].
#[derive(Debug, Clone)]
pub struct EndpointConnector(pub Endpoint);

impl Connector for EndpointConnector {
    fn connect(&self) -> ConnectFuture {
        let ep = self.0.clone();
        Box::pin(async move { open(&ep).await })
    }

    fn describe(&self) -> String {
        self.0.to_string()
    }
}

/// Opens a link to an endpoint; TCP links get TCP_NODELAY.
pub async fn open(ep: &Endpoint) -> io::Result<BoxLink> {
    match ep {
        Endpoint::Tcp { host, port } => Ok(Box::new(connect_tcp(host, *port).await?)),
        Endpoint::Serial { path, baud } => serial::open(path, *baud),
    }
}

/// Connects over TCP with Nagle disabled (bridges otherwise add ~40 ms per exchange).
pub async fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

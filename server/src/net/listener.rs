//! The accept loop in front of the gRPC server. Bounded: at most
//! `max_connections` connections are open at once (the rest wait in the
//! kernel's backlog, costing no descriptor).
//!
//! A gRPC connection must send the whole HTTP/2 client preface and its
//! SETTINGS frame within the handshake timeout (after the TLS handshake,
//! within the same deadline), or it is closed: one byte sent and then
//! nothing used to hold a slot for ever. Until it sends its first request
//! (a HEADERS frame) a connection is "pending": when every slot is taken
//! the oldest pending one is closed to make room, before or after it was
//! handed to the HTTP/2 server, so connections that never ask anything
//! cannot keep clients out. The metrics port (HTTP/1) needs only a first
//! byte within the timeout; its own header timeout does the rest.
//!
//! Accept errors back off instead of retrying at once (out of descriptors,
//! the old loop spun at 100% CPU). The TLS acceptor is the one current at
//! accept time (`tls::ReloadableTls`).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// What a connection must send within the timeout: the HTTP/2 preface
    /// and SETTINGS (gRPC), or any first byte (HTTP/1).
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http2,
    Http1,
}

/// The client connection preface every HTTP/2 connection starts with (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// HTTP/2 frame types the loop looks for.
const FRAME_SETTINGS: u8 = 0x4;
const FRAME_HEADERS: u8 = 0x1;
/// A client's first SETTINGS carries a few 6-byte entries; more is not a
/// client we serve.
const MAX_SETTINGS_PAYLOAD: usize = 6 * 32;

/// Connections that have not asked anything yet: id and how to close
/// each, oldest first.
type Pending = Arc<Mutex<VecDeque<(u64, oneshot::Sender<()>)>>>;

/// Takes connection `id` off the pending queue (it asked something, was
/// refused, or is gone).
fn forget(pending: &Pending, id: u64) {
    pending.lock().retain(|(i, _)| *i != id);
}

/// An accepted connection; its slot frees when it is dropped.
pub struct Conn {
    stream: Stream,
    /// Bytes read while checking the preface, replayed to the server first.
    replay: Vec<u8>,
    replayed: usize,
    /// Until its first request: closed (reads end) when evicted.
    waiting: Option<Waiting>,
    evicted: bool,
    _slot: OwnedSemaphorePermit,
}

/// A connection still pending after hand-off: its place in the pending
/// queue, the eviction signal, and where the incoming frames are, so its
/// first HEADERS frame can be seen.
struct Waiting {
    id: u64,
    pending: Pending,
    evicted: oneshot::Receiver<()>,
    frames: FrameWatch,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(w) = &self.waiting {
            forget(&w.pending, w.id);
        }
    }
}

/// Follows HTTP/2 frame boundaries in the bytes a connection reads, from a
/// frame boundary on, to tell when the first HEADERS frame arrives.
#[derive(Default)]
struct FrameWatch {
    header: [u8; 9],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    skip: usize,
}

impl FrameWatch {
    /// Feeds `bytes`; true once a HEADERS frame header was seen.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                if self.header[3] == FRAME_HEADERS {
                    return true;
                }
                self.skip = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]) as usize;
                self.have = 0;
            }
        }
        false
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Closes the connections that have not sent a request: at shutdown, an
/// HTTP/2 server waits for every connection to answer its GOAWAY's ping,
/// and a peer that never asked anything may never answer.
#[derive(Clone)]
pub struct Idle(Pending);

impl Idle {
    pub fn close_all(&self) {
        for (_, close) in self.0.lock().drain(..) {
            let _ = close.send(());
        }
    }
}

/// Accepts on `listener` within `limits` (TLS when `tls` is set);
/// connections come out of the stream.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<Arc<crate::net::tls::ReloadableTls>>,
) -> (ReceiverStream<io::Result<Conn>>, Idle) {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let pending: Pending = Arc::default();
    let idle = Idle(pending.clone());
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(5);
        let mut next_id = 0u64;
        loop {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(s) => s,
                Err(_) => {
                    // Full: close the oldest connection that has not asked
                    // anything yet, if any.
                    if let Some((_, close)) = pending.lock().pop_front() {
                        let _ = close.send(());
                    }
                    let Ok(s) = slots.clone().acquire_owned().await else { return };
                    s
                }
            };
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS...: wait for descriptors to free.
                    tracing::warn!("accept failed ({e}); retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(5);
            // TCP_NODELAY: without it Nagle holds back small HTTP/2 frames
            // until the peer's delayed ACK, ~40 ms stalls under concurrency.
            let _ = stream.set_nodelay(true);
            let (tx, pending) = (tx.clone(), pending.clone());
            let acceptor = tls.as_ref().map(|t| t.acceptor());
            let (close_tx, mut close_rx) = oneshot::channel();
            let id = next_id;
            next_id += 1;
            pending.lock().push_back((id, close_tx));
            tokio::spawn(async move {
                let deadline = Instant::now() + limits.handshake_timeout;
                let opened = tokio::select! {
                    r = tokio::time::timeout_at(deadline, open(stream, acceptor, limits.protocol)) => match r {
                        Ok(Ok(c)) => Some(c),
                        Ok(Err(e)) => {
                            tracing::debug!("closed a connection before its first request: {e}");
                            None
                        }
                        Err(_) => {
                            tracing::debug!("closed a connection that did not finish its handshake in time");
                            None
                        }
                    },
                    _ = &mut close_rx => None,
                };
                let Some((stream, replay)) = opened else {
                    forget(&pending, id);
                    return;
                };
                let waiting = if limits.protocol == Protocol::Http2 {
                    Some(Waiting { id, pending, evicted: close_rx, frames: FrameWatch::default() })
                } else {
                    // HTTP/1 requests carry their own timeout: not evicted.
                    forget(&pending, id);
                    None
                };
                let conn = Conn { stream, replay, replayed: 0, waiting, evicted: false, _slot: slot };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    (ReceiverStream::new(rx), idle)
}

/// The TLS handshake (when set) and the protocol's opening bytes; returns
/// the stream and the bytes read from it, to replay.
async fn open(
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    protocol: Protocol,
) -> io::Result<(Stream, Vec<u8>)> {
    if protocol == Protocol::Http1 {
        // Any first byte; peeked, so nothing to replay.
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before sending anything"));
        }
    }
    let mut stream = match acceptor {
        None => Stream::Plain(stream),
        Some(a) => Stream::Tls(Box::new(a.accept(stream).await?)),
    };
    if protocol == Protocol::Http1 {
        return Ok((stream, Vec::new()));
    }
    let mut bytes = vec![0u8; PREFACE.len() + 9];
    stream.read_exact(&mut bytes).await?;
    let header = &bytes[PREFACE.len()..];
    if &bytes[..PREFACE.len()] != PREFACE || header[3] != FRAME_SETTINGS {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an HTTP/2 client preface"));
    }
    let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    if len > MAX_SETTINGS_PAYLOAD {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "oversized first SETTINGS frame"));
    }
    let at = bytes.len();
    bytes.resize(at + len, 0);
    stream.read_exact(&mut bytes[at..]).await?;
    Ok((stream, bytes))
}

/// `wanted`, lowered so that connections leave `reserve` descriptors for
/// index files, rings and the metrics endpoint.
pub fn fit_to_fd_limit(wanted: usize, reserve: usize) -> usize {
    match crate::ops::sysinfo::open_files_limit() {
        Some(limit) if limit.saturating_sub(reserve) < wanted => {
            let fitted = limit.saturating_sub(reserve).max(1);
            tracing::warn!(
                wanted,
                fitted,
                open_files_limit = limit,
                "max_connections lowered to fit the open-file limit"
            );
            fitted
        }
        _ => wanted,
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        match &self.stream {
            Stream::Plain(s) => s.connect_info(),
            Stream::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

/// Forwards an I/O call to the plain or TLS stream.
macro_rules! either {
    ($self:expr, $s:ident => $call:expr) => {
        match &mut $self.get_mut().stream {
            Stream::Plain($s) => $call,
            Stream::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < this.replay.len() {
            let n = (this.replay.len() - this.replayed).min(buf.remaining());
            buf.put_slice(&this.replay[this.replayed..this.replayed + n]);
            this.replayed += n;
            if this.replayed == this.replay.len() {
                this.replay = Vec::new();
                this.replayed = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if let Some(w) = &mut this.waiting {
            // Evicted (or the loop is gone): the read ends, the server
            // closes the connection and its slot frees.
            if Pin::new(&mut w.evicted).poll(cx).is_ready() {
                this.evicted = true;
                this.waiting = None;
            }
        }
        if this.evicted {
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(w)) = (&r, &mut this.waiting) {
            if w.frames.feed(&buf.filled()[before..]) {
                // A request: no longer evictable.
                forget(&w.pending, w.id);
                this.waiting = None;
            }
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        either!(self, s => Pin::new(s).poll_write(cx, buf))
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => Pin::new(s).poll_flush(cx))
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self, s => Pin::new(s).poll_shutdown(cx))
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        either!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }
    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}
/// A listen address: an IP and port, or a host name and port resolved once
/// at start (`localhost:7700`; the first address it resolves to).
pub fn resolve_listen(a: &str) -> anyhow::Result<std::net::SocketAddr> {
    if let Ok(addr) = a.parse() {
        return Ok(addr);
    }
    use anyhow::Context as _;
    use std::net::ToSocketAddrs;
    let mut found = a.to_socket_addrs().with_context(|| format!("cannot resolve {a:?}"))?;
    found.next().ok_or_else(|| anyhow::anyhow!("{a:?} resolves to no address"))
}

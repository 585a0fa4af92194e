//! The accept loop in front of the gRPC server. Bounded: at most
//! `max_connections` connections are open at once (the rest wait in the
//! kernel's backlog, costing no descriptor). A connection that has sent
//! nothing yet is "pending": it is closed after the handshake timeout, and
//! when every slot is taken the oldest pending one is closed to make room,
//! so silent sockets cannot keep clients out (real clients send their
//! HTTP/2 preface at once). Accept errors back off instead of retrying at
//! once (out of descriptors, the old loop spun at 100% CPU). With TLS the
//! handshake runs here, within the same timeout, with the acceptor current
//! at accept time (`tls::ReloadableTls`).

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
}

/// Connections that have not spoken yet: id and how to close each, oldest first.
type Pending = VecDeque<(u64, oneshot::Sender<()>)>;

/// An accepted connection; its slot frees when it is dropped.
pub struct Conn {
    stream: Stream,
    _slot: OwnedSemaphorePermit,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Accepts on `listener` within `limits` (TLS when `tls` is set);
/// connections come out of the stream.
pub fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let pending: Arc<Mutex<Pending>> = Arc::default();
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(5);
        let mut next_id = 0u64;
        loop {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(s) => s,
                Err(_) => {
                    // Full: close the oldest connection still silent, if any.
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
            let (close_tx, close_rx) = oneshot::channel();
            let id = next_id;
            next_id += 1;
            pending.lock().push_back((id, close_tx));
            tokio::spawn(async move {
                let mut first = [0u8; 1];
                let spoke = tokio::select! {
                    r = tokio::time::timeout(limits.handshake_timeout, stream.peek(&mut first)) => {
                        matches!(r, Ok(Ok(n)) if n > 0)
                    }
                    _ = close_rx => false,
                };
                pending.lock().retain(|(i, _)| *i != id);
                if !spoke {
                    tracing::debug!("closed a connection that sent nothing");
                    return;
                }
                let stream = match acceptor {
                    None => Stream::Plain(stream),
                    Some(a) => match tokio::time::timeout(limits.handshake_timeout, a.accept(stream)).await {
                        Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    },
                };
                let _ = tx.send(Ok(Conn { stream, _slot: slot })).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Open-file limit of this process (soft), from /proc.
pub fn open_files_limit() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `wanted`, lowered so that connections leave `reserve` descriptors for
/// index files, rings and the metrics endpoint.
pub fn fit_to_fd_limit(wanted: usize, reserve: usize) -> usize {
    match open_files_limit() {
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

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        either!(self, s => Pin::new(s).poll_read(cx, buf))
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

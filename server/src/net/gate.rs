//! The gate in front of the Fathom service, before a request's body is
//! read: the API key is checked on the headers (a request without a valid
//! key is answered UNAUTHENTICATED and its body never read, so it costs no
//! memory), and the bytes of request bodies being received at once are
//! bounded by a server-wide budget (past it a request gets
//! RESOURCE_EXHAUSTED instead of the server growing by what clients send).
//! Health and reflection pass untouched (probes carry no key).

use crate::net::auth::KeyStore;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tonic::codegen::http;
use tonic::Status;

/// The default of the request-bytes budget (`decode_budget_bytes`): 16 largest default
/// messages at once.
pub const DEFAULT_DECODE_BUDGET_BYTES: usize = 256 << 20;

/// The service the gate guards (its paths start with this).
const GUARDED: &str = "/fathom.v1.Fathom/";

#[derive(Clone)]
pub struct GateLayer {
    keys: Option<Arc<KeyStore>>,
    budget: Arc<Semaphore>,
    /// Requests to the guarded service whose answer is not yet sent: a
    /// drain waits for these, not only for the handlers (a large answer is
    /// still being written after its handler returned).
    open: Arc<AtomicUsize>,
    /// Counts the requests the gate answers itself.
    observe: crate::net::wire_errors::Observe,
}

impl GateLayer {
    /// `budget_bytes`: request body bytes received and not yet decoded,
    /// across all requests (at least one largest message).
    pub fn new(keys: Option<Arc<KeyStore>>, budget_bytes: usize, observe: crate::net::wire_errors::Observe) -> Self {
        let permits = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        GateLayer { keys, budget: Arc::new(Semaphore::new(permits)), open: Arc::default(), observe }
    }

    /// Requests to the guarded service whose answers are not yet fully
    /// sent (or dropped).
    pub fn open_answers(&self) -> Arc<AtomicUsize> {
        self.open.clone()
    }
}

/// Counts one open answer until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(n: &Arc<AtomicUsize>) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Open(n.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S> tower::Layer<S> for GateLayer {
    type Service = Gate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Gate { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    layer: GateLayer,
}

impl<S> tower::Service<http::Request<Body>> for Gate<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if !req.uri().path().starts_with(GUARDED) {
            return Box::pin(self.inner.call(req));
        }
        if let Some(keys) = &self.layer.keys {
            let started = std::time::Instant::now();
            if let Err(status) = keys.check_headers(req.headers()) {
                // Answered from the headers: the body is dropped unread.
                let method = req.uri().path().rsplit('/').next().unwrap_or("");
                (self.layer.observe)(method, status.code(), started.elapsed());
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        let (parts, body) = req.into_parts();
        let body = Body::new(Budgeted { inner: body, budget: self.layer.budget.clone(), held: None });
        let open = Open::new(&self.layer.open);
        let answer = self.inner.call(http::Request::from_parts(parts, body));
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|inner| Body::new(Sending { inner, _open: open })))
        })
    }
}

/// An answer's body, counted open until it is dropped (sent to its end, or
/// its connection gone).
struct Sending {
    inner: Body,
    _open: Open,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that takes a permit per byte received from the budget,
/// held until the body is dropped (tonic drops it once the message is
/// decoded).
struct Budgeted {
    inner: Body,
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
}

impl http_body::Body for Budgeted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(f))) => f,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let n = u32::try_from(data.len()).unwrap_or(u32::MAX);
            match this.budget.clone().try_acquire_many_owned(n) {
                Ok(p) => match &mut this.held {
                    Some(h) => h.merge(p),
                    None => this.held = Some(p),
                },
                Err(_) => {
                    return Poll::Ready(Some(Err(crate::net::status::retry_later(
                        "the server is receiving too many request bytes at once; retry with backoff",
                    ))))
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

//! Errors tonic makes before a handler runs, given the codes the API
//! promises, and counted: a request that is not valid protobuf is
//! INVALID_ARGUMENT (tonic says INTERNAL), a message over the size limit is
//! RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE). Handlers' own answers pass
//! untouched (they are counted by the handlers).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::codegen::http;
use tonic::Code;

/// Counts a request: method name (last path segment), code, latency.
pub type Observe = Arc<dyn Fn(&str, Code, Duration) + Send + Sync>;

#[derive(Clone)]
pub struct WireErrorsLayer(pub Observe);

impl<S> tower::Layer<S> for WireErrorsLayer {
    type Service = WireErrors<S>;
    fn layer(&self, inner: S) -> Self::Service {
        WireErrors { inner, observe: self.0.clone() }
    }
}

#[derive(Clone)]
pub struct WireErrors<S> {
    inner: S,
    observe: Observe,
}

/// The code tonic's own error should have carried, if it is one of them.
fn corrected(code: &str, message: &str) -> Option<Code> {
    let message = message.replace("%20", " ");
    match code {
        "13" if message.starts_with("failed to decode Protobuf message") => Some(Code::InvalidArgument),
        "11" if message.contains("message length too large") => Some(Code::ResourceExhausted),
        _ => None,
    }
}

impl<S, B, RB> tower::Service<http::Request<B>> for WireErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or("").to_string();
        let started = Instant::now();
        let observe = self.observe.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let h = resp.headers();
            let code = h.get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("");
            let message = h.get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or("");
            if let Some(fixed) = corrected(code, message) {
                resp.headers_mut().insert("grpc-status", http::HeaderValue::from(fixed as i32));
                observe(&method, fixed, started.elapsed());
            }
            Ok(resp)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tonics_own_errors_are_corrected() {
        assert_eq!(corrected("13", "failed%20to%20decode%20Protobuf%20message: x"), Some(Code::InvalidArgument));
        assert_eq!(
            corrected("11", "Error, decoded message length too large: found 9 bytes"),
            Some(Code::ResourceExhausted)
        );
        assert_eq!(corrected("13", "search worker stopped"), None);
        assert_eq!(corrected("3", "failed to decode Protobuf message"), None);
    }
}

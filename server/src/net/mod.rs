//! The front door shared by the shard server and the router: listener
//! and connection limits, TLS, the gRPC and HTTP servers, API keys and the
//! request gate, request validation and cost caps, status mapping. Sits on
//! `ops`.

pub mod auth;
pub mod front_door;
pub mod gate;
pub mod grpc;
pub mod http;
pub mod listener;
pub mod stats;
pub mod status;
pub mod tls;
pub mod validate;
pub mod wire_errors;
pub mod x509_time;

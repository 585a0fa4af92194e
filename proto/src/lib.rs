//! Rust types and gRPC stubs for `fathom.proto` (package `fathom.v1`).

#![forbid(unsafe_code)]
#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("fathom.v1");
}

/// The encoded FileDescriptorSet, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fathom_descriptor.bin"));

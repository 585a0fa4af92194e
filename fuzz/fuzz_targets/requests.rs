//! Requests as the server receives them: protobuf bytes decoded into a
//! SearchRequest or BatchSearchRequest, never a panic.
#![no_main]
use fathom_proto::v1::{BatchSearchRequest, SearchRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = SearchRequest::decode(data);
    let _ = BatchSearchRequest::decode(data);
});

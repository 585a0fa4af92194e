//! `Neighbor.id` widened from uint32 to uint64 (index format 2). Both are
//! varints on the wire, so a client generated from the older proto still
//! decodes ids below 2^32; larger ids need the new proto.

use fathom_proto::v1::{Neighbor, SearchResponse};
use prost::Message;

/// `Neighbor` as the older proto declared it.
#[derive(Clone, PartialEq, prost::Message)]
struct OldNeighbor {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(float, tag = "2")]
    distance: f32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OldSearchResponse {
    #[prost(message, repeated, tag = "1")]
    neighbors: Vec<OldNeighbor>,
}

#[test]
fn older_clients_decode_ids_below_2_pow_32() {
    let new = SearchResponse {
        neighbors: vec![Neighbor { id: 7, distance: 0.5 }, Neighbor { id: u32::MAX as u64, distance: 1.5 }],
        ..Default::default()
    };
    let old = OldSearchResponse::decode(new.encode_to_vec().as_slice()).unwrap();
    assert_eq!(old.neighbors, vec![OldNeighbor { id: 7, distance: 0.5 }, OldNeighbor { id: u32::MAX, distance: 1.5 }]);
    // And the new client reads what an older server sent.
    let back = SearchResponse::decode(old.encode_to_vec().as_slice()).unwrap();
    assert_eq!(back.neighbors, new.neighbors);
}

//! Search statistics on the wire: the engine's [`SearchStats`] is the one
//! definition; this is its mapping to and from `fathom.v1.SearchStats`,
//! both ways in one place, so a shard's answer and a router's sum of its
//! shards' answers carry the same fields.

use fathom_index::SearchStats;
use fathom_proto::v1 as pb;
use std::time::Duration;

pub fn to_wire(s: &SearchStats) -> pb::SearchStats {
    pb::SearchStats {
        postings_read: s.postings_read,
        reads: s.reads,
        bytes_read: s.bytes_read,
        candidates_scored: s.candidates_scored,
        reranked: s.reranked,
        centroid_ns: s.centroid_time.as_nanos() as u64,
        io_ns: s.io_time.as_nanos() as u64,
        score_ns: s.score_time.as_nanos() as u64,
        rerank_ns: s.rerank_time.as_nanos() as u64,
    }
}

pub fn from_wire(s: &pb::SearchStats) -> SearchStats {
    SearchStats {
        postings_read: s.postings_read,
        reads: s.reads,
        bytes_read: s.bytes_read,
        candidates_scored: s.candidates_scored,
        reranked: s.reranked,
        centroid_time: Duration::from_nanos(s.centroid_ns),
        io_time: Duration::from_nanos(s.io_ns),
        score_time: Duration::from_nanos(s.score_ns),
        rerank_time: Duration::from_nanos(s.rerank_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_goes_there_and_back() {
        let s = SearchStats {
            postings_read: 1,
            reads: 2,
            bytes_read: 3,
            candidates_scored: 4,
            reranked: 5,
            centroid_time: Duration::from_nanos(6),
            io_time: Duration::from_nanos(7),
            score_time: Duration::from_nanos(8),
            rerank_time: Duration::from_nanos(9),
        };
        assert_eq!(from_wire(&to_wire(&s)), s);
        let mut sum = s;
        sum.add(&s);
        assert_eq!(to_wire(&sum).rerank_ns, 18);
    }
}

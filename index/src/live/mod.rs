//! A collection that changes while it serves (issue 28): upserts and
//! deletes made durable first in a write-ahead log ([`wal`]), then folded
//! into the index. So far: the log and its records (`docs/LIVE.md` has the
//! plan).

pub mod record;
pub mod wal;

//! Fathom's binary-embedding codec, after "Binary Embedding-based Retrieval
//! at Tencent" (BEBR): a float embedding becomes `bits` (1..=4) binary
//! vectors by recurrent residual binarization in a centred, rotated space:
//!
//! ```text
//! x' = R (x - mean);  b1 = sign(x');  r1 = x' - a1 b1;  b2 = sign(r1);  ...
//! x' ~ a1 b1 + a2 b2 + ... + au bu        (b in {-1, +1}^d, a per level)
//! ```
//!
//! - [`CodecParams::fit`] learns the mean, a random orthogonal rotation and
//!   the per-level scales from a sample; [`CodecParams::to_bytes`] /
//!   [`CodecParams::from_bytes`] serialise them (magic, version, CRC-32).
//! - [`CodecParams::encode`] / [`CodecParams::decode`] map floats to packed
//!   codes and back; [`pack`] fixes the bit layout, the one place client and
//!   engine must agree on byte for byte.
//! - [`symmetric_ip`] / [`symmetric_l2`] compare two codes with bit-plane
//!   popcounts (for one bit, an affine function of Hamming distance).
//!
//! No dependencies beyond the seeded generator (`fathom-rng`): applications
//! encode without the engine.

#![forbid(unsafe_code)]
// Input never panics the process: errors are returned (tests may unwrap).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod crc32;
pub mod pack;
mod params;

pub use pack::{words_per_plane, Code};
pub use params::{symmetric_ip, symmetric_l2, CodecError, CodecParams, MAX_BITS};

//! Seeded randomness: the generator lives in the codec crate so the engine
//! and the codec draw the same numbers from the same seed.

pub use fathom_codec::rng::Rng;

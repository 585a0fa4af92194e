//! Seeded randomness: the generator has its own crate (`fathom-rng`), shared
//! with the codec, so that neither a client crate nor the engine can change
//! the stream that index bytes depend on by accident.

pub use fathom_rng::Rng;

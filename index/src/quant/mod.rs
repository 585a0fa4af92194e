//! Posting codes. SQ8: per-dimension affine quantization to one byte.

mod sq8;
pub use sq8::{Sq8, Sq8Query};

//! Clustering: k-means, the hierarchical split into bounded leaves, and the
//! closure assignment of vectors to postings (replicas + RNG rule).

pub mod assign;
pub mod hierarchy;
pub mod kmeans;

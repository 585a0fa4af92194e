//! Operations: metrics, system figures, logging, configuration layers,
//! reloadable files, the allocator's environment, progress bars. The
//! lowest server layer: it imports no other.

pub mod layers;
pub mod logging;
pub mod malloc_env;
pub mod metrics;
pub mod progress;
pub mod reload;
pub mod sysinfo;

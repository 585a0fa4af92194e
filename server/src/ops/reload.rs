//! Files a server reloads while it serves (TLS certificates, API keys): on
//! SIGHUP and when they change (modification times checked every few
//! seconds), always off the async runtime, since the files may sit on a
//! slow volume. What a reload keeps on failure is the reloadable's own
//! business.

use std::sync::Arc;
use std::time::Duration;

/// How often the files are checked for changes.
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

pub trait Reloadable: Send + Sync + 'static {
    /// Whether the files changed since they were last read (blocking).
    fn changed(&self) -> bool;
    /// Reads them again (blocking); `why` is logged.
    fn reload(&self, why: &str);
}

/// Reloads `r` on SIGHUP and when its files change; runs for the life of
/// the server. `what` names the files in the log ("TLS files").
pub async fn watch<R: Reloadable>(r: Arc<R>, what: &'static str) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        let why = tokio::select! {
            _ = async {
                match hup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => "SIGHUP".to_string(),
            _ = tokio::time::sleep(WATCH_EVERY) => {
                let me = r.clone();
                if !tokio::task::spawn_blocking(move || me.changed()).await.unwrap_or(false) {
                    continue;
                }
                format!("{what} changed")
            }
        };
        let me = r.clone();
        let _ = tokio::task::spawn_blocking(move || me.reload(&why)).await;
    }
}

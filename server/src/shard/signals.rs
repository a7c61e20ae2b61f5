//! SIGINT/SIGTERM → graceful stop.

use std::io;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

use super::sync::Latch;

/// The signal-watching thread; [`SignalWatcher::close`] (or drop) stops it.
pub struct SignalWatcher {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Watches SIGINT and SIGTERM: the first one triggers `stop` (a graceful
/// shutdown); a second one exits the process at once with status 130/143.
pub fn install(stop: Latch) -> io::Result<SignalWatcher> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = false;
            for sig in signals.forever() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                if seen {
                    log::warn!("received {name} again: exiting immediately");
                    std::process::exit(128 + sig);
                }
                seen = true;
                log::info!("received {name}: shutting down (send it again to exit at once)");
                stop.trigger();
            }
        })?;
    Ok(SignalWatcher {
        handle,
        thread: Some(thread),
    })
}

impl SignalWatcher {
    /// Stops watching and joins the thread.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

//! The PyO3 bindings: the only code that knows Python. Each binding extracts its inputs into
//! owned Rust values, releases the GIL for the core call (Redis I/O, file parsing), then converts
//! the result (see `detach`).

mod contacts;
mod errors;
mod keys;
mod media;
mod pacing;
mod queue;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Run `f` with the GIL released and map the core's error to its Python exception.
pub(crate) fn detach<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    py.detach(f).map_err(PyErr::from)
}

/// Run long work (an import, a list load) on a worker thread that blocks SIGINT and SIGTERM, so
/// its Redis socket calls are never cut by EINTR. This thread waits without the GIL and, every
/// 100 ms, lets Python look at pending signals: Ctrl-C sets `cancel`, which the work's progress
/// callback reads to stop between two batches. The work's error then comes back here.
pub(crate) fn run_cancellable<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(&AtomicBool) -> crate::Result<T> + Send,
) -> PyResult<T> {
    let cancel = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        let cancel = &cancel;
        let handle = s.spawn(move || {
            block_termination_signals();
            work(cancel)
        });
        loop {
            py.detach(|| {
                let until = Instant::now() + Duration::from_millis(100);
                while !handle.is_finished() && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
            if handle.is_finished() {
                break handle.join();
            }
            if py.check_signals().is_err() {
                cancel.store(true, Ordering::Relaxed);
            }
        }
    });
    match result {
        Ok(r) => r.map_err(PyErr::from),
        Err(_) => Err(pyo3::exceptions::PySystemError::new_err(
            "dialer_core worker thread panicked",
        )),
    }
}

fn block_termination_signals() {
    // SAFETY: sigemptyset/sigaddset fill a local set; pthread_sigmask changes this thread's mask only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Wall-clock milliseconds: the queue's times are shared by processes, so they are epoch times.
pub(crate) fn now_ms(now: Option<f64>) -> PyResult<u64> {
    let s = match now {
        Some(t) => t,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
    };
    seconds_to_ms("now", s)
}

pub(crate) fn seconds_to_ms(what: &'static str, s: f64) -> PyResult<u64> {
    if !(0.0..=1e13).contains(&s) {
        return Err(crate::Error::invalid(what, format!("{s}: expected seconds >= 0")).into());
    }
    Ok((s * 1000.0).round() as u64)
}

#[pymodule]
fn dialer_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    queue::register(m)?;
    contacts::register(m)?;
    pacing::register(m)?;
    media::register(m)?;
    keys::register(m)?;
    Ok(())
}

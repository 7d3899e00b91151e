//! The PyO3 bindings: the only code that knows Python. Each binding extracts its inputs into
//! owned Rust values, releases the GIL for the core call (Redis I/O, file parsing), then converts
//! the result (see `detach`).

mod contacts;
mod errors;
mod queue;

use pyo3::prelude::*;

/// Run `f` with the GIL released and map the core's error to its Python exception.
pub(crate) fn detach<T: Send>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T> + Send) -> PyResult<T> {
    py.detach(f).map_err(PyErr::from)
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
    Ok(())
}

//! `MediaEngine` and `wav_to_pcm8k` for Python.
//!
//! The engine runs on its own thread. Each method only hands a command over (microseconds), so
//! they run with the GIL held, except `close`/`shutdown`, which join the thread.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::detach;
use crate::error::Error;
use crate::media::{wav, Codec, Config, Event, MediaEngine, Stats};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyMediaEngine>()?;
    m.add_function(wrap_pyfunction!(wav_to_pcm8k, m)?)?;
    m.add_function(wrap_pyfunction!(pcm8k_to_wav, m)?)?;
    Ok(())
}

fn ip(what: &'static str, s: &str) -> PyResult<IpAddr> {
    s.parse()
        .map_err(|_| Error::invalid(what, format!("{s:?} is not an IP address")).into())
}

fn samples(pcm: &[u8]) -> PyResult<Vec<i16>> {
    if !pcm.len().is_multiple_of(2) {
        return Err(Error::invalid(
            "pcm",
            format!("{} bytes: 16-bit samples need an even count", pcm.len()),
        )
        .into());
    }
    Ok(pcm
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// A WAV file (PCM 8-32 bit, u-law or A-law; any rate and channel count) as 8 kHz mono
/// 16-bit little-endian samples.
#[pyfunction]
fn wav_to_pcm8k<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let data = data.to_vec();
    let pcm = detach(py, move || wav::to_pcm8k(&data))?;
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    Ok(PyBytes::new(py, &bytes))
}

/// 8 kHz mono 16-bit little-endian samples as a WAV file.
#[pyfunction]
fn pcm8k_to_wav<'py>(py: Python<'py>, pcm: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(py, &wav::encode(wav::RATE, &samples(pcm)?)))
}

/// The RTP media engine: one thread plays prompts to, and hears RFC 4733 DTMF from, every call.
#[pyclass(name = "MediaEngine", module = "dialer_core", frozen)]
pub struct PyMediaEngine {
    inner: MediaEngine,
}

#[pymethods]
impl PyMediaEngine {
    #[new]
    #[pyo3(signature = (bind="127.0.0.1", ptime_ms=20, inactivity_s=None, send_silence=true, ports=None))]
    fn new(
        bind: &str,
        ptime_ms: u64,
        inactivity_s: Option<f64>,
        send_silence: bool,
        ports: Option<(u16, u16)>,
    ) -> PyResult<Self> {
        let inactivity = match inactivity_s {
            None => None,
            Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(
                    Error::invalid("inactivity_s", format!("{s}: expected seconds > 0")).into(),
                )
            }
        };
        let cfg = Config {
            bind: ip("bind", bind)?,
            ptime: Duration::from_millis(ptime_ms),
            inactivity,
            send_silence,
            ports,
        };
        Ok(PyMediaEngine {
            inner: MediaEngine::start(cfg)?,
        })
    }

    /// The address RTP sockets are bound to (the one to put in SDP).
    #[getter]
    fn bind(&self) -> String {
        self.inner.config().bind.to_string()
    }

    /// Register (or replace) a prompt from 8 kHz mono 16-bit little-endian samples; returns its
    /// length in seconds.
    fn add_prompt(&self, name: &str, pcm: &[u8]) -> PyResult<f64> {
        Ok(self.inner.add_prompt(name, &samples(pcm)?).as_secs_f64())
    }

    fn has_prompt(&self, name: &str) -> bool {
        self.inner.has_prompt(name)
    }

    /// A new call's media: `(call, local RTP port)`. Raises `MediaError` when no RTP port can
    /// be bound.
    fn open(&self) -> PyResult<(u64, u16)> {
        Ok(self.inner.open()?)
    }

    /// Send the call's RTP to `host:port` in `payload_type` (0 PCMU, 8 PCMA); `dtmf_payload_type`
    /// is the far end's telephone-event type (None: it did not offer RFC 4733). From now on only
    /// RTP from `host` counts, latched anew to the port and SSRC of its first packet.
    #[pyo3(
        signature = (call, host, port, payload_type=0, dtmf_payload_type=Some(101)),
        text_signature = "($self, call, host, port, payload_type=0, dtmf_payload_type=101)"
    )]
    fn connect(
        &self,
        call: u64,
        host: &str,
        port: u16,
        payload_type: u8,
        dtmf_payload_type: Option<u8>,
    ) -> PyResult<()> {
        let codec = Codec::from_payload_type(payload_type).ok_or_else(|| {
            Error::invalid(
                "payload_type",
                format!("{payload_type}: expected 0 (PCMU) or 8 (PCMA)"),
            )
        })?;
        if let Some(pt) = dtmf_payload_type {
            if !(96..=127).contains(&pt) {
                return Err(Error::invalid(
                    "dtmf_payload_type",
                    format!("{pt}: expected a dynamic type, 96-127"),
                )
                .into());
            }
        }
        Ok(self.inner.connect(
            call,
            SocketAddr::new(ip("host", host)?, port),
            codec,
            dtmf_payload_type,
        )?)
    }

    /// Play prompts in order, replacing what plays now; a "played" event follows each.
    fn play(&self, call: u64, prompts: Vec<String>) -> PyResult<()> {
        Ok(self.inner.play(call, &prompts)?)
    }

    /// Bridge two calls: the audio each receives is sent out of the other, transcoded when their
    /// codecs differ; their own prompts and silence stop.
    fn bridge(&self, a: u64, b: u64) -> PyResult<()> {
        Ok(self.inner.bridge(a, b)?)
    }

    /// Take the call (and its peer) out of their bridge.
    fn unbridge(&self, call: u64) -> PyResult<()> {
        Ok(self.inner.unbridge(call)?)
    }

    /// Stop playing (silence follows).
    fn stop(&self, call: u64) -> PyResult<()> {
        Ok(self.inner.stop(call)?)
    }

    /// Send DTMF keys as RFC 4733 events of `duration_ms` each.
    #[pyo3(signature = (call, keys, duration_ms=100))]
    fn send_digits(&self, call: u64, keys: &str, duration_ms: u32) -> PyResult<()> {
        Ok(self.inner.send_digits(call, keys, duration_ms)?)
    }

    /// End the call's media and free its port (closing twice does nothing).
    fn close(&self, call: u64) -> PyResult<()> {
        Ok(self.inner.close(call)?)
    }

    /// Events since the last call: `("played", call, prompt)`, `("digit", call, key)`,
    /// `("inactive", call, "")`.
    fn events(&self) -> Vec<(&'static str, u64, String)> {
        self.inner
            .events()
            .into_iter()
            .map(|e| match e {
                Event::Played { call, prompt } => ("played", call, prompt),
                Event::Digit { call, key } => ("digit", call, key.to_string()),
                Event::Inactive { call } => ("inactive", call, String::new()),
            })
            .collect()
    }

    /// A file descriptor that becomes readable when events wait (for `loop.add_reader`).
    fn fileno(&self) -> i32 {
        self.inner.notify_fd()
    }

    /// Totals: calls, ticks, overruns, frames sent/received, malformed, digits, packets rejected
    /// as not the far end's (source, SSRC), read budgets used up and the reads past them, send
    /// errors, and frame lateness (p50/p99/p999/max in ms, frames later than 20 ms).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s: Stats = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("calls", s.calls)?;
        d.set_item("ticks", s.ticks)?;
        d.set_item("overruns", s.overruns)?;
        d.set_item("frames_sent", s.frames_sent)?;
        d.set_item("frames_received", s.frames_received)?;
        d.set_item("frames_relayed", s.frames_relayed)?;
        d.set_item("malformed", s.malformed)?;
        d.set_item("digits", s.digits)?;
        d.set_item("rejected_source", s.rejected_source)?;
        d.set_item("rejected_ssrc", s.rejected_ssrc)?;
        d.set_item("budget_exhausted", s.budget_exhausted)?;
        d.set_item("backlog_reads", s.backlog_reads)?;
        d.set_item("send_errors", s.send_errors)?;
        d.set_item("late_p50_ms", s.lateness_ms(0.5))?;
        d.set_item("late_p99_ms", s.lateness_ms(0.99))?;
        d.set_item("late_p999_ms", s.lateness_ms(0.999))?;
        d.set_item("late_max_ms", s.lateness_ms(1.0))?;
        d.set_item("frames_late_over_20ms", s.later_than(20.0))?;
        Ok(d)
    }

    fn reset_stats(&self) {
        self.inner.reset_stats()
    }

    /// Stop the engine's thread; every call's media ends.
    fn shutdown(&self, py: Python<'_>) {
        py.detach(|| self.inner.shutdown())
    }
}

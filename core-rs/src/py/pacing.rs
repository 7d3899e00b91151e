//! `PacingEngine` and `simulate` for Python.
//!
//! The engine's events are sub-microsecond: they run with the GIL held (releasing it would cost
//! more than the work). `simulate` runs a whole day and releases it, so threads run days in
//! parallel.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::detach;
use crate::error::Error;
use crate::pacing::{AgentState, Config, DecisionInputs, Mode, PacingEngine, Stats, Unanswered};
use crate::sim::policies::DropAction;
use crate::sim::{simulate as run_day, PolicySpec, Report, Scenario};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPacingEngine>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add("PACING_MODES", Mode::NAMES.to_vec())?;
    m.add("SIMULATED_POLICIES", POLICIES.to_vec())?;
    Ok(())
}

const POLICIES: [&str; 7] = [
    "predictive",
    "progressive",
    "fixed_ratio",
    "vicidial_hard_limit",
    "vicidial_average",
    "erlang_b",
    "preview",
];

/// How many calls to place now, for one campaign. Pure: no I/O and no clock; every event
/// carries `now`, seconds on one monotonic clock.
#[pyclass(name = "PacingEngine", module = "dialer_core")]
pub struct PyPacingEngine {
    inner: PacingEngine<String>,
}

fn apply_config(cfg: &mut Config, changes: &Bound<'_, PyDict>) -> PyResult<()> {
    for (k, v) in changes.iter() {
        let key: String = k.extract()?;
        match key.as_str() {
            "mode" => cfg.mode = Mode::parse(&v.extract::<String>()?)?,
            "target_abandon_rate" => cfg.target_abandon_rate = v.extract()?,
            "abandon_window_s" => cfg.abandon_window_s = v.extract()?,
            "connect_limit_s" => cfg.connect_limit_s = v.extract()?,
            "max_dial_ratio" => cfg.max_dial_ratio = v.extract()?,
            "max_channels" => cfg.max_channels = v.extract()?,
            "max_cps" => cfg.max_cps = v.extract()?,
            other => {
                return Err(Error::invalid(
                    "setting",
                    format!(
                        "{other:?}: expected mode, target_abandon_rate, abandon_window_s, connect_limit_s, \
                         max_dial_ratio, max_channels or max_cps"
                    ),
                )
                .into())
            }
        }
    }
    Ok(())
}

fn config_dict<'py>(py: Python<'py>, c: &Config) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("mode", c.mode.as_str())?;
    d.set_item("target_abandon_rate", c.target_abandon_rate)?;
    d.set_item("abandon_window_s", c.abandon_window_s)?;
    d.set_item("connect_limit_s", c.connect_limit_s)?;
    d.set_item("max_dial_ratio", c.max_dial_ratio)?;
    d.set_item("max_channels", c.max_channels)?;
    d.set_item("max_cps", c.max_cps)?;
    Ok(d)
}

fn stats_dict<'py>(py: Python<'py>, s: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("mode", s.mode)?;
    d.set_item("window_live_answers", s.window_live_answers)?;
    d.set_item("window_abandons", s.window_abandons)?;
    d.set_item("window_abandon_rate", s.window_abandon_rate)?;
    d.set_item("abandon_budget", s.abandon_budget)?;
    let t = &s.totals;
    d.set_item("dialed", t.dialed)?;
    d.set_item("answered", t.answered)?;
    d.set_item("connected", t.connected)?;
    d.set_item("abandoned", t.abandoned)?;
    let un = PyDict::new(py);
    for (name, n) in Unanswered::NAMES.iter().zip(t.unanswered) {
        un.set_item(*name, n)?;
    }
    d.set_item("unanswered", un)?;
    let agents = PyDict::new(py);
    for (name, n) in AgentState::NAMES.iter().zip(s.agents) {
        agents.set_item(*name, n)?;
    }
    d.set_item("agents", agents)?;
    d.set_item("calls_ringing", s.calls_ringing)?;
    d.set_item("calls_waiting", s.calls_waiting)?;
    d.set_item("calls_connected", s.calls_connected)?;
    d.set_item("calls_closing", s.calls_closing)?;
    d.set_item("dial_ratio", s.dial_ratio)?;
    d.set_item("live_answer_rate", s.live_answer_rate)?;
    d.set_item("answer_delay_median_s", s.answer_delay_median_s)?;
    d.set_item("answer_delay_p90_s", s.answer_delay_p90_s)?;
    d.set_item("talk_time_mean_s", s.talk_time_mean_s)?;
    d.set_item("wrap_time_mean_s", s.wrap_time_mean_s)?;
    d.set_item("observations", (s.samples[0], s.samples[1], s.samples[2]))?;
    let l = &s.last_decision;
    let last = PyDict::new(py);
    last.set_item("at", l.at)?;
    last.set_item("calls", l.calls)?;
    last.set_item("floor", l.floor)?;
    last.set_item("cap", l.cap)?;
    last.set_item("budget", l.budget)?;
    last.set_item("aim", l.aim)?;
    last.set_item("z", l.z)?;
    d.set_item("last_decision", last)?;
    Ok(d)
}

fn inputs_dict<'py>(py: Python<'py>, i: &DecisionInputs) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("mode", i.mode.as_str())?;
    d.set_item("ready", i.ready)?;
    d.set_item("waiting", i.waiting)?;
    d.set_item("floor", i.floor)?;
    d.set_item("cap", i.cap)?;
    d.set_item("aim", i.aim)?;
    d.set_item("z", i.z)?;
    d.set_item("p", i.p)?;
    d.set_item("p_rel_var", i.p_rel_var)?;
    d.set_item("answer_by", i.answer_by.to_vec())?;
    d.set_item("ringing_ages", &i.ringing_ages)?;
    d.set_item("talking_elapsed", &i.talking_elapsed)?;
    d.set_item("wrap_elapsed", &i.wrap_elapsed)?;
    let tables = |ts: &[crate::pacing::estimate::Table]| -> PyResult<Bound<'py, PyList>> {
        let l = PyList::empty(py);
        for t in ts {
            l.append((t.step, t.values.clone()))?;
        }
        Ok(l)
    };
    d.set_item("ring_within", tables(&i.ring_within)?)?;
    d.set_item("talk_free", tables(&i.talk_free)?)?;
    d.set_item("wrap_free", tables(&i.wrap_free)?)?;
    Ok(d)
}

#[pymethods]
impl PyPacingEngine {
    #[new]
    #[pyo3(signature = (mode="predictive", target_abandon_rate=0.03, abandon_window_s=86_400.0, connect_limit_s=2.0,
                        max_dial_ratio=3.0, max_channels=None, max_cps=None))]
    fn new(
        mode: &str,
        target_abandon_rate: f64,
        abandon_window_s: f64,
        connect_limit_s: f64,
        max_dial_ratio: f64,
        max_channels: Option<u32>,
        max_cps: Option<f64>,
    ) -> PyResult<Self> {
        let cfg = Config {
            mode: Mode::parse(mode)?,
            target_abandon_rate,
            abandon_window_s,
            connect_limit_s,
            max_dial_ratio,
            max_channels,
            max_cps,
        };
        Ok(PyPacingEngine {
            inner: PacingEngine::new(cfg)?,
        })
    }

    /// An agent's state changed: "ready", "talking", "wrap", "away" or "offline" (which removes
    /// the agent). An unknown agent is added.
    fn agent_state(&mut self, agent_id: &str, state: &str, now: f64) -> PyResult<()> {
        Ok(self
            .inner
            .agent_state(agent_id, AgentState::parse(state)?, now)?)
    }

    /// A call was placed (each attempt has its own id).
    fn call_dialed(&mut self, call_id: &str, now: f64) -> PyResult<()> {
        Ok(self.inner.call_dialed(call_id, now)?)
    }

    /// A person picked up.
    fn call_answered(&mut self, call_id: &str, now: f64) -> PyResult<()> {
        Ok(self.inner.call_answered(call_id, now)?)
    }

    /// The answered call was handed to an agent.
    fn call_connected(&mut self, call_id: &str, now: f64) -> PyResult<()> {
        Ok(self.inner.call_connected(call_id, now)?)
    }

    /// The answered call found no agent within the connect limit.
    fn call_abandoned(&mut self, call_id: &str, now: f64) -> PyResult<()> {
        Ok(self.inner.call_abandoned(call_id, now)?)
    }

    /// The call ended without a live answer: "no_answer", "busy", "failed" or "machine". This
    /// ends the call (no `call_ended` follows).
    fn call_unanswered(&mut self, call_id: &str, now: f64, reason: &str) -> PyResult<()> {
        Ok(self
            .inner
            .call_unanswered(call_id, Unanswered::parse(reason)?, now)?)
    }

    /// An answered call hung up (connected, abandoned, or still waiting for an agent).
    fn call_ended(&mut self, call_id: &str, now: f64) -> PyResult<()> {
        Ok(self.inner.call_ended(call_id, now)?)
    }

    /// How many new calls to place now (>= 0).
    fn decide(&mut self, now: f64) -> PyResult<u32> {
        Ok(self.inner.decide(now)?)
    }

    /// The abandon rate over the window, live answers, estimates, the current dial ratio and the
    /// last decision.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.inner.stats())
    }

    /// Change settings while running: all are validated before any applies.
    #[pyo3(signature = (**changes))]
    fn configure(&mut self, changes: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let mut cfg = self.inner.config().clone();
        if let Some(c) = changes {
            apply_config(&mut cfg, c)?;
        }
        Ok(self.inner.configure(cfg)?)
    }

    /// The current settings.
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        config_dict(py, self.inner.config())
    }

    /// What `decide(now)` reads (for the reference implementation in `bench/`); it refreshes the
    /// estimates as `decide` would, and counts as an event at `now`.
    fn decision_inputs<'py>(&mut self, py: Python<'py>, now: f64) -> PyResult<Bound<'py, PyDict>> {
        let i = self.inner.decision_inputs(now)?;
        inputs_dict(py, &i)
    }

    fn __repr__(&self) -> String {
        let s = self.inner.stats();
        format!(
            "PacingEngine(mode={:?}, agents={}, calls_ringing={}, window_abandon_rate={:.4})",
            s.mode,
            s.agents.iter().sum::<u32>(),
            s.calls_ringing,
            s.window_abandon_rate
        )
    }
}

fn scenario_from(params: Option<&Bound<'_, PyDict>>) -> PyResult<(Scenario, Config, f64)> {
    let mut sc = Scenario::default();
    let mut cfg = Config::default();
    let mut fixed_ratio = 2.0;
    if let Some(p) = params {
        for (k, v) in p.iter() {
            let key: String = k.extract()?;
            match key.as_str() {
                "agents" => sc.agents = v.extract()?,
                "live_rate" => sc.live_rate = v.extract()?,
                "drift" => sc.drift = v.extract()?,
                "machine_rate" => sc.machine_rate = v.extract()?,
                "busy_rate" => sc.busy_rate = v.extract()?,
                "fail_rate" => sc.fail_rate = v.extract()?,
                "answer_delay_median_s" => sc.answer_delay_median_s = v.extract()?,
                "answer_delay_sigma" => sc.answer_delay_sigma = v.extract()?,
                "ring_timeout_s" => sc.ring_timeout_s = v.extract()?,
                "talk_mean_s" => sc.talk_mean_s = v.extract()?,
                "talk_cv" => sc.talk_cv = v.extract()?,
                "wrap_mean_s" => sc.wrap_mean_s = v.extract()?,
                "wrap_cv" => sc.wrap_cv = v.extract()?,
                "connect_limit_s" => {
                    sc.connect_limit_s = v.extract()?;
                    cfg.connect_limit_s = sc.connect_limit_s;
                }
                "duration_s" => sc.duration_s = v.extract()?,
                "days" => sc.days = v.extract()?,
                "tick_s" => sc.tick_s = v.extract()?,
                "series_step_s" => sc.series_step_s = v.extract()?,
                "seed" => sc.seed = v.extract()?,
                "fixed_ratio" => fixed_ratio = v.extract()?,
                "target_abandon_rate"
                | "abandon_window_s"
                | "max_dial_ratio"
                | "max_channels"
                | "max_cps" => {
                    let one = PyDict::new(p.py());
                    one.set_item(&key, v)?;
                    apply_config(&mut cfg, &one)?;
                }
                other => {
                    return Err(Error::invalid(
                        "simulate parameter",
                        format!("{other:?} is not one"),
                    )
                    .into())
                }
            }
        }
    }
    Ok((sc, cfg, fixed_ratio))
}

fn report_dict<'py>(py: Python<'py>, r: &Report) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("policy", &r.policy)?;
    d.set_item("dialed", r.dialed)?;
    d.set_item("live_answers", r.live_answers)?;
    d.set_item("abandons", r.abandons)?;
    d.set_item("connects", r.connects)?;
    d.set_item("abandon_rate", r.abandon_rate)?;
    d.set_item("worst_window_abandon_rate", r.worst_window_abandon_rate)?;
    d.set_item("occupancy", r.occupancy)?;
    d.set_item("decisions", r.decisions)?;
    let s = PyDict::new(py);
    s.set_item("t", &r.series.t)?;
    s.set_item("occupancy", &r.series.occupancy)?;
    s.set_item("window_abandon_rate", &r.series.window_abandon_rate)?;
    s.set_item("dialed", &r.series.dialed)?;
    s.set_item("answers", &r.series.answers)?;
    s.set_item("abandons", &r.series.abandons)?;
    d.set_item("series", s)?;
    Ok(d)
}

/// Simulate one call-centre day under a pacing policy (seeded: the same arguments give the same
/// day). Releases the GIL.
#[pyfunction]
#[pyo3(signature = (policy="predictive", **params))]
fn simulate<'py>(
    py: Python<'py>,
    policy: &str,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let (sc, cfg, fixed_ratio) = scenario_from(params)?;
    let target = cfg.target_abandon_rate;
    let window = cfg.abandon_window_s;
    let spec = match policy {
        "predictive" | "progressive" | "preview" => PolicySpec::Engine(Config {
            mode: Mode::parse(policy)?,
            ..cfg
        }),
        "fixed_ratio" => PolicySpec::FixedRatio(fixed_ratio),
        "vicidial_hard_limit" => PolicySpec::Vicidial {
            action: DropAction::HardLimit,
            target,
        },
        "vicidial_average" => PolicySpec::Vicidial {
            action: DropAction::Average,
            target,
        },
        "erlang_b" => PolicySpec::ErlangB { target },
        other => {
            return Err(Error::invalid(
                "policy",
                format!("{other:?}: expected one of {}", POLICIES.join(", ")),
            )
            .into())
        }
    };
    let report = detach(py, move || run_day(&sc, &spec, window))?;
    report_dict(py, &report)
}

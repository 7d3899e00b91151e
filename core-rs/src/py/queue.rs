//! `CallQueue`, `Claim` and `Completion` for Python.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::{detach, errors::raise, now_ms, seconds_to_ms};
use crate::contacts::e164::{format_e164, parse_e164};
use crate::queue::{CallQueue, Claim, Completed, Completion, Held, Mark, OutcomePolicy};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCallQueue>()?;
    m.add_class::<PyClaim>()?;
    m.add_class::<PyCompletion>()?;
    m.add_function(wrap_pyfunction!(redis_info, m)?)?;
    m.add("STATES", crate::queue::STATES.to_vec())?;
    Ok(())
}

pub(crate) fn parse_number(s: &str) -> PyResult<u64> {
    parse_e164(s).ok_or_else(|| {
        raise(
            "InvalidNumber",
            format!("{s:?} is not an E.164 number such as +84901234567"),
        )
    })
}

/// A contact handed to this dialer under a lease. Complete it (or release it) with its token
/// before `lease_s` runs out; after that it is delivered again to someone else.
#[pyclass(name = "Claim", module = "dialer_core", frozen)]
pub struct PyClaim {
    /// The number in E.164 form, e.g. "+84901234567".
    #[pyo3(get)]
    number: String,
    #[pyo3(get)]
    partition: u32,
    #[pyo3(get)]
    token: u64,
    /// The lease batch it was claimed in: what `CallQueue.renew` extends.
    #[pyo3(get)]
    batch: u64,
    /// Attempts made before this one.
    #[pyo3(get)]
    attempts: u32,
    /// "callback", "retry", "fresh" or "adopted" (a dead dialer's call kept for its agent).
    #[pyo3(get)]
    source: &'static str,
    /// The agent a callback is reserved for.
    #[pyo3(get)]
    agent: Option<String>,
    attrs: Vec<(String, String)>,
    /// The number as the integer of its digits (what the core works with).
    packed: u64,
}

#[pymethods]
impl PyClaim {
    /// Attributes from the imported file (name, segment ...), when claimed with `with_attrs=True`.
    #[getter]
    fn attrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in &self.attrs {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Claim({}, token={}, attempts={}, source={:?})",
            self.number, self.token, self.attempts, self.source
        )
    }
}

impl From<Claim> for PyClaim {
    fn from(c: Claim) -> Self {
        PyClaim {
            number: format_e164(c.number),
            partition: c.partition,
            token: c.token,
            batch: c.batch,
            attempts: c.attempts,
            source: c.source.as_str(),
            agent: c.agent,
            attrs: c.attrs,
            packed: c.number,
        }
    }
}

/// The end of one claim: what happened to the call.
#[pyclass(name = "Completion", module = "dialer_core", frozen)]
#[derive(Clone)]
pub struct PyCompletion {
    inner: Completion,
}

#[pymethods]
impl PyCompletion {
    /// `outcome`: a name such as "answered", "agreed", "no_answer", "busy", "failed".
    /// `callback_at` (epoch seconds) with `agent`: call back then, reserved for that agent.
    /// `do_not_call_back_until` (epoch seconds): not before then; then due again.
    /// `release=True`: give the contact back unused (no attempt counted).
    #[new]
    #[pyo3(signature = (number, token, outcome, *, callback_at=None, agent=None, do_not_call_back_until=None, release=false))]
    fn new(
        number: &str,
        token: u64,
        outcome: &str,
        callback_at: Option<f64>,
        agent: Option<String>,
        do_not_call_back_until: Option<f64>,
        release: bool,
    ) -> PyResult<Self> {
        let mut c = Completion::new(parse_number(number)?, token, outcome);
        crate::queue::policy::check_outcome(outcome)?;
        match (callback_at, agent) {
            (Some(at), Some(agent)) => {
                crate::keys::check_name("agent id", &agent)?;
                c.callback = Some((seconds_to_ms("callback_at", at)?, agent));
            }
            (Some(_), None) => {
                return Err(raise(
                    "InvalidInput",
                    "a callback needs the agent it is reserved for".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(raise(
                    "InvalidInput",
                    "agent is given only with callback_at".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(t) = do_not_call_back_until {
            c.do_not_call_back_until = Some(seconds_to_ms("do_not_call_back_until", t)?);
        }
        c.release = release;
        Ok(PyCompletion { inner: c })
    }

    /// The number in E.164 form.
    #[getter]
    fn number(&self) -> String {
        format_e164(self.inner.number)
    }

    #[getter]
    fn token(&self) -> u64 {
        self.inner.token
    }

    #[getter]
    fn outcome(&self) -> &str {
        &self.inner.outcome
    }

    /// Given back unused (no attempt counted).
    #[getter]
    fn release(&self) -> bool {
        self.inner.release
    }

    /// The agent a callback is reserved for (None: no callback).
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.inner.callback.as_ref().map(|(_, a)| a.as_str())
    }

    fn __repr__(&self) -> String {
        format!(
            "Completion({}, token={}, outcome={:?})",
            format_e164(self.inner.number),
            self.inner.token,
            self.inner.outcome
        )
    }
}

/// Accept a `Completion`, or a `(number, token, outcome)` tuple, or a `(Claim, outcome)` tuple.
fn completion_of(item: &Bound<'_, PyAny>) -> PyResult<Completion> {
    if let Ok(c) = item.cast::<PyCompletion>() {
        return Ok(c.get().inner.clone());
    }
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() == 2 {
            if let Ok(claim) = t.get_item(0)?.cast::<PyClaim>() {
                let outcome: String = t.get_item(1)?.extract()?; // checked by the core's complete
                let c = claim.get();
                return Ok(Completion::new(c.packed, c.token, outcome));
            }
        }
        if t.len() == 3 {
            let (number, token, outcome): (String, u64, String) = t.extract()?;
            return Ok(Completion::new(parse_number(&number)?, token, outcome));
        }
    }
    Err(raise(
        "InvalidInput",
        format!(
            "cannot complete {}: give a Completion, (claim, outcome) or (number, token, outcome)",
            item.repr()?
        ),
    ))
}

/// A campaign's call queue in Redis. Safe to share between threads; every call releases the GIL
/// while it talks to Redis.
#[pyclass(name = "CallQueue", module = "dialer_core", frozen)]
pub struct PyCallQueue {
    inner: Mutex<CallQueue>,
    campaign: String,
    partitions: u32,
}

impl PyCallQueue {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CallQueue) -> crate::Result<T> + Send,
    ) -> PyResult<T> {
        detach(py, || {
            let mut q = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut q)
        })
    }
}

#[pymethods]
impl PyCallQueue {
    #[new]
    #[pyo3(signature = (redis_url, campaign, *, partitions=None, max_attempts=2, retry_delay_s=3600.0, retry_on=None))]
    fn new(
        py: Python<'_>,
        redis_url: String,
        campaign: String,
        partitions: Option<u32>,
        max_attempts: u32,
        retry_delay_s: f64,
        retry_on: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let retry_on = retry_on.unwrap_or_else(|| {
            crate::queue::policy::DEFAULT_RETRY_ON
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let policy = OutcomePolicy::new(
            max_attempts,
            seconds_to_ms("retry_delay_s", retry_delay_s)?,
            retry_on,
        )?;
        let q = detach(py, || {
            CallQueue::open(&redis_url, &campaign, partitions, policy)
        })?;
        let partitions = q.partitions();
        Ok(PyCallQueue {
            inner: Mutex::new(q),
            campaign,
            partitions,
        })
    }

    #[getter]
    fn campaign(&self) -> &str {
        &self.campaign
    }

    #[getter]
    fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Change the outcome policy (attempts, retry delay, retried outcomes) for later completions.
    #[pyo3(signature = (*, max_attempts=None, retry_delay_s=None, retry_on=None))]
    fn configure(
        &self,
        py: Python<'_>,
        max_attempts: Option<u32>,
        retry_delay_s: Option<f64>,
        retry_on: Option<Vec<String>>,
    ) -> PyResult<()> {
        let delay = retry_delay_s
            .map(|s| seconds_to_ms("retry_delay_s", s))
            .transpose()?;
        // Another thread may hold the queue for a Redis round trip: wait for it without the GIL.
        self.with(py, |q| {
            let cur = q.policy().clone();
            let p = OutcomePolicy::new(
                max_attempts.unwrap_or(cur.max_attempts),
                delay.unwrap_or(cur.retry_delay_ms),
                retry_on.unwrap_or(cur.retry_on),
            )?;
            q.set_policy(p);
            Ok(())
        })
    }

    /// Claim up to `n` due contacts of `partition`: due callbacks first, then due retries, then
    /// fresh contacts. Each is leased for `lease_s` seconds. With `agents`, only callbacks reserved
    /// for one of them are taken (the others wait for their agent); `[]` takes no callback.
    /// `dialling`: the caller places every claimed call now, so each is marked dialled in the
    /// same script (see `mark`), with `owner` (the dialler's name for itself) kept in the mark
    /// (see `marks`).
    #[pyo3(signature = (n, *, partition=0, lease_s=60.0, now=None, with_attrs=false, agents=None, dialling=false, owner=None))]
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        py: Python<'_>,
        n: usize,
        partition: u32,
        lease_s: f64,
        now: Option<f64>,
        with_attrs: bool,
        agents: Option<Vec<String>>,
        dialling: bool,
        owner: Option<String>,
    ) -> PyResult<Vec<PyClaim>> {
        let marking = dialling.then(|| owner.as_deref().unwrap_or(""));
        let now = now_ms(now)?;
        let lease = seconds_to_ms("lease_s", lease_s)?;
        let claims = self.with(py, |q| {
            q.claim_with(
                partition,
                n,
                now,
                lease,
                with_attrs,
                agents.as_deref(),
                marking,
            )
        })?;
        Ok(claims.into_iter().map(PyClaim::from).collect())
    }

    /// Mark claims whose INVITE is leaving (`answered=False`: from now on an attempt, if the
    /// dialer dies: the expired lease comes back as outcome "interrupted") or whose call was
    /// answered (`answered=True`: final if the dialer dies: nobody who answered is called again
    /// because of it). One round trip per partition among the claims; a claim whose lease is no
    /// longer live is not marked. Returns how many were. `details` (answered marks only, aligned
    /// with `claims`): what is kept with each mark (see `marks`).
    #[pyo3(signature = (claims, *, answered=false, details=None))]
    fn mark(
        &self,
        py: Python<'_>,
        claims: Vec<PyRef<'_, PyClaim>>,
        answered: bool,
        details: Option<Vec<String>>,
    ) -> PyResult<usize> {
        let items: Vec<(u32, u64, u64)> = claims
            .iter()
            .map(|c| (c.partition, c.packed, c.token))
            .collect();
        match (answered, details) {
            (true, details) => {
                let details = details.unwrap_or_default();
                self.with(py, |q| q.mark_answered(&items, &details))
            }
            (false, None) => self.with(py, |q| q.mark(&items, Mark::Dialled)),
            (false, Some(_)) => self.with(py, |_| {
                Err(crate::Error::invalid(
                    "details",
                    "only answered marks keep details",
                ))
            }),
        }
    }

    /// Every dial mark of `partition`'s live leases: (number, token, kind, detail) each, kind
    /// "dialled" or "answered", detail what the dialler kept with it (the claim's `owner`, an
    /// answer's `details`), in token order. For a node taking a partition over: a dead
    /// dialler's calls, to end them.
    #[pyo3(signature = (*, partition=0))]
    fn marks(
        &self,
        py: Python<'_>,
        partition: u32,
    ) -> PyResult<Vec<(String, u64, &'static str, String)>> {
        let all = self.with(py, |q| q.marks(partition))?;
        Ok(all
            .into_iter()
            .map(|m| {
                let kind = match m.mark {
                    Mark::Dialled => "dialled",
                    Mark::Answered => "answered",
                };
                (format_e164(m.number), m.token, kind, m.detail)
            })
            .collect())
    }

    /// End now the leases of the claim batches holding these tokens of `partition`: the next
    /// claim counts their contacts by their marks (`take_interrupted`) instead of waiting for
    /// the leases to run out. Returns how many batches were ended.
    #[pyo3(signature = (tokens, *, partition=0))]
    fn expire_leases(&self, py: Python<'_>, tokens: Vec<u64>, partition: u32) -> PyResult<usize> {
        self.with(py, |q| q.expire_leases(partition, &tokens))
    }

    /// After Redis lost writes it had acknowledged (a claim raised `RedisRewound`, or the
    /// server's run id changed): write back the leases and dial marks of `claims`, the calls
    /// still in progress and those completed in the last seconds, so that none is handed out
    /// again. `marks` is aligned with `claims`: each one's dial mark after "token|" ("d", "d|owner",
    /// "a|detail"; "" for none). Answers per claim "held" (Redis had it), "restored" (its claim
    /// was lost; written back), "done" (it moved on: completed, or counted when its lease
    /// expired) or "taken" (claimed by someone else meanwhile). Completing a restored claim again
    /// applies its completion. Claims work again afterwards.
    #[pyo3(signature = (claims, marks, *, partition=0, lease_s=60.0, now=None))]
    fn reassert(
        &self,
        py: Python<'_>,
        claims: Vec<PyRef<'_, PyClaim>>,
        marks: Vec<String>,
        partition: u32,
        lease_s: f64,
        now: Option<f64>,
    ) -> PyResult<Vec<String>> {
        if marks.len() != claims.len() {
            return Err(crate::Error::invalid(
                "marks",
                format!("{} marks for {} claims", marks.len(), claims.len()),
            )
            .into());
        }
        let held: Vec<Held> = claims
            .iter()
            .zip(marks)
            .map(|(c, mark)| Held {
                number: c.packed,
                token: c.token,
                batch: c.batch,
                attempts: c.attempts,
                agent: c.agent.clone(),
                mark,
            })
            .collect();
        let now = now_ms(now)?;
        let lease = seconds_to_ms("lease_s", lease_s)?;
        self.with(py, |q| q.reassert(partition, &held, now, lease))
    }

    /// A node taking a partition over keeps leased the calls of a dead dialer that its agents
    /// still have open (connected, or wrapping up), until their dispositions complete them:
    /// `calls` = (number, token, detail) each, the dead dialer's token and what the new answered
    /// mark keeps (see `marks`). Each gets a new token in a batch of its own (its `Claim`, source
    /// "adopted": renew its `batch`; complete it with its `token`, or with the first one, which
    /// stays valid); the dead dialer's batch then expires without it. None for a call whose
    /// lease is gone or holds another token.
    #[pyo3(signature = (calls, *, partition=0, lease_s=60.0, now=None))]
    fn adopt(
        &self,
        py: Python<'_>,
        calls: Vec<(String, u64, String)>,
        partition: u32,
        lease_s: f64,
        now: Option<f64>,
    ) -> PyResult<Vec<Option<PyClaim>>> {
        let calls: Vec<(u64, u64, String)> = calls
            .into_iter()
            .map(|(number, token, detail)| Ok((parse_number(&number)?, token, detail)))
            .collect::<PyResult<_>>()?;
        let now = now_ms(now)?;
        let lease = seconds_to_ms("lease_s", lease_s)?;
        let adopted = self.with(py, |q| q.adopt(partition, &calls, now, lease))?;
        Ok(adopted
            .into_iter()
            .map(|c| c.map(PyClaim::from))
            .collect())
    }

    /// The dialled contacts whose expired leases this queue's claims found since the last call
    /// (their dialer died or lost them): (number, partition, attempts, result) each, result one
    /// of "answered" (final), "retry", "interrupted" (final, not retried) or "exhausted".
    fn take_interrupted(&self, py: Python<'_>) -> PyResult<Vec<(String, u32, u32, String)>> {
        let all = self.with(py, |q| Ok(q.take_interrupted()))?;
        Ok(all
            .into_iter()
            .map(|i| (format_e164(i.number), i.partition, i.attempts, i.result))
            .collect())
    }

    /// Extend the leases of claim batches (`Claim.batch`) of `partition` to `lease_s` from now:
    /// the heartbeat of a dialer whose calls are still in progress. A batch already expired is
    /// not revived, a later deadline is not shortened. Returns how many batches were extended.
    #[pyo3(signature = (batches, *, partition=0, lease_s=60.0, now=None))]
    fn renew(
        &self,
        py: Python<'_>,
        batches: Vec<u64>,
        partition: u32,
        lease_s: f64,
        now: Option<f64>,
    ) -> PyResult<usize> {
        let now = now_ms(now)?;
        let lease = seconds_to_ms("lease_s", lease_s)?;
        self.with(py, |q| q.renew(partition, &batches, now, lease))
    }

    /// Complete claims; answers one string per item: "final", "retry", "exhausted", "callback",
    /// "do_not_call_back", "suppressed", "released" or "stale" (wrong or expired token: nothing
    /// changed).
    #[pyo3(signature = (items, *, now=None))]
    fn complete(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        now: Option<f64>,
    ) -> PyResult<Vec<&'static str>> {
        let now = now_ms(now)?;
        let items: Vec<Completion> = items
            .try_iter()?
            .map(|i| completion_of(&i?))
            .collect::<PyResult<_>>()?;
        let done = self.with(py, |q| q.complete_many(&items, now))?;
        Ok(done.iter().map(Completed::as_str).collect())
    }

    /// Queue depth and counters over all partitions; `exists` is False for a campaign nothing
    /// was ever imported into.
    #[pyo3(signature = (*, now=None))]
    fn stats<'py>(&self, py: Python<'py>, now: Option<f64>) -> PyResult<Bound<'py, PyDict>> {
        let now = now_ms(now)?;
        let (s, exists) = self.with(py, |q| Ok((q.stats(now)?, q.exists()?)))?;
        let d = PyDict::new(py);
        d.set_item("campaign", &self.campaign)?;
        d.set_item("exists", exists)?;
        d.set_item("partitions", s.partitions)?;
        d.set_item("ready", s.ready)?;
        d.set_item("retry_waiting", s.retry_waiting)?;
        d.set_item("retry_due", s.retry_due)?;
        d.set_item("callbacks_waiting", s.callbacks_waiting)?;
        d.set_item("callbacks_due", s.callbacks_due)?;
        d.set_item("leased", s.leased)?;
        d.set_item("lease_batches_overdue", s.lease_batches_overdue)?;
        let c = PyDict::new(py);
        for (k, v) in &s.counters {
            c.set_item(k, v)?;
        }
        d.set_item("counters", c)?;
        Ok(d)
    }

    /// One contact's state ("ready", "claimed", "waiting_retry", "callback", "do_not_call_back",
    /// "done"), attempts, last outcome, time and attributes; `None` if not in this campaign.
    fn contact<'py>(&self, py: Python<'py>, number: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let n = parse_number(number)?;
        let Some(c) = self.with(py, |q| q.contact(n))? else {
            return Ok(None);
        };
        Ok(Some(contact_dict(py, c)?))
    }

    /// A page of contacts (each as `contact()` gives it), only those in `state` when given, from
    /// `cursor` (the `next` of the previous page; `None` to start). Answers
    /// `{"contacts": [...], "next": cursor or None}`.
    #[pyo3(signature = (*, state=None, cursor=None, count=100))]
    fn contacts<'py>(
        &self,
        py: Python<'py>,
        state: Option<String>,
        cursor: Option<String>,
        count: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let page = self.with(py, |q| {
            q.contacts(state.as_deref(), cursor.as_deref(), count)
        })?;
        let list = PyList::empty(py);
        for c in page.contacts {
            list.append(contact_dict(py, c)?)?;
        }
        let d = PyDict::new(py);
        d.set_item("contacts", list)?;
        d.set_item("next", page.next)?;
        Ok(d)
    }

    /// Suppression lists checked when contacts are claimed.
    fn suppression_lists<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let l = self.with(py, |q| q.suppression_lists())?;
        PyList::new(py, l)
    }

    fn set_suppression_lists(&self, py: Python<'_>, lists: Vec<String>) -> PyResult<()> {
        self.with(py, |q| q.set_suppression_lists(&lists))
    }

    fn __repr__(&self) -> String {
        format!(
            "CallQueue(campaign={:?}, partitions={})",
            self.campaign, self.partitions
        )
    }
}

fn contact_dict(py: Python<'_>, c: crate::queue::ContactState) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("number", format_e164(c.number))?;
    d.set_item("state", c.state)?;
    d.set_item("attempts", c.attempts)?;
    d.set_item("time", c.time_ms.map(|t| t as f64 / 1000.0))?;
    d.set_item("last_outcome", c.last_outcome)?;
    d.set_item("agent", c.agent)?;
    let a = PyDict::new(py);
    for (k, v) in &c.attrs {
        a.set_item(k, v)?;
    }
    d.set_item("attrs", a)?;
    Ok(d)
}

/// `INFO` of the Redis at `redis_url` (all sections) as a dict of strings: for memory figures
/// (`used_memory`) and the server version. On a cluster: the first primary's, with the figures
/// that add up (memory, CPU, commands, keys) summed over every primary and `cluster_primaries`.
#[pyfunction]
pub(crate) fn redis_info<'py>(py: Python<'py>, redis_url: String) -> PyResult<Bound<'py, PyDict>> {
    let texts = detach(py, || crate::store::Store::connect(&redis_url)?.info())?;
    const SUMMED: [&str; 8] = [
        "used_memory",
        "used_memory_rss",
        "used_cpu_sys",
        "used_cpu_user",
        "total_commands_processed",
        "total_net_input_bytes",
        "total_net_output_bytes",
        "connected_clients",
    ];
    let mut sums = vec![0f64; SUMMED.len()];
    let d = PyDict::new(py);
    for (i, text) in texts.iter().enumerate() {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once(':') {
                if let Some(j) = SUMMED.iter().position(|s| *s == k) {
                    sums[j] += v.trim().parse::<f64>().unwrap_or(0.0);
                }
                if i == 0 {
                    d.set_item(k, v.trim())?;
                }
            }
        }
    }
    if texts.len() > 1 {
        for (k, v) in SUMMED.iter().zip(sums) {
            d.set_item(*k, if k.starts_with("used_cpu") { format!("{v:.6}") } else { format!("{v:.0}") })?;
        }
        d.set_item("cluster_primaries", texts.len().to_string())?;
    }
    Ok(d)
}

//! Contacts import, suppression lists, number normalisation and sample lists for Python.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use std::sync::atomic::{AtomicBool, Ordering};

use super::{detach, errors::raise, run_cancellable};
use crate::contacts::e164::{format_e164, Normalizer};
use crate::contacts::import::{self, ImportOptions, ImportReport};
use crate::contacts::reader::{Format, Rejection};
use crate::contacts::sample::{self, SampleOptions};
use crate::contacts::suppression::{self, ListReport, LoadMode};

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(import_contacts, m)?)?;
    m.add_function(wrap_pyfunction!(parse_contacts, m)?)?;
    m.add_function(wrap_pyfunction!(load_suppression_list, m)?)?;
    m.add_function(wrap_pyfunction!(suppression_lists, m)?)?;
    m.add_function(wrap_pyfunction!(delete_suppression_list, m)?)?;
    m.add_function(wrap_pyfunction!(normalize, m)?)?;
    m.add_function(wrap_pyfunction!(generate_sample, m)?)?;
    m.add_function(wrap_pyfunction!(check_exclusion_rule, m)?)?;
    let isos: Vec<&str> = crate::contacts::e164::countries()
        .iter()
        .map(|c| c.iso)
        .collect();
    m.add("COUNTRIES", isos)?;
    Ok(())
}

fn rejections<'py>(py: Python<'py>, r: &[Rejection]) -> PyResult<Bound<'py, PyList>> {
    let l = PyList::empty(py);
    for x in r {
        let d = PyDict::new(py);
        d.set_item("line", x.line)?;
        d.set_item("value", &x.value)?;
        d.set_item("reason", &x.reason)?;
        l.append(d)?;
    }
    Ok(l)
}

pub(crate) fn report_dict<'py>(py: Python<'py>, r: &ImportReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("read", r.read)?;
    d.set_item("accepted", r.accepted)?;
    d.set_item("rejected", r.rejected)?;
    d.set_item("duplicates", r.duplicates)?;
    d.set_item("suppressed", r.suppressed)?;
    d.set_item("excluded", r.excluded)?;
    d.set_item("rejections", rejections(py, &r.rejections)?)?;
    Ok(d)
}

fn list_report_dict<'py>(py: Python<'py>, r: &ListReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &r.name)?;
    d.set_item("read", r.read)?;
    d.set_item("added", r.added)?;
    d.set_item("already", r.already)?;
    d.set_item("rejected", r.rejected)?;
    d.set_item("rejections", rejections(py, &r.rejections)?)?;
    d.set_item("total", r.total)?;
    Ok(d)
}

/// The progress callback handed to the core: stops when `cancel` is set (Ctrl-C, see
/// `run_cancellable`) and calls `cb(report)` at most every half second, with the GIL held only for
/// that call. An exception in the callback is reported as unraisable and does not stop the work.
fn throttled<'a, R: 'a>(
    cb: Option<&'a Py<PyAny>>,
    cancel: &'a AtomicBool,
    to_dict: for<'py> fn(Python<'py>, &R) -> PyResult<Bound<'py, PyDict>>,
) -> impl FnMut(&R) -> bool + 'a {
    let mut last = Instant::now();
    move |r: &R| {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let Some(cb) = cb else { return true };
        if last.elapsed() >= Duration::from_millis(500) {
            last = Instant::now();
            Python::attach(|py| {
                if let Err(e) = to_dict(py, r).and_then(|d| cb.call1(py, (d,))) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            });
        }
        true
    }
}

#[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
fn options(
    campaign: &str,
    country: &str,
    partitions: Option<u32>,
    number_column: Option<String>,
    format: &str,
    suppression_lists: Vec<String>,
    exclusions: Vec<String>,
    batch_size: usize,
    attributes: bool,
) -> PyResult<ImportOptions> {
    if batch_size == 0 {
        return Err(raise(
            "InvalidInput",
            "batch_size must be at least 1".into(),
        ));
    }
    let mut o = ImportOptions::new(campaign, country);
    o.partitions = partitions;
    o.number_column = number_column;
    o.format = Format::parse(format)?;
    o.suppression_lists = suppression_lists;
    o.exclusions = exclusions;
    o.batch_size = batch_size;
    o.attributes = attributes;
    Ok(o)
}

/// Stream a contacts file (CSV with a header row, or one number per line) into campaign
/// `campaign`'s queue: numbers normalised to E.164 with `country` as the default, invalid rows
/// rejected with line and reason, duplicates dropped, numbers on `suppression_lists` or matching
/// an `exclusions` rule dropped. Returns the report (read, accepted, rejected, duplicates,
/// suppressed, excluded, rejections: the first 100). The other columns are kept as attributes
/// unless `attributes=False`. `progress(report)` is called about twice a second.
#[pyfunction]
#[pyo3(signature = (redis_url, path, campaign, *, country, partitions=None, number_column=None, format="auto", suppression_lists=vec![], exclusions=vec![], batch_size=10_000, attributes=true, progress=None))]
#[allow(clippy::too_many_arguments)]
fn import_contacts<'py>(
    py: Python<'py>,
    redis_url: String,
    path: PathBuf,
    campaign: String,
    country: String,
    partitions: Option<u32>,
    number_column: Option<String>,
    format: &str,
    suppression_lists: Vec<String>,
    exclusions: Vec<String>,
    batch_size: usize,
    attributes: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let o = options(
        &campaign,
        &country,
        partitions,
        number_column,
        format,
        suppression_lists,
        exclusions,
        batch_size,
        attributes,
    )?;
    let r = run_cancellable(py, |cancel| {
        let mut cb = throttled(progress.as_ref(), cancel, report_dict);
        import::import_file(&redis_url, &path, &o, &mut cb)
    })?;
    report_dict(py, &r)
}

/// Read, normalise and filter a contacts file without loading it (a dry run): the same report
/// as `import_contacts`, with `duplicates` and `suppressed` at 0 (those need Redis).
#[pyfunction]
#[pyo3(signature = (path, *, country, number_column=None, format="auto", exclusions=vec![], progress=None))]
fn parse_contacts<'py>(
    py: Python<'py>,
    path: PathBuf,
    country: String,
    number_column: Option<String>,
    format: &str,
    exclusions: Vec<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let o = options(
        "dry-run",
        &country,
        None,
        number_column,
        format,
        vec![],
        exclusions,
        10_000,
        false,
    )?;
    let r = run_cancellable(py, |cancel| {
        let mut cb = throttled(progress.as_ref(), cancel, report_dict);
        import::parse_file(&path, &o, &mut cb)
    })?;
    report_dict(py, &r)
}

/// Load a file of numbers into suppression list `name`. `mode="replace"` makes the file the
/// list's whole content (switched atomically at the end); `mode="append"` adds to it.
#[pyfunction]
#[pyo3(signature = (redis_url, name, path, *, country, number_column=None, format="auto", mode="replace", progress=None))]
#[allow(clippy::too_many_arguments)]
fn load_suppression_list<'py>(
    py: Python<'py>,
    redis_url: String,
    name: String,
    path: PathBuf,
    country: String,
    number_column: Option<String>,
    format: &str,
    mode: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let format = Format::parse(format)?;
    let mode = match mode {
        "replace" => LoadMode::Replace,
        "append" => LoadMode::Append,
        _ => {
            return Err(raise(
                "InvalidInput",
                format!("mode {mode:?}: use replace or append"),
            ))
        }
    };
    let r = run_cancellable(py, |cancel| {
        let mut cb = throttled(progress.as_ref(), cancel, list_report_dict);
        suppression::load(
            &redis_url,
            &name,
            &path,
            &country,
            number_column.as_deref(),
            format,
            mode,
            &mut cb,
        )
    })?;
    list_report_dict(py, &r)
}

/// Every suppression list: name, count, generation.
#[pyfunction]
fn suppression_lists<'py>(py: Python<'py>, redis_url: String) -> PyResult<Bound<'py, PyList>> {
    let lists = detach(py, || suppression::lists(&redis_url))?;
    let out = PyList::empty(py);
    for l in lists {
        let d = PyDict::new(py);
        d.set_item("name", l.name)?;
        d.set_item("count", l.count)?;
        d.set_item("generation", l.generation)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Delete a suppression list; `False` if there was none of that name.
#[pyfunction]
fn delete_suppression_list(py: Python<'_>, redis_url: String, name: String) -> PyResult<bool> {
    detach(py, || suppression::delete(&redis_url, &name))
}

/// Normalise one number to E.164 ("+84901234567"), `country` being the default for national
/// forms. Raises `InvalidNumber` with the reason.
#[pyfunction]
fn normalize(number: &str, country: &str) -> PyResult<String> {
    let n = Normalizer::for_iso(country).ok_or_else(|| crate::Error::UnknownCountry {
        iso: country.to_string(),
    })?;
    n.normalize(number.as_bytes())
        .map(format_e164)
        .map_err(|why| raise("InvalidNumber", format!("{number:?}: {why}")))
}

/// Check an exclusion rule's syntax (`segment in {VIP, GOLD}`) without a file: raises `BadRule`
/// with the reason. Whether its column exists is known only when a file is read.
#[pyfunction]
fn check_exclusion_rule(rule: &str) -> PyResult<()> {
    crate::contacts::rules::Rule::parse(rule)?;
    Ok(())
}

/// Write a sample contacts CSV (`phone,name,segment`, Vietnamese numbers in mixed formats, some
/// invalid rows and duplicates). With `suppression_path`, also write about `suppression_ratio`
/// of its valid numbers there, one per line. Returns counts of rows, invalid, duplicates,
/// suppressed.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (path, rows, *, seed=1, invalid_ratio=0.002, duplicate_ratio=0.001, suppression_path=None, suppression_ratio=0.0))]
fn generate_sample<'py>(
    py: Python<'py>,
    path: PathBuf,
    rows: u64,
    seed: u64,
    invalid_ratio: f64,
    duplicate_ratio: f64,
    suppression_path: Option<PathBuf>,
    suppression_ratio: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let o = SampleOptions {
        rows,
        seed,
        invalid_ratio,
        duplicate_ratio,
        suppression_ratio,
    };
    let r = detach(py, || {
        sample::generate(&path, suppression_path.as_deref(), &o)
    })?;
    let d = PyDict::new(py);
    d.set_item("rows", r.rows)?;
    d.set_item("invalid", r.invalid)?;
    d.set_item("duplicates", r.duplicates)?;
    d.set_item("suppressed", r.suppressed)?;
    Ok(d)
}

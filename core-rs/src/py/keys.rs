//! The core's key names for the Python side's registry (`store/keys.py`), so the queue's key
//! layout is spelled once, in `crate::keys`.

use pyo3::prelude::*;

/// The base every queue key of one partition of a campaign of `partitions` starts with: its hash
/// tag, `{c:<campaign>:p<partition>}` or with a suffix that puts it in its share of a cluster's
/// slots (`crate::keys::partition`).
#[pyfunction]
#[pyo3(signature = (campaign, partition, *, partitions))]
fn partition_key(campaign: &str, partition: u32, partitions: u32) -> PyResult<String> {
    crate::keys::check_name("campaign id", campaign)?;
    if partitions == 0 || partition >= partitions {
        return Err(crate::error::Error::invalid(
            "partition",
            format!("{partition}: a campaign of {partitions} partitions has partitions 0..{partitions}"),
        )
        .into());
    }
    Ok(crate::keys::partition(campaign, partition, partitions))
}

/// The queue's campaign-wide hash: `{c:<campaign>}:meta`.
#[pyfunction]
fn campaign_meta_key(campaign: &str) -> PyResult<String> {
    crate::keys::check_name("campaign id", campaign)?;
    Ok(crate::keys::campaign_meta(campaign))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(partition_key, m)?)?;
    m.add_function(wrap_pyfunction!(campaign_meta_key, m)?)?;
    Ok(())
}

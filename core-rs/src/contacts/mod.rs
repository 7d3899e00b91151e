//! Contacts: E.164 normalisation, streaming file reader, exclusion rules, suppression lists,
//! the importer that loads a file into a campaign's queue, and sample lists.

mod countries;
pub mod e164;
pub mod import;
pub mod reader;
pub mod rules;
pub mod sample;
pub mod suppression;

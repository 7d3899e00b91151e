//! The call queue: contacts of one campaign, spread over partitions, move
//! ready -> claimed (a lease with a deadline and a token) -> completed with an outcome.
//!
//! Every transition is one Lua script on the partition's keys (see `lua/`), so concurrent
//! claimers in many processes never see a contact twice and never lose one. Layout of partition
//! `P = {c:<campaign>:p<n>}`:
//!
//! | key            | type  | holds                                                          |
//! |----------------|-------|----------------------------------------------------------------|
//! | `P:ready`      | list  | fresh contacts (E.164 digits as integers), file order          |
//! | `P:retry`      | zset  | due time (ms) of retries, do-not-call-back ends, expired leases |
//! | `P:cb`         | zset  | due time of callbacks (reserved for an agent)                   |
//! | `P:lh`         | hash  | number -> `token|attempts|agent[|ref]` of each live lease       |
//! | `P:lb`         | zset  | first token of each claim batch -> its lease deadline           |
//! | `P:lb:<first>` | list  | the numbers of that batch (read when its deadline passes)       |
//! | `P:k:<bucket>` | hash  | number -> state `S|attempts|ref|time|outcome|agent` ("" or `@ref` = fresh); written when a call completes, so a claim of a fresh contact costs no per-contact write |
//! | `P:ap:<page>`  | string| attributes of the contacts of one import batch, one after the other: `cols-id \x1f v1 \x1f v2 ...` |
//! | `P:apseq`      | int   | attribute page sequence (present: the partition holds attributes) |
//! | `P:cols`       | hash  | cols-id -> attribute column names                               |
//! | `P:meta`       | hash  | `suppression`: the lists checked at claim time                  |
//! | `P:stat`       | hash  | counters: imported, claimed, final, retry, outcome:<name> ...   |
//! | `P:seq`        | int   | lease token sequence                                           |
//! | `P:ad`         | hash  | number -> the first token of a dead dialer's call adopted for its agent (still valid to complete it) |
//!
//! A number is packed as the integer of its E.164 digits, which Redis stores in 8 bytes inside
//! list and hash encodings; buckets (`number mod BUCKETS`) keep the state hashes small enough for
//! Redis's compact listpack encoding.
//!
//! A contact's attributes are written once, at import, in the page of its batch; `ref` =
//! `page.offset.length` finds them (GETRANGE) and `0` says there are none. The ref travels from the
//! fresh state (`@ref`) through the lease into every later state, so an import costs one write per
//! contact with attributes or without.
//!
//! - `handle`: [`CallQueue`], opening a campaign's queue (its partition count, the scripts).
//! - `claim`: claiming due contacts under a lease ([`Claim`]); suppression checked at claim.
//! - `complete`: completing them with an outcome ([`Completed`]); [`policy`] says what each
//!   outcome does.
//! - `lease`: renewing the leases of calls in progress; re-asserting them after Redis lost writes
//!   ([`Held`]).
//! - `suppression`: the lists a campaign's claims check.
//! - `stats`: queue depth and counters ([`QueueStats`]).
//! - `contact`: one contact's state ([`ContactState`]); `listing`: paging through them.
//! - `scripts`: the Lua scripts.

mod claim;
mod complete;
mod contact;
mod handle;
mod lease;
mod listing;
mod mark;
pub mod policy;
mod scripts;
mod stats;
mod suppression;

pub use claim::{Claim, Source};
pub use complete::Completed;
pub use contact::ContactState;
pub use handle::CallQueue;
pub use lease::Held;
pub use listing::{ContactPage, STATES};
pub use mark::{DialMark, Interrupted, Mark};
pub use policy::{Action, Completion, OutcomePolicy};
pub(crate) use scripts::{script, IMPORT};
pub use stats::QueueStats;

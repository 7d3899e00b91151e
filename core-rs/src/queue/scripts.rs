//! The Lua scripts the queue's transitions run (`lua/`, and the lease renewal inline), with the
//! constants they share with this crate filled in.

use std::sync::LazyLock;

use redis::Script;

use crate::keys;

pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/claim.lua")));
pub(crate) static COMPLETE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/complete.lua")));
/// KEYS[1] = partition base. ARGV: now_ms, new deadline, batch first tokens. A batch whose
/// deadline already passed is left for the next claim to expire.
pub(crate) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    script(
        r"
local LB = KEYS[1] .. ':lb'
local now, deadline, n = tonumber(ARGV[1]), ARGV[2], 0
for i = 3, #ARGV do
  local cur = redis.call('ZSCORE', LB, ARGV[i])
  if cur and tonumber(cur) > now and tonumber(cur) < tonumber(deadline) then
    redis.call('ZADD', LB, 'XX', deadline, ARGV[i])
    n = n + 1
  end
end
return n
",
    )
});
pub(crate) static MARK: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/mark.lua")));
pub(crate) static REASSERT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/reassert.lua")));
pub(crate) static ADOPT: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/adopt.lua")));
pub(crate) static IMPORT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/import.lua")));

/// A script with the constants it shares with this crate filled in (`@BUCKETS@`, `@LIST_BUCKETS@`).
pub(crate) fn script(source: &str) -> Script {
    Script::new(
        &source
            .replace("@BUCKETS@", &keys::BUCKETS.to_string())
            .replace("@LIST_BUCKETS@", &keys::LIST_BUCKETS.to_string()),
    )
}

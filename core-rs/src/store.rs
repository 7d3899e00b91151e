//! One synchronous Redis connection with its address, so that every error can name where it
//! happened. The queue, the importer and the suppression lists all talk to Redis through this.

use redis::{Cmd, Pipeline, Script, ScriptInvocation, Value};

use crate::error::{Error, Result};

pub struct Store {
    url: String,
    con: redis::Connection,
}

impl Store {
    /// Connect to `url` (`redis://host:port/db`, `unix:///path/to.sock`, `redis+unix://...`) and
    /// check the server is Redis 7 or newer (the Lua scripts use `#!lua` flags and `LPOP count`).
    pub fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?;
        let con = client
            .get_connection_with_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| Error::redis(url, "connect", url, &e))?;
        let mut store = Store { url: url.to_string(), con };
        store.check_version()?;
        Ok(store)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn check_version(&mut self) -> Result<()> {
        let info: String = self.query(&mut redis::cmd("INFO").arg("server").clone(), "INFO", "server")?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("0")
            .trim()
            .to_string();
        let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        if major < 7 {
            return Err(Error::invalid(
                "Redis server",
                format!("{} runs Redis {version}; the call queue needs Redis 7.0 or newer", self.url),
            ));
        }
        Ok(())
    }

    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &mut Cmd, op: &'static str, target: &str) -> Result<T> {
        cmd.query(&mut self.con).map_err(|e| Error::redis(&self.url, op, target, &e))
    }

    pub fn pipe<T: redis::FromRedisValue>(&mut self, pipe: &Pipeline, op: &'static str, target: &str) -> Result<T> {
        pipe.query(&mut self.con).map_err(|e| Error::redis(&self.url, op, target, &e))
    }

    /// Run a script (EVALSHA, loading it on NOSCRIPT).
    pub fn invoke(&mut self, inv: &ScriptInvocation<'_>, op: &'static str, target: &str) -> Result<Value> {
        inv.invoke(&mut self.con).map_err(|e| Error::redis(&self.url, op, target, &e))
    }

    /// Make sure the scripts are loaded, so that pipelined EVALSHA never meets NOSCRIPT.
    pub fn load_scripts(&mut self, scripts: &[&Script]) -> Result<()> {
        for s in scripts {
            s.load(&mut self.con).map_err(|e| Error::redis(&self.url, "SCRIPT LOAD", "scripts", &e))?;
        }
        Ok(())
    }
}

/// Read a bulk or simple string reply as UTF-8 text.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".to_string()),
        _ => None,
    }
}

/// Read an integer reply (Redis answers integers from Lua as `Int`, stored numbers as strings).
pub(crate) fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

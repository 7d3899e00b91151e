//! One synchronous Redis connection with its address, so that every error can name where it
//! happened. The queue, the importer and the suppression lists all talk to Redis through this.

use redis::{Cmd, Pipeline, Script, ScriptInvocation, Value};

use crate::error::{Error, Result};

pub struct Store {
    url: String,
    client: redis::Client,
    /// `None` after the connection broke: the next call connects again (and reloads the scripts),
    /// so a long-lived queue handle outlives a Redis restart. The call that met the break is
    /// not retried - it may have run - and reports `RedisUnavailable`.
    con: Option<redis::Connection>,
    scripts: Vec<Script>,
}

impl Store {
    /// Connect to `url` (`redis://host:port/db`, `unix:///path/to.sock`, `redis+unix://...`) and
    /// check the server is Redis 7 or newer (the Lua scripts use `#!lua` flags and `LPOP count`).
    pub fn connect(url: &str) -> Result<Self> {
        // TCP_NODELAY: redis-rs leaves Nagle on, and a command written in two segments then
        // waits for Redis's delayed ACK - 40 ms stalls on a lightly loaded loopback.
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?;
        let info = info.set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info)
            .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?;
        let mut store = Store {
            url: url.to_string(),
            client,
            con: None,
            scripts: Vec::new(),
        };
        store.conn()?;
        store.check_version()?;
        Ok(store)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The live connection, made anew (scripts reloaded) after a break.
    fn conn(&mut self) -> Result<&mut redis::Connection> {
        if self.con.is_none() {
            let mut con = self
                .client
                .get_connection_with_timeout(std::time::Duration::from_secs(5))
                .map_err(|e| Error::redis(&self.url, "connect", &self.url, &e))?;
            for s in &self.scripts {
                s.load(&mut con)
                    .map_err(|e| Error::redis(&self.url, "SCRIPT LOAD", "scripts", &e))?;
            }
            self.con = Some(con);
        }
        self.con
            .as_mut()
            .ok_or_else(|| Error::protocol("connect", "redis", "no connection"))
    }

    /// Map a client error; a broken connection is dropped so the next call reconnects.
    #[cold]
    fn fail(&mut self, op: &'static str, target: &str, e: &redis::RedisError) -> Error {
        let err = Error::redis(&self.url, op, target, e);
        if matches!(err, Error::RedisUnavailable { .. }) {
            self.con = None;
        }
        err
    }

    fn check_version(&mut self) -> Result<()> {
        let info: String = self.query(
            &mut redis::cmd("INFO").arg("server").clone(),
            "INFO",
            "server",
        )?;
        let version = info
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("0")
            .trim()
            .to_string();
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        if major < 7 {
            return Err(Error::invalid(
                "Redis server",
                format!(
                    "{} runs Redis {version}; the call queue needs Redis 7.0 or newer",
                    self.url
                ),
            ));
        }
        Ok(())
    }

    pub fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &mut Cmd,
        op: &'static str,
        target: &str,
    ) -> Result<T> {
        let r = cmd.query(self.conn()?);
        r.map_err(|e| self.fail(op, target, &e))
    }

    pub fn pipe<T: redis::FromRedisValue>(
        &mut self,
        pipe: &Pipeline,
        op: &'static str,
        target: &str,
    ) -> Result<T> {
        let r = pipe.query(self.conn()?);
        r.map_err(|e| self.fail(op, target, &e))
    }

    /// Run a script (EVALSHA, loading it on NOSCRIPT).
    pub fn invoke(
        &mut self,
        inv: &ScriptInvocation<'_>,
        op: &'static str,
        target: &str,
    ) -> Result<Value> {
        let r = inv.invoke(self.conn()?);
        r.map_err(|e| self.fail(op, target, &e))
    }

    /// Load scripts now and again after every reconnection, so that pipelined EVALSHA never
    /// meets NOSCRIPT.
    pub fn load_scripts(&mut self, scripts: &[&Script]) -> Result<()> {
        for s in scripts {
            let r = s.load(self.conn()?);
            r.map_err(|e| self.fail("SCRIPT LOAD", "scripts", &e))?;
            if !self.scripts.iter().any(|k| k.get_hash() == s.get_hash()) {
                self.scripts.push((*s).clone());
            }
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

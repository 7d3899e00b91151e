//! One synchronous Redis connection with its address, so that every error can name where it
//! happened. The queue, the importer and the suppression lists all talk to Redis through this.

use redis::{Cmd, Pipeline, Script, ScriptInvocation, Value};

use crate::contacts::e164::decimal_digits;
use crate::error::{Error, Result};

/// The longest a command may take (as `store/connection.py`'s `COMMAND_TIMEOUT_S`).
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
            // A Redis that stops answering (a network cut, a paused server) fails the command
            // instead of blocking its thread forever; the connection is dropped (`fail`), so a
            // late reply is never read as the next command's.
            for timeout in [con.set_read_timeout(Some(COMMAND_TIMEOUT)), con.set_write_timeout(Some(COMMAND_TIMEOUT))] {
                timeout.map_err(|e| Error::redis(&self.url, "connect", &self.url, &e))?;
            }
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

impl Store {
    /// Write commands without waiting for their replies (read them later with [`Store::recv`],
    /// in order, before any other call on this store): the importer sends a batch while Redis
    /// still works on the one before.
    pub fn send(&mut self, packed: &Packed, op: &'static str, target: &str) -> Result<()> {
        let r = self.conn()?.send_packed_command(&packed.buf);
        r.map_err(|e| self.fail(op, target, &e))
    }

    /// Read the replies of `n` commands written by [`Store::send`]: all of them, so the
    /// connection stays in step, with error replies as values (`Value::ServerError`).
    pub fn recv(&mut self, n: usize, op: &'static str, target: &str) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let r = self.conn()?.recv_response();
            out.push(r.map_err(|e| self.fail(op, target, &e))?);
        }
        Ok(out)
    }

    /// The first error reply in `v` (inside an `EXEC`'s array too), as this crate's error.
    pub fn reply_error(&self, v: &Value, op: &'static str, target: &str) -> Option<Error> {
        match v {
            Value::ServerError(e) => Some(Error::redis(
                &self.url,
                op,
                target,
                &redis::RedisError::from(e.clone()),
            )),
            Value::Array(items) => items.iter().find_map(|i| self.reply_error(i, op, target)),
            _ => None,
        }
    }
}

/// Commands encoded by hand into one RESP buffer: no allocation per command or argument, which
/// is most of what building a `redis::Pipeline` costs for millions of small commands.
#[derive(Default)]
pub struct Packed {
    buf: Vec<u8>,
    count: usize,
}

impl Packed {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
    }

    /// Commands written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Start a command of `nargs` arguments (the command's name is the first).
    pub fn cmd(&mut self, nargs: usize) -> &mut Self {
        self.buf.push(b'*');
        push_u64(&mut self.buf, nargs as u64);
        self.buf.extend_from_slice(b"\r\n");
        self.count += 1;
        self
    }

    pub fn arg(&mut self, a: &[u8]) -> &mut Self {
        self.buf.push(b'$');
        push_u64(&mut self.buf, a.len() as u64);
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    pub fn arg_u64(&mut self, n: u64) -> &mut Self {
        let (d, start) = decimal_digits(n);
        self.arg(&d[start..])
    }

    /// `prefix` followed by the decimal `n`, as one argument (a key such as `{c:x:p0}:k:17`).
    pub fn arg_key(&mut self, prefix: &str, n: u64) -> &mut Self {
        let (d, start) = decimal_digits(n);
        let s = &d[start..];
        self.buf.push(b'$');
        push_u64(&mut self.buf, (prefix.len() + s.len()) as u64);
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(prefix.as_bytes());
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Append another buffer's commands.
    pub fn extend(&mut self, other: &Packed) {
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }
}

/// Append the decimal `n`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let (d, start) = decimal_digits(n);
    buf.extend_from_slice(&d[start..]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_commands_are_resp() {
        let mut p = Packed::default();
        p.cmd(3)
            .arg(b"HSET")
            .arg_key("{c:x:p0}:k:", 17)
            .arg_u64(84_901_234_567);
        p.cmd(2).arg(b"GET").arg_u64(0);
        assert_eq!(p.count(), 2);
        let want = redis::pipe()
            .cmd("HSET")
            .arg("{c:x:p0}:k:17")
            .arg(84_901_234_567u64)
            .cmd("GET")
            .arg(0)
            .get_packed_pipeline();
        assert_eq!(p.buf, want);
    }
}

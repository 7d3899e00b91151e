//! One synchronous Redis connection with its address, so that every error can name where it
//! happened. The queue, the importer and the suppression lists all talk to Redis through this.
//!
//! The same calls run on one Redis or on a Redis Cluster (`redis+cluster://host:port,...`):
//! - a command or a script goes to the primary serving its first key's slot (every script's
//!   keys share one hash tag, `keys.rs`);
//! - a pipeline is cut into one pipeline per slot, each sent to its primary, and the replies put
//!   back in the order the commands were written; a `MULTI ... EXEC` group stays whole (its
//!   keys must share a slot);
//! - nothing is resent blindly: like a single Redis's broken connection, a command that may have
//!   run is reported (`RedisUnavailable`), never sent twice. Only a refusal that proves the
//!   command did not run (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`,
//!   `READONLY`, `NOSCRIPT`, no connection to the slot's node) is retried, after fetching the
//!   cluster's slot map again (or loading the scripts on the node that lacks them), for up to
//!   [`REFUSAL_RETRY`].

use std::time::{Duration, Instant};

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::Slot;
use redis::{Cmd, ConnectionLike, Script, ScriptInvocation, ToRedisArgs, Value};

use crate::contacts::e164::decimal_digits;
use crate::error::{Error, Result};

/// The longest a command may take (as `store/connection.py`'s `COMMAND_TIMEOUT_S`).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster's refusals (a slot moving, a failover under way) are waited out before
/// the command is reported as failed (`RedisUnavailable`): about a failover's length with
/// `cluster-node-timeout` at a few seconds.
pub(crate) const REFUSAL_RETRY: Duration = Duration::from_secs(8);

/// The URL scheme of a Redis Cluster: `redis+cluster://[user:password@]host:port[,host:port...]`,
/// the seed nodes (any of the cluster's nodes; the rest are found from them).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// The seed nodes' `redis://` URLs of a `redis+cluster://` URL, or `None` for any other URL.
pub fn cluster_nodes(url: &str) -> Option<Result<Vec<String>>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let bad = |why: &str| Error::invalid("Redis URL", format!("{url:?}: {why}"));
    Some((|| {
        let (nodes, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if !matches!(tail.split('?').next().unwrap_or(""), "" | "/" | "/0") {
            return Err(bad("a Redis Cluster has only database 0"));
        }
        let (auth, nodes) = match nodes.rfind('@') {
            Some(i) => (&nodes[..=i], &nodes[i + 1..]),
            None => ("", nodes),
        };
        let mut out = Vec::new();
        for node in nodes.split(',') {
            let node = node.trim();
            if node.is_empty() {
                return Err(bad("a seed node is empty (the form is redis+cluster://host:port,host:port)"));
            }
            let port_ok = node
                .rsplit_once(':')
                .filter(|(h, _)| !h.is_empty() && !h.ends_with(':') || h.ends_with(']'))
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_some_and(|p| p > 0);
            if !port_ok {
                return Err(bad(&format!("seed node {node:?} is not host:port")));
            }
            out.push(format!("redis://{auth}{node}"));
        }
        Ok(out)
    })())
}

enum Backend {
    One(redis::Client),
    Cluster(ClusterClient),
}

enum Conn {
    One(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::One(c) => c,
            Conn::Cluster(c) => c.as_mut(),
        }
    }
}

pub struct Store {
    url: String,
    backend: Backend,
    /// `None` after the connection broke: the next call connects again (and reloads the scripts),
    /// so a long-lived queue handle outlives a Redis restart. The call that met the break is
    /// not retried - it may have run - and reports `RedisUnavailable`.
    con: Option<Conn>,
    scripts: Vec<Script>,
    /// A cluster's replies to [`Store::send`], not yet taken by [`Store::recv`].
    pending: std::collections::VecDeque<Value>,
}

impl Store {
    /// Connect to `url` (`redis://host:port/db`, `unix:///path/to.sock`, `redis+unix://...`, or a
    /// cluster's `redis+cluster://host:port,...`) and check the server is Redis 7 or newer (the
    /// Lua scripts use `#!lua` flags and `LPOP count`).
    pub fn connect(url: &str) -> Result<Self> {
        // TCP_NODELAY: redis-rs leaves Nagle on, and a command written in two segments then
        // waits for Redis's delayed ACK - 40 ms stalls on a lightly loaded loopback.
        let nodelay = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let backend = match cluster_nodes(url) {
            Some(nodes) => Backend::Cluster(
                ClusterClient::builder(nodes?)
                    // Never resent by the client itself: see the module's note.
                    .retries(0)
                    .connection_timeout(Duration::from_secs(5))
                    .response_timeout(COMMAND_TIMEOUT)
                    .tcp_settings(nodelay)
                    .build()
                    .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?,
            ),
            None => {
                let info = redis::IntoConnectionInfo::into_connection_info(url)
                    .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?;
                Backend::One(
                    redis::Client::open(info.set_tcp_settings(nodelay))
                        .map_err(|e| Error::invalid("Redis URL", format!("{url:?}: {e}")))?,
                )
            }
        };
        let mut store = Store {
            url: url.to_string(),
            backend,
            con: None,
            scripts: Vec::new(),
            pending: std::collections::VecDeque::new(),
        };
        store.conn()?;
        store.check_version()?;
        Ok(store)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// The live connection, made anew (scripts reloaded) after a break.
    fn conn(&mut self) -> Result<&mut dyn ConnectionLike> {
        if self.con.is_none() {
            let connect_err = |e: &redis::RedisError| Error::redis(&self.url, "connect", &self.url, e);
            let mut con = match &self.backend {
                Backend::One(client) => {
                    let con = client
                        .get_connection_with_timeout(Duration::from_secs(5))
                        .map_err(|e| connect_err(&e))?;
                    // A Redis that stops answering (a network cut, a paused server) fails the
                    // command instead of blocking its thread forever; the connection is dropped
                    // (`fail`), so a late reply is never read as the next command's.
                    for t in [con.set_read_timeout(Some(COMMAND_TIMEOUT)), con.set_write_timeout(Some(COMMAND_TIMEOUT))] {
                        t.map_err(|e| connect_err(&e))?;
                    }
                    Conn::One(con)
                }
                Backend::Cluster(client) => {
                    Conn::Cluster(Box::new(client.get_connection().map_err(|e| connect_err(&e))?))
                }
            };
            for s in &self.scripts {
                s.load(con.like())
                    .map_err(|e| Error::redis(&self.url, "SCRIPT LOAD", "scripts", &e))?;
            }
            self.con = Some(con);
        }
        match self.con.as_mut() {
            Some(c) => Ok(c.like()),
            None => Err(Error::protocol("connect", "redis", "no connection")),
        }
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
        for info in self.info()? {
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
        }
        Ok(())
    }

    /// `INFO` (every section) of the Redis, or of each of a cluster's primaries.
    pub fn info(&mut self) -> Result<Vec<String>> {
        let cmd = redis::cmd("INFO");
        let cluster = self.is_cluster();
        let r = match self.conn()? {
            // A cluster answers a map: primary's address -> its INFO.
            c if cluster => cmd
                .query::<std::collections::HashMap<String, String>>(c)
                .map(|m| m.into_values().collect()),
            c => cmd.query::<String>(c).map(|v| vec![v]),
        };
        r.map_err(|e| self.fail("INFO", "server", &e))
    }

    pub fn query<T: redis::FromRedisValue>(
        &mut self,
        cmd: &mut Cmd,
        op: &'static str,
        target: &str,
    ) -> Result<T> {
        let deadline = self.is_cluster().then(|| Instant::now() + REFUSAL_RETRY);
        loop {
            let r = cmd.query(self.conn()?);
            match r {
                Err(e) if refusal(&e).is_some() && deadline.is_some_and(|d| Instant::now() < d) => {
                    self.after_refusal(refusal(&e), op, target)?;
                }
                r => return r.map_err(|e| self.fail(op, target, &e)),
            }
        }
    }

    /// Run a script (EVALSHA, loading it on NOSCRIPT).
    pub fn invoke(
        &mut self,
        inv: &ScriptInvocation<'_>,
        op: &'static str,
        target: &str,
    ) -> Result<Value> {
        let deadline = self.is_cluster().then(|| Instant::now() + REFUSAL_RETRY);
        loop {
            let r = inv.invoke(self.conn()?);
            match r {
                Err(e) if refusal(&e).is_some() && deadline.is_some_and(|d| Instant::now() < d) => {
                    self.after_refusal(refusal(&e), op, target)?;
                }
                r => return r.map_err(|e| self.fail(op, target, &e)),
            }
        }
    }

    /// Load scripts now and again after every reconnection, so that pipelined EVALSHA never
    /// meets NOSCRIPT (on a cluster: on every node; a node that lost them, a replica promoted
    /// after a restart, answers NOSCRIPT and is given them again).
    pub fn load_scripts(&mut self, scripts: &[&Script]) -> Result<()> {
        for s in scripts {
            if !self.scripts.iter().any(|k| k.get_hash() == s.get_hash()) {
                self.scripts.push((*s).clone());
            }
        }
        self.reload_scripts(scripts.iter().copied())
    }

    fn reload_scripts<'a>(&mut self, scripts: impl IntoIterator<Item = &'a Script>) -> Result<()> {
        for s in scripts {
            let r = s.load(self.conn()?);
            r.map_err(|e| self.fail("SCRIPT LOAD", "scripts", &e))?;
        }
        Ok(())
    }

    /// Before retrying a command a cluster refused: fetch the slot map again (a new
    /// connection), wait while a failover completes, load the scripts again.
    #[cold]
    fn after_refusal(&mut self, r: Option<Refusal>, op: &'static str, target: &str) -> Result<()> {
        match r {
            Some(Refusal::Wait) => std::thread::sleep(Duration::from_millis(100)),
            Some(Refusal::NoScript) => {
                let scripts = std::mem::take(&mut self.scripts);
                let r = self.reload_scripts(scripts.iter());
                self.scripts = scripts;
                return r.map_err(|e| match e {
                    Error::Redis { detail, .. } => Error::protocol(op, target, detail),
                    e => e,
                });
            }
            Some(Refusal::Moved) | None => {}
        }
        self.con = None;
        std::thread::sleep(Duration::from_millis(20));
        Ok(())
    }
}

/// What a cluster's refusal asks for before the command is sent again; `None` when the command
/// may have run (or failed for good).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Refusal {
    /// The slot is served elsewhere now (or its node could not be reached at all).
    Moved,
    /// A failover or a slot migration is under way.
    Wait,
    /// The node lacks the script.
    NoScript,
}

fn refusal_code(code: &str) -> Option<Refusal> {
    match code {
        "MOVED" | "ASK" | "READONLY" => Some(Refusal::Moved),
        "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "LOADING" => Some(Refusal::Wait),
        "NOSCRIPT" => Some(Refusal::NoScript),
        _ => None,
    }
}

fn refusal(e: &redis::RedisError) -> Option<Refusal> {
    if e.kind() == redis::ErrorKind::ClusterConnectionNotFound {
        return Some(Refusal::Moved);
    }
    e.code().and_then(refusal_code)
}

/// The refusal in a reply (or in a `MULTI`'s queued replies), if any.
fn reply_refusal(v: &Value) -> Option<Refusal> {
    match v {
        Value::ServerError(e) => refusal_code(e.code()),
        Value::Array(items) => items.iter().find_map(reply_refusal),
        _ => None,
    }
}

/// A pipeline that remembers which replies it ignores, so a cluster's can be cut by slot and
/// its replies put back together (redis-rs keeps that to itself).
#[derive(Clone, Default)]
pub struct Pipe {
    inner: redis::Pipeline,
    ignored: Vec<bool>,
}

/// A new, empty pipeline.
pub fn pipe() -> Pipe {
    Pipe::default()
}

impl Pipe {
    /// Start a command.
    pub fn cmd(&mut self, name: &str) -> &mut Self {
        self.inner.cmd(name);
        self.ignored.push(false);
        self
    }

    pub fn add_command(&mut self, cmd: Cmd) -> &mut Self {
        self.inner.add_command(cmd);
        self.ignored.push(false);
        self
    }

    /// Add a script's EVALSHA (the scripts are loaded beforehand: [`Store::load_scripts`]).
    pub fn invoke_script(&mut self, inv: &ScriptInvocation<'_>) -> &mut Self {
        self.inner.invoke_script(inv);
        self.ignored.push(false);
        self
    }

    /// An argument of the last command.
    pub fn arg<T: ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.inner.arg(arg);
        self
    }

    /// Leave the last command's reply out of the result.
    pub fn ignore(&mut self) -> &mut Self {
        self.inner.ignore();
        if let Some(last) = self.ignored.last_mut() {
            *last = true;
        }
        self
    }

    /// Run the commands as one `MULTI ... EXEC` (their keys must share a slot on a cluster).
    pub fn atomic(&mut self) -> &mut Self {
        self.inner.atomic();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ignored.is_empty()
    }
}

impl Store {
    pub fn pipe<T: redis::FromRedisValue>(
        &mut self,
        pipe: &Pipe,
        op: &'static str,
        target: &str,
    ) -> Result<T> {
        if !self.is_cluster() {
            let r = pipe.inner.query(self.conn()?);
            return r.map_err(|e| self.fail(op, target, &e));
        }
        let mut buf = Vec::new();
        let mut units = Vec::new();
        if pipe.inner.is_transaction() {
            buf.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n");
        }
        for cmd in pipe.inner.cmd_iter() {
            let start = buf.len();
            cmd.write_packed_command(&mut buf);
            units.push(Unit { start, end: buf.len(), cmds: 1, slot: first_key(&buf[start..]).map(Slot::for_key) });
        }
        let replies = if pipe.inner.is_transaction() {
            let slots: Vec<Option<Slot>> = units.iter().map(|u| u.slot).collect();
            if slots.windows(2).any(|w| w[0] != w[1]) {
                return Err(Error::invalid(
                    "transaction",
                    format!("{op} ({target}): a MULTI's keys are in more than one slot of the cluster"),
                ));
            }
            buf.extend_from_slice(b"*1\r\n$4\r\nEXEC\r\n");
            let one = Unit { start: 0, end: buf.len(), cmds: units.len() + 2, slot: slots.first().copied().flatten() };
            match self.cluster_units(&buf, &[one], op, target)?.pop() {
                Some(Value::Array(exec)) => exec,
                Some(Value::Nil) => return Err(Error::protocol(op, target, "EXEC aborted")),
                Some(v) => {
                    return Err(self
                        .reply_error(&v, op, target)
                        .unwrap_or_else(|| Error::protocol(op, target, "EXEC did not run")))
                }
                None => return Err(Error::protocol(op, target, "no reply to EXEC")),
            }
        } else {
            self.cluster_units(&buf, &units, op, target)?
        };
        if let Some(e) = replies.iter().find_map(|v| self.reply_error(v, op, target)) {
            return Err(e);
        }
        let kept: Vec<Value> = replies
            .into_iter()
            .zip(pipe.ignored.iter())
            .filter_map(|(v, ignored)| (!ignored).then_some(v))
            .collect();
        redis::FromRedisValue::from_redis_value(Value::Array(kept))
            .map_err(|e| Error::protocol(op, target, e.to_string()))
    }

    /// Send `units` (commands, or whole `MULTI ... EXEC` groups, each a range of `buf`) to a
    /// cluster: one pipeline per slot to the slot's primary, in the order written within a
    /// slot. Returns every command's reply, in the order written (a unit's `MULTI`, `QUEUED`s
    /// and `EXEC` included). A unit refused for a reason that proves it did not run is sent
    /// again (see the module's note); any other error reply is returned as a value.
    fn cluster_units(&mut self, buf: &[u8], units: &[Unit], op: &'static str, target: &str) -> Result<Vec<Value>> {
        let offsets: Vec<usize> = units
            .iter()
            .scan(0, |at, u| {
                let o = *at;
                *at += u.cmds;
                Some(o)
            })
            .collect();
        let mut out = vec![Value::Nil; offsets.last().map_or(0, |o| o + units.last().map_or(0, |u| u.cmds))];
        let mut todo: Vec<usize> = (0..units.len()).collect();
        let deadline = Instant::now() + REFUSAL_RETRY;
        loop {
            let mut refused = Vec::new();
            let mut why = None;
            // Group by slot, keeping the first appearance's order and, within a slot, the order
            // written. A unit without a key (none here but a bare MULTI) goes on its own.
            let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
            for &i in &todo {
                match units[i].slot {
                    Some(s) => match groups.iter_mut().find(|g| g.0 == Some(s)) {
                        Some(g) => g.1.push(i),
                        None => groups.push((Some(s), vec![i])),
                    },
                    None => groups.push((None, vec![i])),
                }
            }
            for (_, members) in groups {
                let mut packed = Vec::new();
                let mut n = 0;
                for &i in &members {
                    packed.extend_from_slice(&buf[units[i].start..units[i].end]);
                    n += units[i].cmds;
                }
                let r = self.conn()?.req_packed_commands(&packed, 0, n);
                let replies = match r {
                    Ok(v) => v,
                    Err(e) if refusal(&e).is_some() => {
                        why = why.or(refusal(&e));
                        refused.extend(&members);
                        continue;
                    }
                    Err(e) => return Err(self.fail(op, target, &e)),
                };
                let mut it = replies.into_iter();
                for &i in &members {
                    let u = &units[i];
                    let mine: Vec<Value> = it.by_ref().take(u.cmds).collect();
                    match mine.iter().find_map(reply_refusal) {
                        Some(r) => {
                            why = why.or(Some(r));
                            refused.push(i);
                        }
                        None => {
                            for (k, v) in mine.into_iter().enumerate() {
                                out[offsets[i] + k] = v;
                            }
                        }
                    }
                }
            }
            if refused.is_empty() {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                self.con = None;
                return Err(Error::RedisUnavailable {
                    url: self.url.clone(),
                    op,
                    detail: format!("the cluster kept refusing ({why:?}) for {REFUSAL_RETRY:?}"),
                });
            }
            refused.sort_unstable();
            self.after_refusal(why, op, target)?;
            todo = refused;
        }
    }
}

/// A range of a packed buffer sent as a whole: one command, or a `MULTI ... EXEC` group.
struct Unit {
    start: usize,
    end: usize,
    cmds: usize,
    slot: Option<Slot>,
}

/// The first key of one packed command (RESP array of bulk strings): its second argument, or
/// for `EVAL`/`EVALSHA`/`FCALL` the first of its keys; `None` for a command without keys.
fn first_key(cmd: &[u8]) -> Option<&[u8]> {
    let mut args = RespArgs { buf: cmd, at: 0 };
    let n = args.header(b'*')?;
    let name = args.next()?;
    let key_at = if [&b"EVAL"[..], b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
    {
        args.next()?;
        let numkeys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
        if numkeys == 0 {
            return None;
        }
        3
    } else if [&b"MULTI"[..], b"EXEC", b"DISCARD", b"PING", b"INFO", b"SCRIPT"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
    {
        return None;
    } else {
        1
    };
    if n <= key_at {
        return None;
    }
    args.next()
}

/// Reads the bulk-string arguments of one packed command in turn.
struct RespArgs<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> RespArgs<'a> {
    fn header(&mut self, kind: u8) -> Option<usize> {
        let rest = self.buf.get(self.at..)?;
        if rest.first() != Some(&kind) {
            return None;
        }
        let end = rest.iter().position(|b| *b == b'\r')?;
        let n = std::str::from_utf8(&rest[1..end]).ok()?.parse().ok()?;
        self.at += end + 2;
        Some(n)
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = self.header(b'$')?;
        let a = self.buf.get(self.at..self.at + len)?;
        self.at += len + 2;
        Some(a)
    }
}

impl Store {
    /// Write commands without waiting for their replies (read them later with [`Store::recv`],
    /// in order, before any other call on this store): the importer sends a batch while Redis
    /// still works on the one before.
    ///
    /// On a cluster the commands (and `MULTI ... EXEC` groups) are sent by slot and their
    /// replies awaited here, then handed out by `recv`: correct, without the overlap.
    pub fn send(&mut self, packed: &Packed, op: &'static str, target: &str) -> Result<()> {
        if self.is_cluster() {
            let units = packed.units();
            let replies = self.cluster_units(&packed.buf, &units, op, target)?;
            self.pending.extend(replies);
            return Ok(());
        }
        self.conn()?;
        let r = match self.con.as_mut() {
            Some(Conn::One(c)) => c.send_packed_command(&packed.buf),
            _ => return Err(Error::protocol(op, target, "no connection")),
        };
        r.map_err(|e| self.fail(op, target, &e))
    }

    /// Read the replies of `n` commands written by [`Store::send`]: all of them, so the
    /// connection stays in step, with error replies as values (`Value::ServerError`).
    pub fn recv(&mut self, n: usize, op: &'static str, target: &str) -> Result<Vec<Value>> {
        if self.is_cluster() {
            if self.pending.len() < n {
                self.pending.clear();
                return Err(Error::protocol(op, target, "fewer replies than commands sent"));
            }
            return Ok(self.pending.drain(..n).collect());
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let r = match self.con.as_mut() {
                Some(Conn::One(c)) => c.recv_response(),
                _ => return Err(Error::protocol(op, target, "the connection broke before its replies were read")),
            };
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
    /// Where each command starts in `buf` (to cut it by slot for a cluster).
    starts: Vec<usize>,
}

impl Packed {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.count = 0;
        self.starts.clear();
    }

    /// Commands written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Start a command of `nargs` arguments (the command's name is the first).
    pub fn cmd(&mut self, nargs: usize) -> &mut Self {
        self.starts.push(self.buf.len());
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
        let base = self.buf.len();
        self.starts.extend(other.starts.iter().map(|s| s + base));
        self.buf.extend_from_slice(&other.buf);
        self.count += other.count;
    }

    /// The commands as units for a cluster: each on its own, a `MULTI ... EXEC` group whole
    /// (in the slot of its first key).
    fn units(&self) -> Vec<Unit> {
        let mut out: Vec<Unit> = Vec::new();
        let mut open: Option<Unit> = None;
        for (i, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(i + 1).copied().unwrap_or(self.buf.len());
            let cmd = &self.buf[start..end];
            if let Some(u) = open.as_mut() {
                u.end = end;
                u.cmds += 1;
                if u.slot.is_none() {
                    u.slot = first_key(cmd).map(Slot::for_key);
                }
                if is_named(cmd, b"EXEC") || is_named(cmd, b"DISCARD") {
                    out.extend(open.take());
                }
            } else if is_named(cmd, b"MULTI") {
                open = Some(Unit { start, end, cmds: 1, slot: None });
            } else {
                out.push(Unit { start, end, cmds: 1, slot: first_key(cmd).map(Slot::for_key) });
            }
        }
        out.extend(open);
        out
    }
}

/// Whether a packed command is `name` (the command's first argument).
fn is_named(cmd: &[u8], name: &[u8]) -> bool {
    let mut args = RespArgs { buf: cmd, at: 0 };
    args.header(b'*').is_some() && args.next().is_some_and(|n| n.eq_ignore_ascii_case(name))
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

    #[test]
    fn cluster_urls_name_their_seed_nodes() {
        let nodes = |u: &str| cluster_nodes(u).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"),
            Some(Ok(vec!["redis://127.0.0.1:7000".into(), "redis://127.0.0.1:7001".into()]))
        );
        assert_eq!(
            nodes("redis+cluster://:pw@h1:7000,[::1]:7001/0"),
            Some(Ok(vec!["redis://:pw@h1:7000".into(), "redis://:pw@[::1]:7001".into()]))
        );
        for bad in ["redis+cluster://", "redis+cluster://h1", "redis+cluster://h1:7000,", "redis+cluster://h1:x", "redis+cluster://h1:7000/2"] {
            assert!(matches!(nodes(bad), Some(Err(_))), "{bad}");
        }
    }

    #[test]
    fn first_keys_follow_each_commands_layout() {
        let packed = |c: &mut Cmd| c.get_packed_command();
        let key = |c: &mut Cmd| first_key(&packed(c)).map(<[u8]>::to_vec);
        assert_eq!(key(redis::cmd("HSET").arg("{c:x}:api").arg("f").arg(1)), Some(b"{c:x}:api".to_vec()));
        assert_eq!(key(redis::cmd("EVALSHA").arg("abc").arg(2).arg("{c:x:p1}").arg("k2")), Some(b"{c:x:p1}".to_vec()));
        assert_eq!(key(redis::cmd("EVALSHA").arg("abc").arg(0).arg("arg")), None);
        assert_eq!(key(&mut redis::cmd("MULTI")), None);
        assert_eq!(key(&mut redis::cmd("INFO")), None);
    }

    #[test]
    fn a_multi_group_is_one_unit_in_its_first_keys_slot() {
        let mut p = Packed::default();
        p.cmd(2).arg(b"GET").arg(b"{a}x");
        p.cmd(1).arg(b"MULTI");
        p.cmd(3).arg(b"RPUSH").arg(b"{b}list").arg(b"1");
        p.cmd(3).arg(b"HSET").arg(b"{b}h").arg(b"f");
        p.cmd(1).arg(b"EXEC");
        p.cmd(2).arg(b"GET").arg(b"{c}y");
        let u = p.units();
        assert_eq!(u.iter().map(|u| u.cmds).collect::<Vec<_>>(), vec![1, 4, 1]);
        assert_eq!(u[1].slot, Some(Slot::for_key("{b}list")));
        assert_eq!(u.iter().map(|u| u.end - u.start).sum::<usize>(), p.buf.len());
    }
}

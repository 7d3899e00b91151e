//! The media engine's settings.

use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    /// The address RTP sockets bind (and the SDP advertises).
    pub bind: IpAddr,
    /// Frame length (10-60 ms; G.711's usual 20 ms).
    pub ptime: Duration,
    /// Report a connected call that has received no RTP for this long ([`Event::Inactive`]).
    ///
    /// [`Event::Inactive`]: super::Event::Inactive
    pub inactivity: Option<Duration>,
    /// Send silence frames when no prompt plays (keeps NAT bindings and the far end's own
    /// inactivity timer alive); off: send only prompts and digits.
    pub send_silence: bool,
    /// Bind RTP sockets to even ports in this range (inclusive); `None`: any free port.
    pub ports: Option<(u16, u16)>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            ptime: Duration::from_millis(20),
            inactivity: None,
            send_silence: true,
            ports: None,
        }
    }
}

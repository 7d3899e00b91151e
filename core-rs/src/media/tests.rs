//! Two engines on loopback talk to each other: prompts, digits, inactivity, lateness; raw
//! sockets forge keys at a call, and flood it past its read budget.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::*;
use crate::Error;

fn wait_for(engine: &MediaEngine, want: usize, within: Duration) -> Vec<Event> {
    let until = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < until {
        got.extend(engine.events());
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

fn pair(a: &MediaEngine, b: &MediaEngine, codec: Codec) -> (u64, u64) {
    let (ia, pa) = a.open().unwrap();
    let (ib, pb) = b.open().unwrap();
    a.connect(ia, SocketAddr::from(([127, 0, 0, 1], pb)), codec, Some(101))
        .unwrap();
    b.connect(ib, SocketAddr::from(([127, 0, 0, 1], pa)), codec, Some(101))
        .unwrap();
    (ia, ib)
}

#[test]
fn plays_prompts_in_order_and_hears_digits() {
    let a = MediaEngine::start(Config::default()).unwrap();
    let b = MediaEngine::start(Config::default()).unwrap();
    assert_eq!(
        a.add_prompt("hello", &[1000; 1200]),
        Duration::from_millis(150)
    );
    a.add_prompt("empty", &[]);
    a.add_prompt("bye", &[-1000; 800]);
    let (ia, ib) = pair(&a, &b, Codec::Pcma);
    a.play(ia, &["hello".into(), "empty".into(), "bye".into()])
        .unwrap();
    let played = wait_for(&a, 3, Duration::from_secs(2));
    assert_eq!(
        played,
        ["hello", "empty", "bye"]
            .map(|p| Event::Played {
                call: ia,
                prompt: p.into()
            })
            .to_vec()
    );
    a.send_digits(ia, "1#", 100).unwrap();
    let heard = wait_for(&b, 2, Duration::from_secs(2));
    assert_eq!(
        heard,
        vec![
            Event::Digit { call: ib, key: '1' },
            Event::Digit { call: ib, key: '#' }
        ]
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        b.events().is_empty(),
        "a digit's end packets are not new digits"
    );
    let s = b.stats();
    assert!(s.frames_received >= 20, "{s:?}");
    assert_eq!((s.digits, s.malformed), (2, 0));
}

#[test]
fn replacing_a_prompt_reports_only_the_new_one() {
    let a = MediaEngine::start(Config::default()).unwrap();
    let b = MediaEngine::start(Config::default()).unwrap();
    a.add_prompt("long", &[500; 80_000]);
    a.add_prompt("short", &[500; 160]);
    let (ia, _) = pair(&a, &b, Codec::Pcmu);
    a.play(ia, &["long".into()]).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    a.play(ia, &["short".into()]).unwrap();
    assert_eq!(
        wait_for(&a, 1, Duration::from_secs(1)),
        vec![Event::Played {
            call: ia,
            prompt: "short".into()
        }]
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(a.events().is_empty());
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let a = MediaEngine::start(Config::default()).unwrap();
    let (id, _) = a.open().unwrap();
    assert!(a
        .play(id, &["nope".into()])
        .unwrap_err()
        .to_string()
        .contains("no prompt named \"nope\""));
    assert!(a
        .play(id + 7, &[])
        .unwrap_err()
        .to_string()
        .contains("no open media call"));
    assert!(a
        .send_digits(id, "1x", 100)
        .unwrap_err()
        .to_string()
        .contains("'x' is not a DTMF key"));
    assert!(a.send_digits(id, "1", 5).is_err());
    a.close(id).unwrap();
    a.close(id).unwrap();
    assert!(a.stop(id).is_err());
    let cfg = Config {
        ptime: Duration::from_millis(25),
        ..Config::default()
    };
    assert!(MediaEngine::start(cfg).is_err());
}

#[test]
fn reports_a_silent_far_end_once() {
    let cfg = Config {
        inactivity: Some(Duration::from_millis(150)),
        ..Config::default()
    };
    let a = MediaEngine::start(cfg).unwrap();
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (id, _) = a.open().unwrap();
    a.connect(id, sink.local_addr().unwrap(), Codec::Pcmu, Some(101))
        .unwrap();
    let t = Instant::now();
    assert_eq!(
        wait_for(&a, 1, Duration::from_secs(2)),
        vec![Event::Inactive { call: id }]
    );
    assert!(t.elapsed() >= Duration::from_millis(150));
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.events().is_empty());
    // What it sent is RTP: PCMU silence, 20 ms apart, consecutive sequence numbers.
    let mut buf = [0u8; 400];
    let (n, _) = sink.recv_from(&mut buf).unwrap();
    let p = rtp::parse(&buf[..n]).unwrap();
    assert_eq!(
        (p.payload_type, p.payload.len(), p.payload[0]),
        (0, 160, 0xFF)
    );
    let (seq, ts) = (p.seq, p.timestamp);
    let mut buf2 = [0u8; 400];
    let (n2, _) = sink.recv_from(&mut buf2).unwrap();
    let q = rtp::parse(&buf2[..n2]).unwrap();
    assert_eq!(
        (q.seq, q.timestamp),
        (seq.wrapping_add(1), ts.wrapping_add(160))
    );
}

#[test]
fn binds_even_ports_in_the_range() {
    let cfg = Config {
        ports: Some((41001, 41006)),
        ..Config::default()
    };
    let a = MediaEngine::start(cfg).unwrap();
    let ports: Vec<u16> = (0..3).map(|_| a.open().unwrap().1).collect();
    assert_eq!(ports, vec![41002, 41004, 41006]);
    let e = a.open().unwrap_err();
    assert!(matches!(e, Error::Media { .. }), "{e:?}");
    assert!(e.to_string().contains("no free RTP port"), "{e}");
}

/// An even port on 127.0.0.1 held by a socket of the test's own (dropped with it).
fn held_even_port() -> (UdpSocket, u16) {
    let mut odd = Vec::new();
    loop {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = s.local_addr().unwrap().port();
        if port.is_multiple_of(2) {
            return (s, port);
        }
        odd.push(s); // held until an even one comes, so the kernel hands out another
        assert!(odd.len() < 100, "no even port in 100 tries");
    }
}

#[test]
fn a_port_taken_by_another_socket_is_a_media_error() {
    let (_held, p) = held_even_port();
    let cfg = Config {
        ports: Some((p, p + 1)), // one RTP port: p (odd ports are not used)
        ..Config::default()
    };
    let a = MediaEngine::start(cfg).unwrap();
    let e = a.open().unwrap_err();
    let Error::Media { op, at, source } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(
        (*op, at.as_str(), source.kind()),
        (
            "bind an RTP port",
            format!("127.0.0.1, ports {p}-{}", p + 1).as_str(),
            std::io::ErrorKind::AddrInUse
        )
    );
    assert_eq!(
        e.to_string(),
        format!(
            "media engine cannot bind an RTP port (127.0.0.1, ports {p}-{}): no free RTP port: \
             each even port of the range is in use",
            p + 1
        )
    );
}

#[test]
fn an_address_not_on_this_host_is_a_media_error() {
    let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap(); // TEST-NET-1 (RFC 5737)
    if UdpSocket::bind((ip, 0)).is_ok() {
        return; // this host has it (or binds any address): nothing to test here
    }
    let a = MediaEngine::start(Config {
        bind: ip,
        ..Config::default()
    })
    .unwrap();
    let e = a.open().unwrap_err();
    let Error::Media { op, at, source } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(
        (*op, at.as_str(), source.kind()),
        (
            "bind an RTP port",
            "192.0.2.1, any port",
            std::io::ErrorKind::AddrNotAvailable
        )
    );
}

#[test]
fn carries_hundreds_of_calls_on_time() {
    let a = MediaEngine::start(Config::default()).unwrap();
    let b = MediaEngine::start(Config {
        send_silence: false,
        ..Config::default()
    })
    .unwrap();
    a.add_prompt("p", &[300; 8000]);
    let ids: Vec<u64> = (0..300).map(|_| pair(&a, &b, Codec::Pcmu).0).collect();
    a.reset_stats();
    for &id in &ids {
        a.play(id, &["p".into()]).unwrap();
    }
    let played = wait_for(&a, 300, Duration::from_secs(5));
    assert_eq!(played.len(), 300);
    let s = a.stats();
    assert!(s.frames_sent >= 300 * 50, "{s:?}");
    assert_eq!(s.send_errors, 0);
    assert!(b.stats().frames_received >= 300 * 49, "{:?}", b.stats());
}

#[test]
fn a_bridge_relays_each_side_to_the_other_and_transcodes() {
    // far end X (the customer's phone) -- [c1 engine c2] -- raw socket Y (the agent's phone)
    let x = MediaEngine::start(Config::default()).unwrap();
    let e = MediaEngine::start(Config::default()).unwrap();
    let y = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    y.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    x.add_prompt("voice", &[1000; 16000]);
    let (ix, px) = x.open().unwrap();
    let (c1, p1) = e.open().unwrap();
    let (c2, p2) = e.open().unwrap();
    x.connect(
        ix,
        SocketAddr::from(([127, 0, 0, 1], p1)),
        Codec::Pcma,
        Some(101),
    )
    .unwrap();
    e.connect(
        c1,
        SocketAddr::from(([127, 0, 0, 1], px)),
        Codec::Pcma,
        Some(101),
    )
    .unwrap();
    e.connect(c2, y.local_addr().unwrap(), Codec::Pcmu, Some(101))
        .unwrap();
    let next = |want: u8| -> bool {
        let mut buf = [0u8; 400];
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            let (n, _) = y.recv_from(&mut buf).unwrap();
            let p = rtp::parse(&buf[..n]).unwrap();
            assert_eq!(p.payload_type, 0);
            if p.payload.iter().all(|&b| b == want) {
                return true;
            }
        }
        false
    };
    assert!(next(0xFF), "c2 sends its own silence before the bridge");
    e.bridge(c1, c2).unwrap();
    x.play(ix, &["voice".into()]).unwrap();
    assert!(
        next(g711::linear_to_ulaw(g711::alaw_to_linear(
            g711::linear_to_alaw(1000)
        ))),
        "the customer's voice, as u-law"
    );
    // Y talks back: what it sends reaches X through c1.
    let mut pkt = [0u8; rtp::HEADER + 160];
    for i in 0..10u16 {
        rtp::write_header(&mut pkt, i == 0, 0, i, u32::from(i) * 160, 7);
        pkt[rtp::HEADER..].fill(g711::linear_to_ulaw(-2000));
        y.send_to(&pkt, SocketAddr::from(([127, 0, 0, 1], p2)))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Relayed within a moment (waited for up to 2 s: a loaded machine is slow, not wrong).
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while (e.stats().frames_relayed < 20 || x.stats().frames_received < 10) && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(e.stats().frames_relayed >= 20, "{:?}", e.stats());
    assert!(x.stats().frames_received >= 10);
    e.unbridge(c2).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert!(next(0xFF), "back to its own silence after the bridge");
    assert!(e.bridge(c1, c1).is_err());
    e.close(c1).unwrap();
    assert!(e.bridge(c1, c2).is_err());
}

/// Key 1 as the first packet of an RFC 4733 event (payload type 101) at `ts` of stream `ssrc`.
fn key1(ssrc: u32, ts: u32) -> [u8; rtp::HEADER + 4] {
    let mut p = [0u8; rtp::HEADER + 4];
    rtp::write_header(&mut p, true, 101, 1, ts, ssrc);
    p[rtp::HEADER..].copy_from_slice(&[1, 0x0A, 0, 160]);
    p
}

/// An engine with one call connected to a raw socket of the test's own (its far end).
fn one_call() -> (MediaEngine, u64, SocketAddr, UdpSocket) {
    let e = MediaEngine::start(Config::default()).unwrap();
    let far = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (id, port) = e.open().unwrap();
    e.connect(id, far.local_addr().unwrap(), Codec::Pcmu, Some(101))
        .unwrap();
    (e, id, SocketAddr::from(([127, 0, 0, 1], port)), far)
}

/// The engine's totals once `done` holds for them (or after 5 s: the caller's assert says why).
fn stats_when(e: &MediaEngine, done: impl Fn(&Stats) -> bool) -> Stats {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let s = e.stats();
        if done(&s) || Instant::now() > until {
            return s;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn keys_from_any_socket_but_the_far_ends_are_dropped_and_counted() {
    let (e, id, ours, far) = one_call();
    // Another host (127.0.0.2 is this host's loopback too, but not the far end's IP).
    let other_host = UdpSocket::bind("127.0.0.2:0").unwrap();
    for i in 0..5 {
        other_host.send_to(&key1(9, 800 + i * 800), ours).unwrap();
    }
    let s = stats_when(&e, |s| s.rejected_source == 5);
    assert_eq!((s.rejected_source, s.digits), (5, 0), "{s:?}");
    // The far end latches with its first packet; then another port of its host counts no more.
    far.send_to(&key1(9, 8000), ours).unwrap();
    let s = stats_when(&e, |s| s.digits == 1);
    assert_eq!(e.events(), vec![Event::Digit { call: id, key: '1' }], "{s:?}");
    let other_port = UdpSocket::bind("127.0.0.1:0").unwrap();
    other_port.send_to(&key1(9, 8800), ours).unwrap();
    let s = stats_when(&e, |s| s.rejected_source == 6);
    assert_eq!((s.digits, s.rejected_source, s.rejected_ssrc), (1, 6, 0), "{s:?}");
    // A second stream from the far end's own socket, while its first one is live: dropped.
    far.send_to(&key1(10, 800), ours).unwrap();
    let s = stats_when(&e, |s| s.rejected_ssrc == 1);
    assert_eq!((s.digits, s.rejected_ssrc), (1, 1), "{s:?}");
    assert!(e.events().is_empty());
}

#[test]
fn a_socket_is_read_at_most_its_budget_per_frame() {
    assert_eq!(worker::read_budget(Duration::from_millis(20)), 16);
    assert_eq!(worker::read_budget(Duration::from_millis(10)), 8);
    assert_eq!(worker::read_budget(Duration::from_millis(60)), 48);
    let (e, id, ours, far) = one_call();
    let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
    // 64 datagrams land at once: 16 are read before the frames go out, the rest after them
    // (a budget at a time, in up to half of the slot).
    for i in 0..64 {
        stranger.send_to(&key1(9, i * 800), ours).unwrap();
    }
    let s = stats_when(&e, |s| s.rejected_source == 64);
    assert_eq!(s.rejected_source, 64, "{s:?}");
    // Read 16 at a time: each frame's first read stops at the budget, and the rest is read past
    // it in the slot's spare half, or, on a thread running late (a loaded machine), in the next
    // frames. Only the first read can be short (the burst was still arriving).
    let budgeted = 16 * s.budget_exhausted + s.backlog_reads;
    assert!(s.budget_exhausted >= 1 && budgeted >= 64 - 15, "{s:?}");
    far.send_to(&key1(1, 800), ours).unwrap();
    let got = wait_for(&e, 1, Duration::from_secs(5));
    assert_eq!(got, vec![Event::Digit { call: id, key: '1' }]);
}

//! Two engines on loopback talk to each other: prompts, digits, inactivity, lateness.

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
    std::thread::sleep(Duration::from_millis(100));
    assert!(e.stats().frames_relayed >= 20, "{:?}", e.stats());
    assert!(x.stats().frames_received >= 10);
    e.unbridge(c2).unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert!(next(0xFF), "back to its own silence after the bridge");
    assert!(e.bridge(c1, c1).is_err());
    e.close(c1).unwrap();
    assert!(e.bridge(c1, c2).is_err());
}

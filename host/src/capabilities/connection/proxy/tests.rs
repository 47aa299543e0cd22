//! The PROXY header's framing and decoding on fixed cases, on random and mutated input
//! (a deterministic generator: the same cases every run), and read off real sockets in
//! pieces with the client's bytes behind it.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::*;

const V1_TCP4: &[u8] = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 110\r\n";
const V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\r\n";
const V1_UNKNOWN: &[u8] = b"PROXY UNKNOWN\r\n";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A v2 header: `command` 0 (LOCAL) or 1 (PROXY), `family_protocol` as on the wire,
/// then `payload` (addresses and TLVs).
fn v2(command: u8, family_protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family_protocol);
    h.extend((payload.len() as u16).to_be_bytes());
    h.extend(payload);
    h
}

fn v2_tcp4(src: [u8; 4], dst: [u8; 4], ports: (u16, u16), tlvs: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(src);
    p.extend(dst);
    p.extend(ports.0.to_be_bytes());
    p.extend(ports.1.to_be_bytes());
    p.extend(tlvs);
    v2(1, 0x11, &p)
}

fn v2_tcp6(src: IpAddr, dst: IpAddr, ports: (u16, u16)) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 addresses expected")
    };
    let mut p = Vec::new();
    p.extend(s.octets());
    p.extend(d.octets());
    p.extend(ports.0.to_be_bytes());
    p.extend(ports.1.to_be_bytes());
    v2(1, 0x21, &p)
}

fn valid_headers() -> Vec<Vec<u8>> {
    vec![
        V1_TCP4.to_vec(),
        V1_TCP6.to_vec(),
        V1_UNKNOWN.to_vec(),
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".to_vec(),
        v2_tcp4([192, 0, 2, 7], [198, 51, 100, 1], (56324, 110), &[]),
        // With a NOOP TLV (type 4) of 3 bytes, as a sender may pad.
        v2_tcp4([10, 0, 0, 1], [10, 0, 0, 2], (1, 2), &[4, 0, 3, 0, 0, 0]),
        v2_tcp6(
            "2001:db8::7".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            (56324, 443),
        ),
        v2(0, 0x00, &[]),
    ]
}

#[test]
fn whole_headers_are_framed_and_every_shorter_start_is_incomplete() {
    for header in valid_headers() {
        let mut with_data = header.clone();
        with_data.extend_from_slice(b"USER alice\r\n");
        assert_eq!(
            frame(&with_data),
            Frame::Complete(header.len()),
            "{header:?}"
        );
        for cut in 1..header.len() {
            assert_eq!(
                frame(&header[..cut]),
                Frame::Incomplete,
                "{header:?} cut at {cut}"
            );
        }
    }
}

#[test]
fn what_is_not_a_header_is_invalid_at_once() {
    let invalid = |bytes: &[u8]| matches!(frame(bytes), Frame::Invalid(_));
    // A client speaking its own protocol, a TLS ClientHello, a v1 line with a bare LF.
    assert!(invalid(b"USER alice\r\n"));
    assert!(invalid(b"GET / HTTP/1.1\r\n"));
    assert!(invalid(&[0x16, 0x03, 0x01, 0x02, 0x00]));
    assert!(invalid(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"));
    assert!(invalid(b"PROXX"));
    assert!(invalid(b"\r\n\r\n\0\r\nQUIX\n"));
    let long = [b"PROXY ".as_slice(), &[b'a'; MAX_V1_BYTES]].concat();
    assert_eq!(
        frame(&long),
        Frame::Invalid("its v1 line has no CRLF within 107 bytes".into())
    );
    let huge = v2(1, 0x11, &vec![0; MAX_V2_BYTES]);
    assert_eq!(
        frame(&huge[..16]),
        Frame::Invalid(format!(
            "its v2 header announces {} bytes, more than the {MAX_V2_BYTES} accepted",
            MAX_V2_BYTES + 16
        ))
    );
}

#[test]
fn addresses_are_decoded() {
    let tcp4 = parse(V1_TCP4).unwrap();
    assert_eq!(
        tcp4,
        Proxied {
            version: 1,
            addresses: Some((addr("192.0.2.7:56324"), addr("198.51.100.1:110"))),
        }
    );
    let tcp6 = parse(V1_TCP6).unwrap();
    assert_eq!(tcp6.addresses.unwrap().0, addr("[2001:db8::7]:56324"));
    assert_eq!(parse(V1_UNKNOWN).unwrap().addresses, None);
    let v2_4 = parse(&v2_tcp4(
        [192, 0, 2, 7],
        [198, 51, 100, 1],
        (56324, 110),
        &[],
    ))
    .unwrap();
    assert_eq!(v2_4.version, 2);
    assert_eq!(v2_4.addresses, tcp4.addresses);
    let v2_6 = v2_tcp6(
        "2001:db8::7".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
        (56324, 443),
    );
    assert_eq!(parse(&v2_6).unwrap().addresses, tcp6.addresses);
    // LOCAL (a health check of the balancer's own) keeps the socket's peer.
    let local = v2(0, 0x11, &[127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2]);
    assert_eq!(parse(&local).unwrap().addresses, None);
}

#[test]
fn malformed_headers_say_what_is_wrong() {
    let err = |bytes: &[u8]| parse(bytes).unwrap_err();
    assert_eq!(
        err(b"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n"),
        "its v1 header is malformed: header contains invalid IP address for the source"
    );
    assert!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n").contains("invalid TCP port"));
    assert!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n").contains("invalid TCP port"));
    assert!(err(b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n").contains("invalid protocol"));
    assert!(err(b"PROXY TCP4 ::1 ::2 1 2\r\n").contains("invalid IP address"));
    assert!(err(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n").starts_with("its v1 header"));
    // Version 3, a command of 2, UDP, IPv4 addresses cut short.
    let mut version3 = v2_tcp4([1, 2, 3, 4], [5, 6, 7, 8], (1, 2), &[]);
    version3[12] = 0x31;
    assert!(err(&version3).starts_with("its v2 header is malformed"));
    let mut command2 = v2_tcp4([1, 2, 3, 4], [5, 6, 7, 8], (1, 2), &[]);
    command2[12] = 0x22;
    assert!(err(&command2).starts_with("its v2 header is malformed"));
    assert_eq!(
        err(&v2(1, 0x12, &[0; 12])),
        "its v2 header names a datagram (UDP) connection"
    );
    assert!(err(&v2(1, 0x11, &[0; 8])).starts_with("its v2 header is malformed"));
}

/// xorshift64*: deterministic bytes, so a failing case is the same on every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Whatever the input, framing and parsing answer without panicking, a complete frame
/// is complete alone, and each of its shorter starts is incomplete.
fn check_consistency(input: &[u8]) {
    match frame(input) {
        Frame::Complete(n) => {
            assert!(n <= input.len(), "{input:?}");
            assert_eq!(frame(&input[..n]), Frame::Complete(n), "{input:?}");
            for cut in 1..n {
                assert_eq!(
                    frame(&input[..cut]),
                    Frame::Incomplete,
                    "{input:?} at {cut}"
                );
            }
            let _ = parse(&input[..n]);
        }
        Frame::Incomplete => assert!(input.len() < MAX_V2_BYTES, "{input:?}"),
        Frame::Invalid(why) => assert!(!why.is_empty()),
    }
}

#[test]
fn random_and_mutated_input_never_panics_and_frames_consistently() {
    let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);
    let starts: [&[u8]; 3] = [b"", b"PROXY ", V2_SIGNATURE];
    for _ in 0..20_000 {
        let start = starts[rng.below(starts.len())];
        let len = rng.below(160);
        let input = [start, &rng.fill(len)].concat();
        check_consistency(&input);
    }
    let headers = valid_headers();
    for _ in 0..20_000 {
        let mut input = headers[rng.below(headers.len())].clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(input.len());
            match rng.below(3) {
                0 => input[at] = rng.next() as u8,
                1 => input.insert(at, rng.next() as u8),
                _ => {
                    input.remove(at);
                }
            }
            if input.is_empty() {
                input.push(b'P');
            }
        }
        check_consistency(&input);
    }
}

/// A connected pair on loopback: (the server's end, the client's end).
async fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_nodelay(true).unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

#[tokio::test]
async fn a_header_sent_in_pieces_is_read_and_the_client_bytes_after_it_are_left() {
    for header in valid_headers() {
        let (mut server, mut client) = pair().await;
        let mut sent = header.clone();
        sent.extend_from_slice(b"USER alice\r\n");
        let writer = std::thread::spawn(move || {
            // Pieces of 1, 2, 3... bytes, with pauses: the reader sees every split.
            let mut at = 0;
            let mut size = 1;
            while at < sent.len() {
                let end = (at + size).min(sent.len());
                client.write_all(&sent[at..end]).unwrap();
                std::thread::sleep(Duration::from_millis(2));
                at = end;
                size += 1;
            }
            client
        });
        let proxied = read(&mut server, Duration::from_secs(10)).await.unwrap();
        assert_eq!(proxied, parse(&header).unwrap());
        let mut rest = [0u8; 12];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"USER alice\r\n");
        drop(writer.join().unwrap());
    }
}

#[tokio::test]
async fn a_header_followed_at_once_by_data_leaves_the_data() {
    let (mut server, mut client) = pair().await;
    client
        .write_all(&[V1_TCP4, b"GET / HTTP/1.1\r\n\r\n"].concat())
        .unwrap();
    let proxied = read(&mut server, Duration::from_secs(10)).await.unwrap();
    assert_eq!(proxied.addresses.unwrap().0, addr("192.0.2.7:56324"));
    let mut rest = [0u8; 18];
    server.read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"GET / HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn silence_a_close_and_garbage_are_errors_that_quote_what_came() {
    let (mut server, mut client) = pair().await;
    client.write_all(b"PROXY TCP4 ").unwrap();
    let err = read(&mut server, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err, HeaderError::Timeout(Duration::from_millis(200), 11));
    assert_eq!(
        err.to_string(),
        "no whole PROXY header within 200ms (11 bytes came)"
    );

    let (mut server, client) = pair().await;
    drop(client);
    let err = read(&mut server, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err, HeaderError::Closed(0));

    let (mut server, mut client) = pair().await;
    client.write_all(b"USER alice\r\n\x1b[2J").unwrap();
    let err = read(&mut server, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a valid PROXY header: it starts with neither `PROXY ` nor the v2 signature: `USER alice\\r\\n\\x1b[2J`"
    );

    let (mut server, mut client) = pair().await;
    client
        .write_all(b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n")
        .unwrap();
    let err = read(&mut server, Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("source: `PROXY TCP4 999.0.0.1 10.0.0.1 1 2\\r\\n`"),
        "{err}"
    );
}

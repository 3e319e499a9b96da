//! End-to-end tests of the modes on ephemeral ports: `serve` with its probe
//! knobs, `dns-canary` against an in-process fake DNS server (search list,
//! ndots and the readiness flip on an outage), `http-canary` against `serve`,
//! and `sleep`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use breakfix_workload::cli::{Cli, Mode};
use breakfix_workload::{Running, Status, start_on};
use clap::Parser;
use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn mode(args: &[&str]) -> Mode {
    let argv = std::iter::once("breakfix-workload").chain(args.iter().copied());
    Cli::try_parse_from(argv).expect("valid flags").mode
}

async fn start(args: &[&str]) -> Running {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    start_on(listener, mode(args)).expect("start")
}

/// GET `path` with a bare HTTP/1.1 client: (status, body, elapsed).
async fn get(addr: SocketAddr, path: &str) -> (u16, String, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, body.to_owned(), t0.elapsed())
}

async fn status(addr: SocketAddr) -> Status {
    let (code, body, _) = get(addr, "/status").await;
    assert_eq!(code, 200);
    serde_json::from_str(&body).expect("status json")
}

async fn stop(r: Running) {
    r.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), r.server_task)
        .await
        .expect("server stops promptly")
        .expect("server task");
    tokio::time::timeout(Duration::from_secs(2), r.mode_task)
        .await
        .expect("mode stops promptly")
        .expect("mode task")
        .expect("mode ok");
}

/// Poll `/readyz` until it answers `want` (or panic after `within`).
async fn wait_ready(addr: SocketAddr, want: u16, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let (code, _, _) = get(addr, "/readyz").await;
        if code == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {code}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serve_answers_probes_before_and_after_its_startup_delay() {
    let r = start(&["serve", "--port", "0", "--startup-delay", "1s"]).await;
    let addr = r.addr;

    let (code, body, _) = get(addr, "/healthz").await;
    assert_eq!((code, body.as_str()), (503, "starting\n"));
    let (code, _, _) = get(addr, "/readyz").await;
    assert_eq!(code, 503);
    let st = status(addr).await;
    assert_eq!(st.mode, "serve");
    assert!(!st.ready);
    assert_eq!((st.total, st.ok, st.failed), (2, 0, 2), "{st:?}");
    assert_eq!(st.counters.get("status_503"), Some(&2));
    assert!(st.last_error.as_deref().is_some_and(|e| e.contains("503")));
    assert!(
        st.since.parse::<jiff::Timestamp>().is_ok(),
        "since = {}",
        st.since
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, body, _) = get(addr, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, body, _) = get(addr, "/readyz").await;
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    let (code, body, _) = get(addr, "/").await;
    assert_eq!(code, 200);
    assert!(body.contains("mode=serve"), "{body}");
    let (code, _, _) = get(addr, "/nope").await;
    assert_eq!(code, 404);

    let st = status(addr).await;
    assert!(st.ready);
    assert_eq!(
        (st.total, st.ok, st.failed),
        (6, 3, 3),
        "/status itself is not counted"
    );
    assert!(st.latency_ms.p50.is_some() && st.latency_ms.max.is_some());
    assert_eq!(st.window.total, 6);
    stop(r).await;
}

#[tokio::test]
async fn serve_response_delay_and_liveness_failure() {
    let r = start(&[
        "serve",
        "--port",
        "0",
        "--response-delay",
        "300ms",
        "--fail-liveness-after",
        "1s",
    ])
    .await;
    let (code, _, took) = get(r.addr, "/healthz").await;
    assert_eq!(code, 200);
    assert!(took >= Duration::from_millis(300), "took {took:?}");
    let (_, _, took) = get(r.addr, "/status").await;
    assert!(took < Duration::from_millis(300), "/status is not delayed");

    tokio::time::sleep(Duration::from_millis(800)).await;
    let (code, _, _) = get(r.addr, "/healthz").await;
    assert_eq!(code, 500, "liveness fails after 1s");
    let (code, _, _) = get(r.addr, "/readyz").await;
    assert_eq!(code, 200, "readiness is independent");
    stop(r).await;
}

#[tokio::test]
async fn serve_ballast_is_reported() {
    let r = start(&[
        "serve",
        "--port",
        "0",
        "--ballast-mib",
        "4",
        "--ballast-growth-mib-per-sec",
        "20",
        "--ballast-max-mib",
        "8",
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let st = status(r.addr).await;
    assert_eq!(st.gauges.get("ballast_mib"), Some(&8), "{st:?}");
    stop(r).await;
}

/// A fake DNS server: `ok.test.` has A 10.0.0.1 (and no AAAA); everything
/// else is NXDOMAIN; while `down` is set it answers nothing (an outage).
struct FakeDns {
    addr: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
}

async fn fake_dns() -> FakeDns {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("udp");
    let addr = socket.local_addr().expect("addr");
    let queries = Arc::new(Mutex::new(Vec::new()));
    let down = Arc::new(AtomicBool::new(false));
    let (q, d) = (queries.clone(), down.clone());
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(req) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(query) = req.queries.first().cloned() else {
                continue;
            };
            let name = query.name().to_string().to_lowercase();
            q.lock()
                .expect("lock")
                .push(format!("{name} {}", query.query_type()));
            if d.load(Ordering::SeqCst) {
                continue;
            }
            let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
            resp.metadata.recursion_desired = req.metadata.recursion_desired;
            resp.metadata.recursion_available = true;
            resp.add_query(query.clone());
            if name == "ok.test." {
                if query.query_type() == RecordType::A {
                    resp.add_answer(Record::from_rdata(
                        query.name().clone(),
                        5,
                        RData::A(A(Ipv4Addr::new(10, 0, 0, 1))),
                    ));
                }
            } else {
                resp.metadata.response_code = ResponseCode::NXDomain;
            }
            if let Ok(bytes) = resp.to_vec() {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    FakeDns {
        addr,
        queries,
        down,
    }
}

fn resolv_conf() -> tempfile_path::TempPath {
    tempfile_path::write(
        "search ns.svc.cluster.local svc.cluster.local cluster.local\n\
         nameserver 127.0.0.1\n\
         options ndots:5 attempts:1\n",
    )
}

#[tokio::test]
async fn dns_canary_walks_the_search_list_and_flips_ready_on_an_outage() {
    let dns = fake_dns().await;
    let conf = resolv_conf();
    let ns = dns.addr.to_string();
    let r = start(&[
        "dns-canary",
        "--port",
        "0",
        "--names",
        "ok.test",
        "--interval",
        "100ms",
        "--timeout",
        "300ms",
        "--window",
        "1s",
        "--resolv-conf",
        conf.path(),
        "--nameserver",
        &ns,
    ])
    .await;
    wait_ready(r.addr, 200, Duration::from_secs(3)).await;
    {
        let q = dns.queries.lock().expect("lock");
        // ndots:5 → the three search domains are tried before the name itself
        let first: Vec<&str> = q.iter().take(4).map(String::as_str).collect();
        assert_eq!(
            first,
            [
                "ok.test.ns.svc.cluster.local. A",
                "ok.test.svc.cluster.local. A",
                "ok.test.cluster.local. A",
                "ok.test. A",
            ]
        );
    }
    let before = dns.queries.lock().expect("lock").len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = dns.queries.lock().expect("lock").len();
    assert!(
        after >= before + 8,
        "no caching: {before} -> {after} queries"
    );

    dns.down.store(true, Ordering::SeqCst);
    wait_ready(r.addr, 503, Duration::from_secs(3)).await;
    let st = status(r.addr).await;
    assert!(!st.ready);
    assert!(st.counters.get("timeout").is_some_and(|&n| n > 0), "{st:?}");
    assert!(
        st.last_error
            .as_deref()
            .is_some_and(|e| e.contains("ok.test")),
        "{:?}",
        st.last_error
    );

    dns.down.store(false, Ordering::SeqCst);
    wait_ready(r.addr, 200, Duration::from_secs(3)).await;
    stop(r).await;
}

#[tokio::test]
async fn dns_canary_counts_nxdomain() {
    let dns = fake_dns().await;
    let conf = resolv_conf();
    let ns = dns.addr.to_string();
    let r = start(&[
        "dns-canary",
        "--port",
        "0",
        "--names",
        "missing.test",
        "--interval",
        "100ms",
        "--resolv-conf",
        conf.path(),
        "--nameserver",
        &ns,
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let st = status(r.addr).await;
    assert!(!st.ready);
    assert!(
        st.counters.get("nxdomain").is_some_and(|&n| n > 0),
        "{st:?}"
    );
    assert_eq!(st.ok, 0);
    stop(r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_load_paces_its_rate_and_bounds_concurrency() {
    let dns = fake_dns().await;
    let conf = resolv_conf();
    let ns = dns.addr.to_string();
    let r = start(&[
        "dns-load",
        "--port",
        "0",
        "--names",
        "ok.test",
        "--qps",
        "100",
        "--concurrency",
        "32",
        "--ip-strategy",
        "ipv4",
        "--resolv-conf",
        conf.path(),
        "--nameserver",
        &ns,
    ])
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let st = status(r.addr).await;
    let started =
        st.total + st.counters.get("skipped").copied().unwrap_or(0) + st.gauges["in_flight"];
    let due = st.uptime_seconds * 100.0;
    // Pacing is exact whatever the machine's speed: every lookup due by the
    // elapsed time was started or explicitly skipped (5 ms ticks + slack; the
    // in_flight gauge is from the last tick, so lookups that completed since
    // are counted twice).
    let slack = st.gauges["in_flight"] as f64 + 2.0;
    assert!(
        (started as f64) <= due + slack && (started as f64) >= due * 0.9 - 2.0,
        "started {started}, due {due}: {st:?}"
    );
    assert!(st.gauges["in_flight"] <= 32);
    assert_eq!(st.failed, 0, "{st:?}");
    assert!(st.ready);
    // Throughput: on an idle machine nothing is skipped; leave room for a
    // loaded CI box running a debug build.
    assert!(st.total as f64 >= due * 0.5, "{st:?}");
    // Each lookup walked the search list (4 queries), none merged or cached.
    let queries = dns.queries.lock().expect("lock").len() as u64;
    assert!(
        queries >= st.total * 4,
        "{queries} queries for {} lookups",
        st.total
    );
    stop(r).await;
}

#[tokio::test]
async fn http_canary_sees_a_serve_instance_go_away() {
    let app = start(&["serve", "--port", "0"]).await;
    let url = format!("http://{}/", app.addr);
    let canary = start(&[
        "http-canary",
        "--port",
        "0",
        "--url",
        &url,
        "--interval",
        "50ms",
        "--window",
        "1s",
    ])
    .await;
    wait_ready(canary.addr, 200, Duration::from_secs(3)).await;
    let st = status(app.addr).await;
    assert!(st.total > 0, "serve counted the canary's requests");
    stop(app).await;
    wait_ready(canary.addr, 503, Duration::from_secs(3)).await;
    let st = status(canary.addr).await;
    assert!(st.counters.get("connect").is_some_and(|&n| n > 0), "{st:?}");
    stop(canary).await;
}

/// An HTTP server answering every request 200 after `delay_ms`
/// (changeable while it runs): a service that gets slow without failing.
struct SlowServer {
    addr: SocketAddr,
    delay_ms: Arc<AtomicU64>,
}

async fn slow_server() -> SlowServer {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let delay_ms = Arc::new(AtomicU64::new(0));
    let delay = delay_ms.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let delay = Duration::from_millis(delay.load(Ordering::SeqCst));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
                    )
                    .await;
            });
        }
    });
    SlowServer { addr, delay_ms }
}

/// Counts per histogram bucket between two reads: later minus earlier.
fn histogram_between(earlier: &Status, later: &Status) -> Vec<(Option<u64>, u64)> {
    let before = |le: Option<u64>| {
        earlier
            .latency_histogram
            .buckets
            .iter()
            .find(|b| b.le_us == le)
            .map_or(0, |b| b.ok + b.failed)
    };
    later
        .latency_histogram
        .buckets
        .iter()
        .map(|b| (b.le_us, b.ok + b.failed - before(b.le_us)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test]
async fn http_canary_turns_unready_when_the_service_gets_slow() {
    let server = slow_server().await;
    let url = format!("http://{}/", server.addr);
    let canary = start(&[
        "http-canary",
        "--port",
        "0",
        "--url",
        &url,
        "--interval",
        "50ms",
        "--window",
        "1s",
        "--ready-max-latency",
        "100ms",
    ])
    .await;
    wait_ready(canary.addr, 200, Duration::from_secs(3)).await;
    let fast = status(canary.addr).await;
    let gate = fast.latency_gate.expect("a latency gate");
    assert_eq!(
        (gate.percentile, gate.max_ms, gate.over),
        (95.0, 100.0, false)
    );
    assert!(
        fast.ready_policy.contains("p95 latency"),
        "{}",
        fast.ready_policy
    );

    server.delay_ms.store(250, Ordering::SeqCst);
    wait_ready(canary.addr, 503, Duration::from_secs(3)).await;
    let (_, body, _) = get(canary.addr, "/readyz").await;
    assert!(
        body.starts_with("not ready: p95 latency over the window"),
        "{body}"
    );
    let slow = status(canary.addr).await;
    assert!(!slow.ready);
    assert_eq!(slow.failed, 0, "slow, not failing: {slow:?}");
    let gate = slow.latency_gate.expect("a latency gate");
    assert!(
        gate.over && gate.observed_ms.is_some_and(|ms| ms >= 250.0),
        "{gate:?}"
    );

    // The histogram between the two reads holds only what happened in
    // between: every request took at least the server's delay.
    let between = histogram_between(&fast, &slow);
    let counted: u64 = between.iter().map(|(_, n)| n).sum();
    assert_eq!(counted, slow.total - fast.total, "{between:?}");
    let fast_between: u64 = between
        .iter()
        .filter(|(le, _)| le.is_some_and(|le| le < 250_000))
        .map(|(_, n)| n)
        .sum();
    assert!(
        fast_between <= 1,
        "at most the request in flight at the switch was fast: {between:?}"
    );

    server.delay_ms.store(0, Ordering::SeqCst);
    wait_ready(canary.addr, 200, Duration::from_secs(4)).await;
    stop(canary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_capacity_makes_a_load_queue_up() {
    // One slot of 50ms: 20 requests/s at most. Offered 40/s, the line grows
    // and so does every client's latency; four slots (80/s) keep up.
    let narrow = start(&[
        "serve",
        "--port",
        "0",
        "--service-time",
        "50ms",
        "--capacity",
        "1",
    ])
    .await;
    let wide = start(&[
        "serve",
        "--port",
        "0",
        "--service-time",
        "50ms",
        "--capacity",
        "4",
    ])
    .await;
    let load = |addr: SocketAddr| {
        let url = format!("http://{addr}/");
        async move {
            start(&[
                "http-load",
                "--port",
                "0",
                "--url",
                &url,
                "--qps",
                "40",
                "--concurrency",
                "64",
            ])
            .await
        }
    };
    let (narrow_load, wide_load) = (load(narrow.addr).await, load(wide.addr).await);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let queued = status(narrow.addr).await.gauges.get("queued").copied();
    let (slow, quick) = (status(narrow_load.addr).await, status(wide_load.addr).await);
    assert_eq!(slow.mode, "http-load");
    assert!(
        queued.is_some_and(|q| q >= 5),
        "requests wait in line: {queued:?}"
    );
    let p95 = |s: &Status| s.latency_ms.p95.expect("requests done");
    assert!(p95(&slow) >= 300.0, "queueing: {slow:?}");
    assert!(p95(&quick) < 200.0, "enough capacity: {quick:?}");
    assert!(quick.total >= 40, "{quick:?}");
    for r in [narrow_load, wide_load, narrow, wide] {
        stop(r).await;
    }
}

#[tokio::test]
async fn sleep_exits_on_its_own() {
    let r = start(&["sleep", "--port", "0", "--duration", "300ms"]).await;
    let (code, _, _) = get(r.addr, "/readyz").await;
    assert_eq!(code, 200);
    tokio::time::timeout(Duration::from_secs(2), r.mode_task)
        .await
        .expect("sleep ends")
        .expect("task")
        .expect("ok");
    r.shutdown.cancel();
}

/// A minimal temp file helper (no extra dev-dependency).
mod tempfile_path {
    use std::path::PathBuf;

    pub struct TempPath(PathBuf);

    impl TempPath {
        pub fn path(&self) -> &str {
            self.0.to_str().expect("utf-8 temp path")
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    pub fn write(contents: &str) -> TempPath {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "breakfix-workload-test-{}-{}.conf",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::write(&path, contents).expect("write temp file");
        TempPath(path)
    }
}

//! The HTTP endpoints every mode serves (hyper 1, HTTP/1.1):
//!
//! - `GET /healthz`: liveness. 200 `ok`; 503 `starting` during serve's startup
//!   delay; 500 once serve's `--fail-liveness-after` has passed.
//! - `GET /readyz`: 200 `ready` when the mode's [`Stats`] say so, else 503.
//! - `GET /status`: the mode's [`crate::state::Status`] as JSON.
//! - `GET /`: one line of text naming the version, mode and host (so an
//!   http-canary or curl can see which pod answered).
//!
//! serve's `--response-delay` is slept before answering /healthz and /readyz.

use std::convert::Infallible;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::state::Stats;

/// Most connections served at once; further ones are closed on accept.
const MAX_CONNECTIONS: usize = 256;
/// A client must send its request head within this (slowloris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How serve's flags change the answers (neutral in other modes).
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Slept before answering /healthz and /readyz.
    pub response_delay: Duration,
    /// From this instant on, /healthz answers 500.
    pub fail_liveness_at: Option<Instant>,
    /// What a request to `/` costs; `None`: nothing.
    pub work: Option<Work>,
}

/// The cost of serving `/`: each request holds one of a fixed number of
/// slots for `service_time`, and waits in line (first come, first served)
/// while all are busy. A pod then has a real capacity (slots ÷ service
/// time requests per second), so fewer replicas under the same load means
/// queueing and a higher latency for every client, as in a real service.
/// The service time is slept, not spun: capacity is modelled without
/// burning CPU. `cpu` is the part that really burns CPU, for faults on CPU
/// limits.
#[derive(Debug, Clone)]
pub struct Work {
    /// How long one request holds its slot.
    pub service_time: Duration,
    /// CPU time each request burns on the thread's own clock (see [`burn`]).
    pub cpu: Duration,
    /// The slots; `None`: no limit (every request just takes `service_time`).
    pub slots: Option<Arc<Semaphore>>,
}

impl Work {
    /// Wait for a slot, then hold it for the service time. The `queued` and
    /// `busy` gauges count requests waiting and being served.
    async fn serve(&self, stats: &Stats, queue: &std::sync::atomic::AtomicU64) {
        use std::sync::atomic::Ordering;
        let _permit = match &self.slots {
            Some(slots) => {
                stats.gauge("queued", queue.fetch_add(1, Ordering::SeqCst) + 1);
                let permit = slots.clone().acquire_owned().await;
                stats.gauge("queued", queue.fetch_sub(1, Ordering::SeqCst) - 1);
                permit.ok()
            }
            None => None,
        };
        if !self.service_time.is_zero() {
            tokio::time::sleep(self.service_time).await;
        }
        if !self.cpu.is_zero() {
            let cpu = self.cpu;
            // A blocking thread: the burn must not stall the runtime's
            // workers, which answer the probes.
            if let Err(e) = tokio::task::spawn_blocking(move || burn(cpu)).await {
                tracing::warn!("CPU burn did not finish: {e}");
            }
        }
    }
}

/// The calling thread's CPU time so far.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Spins until the calling thread has used `cpu` of CPU time, and returns
/// the wall time it took. The thread's CPU clock only advances while it
/// runs, so a container throttled by its CPU limit (or a busy machine)
/// takes longer in wall time for the same work: what a CPU squeeze does to
/// a real service.
pub fn burn(cpu: Duration) -> Duration {
    let wall = Instant::now();
    let start = thread_cpu_time();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while thread_cpu_time().saturating_sub(start) < cpu {
        for _ in 0..1_000 {
            x = std::hint::black_box(x.rotate_left(5) ^ x.wrapping_mul(0x100_0000_01B3));
        }
    }
    std::hint::black_box(x);
    wall.elapsed()
}

/// What the handlers need.
#[derive(Debug)]
pub struct App {
    /// The mode's counters and readiness.
    pub stats: Arc<Stats>,
    /// Injected probe behaviour.
    pub probes: Probes,
    /// Count requests (except /status) as the mode's outcomes: serve's
    /// "traffic" is its HTTP requests; canaries count their own probes.
    pub record_requests: bool,
    /// This pod's name, shown on `/`.
    pub hostname: String,
    /// Requests waiting for a [`Work`] slot.
    pub queued: std::sync::atomic::AtomicU64,
}

/// Bind `port` on all addresses: dual-stack `[::]` where IPv6 is available,
/// else `0.0.0.0`.
pub async fn bind(port: u16) -> Result<TcpListener, Error> {
    let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    match TcpListener::bind(v6).await {
        Ok(l) => Ok(l),
        Err(_) => {
            let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            TcpListener::bind(v4)
                .await
                .map_err(|source| Error::Bind { addr: v4, source })
        }
    }
}

/// Accept and serve connections until `shutdown` is cancelled. Open
/// connections are dropped at shutdown, not drained: pods exit fast.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, _peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| handle(app.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                // Client resets and timeouts are routine for probes; not logged.
                _ = conn => {}
            }
        });
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn status_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        404 => "status_404",
        405 => "status_405",
        500 => "status_500",
        503 => "status_503",
        400..=499 => "status_4xx",
        _ => "status_5xx",
    }
}

async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let start = Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let resp = route(&app, &method, &path).await;
    if app.record_requests && path != "/status" {
        let latency = start.elapsed();
        let status = resp.status();
        if status.is_success() {
            app.stats.success(latency);
        } else {
            let reason = status.canonical_reason().unwrap_or("");
            app.stats.failure(
                latency,
                status_kind(status),
                format!("{method} {path} -> {} {reason}", status.as_u16()),
            );
        }
    }
    Ok(resp)
}

async fn route(app: &App, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match path {
        "/healthz" => {
            delay(app).await;
            let now = Instant::now();
            if !app.stats.started_up(now) {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            } else if app.probes.fail_liveness_at.is_some_and(|t| now >= t) {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "liveness failure injected (--fail-liveness-after)\n",
                )
            } else {
                text(StatusCode::OK, "ok\n")
            }
        }
        "/readyz" => {
            delay(app).await;
            let now = Instant::now();
            if !app.stats.started_up(now) {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            } else if app.stats.is_ready_at(now) {
                text(StatusCode::OK, "ready\n")
            } else if let Some(why) = app.stats.slow_reason_at(now) {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                )
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        "/status" => match serde_json::to_vec_pretty(&app.stats.status()) {
            Ok(mut body) => {
                body.push(b'\n');
                let mut resp = text(StatusCode::OK, body);
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                resp
            }
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        },
        "/" => {
            if let Some(work) = &app.probes.work {
                work.serve(&app.stats, &app.queued).await;
            }
            root(app)
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn root(app: &App) -> Response<Full<Bytes>> {
    text(
        StatusCode::OK,
        format!(
            "breakfix-workload {} mode={} host={}\nendpoints: /healthz /readyz /status\n",
            env!("CARGO_PKG_VERSION"),
            app.stats.mode(),
            app.hostname
        ),
    )
}

async fn delay(app: &App) {
    if !app.probes.response_delay.is_zero() {
        tokio::time::sleep(app.probes.response_delay).await;
    }
}

/// The pod name: `$HOSTNAME`, else /etc/hostname, else "unknown".
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rstest::rstest]
    #[case::nothing(Duration::ZERO)]
    #[case::a_little(Duration::from_millis(5))]
    #[case::a_request(Duration::from_millis(30))]
    fn burn_uses_the_cpu_time_asked_and_no_less_wall_time(#[case] cpu: Duration) {
        let before = thread_cpu_time();
        let wall = burn(cpu);
        let used = thread_cpu_time() - before;
        assert!(used >= cpu, "{used:?} of CPU for {cpu:?}");
        assert!(wall >= used.min(cpu), "wall {wall:?} < CPU {cpu:?}");
        assert!(
            used < cpu + Duration::from_millis(50),
            "stops soon after: {used:?} for {cpu:?}"
        );
    }

    #[test]
    fn sleeping_costs_no_cpu_time() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(30));
        assert!(thread_cpu_time() - before < Duration::from_millis(10));
    }
}

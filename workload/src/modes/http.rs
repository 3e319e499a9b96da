//! The HTTP client the http modes share: one GET per call, the host
//! resolved afresh through resolv.conf (search list, no cache), a new
//! connection with `Connection: close`, the whole response read. A pooled
//! keep-alive connection would keep reaching an old endpoint after the
//! Service stopped routing to it and hide exactly the faults the canaries
//! exist to see; the load generator behaves like the same many clients.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::Name;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{CONNECTION, HOST, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::dns::{self, ResolverSettings};
use super::fmt_duration;
use crate::cli::IpStrategy;
use crate::error::Error;
use crate::state::Outcome;

/// Response bodies are read (so latency covers the whole response) up to this.
const MAX_BODY: usize = 1024 * 1024;

/// Where to send requests, parsed once at startup.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    host: Host,
    port: u16,
    /// `Host:` header value.
    authority: String,
    path_and_query: String,
}

#[derive(Debug, Clone)]
enum Host {
    Ip(IpAddr),
    Name(Name),
}

impl Target {
    fn parse(url: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("--url {url:?}: {why}"));
        let uri = Uri::from_str(url).map_err(|e| bad(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(bad(&format!("scheme {other} unsupported; use http://"))),
            None => return Err(bad("missing http:// scheme")),
        }
        let authority = uri.authority().ok_or_else(|| bad("missing host"))?;
        let host_str = authority.host();
        let bare = host_str.trim_start_matches('[').trim_end_matches(']');
        let host = match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(Name::from_str(bare).map_err(|e| bad(&format!("host: {e}")))?),
        };
        Ok(Target {
            url: url.to_owned(),
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// How one request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("{0}")]
    Dns(String),
    #[error("connect {addr}: {error}")]
    Connect { addr: SocketAddr, error: String },
    #[error("HTTP: {0}")]
    Http(String),
    #[error("{code} {reason}")]
    Status { code: u16, reason: String },
    #[error("timed out after {0}")]
    Timeout(String),
}

impl ProbeError {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ProbeError::Dns(_) => "dns",
            ProbeError::Connect { .. } => "connect",
            ProbeError::Http(_) => "http",
            ProbeError::Status { code, .. } if (400..500).contains(code) => "status_4xx",
            ProbeError::Status { code, .. } if (500..600).contains(code) => "status_5xx",
            ProbeError::Status { .. } => "status_other",
            ProbeError::Timeout(_) => "timeout",
        }
    }
}

/// Aborts the connection task when the request is done or abandoned.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// GETs one URL, each call on a fresh resolution and connection.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    target: Target,
    resolver: Option<TokioResolver>,
    timeout: Duration,
}

impl Client {
    /// Parse `url` and build the resolver its host needs (none for an IP).
    pub(crate) fn new(url: &str, resolv_conf: &Path, timeout: Duration) -> Result<Self, Error> {
        let target = Target::parse(url)?;
        let resolver = match target.host {
            Host::Ip(_) => None,
            Host::Name(_) => Some(
                dns::Recipe::read(&ResolverSettings {
                    resolv_conf,
                    nameserver: None,
                    timeout,
                    ip_strategy: IpStrategy::Ipv4ThenIpv6,
                })?
                .build()?,
            ),
        };
        Ok(Self {
            target,
            resolver,
            timeout,
        })
    }

    /// The URL.
    pub(crate) fn url(&self) -> &str {
        &self.target.url
    }

    /// One GET bounded by the timeout: its latency and outcome (2xx is a
    /// success), plus the status and address on success.
    pub(crate) async fn call(&self) -> (Duration, Result<(StatusCode, SocketAddr), ProbeError>) {
        let start = Instant::now();
        let result = tokio::time::timeout(self.timeout, self.get())
            .await
            .unwrap_or_else(|_| Err(ProbeError::Timeout(fmt_duration(self.timeout))));
        (start.elapsed(), result)
    }

    /// [`Client::call`] as an outcome to record.
    pub(crate) async fn outcome(&self) -> (Duration, Outcome) {
        let (latency, result) = self.call().await;
        let outcome = result
            .map(|_| ())
            .map_err(|e| (e.kind(), format!("GET {}: {e}", self.target.url)));
        (latency, outcome)
    }

    /// Resolve, connect (trying each address), send one GET, read the body.
    async fn get(&self) -> Result<(StatusCode, SocketAddr), ProbeError> {
        let addrs: Vec<SocketAddr> = match (&self.target.host, &self.resolver) {
            (Host::Ip(ip), _) => vec![SocketAddr::new(*ip, self.target.port)],
            (Host::Name(name), Some(resolver)) => {
                match dns::lookup(resolver, name, self.timeout).await.1 {
                    Ok(ips) => ips
                        .iter()
                        .map(|ip| SocketAddr::new(ip, self.target.port))
                        .collect(),
                    Err(f) => return Err(ProbeError::Dns(f.message)),
                }
            }
            (Host::Name(name), None) => {
                return Err(ProbeError::Dns(format!("{name}: no resolver")));
            }
        };
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => return self.request(stream, addr).await.map(|s| (s, addr)),
                Err(e) => {
                    last = Some(ProbeError::Connect {
                        addr,
                        error: e.to_string(),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| ProbeError::Dns("no addresses".into())))
    }

    async fn request(&self, stream: TcpStream, addr: SocketAddr) -> Result<StatusCode, ProbeError> {
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ProbeError::Http(e.to_string()))?;
        let _conn = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let host = HeaderValue::from_str(&self.target.authority)
            .map_err(|e| ProbeError::Http(format!("Host header: {e}")))?;
        let req = Request::get(self.target.path_and_query.as_str())
            .header(HOST, host)
            .header(CONNECTION, HeaderValue::from_static("close"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("breakfix-workload/", env!("CARGO_PKG_VERSION"))),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| ProbeError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ProbeError::Http(format!("{addr}: {e}")))?;
        let status = resp.status();
        Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| ProbeError::Http(format!("{addr}: reading body: {e}")))?;
        if status.is_success() {
            Ok(status)
        } else {
            Err(ProbeError::Status {
                code: status.as_u16(),
                reason: status.canonical_reason().unwrap_or("").to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("http://web.shop:8080/healthz?x=1").expect("url");
        assert!(matches!(t.host, Host::Name(_)));
        assert_eq!(t.port, 8080);
        assert_eq!(t.authority, "web.shop:8080");
        assert_eq!(t.path_and_query, "/healthz?x=1");
        let t = Target::parse("http://10.0.0.1").expect("ip url");
        assert!(matches!(t.host, Host::Ip(_)));
        assert_eq!((t.port, t.path_and_query.as_str()), (80, "/"));
        let t = Target::parse("http://[::1]:81/").expect("v6 url");
        assert!(matches!(t.host, Host::Ip(IpAddr::V6(_))));
        assert!(Target::parse("https://web/").is_err());
        assert!(Target::parse("web:8080").is_err());
    }

    #[test]
    fn status_kinds() {
        let s = |code| ProbeError::Status {
            code,
            reason: String::new(),
        };
        assert_eq!(s(404).kind(), "status_4xx");
        assert_eq!(s(503).kind(), "status_5xx");
        assert_eq!(s(302).kind(), "status_other");
    }
}

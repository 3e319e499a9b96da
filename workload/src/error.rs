//! Errors that end the process. Per-iteration failures of a canary (a DNS
//! timeout, a 403 from the API server) are not errors in this sense: they are
//! counted in [`crate::state::Stats`] and shown on `/status`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A fatal error: the process logs it as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP port could not be bound (in use, or no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// A signal handler could not be installed.
    #[error("cannot install the {signal} handler: {source}")]
    Signal {
        /// SIGTERM or SIGINT.
        signal: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] io::Error),
    /// resolv.conf could not be read.
    #[error("cannot read {path}: {source}")]
    ResolvConfRead {
        /// The file (normally /etc/resolv.conf).
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// resolv.conf could not be turned into a resolver configuration.
    #[error("cannot use {path}: {source}")]
    ResolvConfParse {
        /// The file (normally /etc/resolv.conf).
        path: PathBuf,
        /// hickory's reason.
        #[source]
        source: hickory_resolver::net::NetError,
    },
    /// The resolver could not be built from its configuration.
    #[error("cannot build the DNS resolver: {0}")]
    Resolver(#[source] hickory_resolver::net::NetError),
    /// A flag combination or value that parsing could not reject.
    #[error("invalid configuration: {0}")]
    Config(String),
}

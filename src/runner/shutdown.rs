//! Stopping a run from outside the process. SIGINT (Ctrl-C), SIGTERM (how
//! CI systems, `timeout`, `docker stop`, systemd and Kubernetes stop a
//! process), SIGHUP (a closed terminal, a dropped SSH session) and SIGQUIT
//! all ask for the same orderly stop: the run's [`CancellationToken`] is
//! cancelled, the runner reverts the fault in place and the caller writes
//! its reports. A second signal while that happens is acknowledged and
//! changes nothing; a third tells the caller to give up. The library never
//! exits the process: what to do on [`ShutdownEvent::Forced`] is the
//! caller's choice (the CLI exits with the signal's code and says what the
//! journal still holds).
//!
//! ```no_run
//! # async fn example(client: kube::Client, exps: Vec<breakfix::LoadedExperiment>) -> std::io::Result<()> {
//! use breakfix::runner::shutdown::{Shutdown, ShutdownEvent};
//!
//! let mut shutdown = Shutdown::listen()?;
//! let runner = breakfix::Runner::builder(client).cancel(shutdown.token()).build().unwrap();
//! tokio::spawn(async move {
//!     while let Some(event) = shutdown.next().await {
//!         if let ShutdownEvent::Forced(signal) = event {
//!             std::process::exit(signal.exit_code());
//!         }
//!     }
//! });
//! let report = runner.run(&exps).await;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: CI cancelling a job, `timeout`, `docker stop`, systemd, Kubernetes.
    Terminate,
    /// SIGHUP: the terminal closed, the SSH session dropped.
    Hangup,
    /// SIGQUIT: Ctrl-\.
    Quit,
}

impl StopSignal {
    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Self::Interrupt => 2,
            Self::Terminate => 15,
            Self::Hangup => 1,
            Self::Quit => 3,
        }
    }

    /// The exit status a shell reports for a process ended by this signal
    /// (128 + its number): 130, 143, 129, 131.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
            Self::Hangup => "SIGHUP",
            Self::Quit => "SIGQUIT",
        })
    }
}

/// What the signals received so far mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownEvent {
    /// The first signal: the run is cancelled and reverts what it injected.
    Stopping(StopSignal),
    /// A second signal: acknowledged; the revert goes on.
    StillReverting(StopSignal),
    /// A third signal: the caller should stop waiting. Whatever was not
    /// reverted yet stays in the journal for `breakfix cleanup`.
    Forced(StopSignal),
}

/// Listens for the stop signals and cancels a token on the first one.
#[derive(Debug)]
pub struct Shutdown {
    token: CancellationToken,
    first: Arc<OnceLock<StopSignal>>,
    events: mpsc::UnboundedReceiver<ShutdownEvent>,
}

impl Shutdown {
    /// Starts listening for SIGINT, SIGTERM, SIGHUP and SIGQUIT on the
    /// current Tokio runtime, replacing their default action (ending the
    /// process) for as long as the process lives.
    ///
    /// # Errors
    ///
    /// When a signal handler cannot be registered.
    pub fn listen() -> std::io::Result<Self> {
        let mut streams = [
            (StopSignal::Interrupt, signal(SignalKind::interrupt())?),
            (StopSignal::Terminate, signal(SignalKind::terminate())?),
            (StopSignal::Hangup, signal(SignalKind::hangup())?),
            (StopSignal::Quit, signal(SignalKind::quit())?),
        ];
        let token = CancellationToken::new();
        let first = Arc::new(OnceLock::new());
        let (tx, events) = mpsc::unbounded_channel();
        let (cancel, seen) = (token.clone(), first.clone());
        tokio::spawn(async move {
            let mut count = 0u32;
            loop {
                let received = {
                    let [a, b, c, d] = &mut streams;
                    tokio::select! {
                        Some(()) = a.1.recv() => a.0,
                        Some(()) = b.1.recv() => b.0,
                        Some(()) = c.1.recv() => c.0,
                        Some(()) = d.1.recv() => d.0,
                        else => return,
                    }
                };
                count += 1;
                let event = match count {
                    1 => {
                        let _ = seen.set(received);
                        cancel.cancel();
                        ShutdownEvent::Stopping(received)
                    }
                    2 => ShutdownEvent::StillReverting(received),
                    _ => ShutdownEvent::Forced(received),
                };
                let _ = tx.send(event);
            }
        });
        Ok(Self {
            token,
            first,
            events,
        })
    }

    /// The token the first signal cancels: hand it to
    /// [`super::RunnerBuilder::cancel`].
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The first stop signal received, if any.
    pub fn signal(&self) -> Option<StopSignal> {
        self.first.get().copied()
    }

    /// A handle that reads [`Self::signal`] from elsewhere.
    pub fn signal_handle(&self) -> SignalHandle {
        SignalHandle(self.first.clone())
    }

    /// The next thing the signals mean; `None` once listening stopped.
    pub async fn next(&mut self) -> Option<ShutdownEvent> {
        self.events.recv().await
    }
}

/// Reads which stop signal came first, from anywhere (see [`Shutdown::signal_handle`]).
#[derive(Debug, Clone)]
pub struct SignalHandle(Arc<OnceLock<StopSignal>>);

impl SignalHandle {
    /// The first stop signal received, if any.
    pub fn get(&self) -> Option<StopSignal> {
        self.0.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(StopSignal::Interrupt, 130, "SIGINT")]
    #[case(StopSignal::Terminate, 143, "SIGTERM")]
    #[case(StopSignal::Hangup, 129, "SIGHUP")]
    #[case(StopSignal::Quit, 131, "SIGQUIT")]
    fn exit_codes_follow_the_shell(
        #[case] signal: StopSignal,
        #[case] code: i32,
        #[case] name: &str,
    ) {
        assert_eq!(signal.exit_code(), code);
        assert_eq!(signal.to_string(), name);
    }

    /// Real signals sent to this test process: the handlers stay installed
    /// for the rest of the process, which no other unit test minds.
    #[tokio::test]
    async fn the_first_signal_cancels_the_second_changes_nothing_the_third_forces() {
        let mut shutdown = Shutdown::listen().unwrap();
        let token = shutdown.token();
        let send = |sig: &str| {
            let status = std::process::Command::new("kill")
                .args([sig, &std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        };
        let next = async |s: &mut Shutdown| {
            tokio::time::timeout(std::time::Duration::from_secs(10), s.next())
                .await
                .expect("the signal arrives")
        };
        send("-TERM");
        assert_eq!(
            next(&mut shutdown).await,
            Some(ShutdownEvent::Stopping(StopSignal::Terminate))
        );
        assert!(token.is_cancelled());
        assert_eq!(shutdown.signal(), Some(StopSignal::Terminate));
        send("-HUP");
        assert_eq!(
            next(&mut shutdown).await,
            Some(ShutdownEvent::StillReverting(StopSignal::Hangup))
        );
        send("-INT");
        assert_eq!(
            next(&mut shutdown).await,
            Some(ShutdownEvent::Forced(StopSignal::Interrupt))
        );
        assert_eq!(
            shutdown.signal(),
            Some(StopSignal::Terminate),
            "the first signal decides the exit code"
        );
    }
}

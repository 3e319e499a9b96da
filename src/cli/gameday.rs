//! `breakfix gameday`: play a scenario with people; and `gameday declare |
//! status | hint | stop`, which talk to the running game day's page server.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tokio_util::sync::CancellationToken;

use breakfix::cluster::{self, KindOptions};
use breakfix::gameday::server::{self, Tokens};
use breakfix::gameday::{GameDay, GamePhase, TEAM_NAMES, debrief};
use breakfix::state::state_dir;
use breakfix::vocab::HumanDuration;

use super::{EXIT_USAGE, load_all};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GamedayArgs {
    #[command(subcommand)]
    command: Option<Control>,
    #[command(flatten)]
    play: PlayArgs,
}

#[derive(Args)]
struct PlayArgs {
    /// The experiment to play (one file with a `gameday:` block, or any experiment).
    file: Option<PathBuf>,
    /// How many teams (named blue, red, green, …).
    #[arg(long, conflicts_with = "team")]
    teams: Option<usize>,
    /// A team by name (repeat for several).
    #[arg(long)]
    team: Vec<String>,
    /// The round's length (default: the experiment's `gameday.timebox`, else 20m).
    #[arg(long)]
    timebox: Option<String>,
    /// How long steady state must hold after a team's fix (default: the experiment's).
    #[arg(long)]
    settle: Option<String>,
    /// Where the live page listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    serve: String,
    /// Where kubeconfigs and the debrief go (default: gameday-<run id>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Show the fault's name and story on the facilitator's page from the start.
    #[arg(long)]
    open: bool,
    /// Name of the kind cluster to create (or reuse with --reuse).
    #[arg(long, default_value = "breakfix")]
    cluster_name: String,
    /// Play on the kind cluster breakfix created earlier with this name.
    #[arg(long)]
    reuse: bool,
    /// Keep the cluster breakfix created.
    #[arg(long)]
    keep: bool,
    /// Play on an existing kubeconfig context (named explicitly).
    #[arg(long, conflicts_with = "reuse")]
    context: Option<String>,
    /// Kubeconfig for --context.
    #[arg(long, requires = "context")]
    kubeconfig: Option<PathBuf>,
    /// Where the undo journals go.
    #[arg(long, env = "BREAKFIX_JOURNAL_DIR")]
    journal_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Control {
    /// Record a team's declaration: `detected: …`, `diagnosed: …` or `fixed`.
    Declare {
        #[arg(long)]
        team: String,
        /// The declaration, e.g. "diagnosed: the RoleBinding is gone".
        text: Vec<String>,
        #[command(flatten)]
        conn: Connection,
    },
    /// Show the running game day: phase, clock, scoreboard.
    Status {
        /// One team's view.
        #[arg(long)]
        team: Option<String>,
        /// Print the view as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Connection,
    },
    /// Release a team's next hint (facilitator).
    Hint {
        #[arg(long)]
        team: String,
        #[command(flatten)]
        conn: Connection,
    },
    /// Stop every round: breakfix reverts and deletes the copies (facilitator).
    Stop {
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        conn: Connection,
    },
}

#[derive(Args)]
struct Connection {
    /// The game day's page, e.g. http://127.0.0.1:8080 (default: the running one's).
    #[arg(long, env = "BREAKFIX_GAMEDAY_URL")]
    server: Option<String>,
    /// The facilitator's or a team's token (default: the running one's facilitator token).
    #[arg(long, env = "BREAKFIX_GAMEDAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// What a running game day leaves for its controls to find (owner-only file).
#[derive(serde::Serialize, serde::Deserialize)]
struct Running {
    url: String,
    token: String,
    run_id: String,
    pid: u32,
}

fn running_file() -> PathBuf {
    state_dir().join("gameday").join("current.json")
}

pub async fn gameday(args: GamedayArgs) -> u8 {
    match args.command {
        Some(control) => control_command(control).await,
        None => play(args.play).await,
    }
}

fn duration_arg(flag: &str, value: Option<&str>) -> Result<Option<Duration>, u8> {
    match value {
        None => Ok(None),
        Some(v) => match HumanDuration::parse(v) {
            Ok(d) => Ok(Some(d.get())),
            Err(e) => {
                eprintln!("error: {flag} {v}: {e}");
                Err(EXIT_USAGE)
            }
        },
    }
}

async fn play(args: PlayArgs) -> u8 {
    let Some(file) = args.file.clone() else {
        eprintln!(
            "error: name the experiment to play, e.g. `breakfix gameday experiments/gameday/pos-down.yaml --teams 2`"
        );
        return EXIT_USAGE;
    };
    let mut loaded = match load_all(std::slice::from_ref(&file)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if loaded.len() != 1 {
        eprintln!(
            "error: {} holds {} experiments; a game day plays one scenario: name its file",
            file.display(),
            loaded.len()
        );
        return EXIT_USAGE;
    }
    let experiment = loaded.remove(0);
    let (timebox, settle) = match (
        duration_arg("--timebox", args.timebox.as_deref()),
        duration_arg("--settle", args.settle.as_deref()),
    ) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let teams: Vec<String> = match (args.teams, args.team.is_empty()) {
        (Some(0), _) => {
            eprintln!("error: --teams 0: a game day needs at least one team");
            return EXIT_USAGE;
        }
        (Some(n), _) if n > TEAM_NAMES.len() => {
            eprintln!(
                "error: --teams {n}: at most {} teams by number; name more with --team",
                TEAM_NAMES.len()
            );
            return EXIT_USAGE;
        }
        (Some(n), _) => TEAM_NAMES[..n].iter().map(ToString::to_string).collect(),
        (None, false) => args.team.clone(),
        (None, true) => vec![TEAM_NAMES[0].to_string()],
    };

    if let Err(e) = breakfix::gameday::team_names(&teams) {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }

    // The page's port first: a port in use is an error with nothing to undo.
    let listener = match server::bind(&args.serve).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}\n  = help: {}", e.help());
            return EXIT_USAGE;
        }
    };
    let url = match server::local_addr(&listener) {
        Some(addr) => format!("http://{addr}"),
        None => format!("http://{}", args.serve),
    };

    let cancel = CancellationToken::new();
    super::run::spawn_signal_handler(cancel.clone());
    eprintln!("breakfix gameday: getting a cluster…");
    let handle = match &args.context {
        Some(context) => cluster::existing_context(args.kubeconfig.as_deref(), context).await,
        None => {
            let opts = KindOptions {
                name: args.cluster_name.clone(),
                reuse: args.reuse,
                ..KindOptions::default()
            };
            tokio::select! {
                r = cluster::kind::ensure(&opts) => r,
                _ = cancel.cancelled() => {
                    eprintln!("interrupted before any fault was injected");
                    return 130;
                }
            }
        }
    };
    let cluster = match handle {
        Ok(h) => h,
        Err(e) => return super::run::cluster_error(&e),
    };

    let mut builder = GameDay::builder(cluster.client.clone(), experiment)
        .cluster(cluster.record.clone())
        .teams(teams.clone())
        .cancel(cancel.clone());
    if let Some(t) = timebox {
        builder = builder.timebox(t);
    }
    if let Some(s) = settle {
        builder = builder.settle(s);
    }
    if args.open {
        builder = builder.blind(false);
    }
    if let Some(dir) = &args.journal_dir {
        builder = builder.journal_dir(dir);
    }
    if let Some(dir) = &args.out {
        builder = builder.out_dir(dir);
    }
    let game = match builder.build() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let out_dir = game.out_dir().to_path_buf();
    let run_id = game.run_id().to_string();
    let tokens = Tokens::generate(&teams);
    let game_handle = game.handle();
    let shutdown = CancellationToken::new();
    let served = server::serve(
        listener,
        game_handle.clone(),
        tokens.clone(),
        shutdown.clone(),
    );
    let running = Running {
        url: url.clone(),
        token: tokens.facilitator.clone(),
        run_id: run_id.clone(),
        pid: std::process::id(),
    };
    let running_path = running_file();
    if let Err(e) = serde_json::to_string(&running)
        .map_err(|e| e.to_string())
        .and_then(|text| {
            breakfix::gameday::team::write_private(&running_path, &text).map_err(|e| e.to_string())
        })
    {
        eprintln!("warning: the controls will need --server and --token: {e}");
    }
    eprintln!(
        "game day {run_id} on {} `{}`",
        cluster.record.provider, cluster.record.name
    );
    eprintln!("  facilitator page: {url}/?token={}", tokens.facilitator);
    for (team, token) in &tokens.teams {
        eprintln!("  team {team}: {url}/team/{team}?token={token}");
    }
    eprintln!("  kubeconfigs and the debrief: {}", out_dir.display());
    eprintln!("  controls: breakfix gameday declare|status|hint|stop (Ctrl-C stops and reverts)");

    let progress = tokio::spawn(show_progress(game_handle.clone()));
    let report = game.run().await;
    progress.abort();

    let mut code = report.exit_code();
    match debrief::write(&report, &out_dir) {
        Ok(files) => {
            eprintln!(
                "debrief: {} · {} · {}",
                files.markdown.display(),
                files.html.display(),
                files.json.display()
            );
        }
        Err(e) => {
            eprintln!("error: {e}");
            code = code.max(i32::from(EXIT_USAGE));
        }
    }
    print!("{}", summary(&report));
    shutdown.cancel();
    let _ = served.await;
    if std::fs::read_to_string(&running_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Running>(&t).ok())
        .is_some_and(|r| r.run_id == run_id)
    {
        let _ = std::fs::remove_file(&running_path);
    }
    if cluster.created && !args.keep && args.context.is_none() {
        eprintln!(
            "deleting kind cluster `{}` (pass --keep to keep it)",
            cluster.record.name
        );
        if let Err(e) = cluster::kind::delete(&cluster.record.name).await {
            eprintln!("warning: {e}");
        }
    }
    code.clamp(0, 255) as u8
}

/// Prints each new timeline entry (as the facilitator's sealed view shows
/// it) and the phases as they change.
async fn show_progress(handle: breakfix::gameday::GameDayHandle) {
    let mut rx = handle.subscribe();
    let mut shown: Vec<usize> = Vec::new();
    let mut phase = None;
    loop {
        let state = handle.state();
        if phase != Some(state.phase) {
            eprintln!("[{}] {:?}", state.run_id, state.phase);
            phase = Some(state.phase);
        }
        shown.resize(state.teams.len(), 0);
        for (i, t) in state.teams.iter().enumerate() {
            for e in t.entries.iter().skip(shown[i]) {
                let e = if state.blind { e.sealed() } else { e.clone() };
                eprintln!(
                    "  {} {:<8} {}",
                    e.at.strftime("%H:%M:%S"),
                    t.name,
                    e.describe()
                );
            }
            shown[i] = t.entries.len();
        }
        if state.phase == GamePhase::Over || rx.recv().await.is_err() {
            return;
        }
    }
}

fn summary(report: &breakfix::gameday::GameDayReport) -> String {
    let mut out = format!(
        "\nGAME DAY {} — {} ({})\n{:<12} {:<22} {:>7} {:>6} {:>12} {:>12} {:>12}\n",
        report.run_id,
        report.scenario,
        report.fault,
        "TEAM",
        "ROUND",
        "POINTS",
        "HINTS",
        "TEAM DETECT",
        "TEAM FIX",
        "BF DETECT"
    );
    let d = |v: Option<Duration>| {
        v.map(breakfix::vocab::duration::format_duration)
            .unwrap_or_else(|| "-".into())
    };
    for t in &report.teams {
        out.push_str(&format!(
            "{:<12} {:<22} {:>7} {:>6} {:>12} {:>12} {:>12}\n",
            t.name,
            t.end.as_ref().map(ToString::to_string).unwrap_or_default(),
            t.score.points,
            format!("{}/{}", t.hints_used, t.hints_total),
            d(t.marks.team_detect()),
            d(t.marks.team_fix()),
            d(t.marks.harness_detect()),
        ));
    }
    out
}

async fn control_command(control: Control) -> u8 {
    let (conn, method, path, body) = match &control {
        Control::Declare { team, text, conn } => (
            conn,
            hyper::Method::POST,
            "/api/declare".to_string(),
            Some(serde_json::json!({"team": team, "text": text.join(" ")})),
        ),
        Control::Status { team, conn, .. } => (
            conn,
            hyper::Method::GET,
            match team {
                Some(t) => format!("/api/status?team={t}"),
                None => "/api/status".to_string(),
            },
            None,
        ),
        Control::Hint { team, conn } => (
            conn,
            hyper::Method::POST,
            "/api/hint".to_string(),
            Some(serde_json::json!({"team": team})),
        ),
        Control::Stop { reason, conn } => (
            conn,
            hyper::Method::POST,
            "/api/stop".to_string(),
            Some(serde_json::json!({"reason": reason})),
        ),
    };
    let (url, token) = match endpoint(conn) {
        Ok(e) => e,
        Err(message) => {
            eprintln!("error: {message}");
            return EXIT_USAGE;
        }
    };
    let (status, value) = match call(method, &format!("{url}{path}"), &token, body).await {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: cannot reach the game day at {url}: {message}");
            return EXIT_USAGE;
        }
    };
    if !status.is_success() {
        let message = value
            .get("error")
            .and_then(|e| e.as_str())
            .map(ToString::to_string)
            .unwrap_or_else(|| format!("HTTP {status}"));
        eprintln!("error: {message}");
        return EXIT_USAGE;
    }
    match control {
        Control::Status { json: true, .. } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Control::Status { .. } => match serde_json::from_value::<StatusView>(value) {
            Ok(view) => print!("{}", view.render()),
            Err(e) => {
                eprintln!("error: unexpected status answer: {e}");
                return EXIT_USAGE;
            }
        },
        _ => println!(
            "{}",
            value
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("done")
        ),
    }
    0
}

fn endpoint(conn: &Connection) -> Result<(String, String), String> {
    let running = std::fs::read_to_string(running_file())
        .ok()
        .and_then(|t| serde_json::from_str::<Running>(&t).ok());
    let url = conn
        .server
        .clone()
        .or_else(|| running.as_ref().map(|r| r.url.clone()))
        .ok_or("no running game day found; pass --server http://HOST:PORT (and --token)")?;
    let token = conn
        .token
        .clone()
        .or_else(|| running.as_ref().map(|r| r.token.clone()))
        .ok_or("no token; pass --token (the facilitator's or your team's)")?;
    Ok((url.trim_end_matches('/').to_string(), token))
}

async fn call(
    method: hyper::Method,
    url: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> Result<(hyper::StatusCode, serde_json::Value), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap_or_default())
        .unwrap_or_default();
    let request = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .map_err(|_| "no answer within 30s".to_string())?
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    Ok((status, value))
}

/// The parts of a [`View`] `status` prints.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    run_id: String,
    title: String,
    phase_text: String,
    timebox: String,
    deadline_ms: i64,
    stopped: Option<String>,
    teams: Vec<breakfix::gameday::view::TeamView>,
}

impl StatusView {
    fn render(&self) -> String {
        let left = if self.deadline_ms > 0 {
            let now = jiff::Timestamp::now().as_millisecond();
            let secs = ((self.deadline_ms - now).max(0) / 1000) as u64;
            format!("{:02}:{:02} left of {}", secs / 60, secs % 60, self.timebox)
        } else {
            format!("timebox {}", self.timebox)
        };
        let mut out = format!(
            "game day {} — {}\n{} · {}\n",
            self.run_id, self.title, self.phase_text, left
        );
        if let Some(reason) = &self.stopped {
            out.push_str(&format!("stopped: {reason}\n"));
        }
        for t in &self.teams {
            out.push_str(&format!(
                "\n{} ({}): {} · {} points · hints {} · {} change(s)\n",
                t.name, t.namespace, t.status, t.points, t.hints, t.changes
            ));
            for r in t.rows.iter().rev().take(5).rev() {
                out.push_str(&format!("  {} {:>8} {}\n", r.clock, r.offset, r.text));
            }
        }
        out
    }
}

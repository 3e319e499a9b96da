//! The live page and the controls, served by breakfix itself: one
//! self-contained page (no external resources, works with no internet),
//! live updates over server-sent events, and a small JSON API the page and
//! `breakfix gameday declare|status|hint|stop` use.
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /?token=F` | facilitator | every team, hint and stop buttons |
//! | `GET /team/{name}?token=T` | that team (or the facilitator) | its own round, a declaration form, no controls |
//! | `GET /events?token=..[&team=..]` | either | server-sent events: `live` (the re-rendered page body) |
//! | `GET /api/status` | either | the view as JSON |
//! | `POST /api/declare` `{team, text}` | facilitator, or that team | a declaration |
//! | `POST /api/hint` `{team}` | facilitator | releases the team's next hint |
//! | `POST /api/stop` `{reason}` | facilitator | stops every round |
//!
//! Tokens go in `Authorization: Bearer …` or, for the page and its event
//! stream (which browsers open without headers), in `?token=`. A team's
//! token is refused for controls and for other teams.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::view::{View, Viewer};
use super::{ControlError, GameDayHandle};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The live page's address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

impl ServerError {
    /// How to fix it.
    pub fn help(&self) -> &'static str {
        "another program (or another game day) uses that address; pick another port with --serve 127.0.0.1:PORT"
    }
}

/// Binds the page's address before anything is injected, so a port in use
/// is a clear error with nothing to revert.
pub async fn bind(addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Who may do what: the facilitator's token and one per team.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    /// The facilitator's token.
    pub facilitator: String,
    /// Each team's token, by team name.
    pub teams: BTreeMap<String, String>,
}

/// A random token: 128 bits from the OS, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: a token nobody can guess is impossible; make
        // one that at least differs per process and moment.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        for (i, b) in seed.bytes().enumerate() {
            bytes[i % 16] ^= b;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    /// New random tokens for the facilitator and each team.
    pub fn generate(teams: &[String]) -> Self {
        Self {
            facilitator: random_token(),
            teams: teams.iter().map(|t| (t.clone(), random_token())).collect(),
        }
    }

    /// Who holds `token`, if anyone.
    pub fn viewer(&self, token: &str) -> Option<Viewer> {
        if same(token, &self.facilitator) {
            return Some(Viewer::Facilitator);
        }
        self.teams
            .iter()
            .find(|(_, t)| same(token, t))
            .map(|(name, _)| Viewer::Team(name.clone()))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Clone)]
struct App {
    handle: GameDayHandle,
    tokens: Arc<Tokens>,
}

/// Serves the page on `listener` until `shutdown` is cancelled.
pub fn serve(
    listener: TcpListener,
    handle: GameDayHandle,
    tokens: Tokens,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let app = App {
        handle,
        tokens: Arc::new(tokens),
    };
    let router = Router::new()
        .route("/", get(facilitator_page))
        .route("/team/{name}", get(team_page))
        .route("/events", get(events))
        .route("/api/status", get(status))
        .route("/api/declare", post(declare))
        .route("/api/hint", post(hint))
        .route("/api/stop", post(stop))
        .with_state(app);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!("the game-day page stopped: {e}");
        }
    })
}

/// The address a listener got (useful with port 0).
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    team: Option<String>,
}

#[derive(Serialize)]
struct ApiError {
    error: String,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: message.into(),
        }),
    )
        .into_response()
}

fn control_error(e: &ControlError) -> Response {
    let status = match e {
        ControlError::UnknownTeam { .. } => StatusCode::NOT_FOUND,
        ControlError::Declaration(_) => StatusCode::BAD_REQUEST,
        ControlError::NotStarted
        | ControlError::RoundOver { .. }
        | ControlError::GameOver
        | ControlError::NoMoreHints { .. } => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

fn who(app: &App, headers: &HeaderMap, query: Option<&str>) -> Result<Viewer, Response> {
    let token = bearer(headers).or_else(|| query.map(ToString::to_string));
    match token {
        None => Err(error(
            StatusCode::UNAUTHORIZED,
            "no token: add ?token=… (or an Authorization: Bearer header) from the game day's start-up lines",
        )),
        Some(t) => app
            .tokens
            .viewer(&t)
            .ok_or_else(|| error(StatusCode::FORBIDDEN, "unknown token")),
    }
}

/// The viewer a request asks to see as: a team's token sees its own team;
/// the facilitator sees everything, or one team's page when it asks.
fn as_viewer(holder: Viewer, team: Option<&str>) -> Result<Viewer, Response> {
    match (holder, team) {
        (Viewer::Facilitator, None) => Ok(Viewer::Facilitator),
        (Viewer::Facilitator, Some(t)) => Ok(Viewer::Team(t.to_string())),
        (Viewer::Team(own), None) => Ok(Viewer::Team(own)),
        (Viewer::Team(own), Some(t)) if own == t => Ok(Viewer::Team(own)),
        (Viewer::Team(_), Some(_)) => Err(error(
            StatusCode::FORBIDDEN,
            "a team's token shows that team's page only",
        )),
    }
}

#[derive(Template)]
#[template(path = "gameday/live.html")]
struct Live<'a> {
    view: &'a View,
}

#[derive(Template)]
#[template(path = "gameday/page.html")]
struct Page<'a> {
    view: &'a View,
    live: String,
    role: &'a str,
    team: String,
}

fn view_of(app: &App, viewer: &Viewer) -> Result<View, Response> {
    app.handle
        .state()
        .view(viewer)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such team"))
}

fn render_live(view: &View) -> String {
    Live { view }
        .render()
        .unwrap_or_else(|e| format!("<p>cannot render: {e}</p>"))
        .replace('\r', "")
}

fn page(view: &View) -> Response {
    let (role, team) = match &view.viewer {
        Viewer::Facilitator => ("facilitator", String::new()),
        Viewer::Team(t) => ("team", t.clone()),
    };
    let live = render_live(view);
    match (Page {
        view,
        live,
        role,
        team,
    })
    .render()
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn facilitator_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let viewer = match who(&app, &headers, q.token.as_deref()) {
        Ok(Viewer::Facilitator) => Viewer::Facilitator,
        Ok(Viewer::Team(t)) => Viewer::Team(t),
        Err(r) => return r,
    };
    match view_of(&app, &viewer) {
        Ok(v) => page(&v),
        Err(r) => r,
    }
}

async fn team_page(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let viewer =
        match who(&app, &headers, q.token.as_deref()).and_then(|h| as_viewer(h, Some(&name))) {
            Ok(v) => v,
            Err(r) => return r,
        };
    match view_of(&app, &viewer) {
        Ok(v) => page(&v),
        Err(r) => r,
    }
}

async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let viewer = match who(&app, &headers, q.token.as_deref())
        .and_then(|h| as_viewer(h, q.team.as_deref()))
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = view_of(&app, &viewer) {
        return r;
    }
    Sse::new(live_stream(app, viewer))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One `live` event now, then one per change of the state (a burst of
/// changes coalesces into one render).
fn live_stream(app: App, viewer: Viewer) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = app.handle.subscribe();
    futures::stream::unfold(
        (app, viewer, rx, true),
        |(app, viewer, mut rx, first)| async move {
            if !first {
                match rx.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        while rx.try_recv().is_ok() {}
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
            let view = app.handle.state().view(&viewer)?;
            let html = render_live(&view);
            let events = vec![
                Ok(Event::default()
                    .event("deadline")
                    .data(view.deadline_ms.to_string())),
                Ok(Event::default().event("live").data(html)),
            ];
            Some((futures::stream::iter(events), (app, viewer, rx, false)))
        },
    )
    .flatten()
}

async fn status(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
) -> Response {
    let viewer = match who(&app, &headers, q.token.as_deref())
        .and_then(|h| as_viewer(h, q.team.as_deref()))
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match view_of(&app, &viewer) {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// A declaration request.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeclareRequest {
    /// The team declaring.
    pub team: String,
    /// The declaration, as typed.
    pub text: String,
}

/// A hint request.
#[derive(Debug, Serialize, Deserialize)]
pub struct HintRequest {
    /// The team asking.
    pub team: String,
}

/// A stop request.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StopRequest {
    /// Why the facilitator stopped the round.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What a control answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlReply {
    /// What happened, for the page to show.
    pub message: String,
}

async fn declare(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<DeclareRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Err(r) = who(&app, &headers, None).and_then(|h| as_viewer(h, Some(&req.team))) {
        return r;
    }
    match app.handle.declare(&req.team, &req.text).await {
        Ok(entry) => Json(ControlReply {
            message: format!("team {}: {}", req.team, entry.describe()),
        })
        .into_response(),
        Err(e) => control_error(&e),
    }
}

fn facilitator_only(app: &App, headers: &HeaderMap) -> Result<(), Response> {
    match who(app, headers, None)? {
        Viewer::Facilitator => Ok(()),
        Viewer::Team(_) => Err(error(
            StatusCode::FORBIDDEN,
            "only the facilitator's token may release hints or stop the game day",
        )),
    }
}

async fn hint(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Json<HintRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if let Err(r) = facilitator_only(&app, &headers) {
        return r;
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    match app.handle.hint(&req.team).await {
        Ok(entry) => Json(ControlReply {
            message: format!("team {}: {}", req.team, entry.describe()),
        })
        .into_response(),
        Err(e) => control_error(&e),
    }
}

async fn stop(State(app): State<App>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = facilitator_only(&app, &headers) {
        return r;
    }
    let request: StopRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StopRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("a stop request is {{\"reason\": \"…\"}}: {e}"),
                );
            }
        }
    };
    let reason = request
        .reason
        .unwrap_or_else(|| "stopped by the facilitator".into());
    match app.handle.stop(&reason) {
        Ok(()) => Json(ControlReply {
            message: "stopping: breakfix reverts what is still broken, then deletes the copies"
                .into(),
        })
        .into_response(),
        Err(e) => control_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_say_who_holds_them() {
        let tokens = Tokens::generate(&["blue".into(), "red".into()]);
        assert_eq!(tokens.facilitator.len(), 32);
        assert_eq!(
            tokens.viewer(&tokens.facilitator),
            Some(Viewer::Facilitator)
        );
        assert_eq!(
            tokens.viewer(&tokens.teams["red"]),
            Some(Viewer::Team("red".into()))
        );
        assert_eq!(tokens.viewer("guess"), None);
        assert_ne!(tokens.teams["blue"], tokens.teams["red"]);
    }

    #[test]
    fn a_team_token_reaches_its_own_team_only() {
        let blue = Viewer::Team("blue".into());
        assert!(as_viewer(blue.clone(), Some("blue")).is_ok());
        assert!(as_viewer(blue, Some("red")).is_err());
        assert_eq!(
            as_viewer(Viewer::Facilitator, Some("red")).ok(),
            Some(Viewer::Team("red".into()))
        );
    }
}

//! The web UI: one page, its script and its style, compiled into the binary (nothing is
//! fetched from elsewhere; it works offline). The page talks to the JSON API and follows
//! a run's journal over Server-Sent Events.

use http::{Response, StatusCode, header};

use crate::api::{set, with_type};
use crate::server::Body;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const SCHEDULES_JS: &str = include_str!("../assets/schedules.js");
const APP_CSS: &str = include_str!("../assets/app.css");
/// The Trends page (`#trends/NAME`) and the game-day pages (`#gameday/RUN`).
const TRENDS_JS: &str = include_str!("../assets/trends.js");
const GAMEDAY_JS: &str = include_str!("../assets/gameday.js");
/// The Tokens page (`#tokens`), for admins.
const TOKENS_JS: &str = include_str!("../assets/tokens.js");

/// Only this origin's script, style and connections; no frames, no plug-ins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page.
pub fn page() -> Response<Body> {
    let mut r = with_type(StatusCode::OK, "text/html; charset=utf-8", INDEX);
    set(&mut r, header::CONTENT_SECURITY_POLICY, CSP);
    set(&mut r, header::X_FRAME_OPTIONS, "DENY");
    set(&mut r, header::REFERRER_POLICY, "no-referrer");
    r
}

/// `/assets/NAME`: the script or the style.
pub fn asset(name: &str) -> Response<Body> {
    match name {
        "app.js" => with_type(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        "schedules.js" => with_type(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            SCHEDULES_JS,
        ),
        "app.css" => with_type(StatusCode::OK, "text/css; charset=utf-8", APP_CSS),
        "trends.js" => with_type(StatusCode::OK, "text/javascript; charset=utf-8", TRENDS_JS),
        "gameday.js" => with_type(StatusCode::OK, "text/javascript; charset=utf-8", GAMEDAY_JS),
        "tokens.js" => with_type(StatusCode::OK, "text/javascript; charset=utf-8", TOKENS_JS),
        _ => crate::api::error(StatusCode::NOT_FOUND, format!("no asset `{name}`")),
    }
}

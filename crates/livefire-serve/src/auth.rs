//! Who is asking: tokens (made here, stored as their SHA-256), roles, and the CSRF token
//! the UI's forms carry. A request is authenticated by `Authorization: Bearer TOKEN`
//! (scripts) or by the `livefire_session` cookie the login form sets (the UI); only the
//! cookie needs CSRF protection, since a browser sends it on its own.

use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError, TokenRow};

/// What a token may do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees experiments, runs, reports and the audit log.
    Viewer,
    /// Also uploads experiments, starts and stops runs.
    Operator,
    /// Also manages tokens.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The name of the cookie the login form sets.
pub const COOKIE: &str = "livefire_session";

/// A person the server knows, for this request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    /// Came with the session cookie (so a change needs the CSRF header).
    pub by_cookie: bool,
    /// The CSRF token of this session (derived from the token's hash).
    pub csrf: String,
}

impl Caller {
    /// `alice (operator)`: how the audit log and the journal name a person.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.role.as_str())
    }
}

/// Why a request is not let in: 401 (who are you) or 403 (not you).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "no token: send `Authorization: Bearer TOKEN` (make one with `livefire serve token create`)"
    )]
    Missing,
    #[error("unknown token: check it was copied whole, or make a new one")]
    Unknown,
    #[error("the token `{0}` has expired: make a new one with `livefire serve token create`")]
    Expired(String),
    #[error("the token `{0}` was revoked: make a new one with `livefire serve token create`")]
    Revoked(String),
    #[error("this needs the {needed} role; the token `{name}` is a {has}")]
    Role {
        name: String,
        has: &'static str,
        needed: &'static str,
    },
    #[error(
        "missing or wrong X-CSRF-Token header: reload the page (forms of the UI send it on their own)"
    )]
    Csrf,
    #[error(
        "a login or logout sent from another site (Origin {origin}) is refused: open the console at {host} itself"
    )]
    CrossSite { origin: String, host: String },
}

impl Denied {
    /// 401 for "who are you", 403 for "you may not".
    pub fn status(&self) -> u16 {
        match self {
            Denied::Role { .. } | Denied::Csrf | Denied::CrossSite { .. } => 403,
            _ => 401,
        }
    }
}

/// A fresh token: `lf_` and 256 random bits in hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("lf_{}", hex(&bytes))
}

/// How a token is stored: its SHA-256 in hex. Tokens are random and long, so a fast
/// hash cannot be searched backwards; the store never holds a token itself.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The session's CSRF token: the SHA-256 of the token's hash with a label, so it is
/// fixed for a session, differs from the token, and reveals nothing of it.
pub fn csrf_of(token_hash: &str) -> String {
    hex(&Sha256::digest(
        format!("livefire-csrf:{token_hash}").as_bytes(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a token, stores its hash and returns it (it is shown once).
pub fn create(
    store: &Store,
    name: &str,
    role: Role,
    expires: Option<std::time::Duration>,
) -> Result<String, StoreError> {
    let token = new_token();
    let expires = expires.map(|d| unix_now().saturating_add(d.as_secs() as i64));
    store.add_token(name, role, &hash(&token), expires)?;
    Ok(token)
}

/// Looks a token up: the caller, or why it is refused.
pub fn check(store: &Store, token: &str, by_cookie: bool) -> Result<Caller, Denied> {
    let h = hash(token);
    let row: TokenRow = match store.token_by_hash(&h) {
        Ok(Some(row)) => row,
        // A store that cannot answer lets nobody in.
        Ok(None) | Err(_) => return Err(Denied::Unknown),
    };
    if row.revoked {
        return Err(Denied::Revoked(row.name));
    }
    if row.expires.is_some_and(|e| e <= unix_now()) {
        return Err(Denied::Expired(row.name));
    }
    Ok(Caller {
        name: row.name,
        role: row.role,
        by_cookie,
        csrf: csrf_of(&h),
    })
}

/// The token of a request: the bearer header first, else the session cookie.
pub fn token_of(headers: &http::HeaderMap) -> Option<(String, bool)> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let t = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))?;
        return Some((t.trim().to_owned(), false));
    }
    for v in headers.get_all(http::header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == COOKIE
                && !val.is_empty()
            {
                return Some((val.to_owned(), true));
            }
        }
    }
    None
}

/// Whether the caller's role is at least `needed`.
pub fn require(caller: &Caller, needed: Role) -> Result<(), Denied> {
    if caller.role >= needed {
        Ok(())
    } else {
        Err(Denied::Role {
            name: caller.name.clone(),
            has: caller.role.as_str(),
            needed: needed.as_str(),
        })
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A login or logout carries no token a forger lacks, so a browser's `Origin` must be
/// this console (its `Host`): another site cannot log a visitor in as someone else
/// (login CSRF) or out. A client that sends no `Origin` (curl, scripts) is not a
/// browser on another site's page, and passes.
pub fn same_origin(headers: &http::HeaderMap) -> Result<(), Denied> {
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return Ok(());
    };
    // A browser's own word that the page is this console's (a page cannot set it),
    // for the browsers that send `Origin: null` under the page's `no-referrer` policy.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin")
    {
        return Ok(());
    }
    let origin = origin.to_str().unwrap_or("?");
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    if !host.is_empty() && authority.is_some_and(|a| a.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    Err(Denied::CrossSite {
        origin: origin.chars().take(200).collect(),
        host: host.chars().take(200).collect(),
    })
}

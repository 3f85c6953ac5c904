//! The errors a fuzz campaign can end with before it starts (findings are not errors).

/// Why a campaign could not start.
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    /// The spec is invalid; `location` is `file:line:col` or a JSON pointer.
    #[error("invalid spec at {location}: {message}")]
    Spec { location: String, message: String },
    /// The spec could not be read or fetched.
    #[error("cannot read spec {spec}: {reason}")]
    SpecRead { spec: String, reason: String },
    /// A configuration value is unusable.
    #[error("invalid fuzz configuration: {0}")]
    Config(String),
    /// The login request for a token failed.
    #[error("login failed: {0}; check the login URL, body and token path")]
    Login(String),
}

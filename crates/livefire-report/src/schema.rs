//! The JSON Schema of `summary.json` (committed as `schema/summary.json`). The event
//! types that `Summary` borrows from livefire-core are mirrored here for the schema
//! only; a test serializes every core variant and validates it, so they cannot drift.

use schemars::JsonSchema;

/// The JSON Schema of `summary.json`, as committed in `schema/summary.json`.
pub fn summary_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(crate::Summary);
    serde_json::to_value(schema).unwrap_or_default()
}

/// Mirror of `livefire_core::events::Verdict`.
#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// The hypothesis held: exit 0.
    Held,
    /// The hypothesis did not hold (or it failed the pre-check): exit 1.
    Deviated,
    /// The hypothesis held, but findings at or above `settings.fail_on` fail the run:
    /// exit 1.
    Failed,
    /// A guardrail, an operator or a signal stopped the run: exit 2.
    Aborted,
    /// The run could not start as written (a setup error); nothing was applied: exit 3.
    Invalid,
    /// Something could not be rolled back and stays in the ledger: exit 4.
    RollbackIncomplete,
}

/// Mirror of `livefire_core::events::Role`.
#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Role {
    Hypothesis,
    Guardrail,
}

/// Mirror of `livefire_core::events::AbortCause`.
#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(tag = "by", rename_all = "snake_case")]
pub(crate) enum AbortCause {
    Guardrail {
        condition: String,
        detail: String,
    },
    Signal {
        signal: String,
    },
    Halt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    MaxDuration,
    Panic {
        activity: String,
        message: String,
    },
    Error {
        message: String,
    },
}

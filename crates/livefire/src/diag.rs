//! The one place diagnostics reach the user: the libraries report through `tracing`,
//! and this subscriber prints each event on stderr as `livefire: <fields> <message>`,
//! with no timestamp, level or target, so what a user reads is the sentence itself.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The environment variable that overrides which diagnostics are shown, in
/// `tracing_subscriber::EnvFilter` syntax (`LIVEFIRE_LOG=livefire_proxy=debug`).
pub const LOG_ENV: &str = "LIVEFIRE_LOG";

/// What is shown by default: livefire's own diagnostics, which are the messages the
/// libraries used to print themselves. Other crates' logs (and the proxy's per-connection
/// ones) stay off unless `LIVEFIRE_LOG` asks for them.
const DEFAULT: &str = "off,livefire=info,livefire_engine=info,livefire_sandbox=info";

/// Installs the stderr subscriber for this process. A second call (tests run
/// `main_with_args` many times in one process) keeps the first.
pub fn install() {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new(DEFAULT));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Line)
        .try_init();
}

/// Formats an event as one line: `livefire: ` then its fields (`name=value`) and then
/// its message.
struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", line(event))
    }
}

/// The text of one event, without the line end.
fn line(event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut out = String::from("livefire: ");
    out.push_str(&fields.fields);
    out.push_str(&fields.message);
    out
}

#[derive(Default)]
struct Fields {
    /// `name=value ` for each field but the message, in the order written.
    fields: String,
    message: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, "{}={value} ", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, "{}={value:?} ", field.name());
        }
    }
}

//! Integration tests of the experiment file: located errors, the whole format, schema.

mod corpus;
/// `environments:` and `--env`.
mod environments;
mod errors;
mod format;
/// `net.*` faults: peers that are addresses, rates that do something, the host kept reachable.
mod net;
/// `noticed_within`: a fault detectors must notice in time, refused where a mistake is written.
mod noticed;
/// What used to be accepted silently, now refused where it is written.
mod refusals;
/// `watch:` commands: a team's own alert checks, refused where a mistake is written.
mod watch;

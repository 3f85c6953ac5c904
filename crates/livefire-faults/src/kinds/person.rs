//! `person.away` and `person.no_access`: the human curveballs of a game day. They change
//! no system, so there is nothing to undo: the game day (livefire-gameday) reads them
//! from the journal, tells the responder on their page and through `notify:`, and
//! refuses their marks until the curveball ends.
//! Verify: none; what they change is what people may do, which the game day enforces.

use livefire_spec::Person;

use crate::{Action, Cx, FaultError, Kind, Prepared, Seen, Targets};

pub(crate) struct Away<'a>(pub &'a Person);
pub(crate) struct NoAccess<'a>(pub &'a Person);

impl Kind for Away<'_> {
    fn check(&self, _: &Targets) -> Result<(), FaultError> {
        Ok(())
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        Ok(told(
            "person.away",
            &self.0.responder,
            "is told to step out",
            targets,
        ))
    }
}

impl Kind for NoAccess<'_> {
    fn check(&self, _: &Targets) -> Result<(), FaultError> {
        Ok(())
    }

    fn prepare(&self, targets: &Targets, _activity: &str) -> Result<Prepared, FaultError> {
        Ok(told(
            "person.no_access",
            &self.0.responder,
            "loses access",
            targets,
        ))
    }
}

fn told(kind: &'static str, responder: &str, what: &str, targets: &Targets) -> Prepared {
    Prepared::new(
        kind,
        responder,
        None,
        Vec::new(),
        Told {
            detail: format!("{responder} {what} until the curveball ends"),
        },
        targets,
    )
}

#[derive(Debug)]
struct Told {
    detail: String,
}

impl Action for Told {
    fn apply(&self, _: &Cx<'_>) -> Result<String, FaultError> {
        Ok(self.detail.clone())
    }

    fn verify(&self, _: &Cx<'_>) -> Result<Option<Seen>, FaultError> {
        Ok(None)
    }
}

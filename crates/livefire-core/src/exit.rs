//! The exit codes of every livefire command: one type, so the numbers of DESIGN.md's
//! table are written in one place and a CLI returns a meaning, not a number.

use crate::events::Verdict;

/// What a livefire command's exit status says (DESIGN.md, "Exit codes"). Every
/// subcommand and every crate's standalone CLI returns one of these; `code` is the
/// only place the numbers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the hypothesis held, no finding failed the run; for other commands, done.
    Ok,
    /// 1: the hypothesis deviated, or findings at or above the failing severity.
    Deviated,
    /// 2: aborted by a guardrail, an operator or a signal.
    Aborted,
    /// 3: invalid experiment, flag or setup: nothing was applied.
    Invalid,
    /// 4: rollback incomplete: something stays in the ledger; run `livefire recover`.
    RollbackIncomplete,
}

impl Exit {
    /// Every exit, in the order of the table.
    pub const ALL: [Exit; 5] = [
        Exit::Ok,
        Exit::Deviated,
        Exit::Aborted,
        Exit::Invalid,
        Exit::RollbackIncomplete,
    ];

    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Deviated => 1,
            Exit::Aborted => 2,
            Exit::Invalid => 3,
            Exit::RollbackIncomplete => 4,
        }
    }

    /// The exit whose status is `code`, if livefire uses that number.
    pub fn from_code(code: i64) -> Option<Exit> {
        Exit::ALL.into_iter().find(|e| i64::from(e.code()) == code)
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

impl Verdict {
    /// The one mapping from a run's verdict to `livefire run`'s exit.
    pub fn exit(self) -> Exit {
        match self {
            Verdict::Held => Exit::Ok,
            Verdict::Deviated | Verdict::Failed => Exit::Deviated,
            Verdict::Aborted => Exit::Aborted,
            Verdict::Invalid => Exit::Invalid,
            Verdict::RollbackIncomplete => Exit::RollbackIncomplete,
        }
    }
}

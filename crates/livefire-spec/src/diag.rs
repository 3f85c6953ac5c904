//! Located diagnostics and how they are shown: `FILE:LINE:COL: message`, then the
//! offending line with a caret under the column.

use std::fmt;

use crate::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One located message about the experiment file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub pos: Pos,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            severity: Severity::Error,
            message: message.into(),
        }
    }
    pub fn warning(pos: Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos,
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// The diagnostics of one file, with the text needed to show the offending lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub file: String,
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.text.lines().collect();
        for d in &self.diagnostics {
            let kind = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            writeln!(
                f,
                "{}:{}:{}: {kind}: {}",
                self.file, d.pos.line, d.pos.col, d.message
            )?;
            if let Some(line) = lines.get((d.pos.line as usize).wrapping_sub(1)) {
                let number = d.pos.line.to_string();
                let pad = " ".repeat(number.len());
                // The caret goes under the column, counting characters, with tabs kept
                // so that it lines up in a terminal.
                let lead: String = line
                    .chars()
                    .take((d.pos.col as usize).saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad} |")?;
                writeln!(f, "{number} | {line}")?;
                writeln!(f, "{pad} | {lead}^")?;
            }
        }
        let errors = self.errors().count();
        if errors > 0 {
            writeln!(
                f,
                "{}: {errors} error{}",
                self.file,
                if errors == 1 { "" } else { "s" }
            )?;
        }
        Ok(())
    }
}

//! The gateway's one error type. Every message says what happened and, where there is one, what to do.

use std::path::PathBuf;
use std::time::Duration;

/// An error reported by an instrument in its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentError {
    /// The command it answered (e.g. `C0AS`, `C5PPR`).
    pub command: String,
    /// The module reporting (`C0`, `P1`, `C5`, …).
    pub module: String,
    /// Main error code (STAR) or EVO error code.
    pub code: u8,
    /// Trace code (STAR; 0 for EVO).
    pub trace: u8,
    /// What the instrument's documentation says it means.
    pub meaning: String,
}

impl std::fmt::Display for InstrumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answered error {:02}/{:02} from {}: {}",
            self.command, self.code, self.trace, self.module, self.meaning
        )
    }
}

impl GatewayError {
    /// How a command that met this error ends: bad settings, files, worklists or arguments are
    /// [`Exit::Usage`](cellos_output::Exit::Usage); an instrument, a link, a database or a refused step
    /// that failed is [`Exit::Failed`](cellos_output::Exit::Failed).
    pub fn exit(&self) -> cellos_output::Exit {
        use cellos_output::Exit;
        match self {
            GatewayError::Config { .. }
            | GatewayError::Worklist { .. }
            | GatewayError::Decode { .. }
            | GatewayError::JournalMismatch { .. } => Exit::Usage,
            GatewayError::Io { source, .. } => Exit::of_io(source),
            GatewayError::Open { source, .. } => match source.kind {
                tokio_serial::ErrorKind::NoDevice => Exit::Usage,
                tokio_serial::ErrorKind::Io(kind) => Exit::of_io(&std::io::Error::from(kind)),
                _ => Exit::Failed,
            },
            GatewayError::Store(e) => e.exit(),
            GatewayError::AtStep { cause, .. } => cause.exit(),
            _ => Exit::Failed,
        }
    }
}

/// A pipetting rule that refused an operation before anything was sent: the core's, which the twins
/// apply too.
pub use cellos_core::deck::Rule;

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// An instrument line (a serial device, a USB device) could not be opened.
    #[error("cannot open {path}: {source} (check the path, permissions, and that no other program holds it)")]
    Open {
        /// The device.
        path: String,
        /// Why.
        source: tokio_serial::Error,
    },
    /// Reading from or writing to a link failed.
    #[error("link failure: {0}")]
    Link(String),
    /// The line closed (the instrument or the twin went away).
    #[error("the instrument link closed")]
    Closed,
    /// No reply within the command's time limit.
    #[error("{command}: no reply within {after:?}; the command may or may not have been executed")]
    Timeout {
        /// The command (module and code, with id).
        command: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The instrument answered with an error.
    #[error("{0}")]
    Instrument(InstrumentError),
    /// A reply could not be understood.
    #[error("malformed reply to {command}: {detail}")]
    Malformed {
        /// The command.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// The safety envelope refused an operation; nothing was sent.
    #[error("refused by the safety envelope ({}): {detail}; nothing was sent", rule.name())]
    Refused {
        /// The rule.
        rule: Rule,
        /// The operation and the numbers that broke the rule.
        detail: String,
    },
    /// A liquid operation failed or timed out; the run stopped without retrying it.
    #[error("{op} failed: {cause}. Known now: {known}. Not known: {unknown}. The run stopped; nothing was retried.")]
    OperationFailed {
        /// The operation.
        op: String,
        /// What happened.
        cause: Box<GatewayError>,
        /// What the instrument reported when asked afterwards.
        known: String,
        /// What could not be established.
        unknown: String,
    },
    /// A worklist's step failed or was refused; the run stopped there.
    #[error("{file}:{line}: stopped here: {cause}")]
    AtStep {
        /// The file (or `-`).
        file: String,
        /// 1-based line number of the step.
        line: usize,
        /// Why.
        cause: Box<GatewayError>,
    },
    /// A worklist or transfer list is invalid.
    #[error("{file}:{line}: {message}")]
    Worklist {
        /// The file (or `-`).
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A decoder input is invalid.
    #[error("{location}: {message}")]
    Decode {
        /// `line N` or `byte N`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A configuration or deck file is invalid.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A campaign could not go on: its database, its journal, or a reading (the message says which).
    #[error("{0}")]
    Store(#[from] cellos_store::StoreError),
    /// The campaign's plan cannot be made (no wells left, a dose too low for the deck).
    #[error("campaign plan: {0}")]
    Plan(#[from] crate::campaign::PlanError),
    /// The dose search refused its input or state.
    #[error("dose search: {0}")]
    Search(String),
    /// A model of the core (banking, titration) failed for a stage.
    #[error("{stage}: {message}")]
    Science {
        /// The line and stage.
        stage: String,
        /// Why.
        message: String,
    },
    /// Something stored does not read back (an iteration's observations, say).
    #[error("{what} does not read back: {message}")]
    Stored {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
    /// A resumed campaign's plan differs from what its journal holds at the same step.
    #[error(
        "journal step {iteration}/{seq} is {journal}, the plan now says {plan}: the settings or the cellos version changed since the campaign started"
    )]
    JournalMismatch {
        /// The iteration.
        iteration: i64,
        /// The step.
        seq: i64,
        /// What the journal holds.
        journal: String,
        /// What the plan says.
        plan: String,
    },
    /// Carrying the journal out again on a fresh twin failed.
    #[error("replaying the journal on the new twin: {op}: {cause}")]
    Replay {
        /// The operation.
        op: String,
        /// Why.
        cause: Box<GatewayError>,
    },
    /// The operator stopped the campaign; it ended at a safe point (no liquid in a tip, nothing pending).
    #[error(
        "campaign `{campaign}` was stopped by the operator at a safe point; `campaign resume {campaign}` continues it"
    )]
    Stopped {
        /// The campaign.
        campaign: String,
    },
    /// The audit trail was changed by hand at a row.
    #[error("the audit trail was changed at row {entry_id}: {}", match why {
        cellos_store::access::Break::Edited => "the row was edited (its fields do not give its hash)",
        cellos_store::access::Break::Deleted => "a row before it was deleted (its number does not follow)",
        cellos_store::access::Break::Inserted => "the row before it was put in or replaced (the chain does not lead to it)",
    })]
    AuditBroken {
        /// The row.
        entry_id: i64,
        /// How.
        why: cellos_store::access::Break,
    },
    /// An instrument answered with something other than what was asked for.
    #[error("asked for {asked}, the instrument answered {answer}")]
    Unexpected {
        /// What was asked.
        asked: String,
        /// What came back.
        answer: String,
    },
    /// The instrument twin could not be started.
    #[error("cannot start the instrument twin: {0}")]
    Twin(String),
    /// The instrument on a line is not the one a campaign ran on.
    #[error(
        "the {role} on {port} is not the instrument this campaign ran on: expected {expected}; it answered {answered}. Nothing was sent to it; connect the campaign's instrument, or (for a twin) `campaign resume ID --twin` starts a new twin from the journal"
    )]
    WrongInstrument {
        /// `star` or `reader`.
        role: String,
        /// The line.
        port: String,
        /// The recorded identity.
        expected: String,
        /// What answered.
        answered: String,
    },
    /// The operation is not supported by this instrument.
    #[error("{0} is not supported by this instrument")]
    Unsupported(String),
}

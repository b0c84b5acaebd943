//! What a campaign keeps: its journal operations, its row (through `cellos-store`), the twin it runs
//! on, the identities of its instruments, and the lock of the process running it.

use std::path::Path;

use cellos_core::search::Observation;
use cellos_store::campaign::{self as records, CampaignStatus};
use cellos_store::instruments;
pub use cellos_store::instruments::InstrumentId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::CampaignConfig;
use crate::GatewayError;
use crate::liquid::{Op, Place};

/// A step of an iteration, as the journal records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalOp {
    /// Pick up a tip.
    PickUp {
        /// Channel.
        channel: usize,
        /// Spot.
        at: String,
    },
    /// Aspirate.
    Aspirate {
        /// Channel.
        channel: usize,
        /// Source.
        from: String,
        /// µL.
        volume_ul: f64,
    },
    /// Dispense.
    Dispense {
        /// Channel.
        channel: usize,
        /// Target.
        to: String,
        /// µL.
        volume_ul: f64,
    },
    /// Drop a tip.
    Drop {
        /// Channel.
        channel: usize,
    },
    /// One instrument command of several channels: the channels' operations (all of one kind, in
    /// channel order), sent, checked and reconciled together.
    Channels {
        /// One operation per channel.
        ops: Vec<JournalOp>,
    },
    /// Incubate a plate.
    Incubate {
        /// Deck plate index.
        plate: u8,
        /// Hours (of lab time; in real time the entry's time written plus these hours, at the
        /// campaign's time scale, is when it ends, so a restart waits for the same moment).
        hours: f64,
    },
}

impl JournalOp {
    /// In words, for a step event: `aspirate 100 µL from CELLS_1`.
    pub fn describe(&self) -> String {
        match self {
            JournalOp::PickUp { at, .. } => format!("pick up a tip at {at}"),
            JournalOp::Aspirate { from, volume_ul, .. } => format!("aspirate {volume_ul} µL from {from}"),
            JournalOp::Dispense { to, volume_ul, .. } => format!("dispense {volume_ul} µL into {to}"),
            JournalOp::Drop { .. } => "drop the tip".into(),
            JournalOp::Incubate { plate, hours, .. } => format!("incubate plate {plate} for {hours} h"),
            JournalOp::Channels { ops } => {
                let channels: Vec<String> =
                    ops.iter().filter_map(JournalOp::channel).map(|c| (c + 1).to_string()).collect();
                let first = ops.first().map_or_else(String::new, JournalOp::describe);
                format!("{first} … on channels {}", channels.join(", "))
            }
        }
    }

    /// The channel a one-channel operation uses.
    pub fn channel(&self) -> Option<usize> {
        match self {
            JournalOp::PickUp { channel, .. }
            | JournalOp::Aspirate { channel, .. }
            | JournalOp::Dispense { channel, .. }
            | JournalOp::Drop { channel } => Some(*channel),
            JournalOp::Channels { .. } | JournalOp::Incubate { .. } => None,
        }
    }

    /// The one-channel operations of the step (one for a plain step, each channel's for a command of
    /// several channels, none for an incubation).
    pub fn parts(&self) -> &[JournalOp] {
        match self {
            JournalOp::Channels { ops } => ops,
            JournalOp::Incubate { .. } => &[],
            one => std::slice::from_ref(one),
        }
    }

    /// The liquid-handling operations of the step, one per channel (empty for an incubation).
    pub(super) fn liquid_ops(&self) -> Vec<Op> {
        self.parts().iter().filter_map(JournalOp::liquid).collect()
    }

    fn liquid(&self) -> Option<Op> {
        Some(match self {
            JournalOp::PickUp { channel, at } => Op::PickUpTip { channel: *channel, at: Place::parse(at) },
            JournalOp::Aspirate { channel, from, volume_ul } => {
                Op::Aspirate { channel: *channel, from: Place::parse(from), volume_ul: *volume_ul }
            }
            JournalOp::Dispense { channel, to, volume_ul } => {
                Op::Dispense { channel: *channel, to: Place::parse(to), volume_ul: *volume_ul }
            }
            JournalOp::Drop { channel } => Op::DropTip { channel: *channel, to: Place::named("WASTE") },
            JournalOp::Incubate { .. } | JournalOp::Channels { .. } => return None,
        })
    }
}

/// An observation as the iteration row stores it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(super) struct StoredObs {
    dose_um: f64,
    viability: f64,
    cellrox_au: f64,
    segmentation: f64,
}

impl From<Observation> for StoredObs {
    fn from(o: Observation) -> Self {
        StoredObs { dose_um: o.dose_um, viability: o.viability, cellrox_au: o.cellrox_au, segmentation: o.segmentation }
    }
}

impl StoredObs {
    pub(super) fn into_obs(self) -> Observation {
        Observation {
            dose_um: self.dose_um,
            viability: self.viability,
            cellrox_au: self.cellrox_au,
            segmentation: self.segmentation,
        }
    }
}

/// The twin a campaign runs on, as the campaign row records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwinRecord {
    /// STAR line.
    pub star: String,
    /// Reader line.
    pub reader: String,
    /// The twin's process id when it was started.
    pub pid: Option<u32>,
    /// The twin's instance number (its answer to `Identify`).
    pub instance: u64,
}

/// A stored campaign: its settings, its status and the twin it runs on, if the gateway started one.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The settings (with the campaign id).
    pub config: CampaignConfig,
    /// Its status.
    pub status: CampaignStatus,
    /// The twin, if the campaign runs on one the gateway started.
    pub twin: Option<TwinRecord>,
}

/// Reads a stored campaign; `None` if there is none of that id.
pub fn stored(db: &rusqlite::Connection, id: &str) -> Result<Option<Stored>, GatewayError> {
    let Some(c) = records::get(db, id)? else { return Ok(None) };
    let v = c.config.unwrap_or(Value::Null);
    let mut config: CampaignConfig = serde_json::from_value(v["config"].clone()).map_err(|e| GatewayError::Config {
        path: "campaigns.db".into(),
        message: format!("campaign `{id}` was not started by the gateway: {e}"),
    })?;
    config.campaign_id = Some(id.to_string());
    let twin = serde_json::from_value::<TwinRecord>(v["twin"].clone()).ok();
    Ok(Some(Stored { config, status: c.status, twin }))
}

/// Claims campaign id `id` for a new campaign: its row is written with the settings (status `running`).
/// An id that exists is refused, pointing to `resume` and `status`.
pub fn claim(db: &rusqlite::Connection, id: &str, config: &CampaignConfig) -> Result<(), GatewayError> {
    let cfg = json!({ "config": config, "twin": Value::Null });
    let (kind, goal) = if config.posh { ("posh", "posh_screen_setup") } else { ("dose_finding", "optimal_tbhp_dose") };
    if !records::claim(db, id, kind, goal, &cfg)? {
        let status = records::get(db, id)?.map(|c| c.status.to_string()).unwrap_or_default();
        return Err(GatewayError::Config {
            path: "campaign".into(),
            message: format!(
                "campaign `{id}` already exists ({status}): `cellos-gateway campaign resume {id}` continues it, `campaign status {id}` shows it; give another campaign_id for a new one"
            ),
        });
    }
    Ok(())
}

/// Records the twin a campaign runs on in its row.
pub fn record_twin(db: &rusqlite::Connection, id: &str, twin: &TwinRecord) -> Result<(), GatewayError> {
    let v = serde_json::to_value(twin).unwrap_or(Value::Null);
    Ok(records::set_config_field(db, id, "twin", &v)?)
}

/// Sets a campaign's status (`failed` with the reason, `abandoned`, `running`).
pub fn set_status(
    db: &rusqlite::Connection,
    id: &str,
    status: CampaignStatus,
    failure: Option<&str>,
) -> Result<(), GatewayError> {
    Ok(records::set_status(db, id, &status, failure)?)
}

/// The identity a campaign last recorded for an instrument role (`star`, `reader`).
pub fn recorded_identity(
    db: &rusqlite::Connection,
    id: &str,
    role: &str,
) -> Result<Option<InstrumentId>, GatewayError> {
    Ok(instruments::recorded(db, id, role)?)
}

/// Checks an instrument against the identity the campaign recorded for its role, or records it if
/// there is none yet (or `replaces` says why it replaces the recorded one). A different instrument is
/// refused, naming the one expected and the one that answered.
pub fn check_identity(
    db: &rusqlite::Connection,
    id: &str,
    role: &str,
    port: &str,
    answered: &InstrumentId,
    replaces: Option<&str>,
) -> Result<(), GatewayError> {
    match instruments::recorded(db, id, role)? {
        Some(expected) if &expected == answered => Ok(()),
        Some(expected) if replaces.is_none() => Err(GatewayError::WrongInstrument {
            role: role.to_string(),
            port: port.to_string(),
            expected: expected.to_string(),
            answered: answered.to_string(),
        }),
        _ => Ok(instruments::record(db, id, role, answered, port, replaces)?),
    }
}

/// The lock of a campaign: held by the one process running it (a lock file in the data directory,
/// released by the kernel when the process ends, however it ends).
pub struct CampaignLock {
    _file: std::fs::File,
}

impl CampaignLock {
    /// Takes the lock of campaign `id`, or says that another process holds it.
    pub fn take(dir: &Path, id: &str) -> Result<CampaignLock, GatewayError> {
        let path = cellos_store::db::campaign_lock_path(dir, id);
        let file =
            cellos_store::db::lock_file(&path).map_err(|source| GatewayError::Io { path: path.clone(), source })?;
        match file.try_lock() {
            Ok(()) => Ok(CampaignLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(GatewayError::Config {
                path: dir.into(),
                message: format!(
                    "campaign `{id}` is being run by another process; `campaign status {id}` shows its progress"
                ),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(GatewayError::Io { path, source }),
        }
    }
}

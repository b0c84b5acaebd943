//! The STAR commands cellos sends and the twin answers, one type for all of them, with [`Command::emit`]
//! (to the firmware text) and [`Command::parse`] (from a parsed [`StarMessage`]) side by side, so what the
//! gateway writes and what the twin reads cannot drift apart.
//!
//! Units are the firmware's: 0.1 mm, 0.1 µL, 0.1 µL/s. `emit` writes every field in the instrument's
//! order and widths (`PROTOCOLS.md`; the pipetting fields not held here at the defaults of its dispense
//! vector). `parse` needs the fields that say what happens (channels, positions, volumes, tip type) and
//! takes the others, when present, as given (absent: 0); the fields a type does not hold are ignored, so a
//! command from another program (PyLabRobot sends every field) is read as well.

use core::fmt;

use super::star::cmd::{self, Pipette, TipType};
use super::star::{BuildError, MAX_MESSAGE, StarMessage, Value};

/// Channels a command may address (the STAR's largest head).
pub const MAX_CHANNELS: usize = 16;

/// A channel and where it goes, 0.1 mm.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ChannelAt {
    /// Channel index, 0-based.
    pub channel: u8,
    /// x, 0.1 mm.
    pub x_01mm: u32,
    /// y, 0.1 mm.
    pub y_01mm: u32,
}

/// `C0TP` / `C0TR`: tips picked up or discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TipMove {
    /// The channels used, in channel order.
    pub channels: heapless::Vec<ChannelAt, MAX_CHANNELS>,
    /// Tip type index (`tt`; pick-up only).
    pub tip_type: u8,
    /// Begin of the z move (`tp`), 0.1 mm.
    pub begin_z_01mm: u32,
    /// End of the z move (`tz`), 0.1 mm.
    pub end_z_01mm: u32,
    /// Minimum traverse height (`th`), 0.1 mm.
    pub traverse_01mm: u32,
    /// Pick-up (`td`) or discard (`ti`) method.
    pub method: u8,
}

/// `C0AS` / `C0DS`: a volume per channel at its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pipetting {
    /// The channels used, in channel order.
    pub channels: heapless::Vec<ChannelAt, MAX_CHANNELS>,
    /// Volume per used channel, in the same order, 0.1 µL.
    pub volumes_01ul: heapless::Vec<u32, MAX_CHANNELS>,
    /// Minimum traverse height (`th`, `te`), 0.1 mm.
    pub traverse_01mm: u32,
    /// Flow rate (`as` / `ds`), 0.1 µL/s.
    pub flow_01ul_s: u32,
}

/// `C0PP` / `C0PR`: the iSWAP at a plate's A1.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PlateAt {
    /// x (`xs`), 0.1 mm.
    pub x_01mm: u32,
    /// y (`yj`), 0.1 mm.
    pub y_01mm: u32,
    /// Minimum traverse height (`th`), 0.1 mm.
    pub traverse_01mm: u32,
}

/// A STAR master command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `C0VI`: pre-initialise.
    PreInitialise,
    /// `C0DI`: initialise.
    Initialise,
    /// `C0QW`: is the instrument initialised? (`qw1`)
    QueryInitialised,
    /// `C0RF`: firmware version (`rf…`).
    FirmwareVersion,
    /// `C0RI`: identification (`si…sn…`, the serial number).
    Identification,
    /// `C0RT`: tip presence per channel (`rt1 0 …`).
    TipPresence,
    /// `C0RM`: machine configuration.
    MachineConfiguration,
    /// `C0QM`: extended configuration.
    ExtendedConfiguration,
    /// `C0TT`: define a tip type.
    DefineTip(TipType),
    /// `C0TP`: pick up tips.
    PickUpTips(TipMove),
    /// `C0TR`: discard tips.
    DiscardTips(TipMove),
    /// `C0AS`: aspirate.
    Aspirate(Pipetting),
    /// `C0DS`: dispense.
    Dispense(Pipetting),
    /// `C0PP`: the iSWAP gets the plate whose A1 is there.
    GetPlate(PlateAt),
    /// `C0PR`: the iSWAP puts its plate with its A1 there.
    PutPlate(PlateAt),
}

/// Why a message is not a command of these types; the instrument's answer is beside each.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Not a master command known here (`er01/30`).
    Unknown,
    /// A needed parameter is missing or not a number (`er01/31`).
    Missing(&'static str),
    /// A value out of range: a list longer than the channels, a channel pattern other than 0 or 1, a tip
    /// type of 100 or more (`er01/32`).
    OutOfRange(&'static str),
}

impl CommandError {
    /// The master error `(code, trace)` the STAR answers.
    pub fn code(self) -> (u8, u8) {
        match self {
            CommandError::Unknown => (1, 30),
            CommandError::Missing(_) => (1, 31),
            CommandError::OutOfRange(_) => (1, 32),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown => f.write_str("not a known master command"),
            CommandError::Missing(p) => write!(f, "parameter `{p}` missing or not a number"),
            CommandError::OutOfRange(p) => write!(f, "parameter `{p}` out of range"),
        }
    }
}

impl core::error::Error for CommandError {}

fn uint(m: &StarMessage<'_>, name: &'static str) -> Result<u32, CommandError> {
    m.param(name).and_then(|v| v.uint()).ok_or(CommandError::Missing(name))
}

fn uint_or_zero(m: &StarMessage<'_>, name: &'static str) -> Result<u32, CommandError> {
    match m.param(name) {
        None => Ok(0),
        Some(v) => v.uint().ok_or(CommandError::Missing(name)),
    }
}

fn small(v: u32, name: &'static str, max: u32) -> Result<u8, CommandError> {
    u8::try_from(v).ok().filter(|&b| u32::from(b) <= max).ok_or(CommandError::OutOfRange(name))
}

fn list(
    m: &StarMessage<'_>,
    name: &'static str,
    channels: usize,
) -> Result<heapless::Vec<u32, MAX_CHANNELS>, CommandError> {
    let v: Value<'_> = m.param(name).ok_or(CommandError::Missing(name))?;
    let mut out = heapless::Vec::new();
    for x in v.uints() {
        let x = x.ok_or(CommandError::Missing(name))?;
        if out.len() >= channels.min(MAX_CHANNELS) {
            return Err(CommandError::OutOfRange(name));
        }
        let _ = out.push(x);
    }
    Ok(out)
}

/// The channels of a command (`tm`) and their positions (`xp`, `yp`).
fn positions(m: &StarMessage<'_>, channels: usize) -> Result<heapless::Vec<ChannelAt, MAX_CHANNELS>, CommandError> {
    let (tm, xp, yp) = (list(m, "tm", channels)?, list(m, "xp", channels)?, list(m, "yp", channels)?);
    let mut out = heapless::Vec::new();
    for (i, &used) in tm.iter().enumerate() {
        match used {
            0 => {}
            1 => {
                let x = *xp.get(i).ok_or(CommandError::Missing("xp"))?;
                let y = *yp.get(i).ok_or(CommandError::Missing("yp"))?;
                let _ = out.push(ChannelAt { channel: i as u8, x_01mm: x, y_01mm: y });
            }
            _ => return Err(CommandError::OutOfRange("tm")),
        }
    }
    Ok(out)
}

fn tip_move(m: &StarMessage<'_>, channels: usize, pick_up: bool) -> Result<TipMove, CommandError> {
    let channels = positions(m, channels)?;
    let tip_type = if pick_up { small(uint(m, "tt")?, "tt", 99)? } else { 0 };
    let method = if pick_up { uint_or_zero(m, "td")? } else { uint_or_zero(m, "ti")? };
    Ok(TipMove {
        channels,
        tip_type,
        begin_z_01mm: uint_or_zero(m, "tp")?,
        end_z_01mm: uint_or_zero(m, "tz")?,
        traverse_01mm: uint_or_zero(m, "th")?,
        method: small(method, if pick_up { "td" } else { "ti" }, 9)?,
    })
}

fn pipetting(
    m: &StarMessage<'_>,
    channels: usize,
    volume: &'static str,
    flow: &'static str,
) -> Result<Pipetting, CommandError> {
    let at = positions(m, channels)?;
    let all = list(m, volume, channels)?;
    let mut volumes_01ul = heapless::Vec::new();
    for c in &at {
        let _ = volumes_01ul.push(*all.get(usize::from(c.channel)).ok_or(CommandError::Missing(volume))?);
    }
    let flow_01ul_s = match m.param(flow) {
        None => 0,
        Some(v) => v.uints().next().flatten().ok_or(CommandError::Missing(flow))?,
    };
    Ok(Pipetting { channels: at, volumes_01ul, traverse_01mm: uint_or_zero(m, "th")?, flow_01ul_s })
}

fn plate_at(m: &StarMessage<'_>) -> Result<PlateAt, CommandError> {
    Ok(PlateAt { x_01mm: uint(m, "xs")?, y_01mm: uint(m, "yj")?, traverse_01mm: uint_or_zero(m, "th")? })
}

/// Spreads per-channel values over channel indices (unused: 0).
fn spread(channels: &[ChannelAt], f: impl Fn(usize) -> u32) -> [u32; MAX_CHANNELS] {
    let mut out = [0; MAX_CHANNELS];
    for (k, c) in channels.iter().enumerate() {
        if let Some(slot) = out.get_mut(usize::from(c.channel)) {
            *slot = f(k);
        }
    }
    out
}

fn mask(channels: &[ChannelAt]) -> u16 {
    channels.iter().fold(0u16, |m, c| m | (1u16 << c.channel.min(15)))
}

impl Command {
    /// The two-letter code.
    pub fn code(&self) -> &'static str {
        match self {
            Command::PreInitialise => "VI",
            Command::Initialise => "DI",
            Command::QueryInitialised => "QW",
            Command::FirmwareVersion => "RF",
            Command::Identification => "RI",
            Command::TipPresence => "RT",
            Command::MachineConfiguration => "RM",
            Command::ExtendedConfiguration => "QM",
            Command::DefineTip(_) => "TT",
            Command::PickUpTips(_) => "TP",
            Command::DiscardTips(_) => "TR",
            Command::Aspirate(_) => "AS",
            Command::Dispense(_) => "DS",
            Command::GetPlate(_) => "PP",
            Command::PutPlate(_) => "PR",
        }
    }

    /// Whether the command only asks (changes nothing on the instrument), so that a lost reply may be
    /// asked for again.
    pub fn is_query(&self) -> bool {
        matches!(
            self,
            Command::QueryInitialised
                | Command::FirmwareVersion
                | Command::Identification
                | Command::TipPresence
                | Command::MachineConfiguration
                | Command::ExtendedConfiguration
        )
    }

    /// The command as the firmware text, with id `id`, for an instrument with `channels` channels.
    pub fn emit(&self, id: u16, channels: usize) -> Result<heapless::String<MAX_MESSAGE>, BuildError> {
        match self {
            Command::DefineTip(t) => cmd::define_tip(id, t),
            Command::PickUpTips(t) | Command::DiscardTips(t) => {
                let xs = spread(&t.channels, |k| t.channels[k].x_01mm);
                let ys = spread(&t.channels, |k| t.channels[k].y_01mm);
                let m = cmd::TipMove {
                    mask: mask(&t.channels),
                    x_01mm: &xs,
                    y_01mm: &ys,
                    tip_type: t.tip_type,
                    begin_z_01mm: t.begin_z_01mm,
                    end_z_01mm: t.end_z_01mm,
                    traverse_01mm: t.traverse_01mm,
                    method: t.method,
                };
                if matches!(self, Command::PickUpTips(_)) {
                    cmd::pick_up_tips(id, channels, &m)
                } else {
                    cmd::discard_tips(id, channels, &m)
                }
            }
            Command::Aspirate(p) | Command::Dispense(p) => {
                let xs = spread(&p.channels, |k| p.channels[k].x_01mm);
                let ys = spread(&p.channels, |k| p.channels[k].y_01mm);
                // Volumes up to the last used channel, an unused one carrying the one before it; the
                // trailing unused entry then carries the last volume, as the instrument expects.
                let last = p.channels.iter().map(|c| usize::from(c.channel)).max().unwrap_or(0).min(MAX_CHANNELS - 1);
                let mut vs = [0u32; MAX_CHANNELS];
                let mut carry = 0;
                for (i, v) in vs.iter_mut().enumerate().take(last + 1) {
                    if let Some(k) = p.channels.iter().position(|c| usize::from(c.channel) == i) {
                        carry = p.volumes_01ul.get(k).copied().unwrap_or(0);
                    }
                    *v = carry;
                }
                let values = Pipette {
                    x_01mm: &xs,
                    y_01mm: &ys,
                    volume_01ul: &vs[..=last],
                    traverse_01mm: p.traverse_01mm,
                    flow_01ul_s: p.flow_01ul_s,
                };
                let m = mask(&p.channels);
                if matches!(self, Command::Aspirate(_)) {
                    cmd::aspirate(id, channels, m, &values)
                } else {
                    cmd::dispense(id, channels, m, &values)
                }
            }
            Command::GetPlate(p) | Command::PutPlate(p) => {
                Ok(super::star::StarWriter::new("C0", self.code(), Some(id), channels)?
                    .uint("xs", 5, p.x_01mm)?
                    .uint("yj", 4, p.y_01mm)?
                    .uint("th", 4, p.traverse_01mm)?
                    .finish())
            }
            _ => cmd::bare("C0", self.code(), id),
        }
    }

    /// The command a message carries, for an instrument with `channels` channels.
    pub fn parse(m: &StarMessage<'_>, channels: usize) -> Result<Command, CommandError> {
        if m.module != *b"C0" {
            return Err(CommandError::Unknown);
        }
        Ok(match &m.code {
            b"VI" => Command::PreInitialise,
            b"DI" => Command::Initialise,
            b"QW" => Command::QueryInitialised,
            b"RF" => Command::FirmwareVersion,
            b"RI" => Command::Identification,
            b"RT" => Command::TipPresence,
            b"RM" => Command::MachineConfiguration,
            b"QM" => Command::ExtendedConfiguration,
            b"TT" => Command::DefineTip(TipType {
                index: small(uint(m, "tt")?, "tt", 99)?,
                filter: m.param("tf").and_then(|v| v.flag()).unwrap_or(false),
                length_01mm: uint_or_zero(m, "tl")?,
                max_volume_01ul: match uint(m, "tv")? {
                    0 => return Err(CommandError::OutOfRange("tv")),
                    v => v,
                },
                size: small(uint_or_zero(m, "tg")?, "tg", 9)?,
                pickup_method: small(uint_or_zero(m, "tu")?, "tu", 9)?,
            }),
            b"TP" => Command::PickUpTips(tip_move(m, channels, true)?),
            b"TR" => Command::DiscardTips(tip_move(m, channels, false)?),
            b"AS" => Command::Aspirate(pipetting(m, channels, "av", "as")?),
            b"DS" => Command::Dispense(pipetting(m, channels, "dv", "ds")?),
            b"PP" => Command::GetPlate(plate_at(m)?),
            b"PR" => Command::PutPlate(plate_at(m)?),
            _ => return Err(CommandError::Unknown),
        })
    }
}

/// What a query's reply says, after its `er00/00`: emitted by the twin, parsed by the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `C0QW`: `qw1` when initialised.
    Initialised(bool),
    /// `C0RF`: `rf` and the version text.
    Firmware(heapless::String<64>),
    /// `C0RI`: `si` (a 4-digit field, 0000 on the twin) and `sn`, the serial number.
    Identification {
        /// `si`.
        si: u32,
        /// `sn`.
        serial: heapless::String<24>,
    },
    /// `C0RT`: `rt` and a 0/1 per channel.
    TipPresence(heapless::Vec<bool, MAX_CHANNELS>),
    /// A reply without data (`C0RM`, `C0QM` on the twin; every command that is not a query).
    Nothing,
}

impl Answer {
    /// Writes the reply's data fields.
    pub fn emit<W: fmt::Write>(&self, w: &mut W) -> fmt::Result {
        match self {
            Answer::Initialised(b) => write!(w, "qw{}", u8::from(*b)),
            Answer::Firmware(v) => write!(w, "rf{v}"),
            Answer::Identification { si, serial } => write!(w, "si{si:04}sn{serial}"),
            Answer::TipPresence(tips) => {
                w.write_str("rt")?;
                for (i, t) in tips.iter().enumerate() {
                    if i > 0 {
                        w.write_char(' ')?;
                    }
                    w.write_char(if *t { '1' } else { '0' })?;
                }
                Ok(())
            }
            Answer::Nothing => Ok(()),
        }
    }

    /// The answer of `reply` to `command`. A reply without the field its command asks for is an error
    /// naming the field.
    pub fn parse(command: &Command, reply: &StarMessage<'_>) -> Result<Answer, CommandError> {
        let text = |name: &'static str| reply.param(name).map(|v| v.raw()).ok_or(CommandError::Missing(name));
        Ok(match command {
            Command::QueryInitialised => {
                Answer::Initialised(reply.param("qw").and_then(|v| v.flag()).ok_or(CommandError::Missing("qw"))?)
            }
            Command::FirmwareVersion => {
                Answer::Firmware(text("rf")?.try_into().map_err(|_| CommandError::OutOfRange("rf"))?)
            }
            Command::Identification => Answer::Identification {
                si: reply.param("si").and_then(|v| v.uint()).unwrap_or(0),
                serial: text("sn")?.try_into().map_err(|_| CommandError::OutOfRange("sn"))?,
            },
            Command::TipPresence => {
                let mut tips = heapless::Vec::new();
                for t in reply.param("rt").ok_or(CommandError::Missing("rt"))?.uints() {
                    let t = t.filter(|&t| t <= 1).ok_or(CommandError::OutOfRange("rt"))?;
                    tips.push(t == 1).map_err(|_| CommandError::OutOfRange("rt"))?;
                }
                Answer::TipPresence(tips)
            }
            _ => Answer::Nothing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each answer's bytes, written and read back.
    #[test]
    fn answers_emit_their_bytes_and_parse_back() {
        for (c, a, data) in [
            (Command::QueryInitialised, Answer::Initialised(true), "qw1"),
            (Command::QueryInitialised, Answer::Initialised(false), "qw0"),
            (
                Command::FirmwareVersion,
                Answer::Firmware("1.0.0 CELLOS TWIN".try_into().unwrap()),
                "rf1.0.0 CELLOS TWIN",
            ),
            (
                Command::Identification,
                Answer::Identification { si: 0, serial: "00C0FFEE".try_into().unwrap() },
                "si0000sn00C0FFEE",
            ),
            (
                Command::TipPresence,
                Answer::TipPresence(heapless::Vec::from_slice(&[true, false, true]).unwrap()),
                "rt1 0 1",
            ),
            (Command::MachineConfiguration, Answer::Nothing, ""),
        ] {
            let mut out = heapless::String::<96>::new();
            a.emit(&mut out).unwrap();
            assert_eq!(out.as_str(), data);
            let mut reply = heapless::String::<128>::new();
            fmt::Write::write_fmt(&mut reply, format_args!("C0{}id0001er00/00{data}", c.code())).unwrap();
            assert_eq!(Answer::parse(&c, &StarMessage::parse(&reply).unwrap()), Ok(a), "{reply}");
        }
        let m = StarMessage::parse("C0RTid0001er00/00").unwrap();
        assert_eq!(Answer::parse(&Command::TipPresence, &m), Err(CommandError::Missing("rt")));
        let m = StarMessage::parse("C0RTid0001er00/00rt1 2").unwrap();
        assert_eq!(Answer::parse(&Command::TipPresence, &m), Err(CommandError::OutOfRange("rt")));
    }

    fn at(channel: u8, x_01mm: u32, y_01mm: u32) -> ChannelAt {
        ChannelAt { channel, x_01mm, y_01mm }
    }

    fn both_ways(c: &Command, text: &str) {
        let out = c.emit(1, 8).unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(out.as_str(), text, "{c:?}");
        let m = StarMessage::parse(text).unwrap();
        assert_eq!(&Command::parse(&m, 8).unwrap(), c, "{text}");
    }

    /// The pinned bytes of every command, emitted and parsed back.
    #[test]
    fn every_command_emits_its_bytes_and_parses_back() {
        for (c, text) in [
            (Command::PreInitialise, "C0VIid0001"),
            (Command::Initialise, "C0DIid0001"),
            (Command::QueryInitialised, "C0QWid0001"),
            (Command::FirmwareVersion, "C0RFid0001"),
            (Command::Identification, "C0RIid0001"),
            (Command::TipPresence, "C0RTid0001"),
            (Command::MachineConfiguration, "C0RMid0001"),
            (Command::ExtendedConfiguration, "C0QMid0001"),
        ] {
            both_ways(&c, text);
            assert!(c.is_query() != matches!(c, Command::PreInitialise | Command::Initialise), "{c:?}");
        }
        let tip =
            TipType { index: 1, filter: true, length_01mm: 519, max_volume_01ul: 3600, size: 2, pickup_method: 0 };
        both_ways(&Command::DefineTip(tip), "C0TTid0001tt01tf1tl0519tv03600tg2tu0");
        // PROTOCOLS.md's pick-up vector: channels 1 and 2 over TIPS_1 A1 and B1.
        let pick = TipMove {
            channels: heapless::Vec::from_slice(&[at(0, 1179, 2418), at(1, 1179, 2328)]).unwrap(),
            tip_type: 1,
            begin_z_01mm: 2244,
            end_z_01mm: 2164,
            traverse_01mm: 2450,
            method: 0,
        };
        both_ways(
            &Command::PickUpTips(pick.clone()),
            "C0TPid0001xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tt01tp2244tz2164th2450td0",
        );
        let drop = TipMove { tip_type: 0, ..pick };
        both_ways(
            &Command::DiscardTips(drop),
            "C0TRid0001xp01179 01179 00000&yp2418 2328 0000&tm1 1 0&tp2244tz2164th2450te2450ti0",
        );
        // PROTOCOLS.md's dispense vector: 107.2 µL on channel 1 at PLATE_1 A1.
        let disp = Pipetting {
            channels: heapless::Vec::from_slice(&[at(0, 2983, 1457)]).unwrap(),
            volumes_01ul: heapless::Vec::from_slice(&[1072]).unwrap(),
            traverse_01mm: 2450,
            flow_01ul_s: 1800,
        };
        both_ways(
            &Command::Dispense(disp.clone()),
            "C0DSid0001dm1 1&tm1 0&xp02983 00000&yp1457 0000&zx1866 1866&lp2000 2000&zl1866 1866&po0100 0100&ip0000 0000&it0 0&fp0000 0000&zu0032 0032&zr06180 06180&th2450te2450dv01072 01072&ds1800 1800&ss0050 0050&rv000 000&ta050 050&ba0300 0300&lm0 0&dj00zo000 000&ll1 1&lv1 1&de0010 0010&wt00 00&mv00000 00000&mc00 00&mp000 000&ms0010 0010&mh0000 0000&gi000 000&gj0gk0",
        );
        let asp = Command::Aspirate(disp);
        let text = asp.emit(1, 8).unwrap();
        assert!(text.starts_with("C0ASid0001at0 0&tm1 0&xp02983 00000&yp1457 0000&th2450te2450"), "{text}");
        assert!(text.contains("&av01072 01072&as1800 1800&"), "{text}");
        assert_eq!(Command::parse(&StarMessage::parse(&text).unwrap(), 8).unwrap(), asp);
        let plate = PlateAt { x_01mm: 2983, y_01mm: 1457, traverse_01mm: 2450 };
        both_ways(&Command::GetPlate(plate), "C0PPid0001xs02983yj1457th2450");
        both_ways(&Command::PutPlate(plate), "C0PRid0001xs02983yj1457th2450");
    }

    /// Each wrong message gets the error the instrument answers.
    #[test]
    fn wrong_messages_get_the_instruments_errors() {
        let parse = |s: &str| Command::parse(&StarMessage::parse(s).unwrap(), 8);
        assert_eq!(parse("C0XXid0001"), Err(CommandError::Unknown));
        assert_eq!(parse("P1RFid0001"), Err(CommandError::Unknown));
        assert_eq!(parse("C0TPid0001xp01179&yp2418&tt01"), Err(CommandError::Missing("tm")));
        assert_eq!(parse("C0TPid0001xp01179&yp2418&tm1"), Err(CommandError::Missing("tt")));
        assert_eq!(parse("C0TPid0001xp01179&yp2418&tm2&tt01"), Err(CommandError::OutOfRange("tm")));
        assert_eq!(parse("C0TPid0001xp01179&yp2418&tm1&tt100"), Err(CommandError::OutOfRange("tt")));
        assert_eq!(
            parse("C0TPid0001xp0 0 0 0 0 0 0 0 0&yp2418&tm1&tt01"),
            Err(CommandError::OutOfRange("xp")),
            "nine entries on eight channels"
        );
        assert_eq!(parse("C0TPid0001xp01179&yp2418&tm1 1&tt01"), Err(CommandError::Missing("xp")));
        assert_eq!(parse("C0ASid0001xp01179&yp2418&tm1"), Err(CommandError::Missing("av")));
        assert_eq!(parse("C0ASid0001xp01179 01179&yp2418 2418&tm1 1&av0100"), Err(CommandError::Missing("av")));
        assert_eq!(parse("C0TTid0001tt01tv00000"), Err(CommandError::OutOfRange("tv")));
        assert_eq!(parse("C0PPid0001xs02983"), Err(CommandError::Missing("yj")));
        assert_eq!(CommandError::Missing("yj").code(), (1, 31));
        // Fields a type does not hold are read past: a minimal aspirate is read with its defaults.
        let m = parse("C0ASid0001xp01179&yp2418&tm1&av00500&lm1").unwrap();
        assert_eq!(
            m,
            Command::Aspirate(Pipetting {
                channels: heapless::Vec::from_slice(&[at(0, 1179, 2418)]).unwrap(),
                volumes_01ul: heapless::Vec::from_slice(&[500]).unwrap(),
                traverse_01mm: 0,
                flow_01ul_s: 0,
            })
        );
    }
}

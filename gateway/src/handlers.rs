//! The STAR and EVO as [`LiquidHandler`]s.

use cellos_core::proto::evo::EvoCommand;
use cellos_core::proto::star::cmd::TipType;
use cellos_core::proto::star_command::{self as star_cmd, Command, Pipetting, PlateAt, TipMove};

use crate::GatewayError;
use crate::evo::EvoDriver;
use crate::liquid::{ChannelAt, ChannelVolume, LiquidHandler};
use crate::star::StarDriver;
use crate::transport::{LinkRx, LinkTx};

/// Z heights and traverse height the handlers use, 0.1 mm.
pub mod heights {
    /// Minimum traverse height.
    pub const TRAVERSE: u32 = 2450;
    /// Tip pick-up: begin of the z move.
    pub const TIP_BEGIN: u32 = 2244;
    /// Tip pick-up: end of the z move.
    pub const TIP_END: u32 = 2164;
}

/// Flow rate of aspirations and dispenses, 0.1 µL/s (100 µL/s).
pub const FLOW_01UL_S: u32 = 1000;

fn to_01(v: f64) -> u32 {
    (v * 10.0).round().max(0.0) as u32
}

fn coord(v: i32) -> u32 {
    v.max(0) as u32
}

/// The STAR as a liquid handler.
pub struct StarHandler<Tx: LinkTx> {
    driver: StarDriver<Tx>,
    tip_types: Vec<f64>,
}

impl<Tx: LinkTx> StarHandler<Tx> {
    /// A handler over a driver.
    pub fn new(driver: StarDriver<Tx>) -> Self {
        StarHandler { driver, tip_types: Vec::new() }
    }

    /// The driver (for queries).
    pub fn driver(&self) -> &StarDriver<Tx> {
        &self.driver
    }

    fn tip_type(&self, capacity_ul: f64) -> u8 {
        self.tip_types.iter().position(|c| (c - capacity_ul).abs() < 0.05).map_or(1, |i| i as u8 + 1)
    }

    fn positions(
        tips: impl Iterator<Item = ChannelAt>,
    ) -> heapless::Vec<star_cmd::ChannelAt, { star_cmd::MAX_CHANNELS }> {
        tips.map(|t| star_cmd::ChannelAt { channel: t.channel as u8, x_01mm: coord(t.x_01mm), y_01mm: coord(t.y_01mm) })
            .collect()
    }

    fn tip_move(tips: &[ChannelAt], tip_type: u8) -> TipMove {
        TipMove {
            channels: Self::positions(tips.iter().copied()),
            tip_type,
            begin_z_01mm: heights::TIP_BEGIN,
            end_z_01mm: heights::TIP_END,
            traverse_01mm: heights::TRAVERSE,
            method: 0,
        }
    }

    fn pipetting(ops: &[ChannelVolume]) -> Pipetting {
        Pipetting {
            channels: Self::positions(ops.iter().map(|o| o.at)),
            volumes_01ul: ops.iter().map(|o| to_01(o.volume_ul)).collect(),
            traverse_01mm: heights::TRAVERSE,
            flow_01ul_s: FLOW_01UL_S,
        }
    }
}

impl<Tx: LinkTx> LiquidHandler for StarHandler<Tx> {
    fn channels(&self) -> usize {
        self.driver.channels()
    }

    async fn initialise(&mut self, tip_capacities_ul: &[f64]) -> Result<(), GatewayError> {
        self.driver.send(&Command::PreInitialise).await?;
        self.driver.send(&Command::Initialise).await?;
        self.tip_types = tip_capacities_ul.to_vec();
        for (i, c) in tip_capacities_ul.iter().enumerate() {
            let t = TipType {
                index: i as u8 + 1,
                filter: true,
                length_01mm: 519,
                max_volume_01ul: to_01(*c),
                size: 2,
                pickup_method: 0,
            };
            self.driver.send(&Command::DefineTip(t)).await?;
        }
        Ok(())
    }

    async fn pick_up_tips(&mut self, tips: &[ChannelAt], capacity_ul: f64) -> Result<(), GatewayError> {
        let t = Self::tip_move(tips, self.tip_type(capacity_ul));
        self.driver.send(&Command::PickUpTips(t)).await.map(|_| ())
    }

    async fn aspirate(&mut self, ops: &[ChannelVolume]) -> Result<(), GatewayError> {
        self.driver.send(&Command::Aspirate(Self::pipetting(ops))).await.map(|_| ())
    }

    async fn dispense(&mut self, ops: &[ChannelVolume]) -> Result<(), GatewayError> {
        self.driver.send(&Command::Dispense(Self::pipetting(ops))).await.map(|_| ())
    }

    async fn drop_tips(&mut self, tips: &[ChannelAt]) -> Result<(), GatewayError> {
        self.driver.send(&Command::DiscardTips(Self::tip_move(tips, 0))).await.map(|_| ())
    }

    async fn move_plate(&mut self, from: (i32, i32), to: (i32, i32)) -> Result<(), GatewayError> {
        // iSWAP get (C0PP) at the plate's A1, then put (C0PR) at the target.
        let at = |(x, y): (i32, i32)| PlateAt { x_01mm: coord(x), y_01mm: coord(y), traverse_01mm: heights::TRAVERSE };
        self.driver.send(&Command::GetPlate(at(from))).await?;
        self.driver.send(&Command::PutPlate(at(to))).await?;
        Ok(())
    }

    async fn tip_presence(&mut self) -> Result<Option<Vec<bool>>, GatewayError> {
        self.driver.tip_presence().await.map(Some)
    }
}

/// The EVO LiHa as a liquid handler. Tips in a line 9 mm apart (a plate column, a rack column, side by
/// side in a trough or the waste) move together: one `PAA` puts the arm's tip 1 at `y + k · spacing`
/// of tip `k`'s target, then one `AGT`/`AST` with the tips' mask or one `PPR` with a volume per tip.
/// Otherwise each tip is positioned over its own target, one tip at a time.
pub struct EvoHandler<Tx: LinkTx, Rx: LinkRx> {
    driver: EvoDriver<Tx, Rx>,
    spacing_01mm: i32,
}

impl<Tx: LinkTx, Rx: LinkRx> EvoHandler<Tx, Rx> {
    /// A handler over a driver (tip spacing 9 mm).
    pub fn new(driver: EvoDriver<Tx, Rx>) -> Self {
        EvoHandler { driver, spacing_01mm: 90 }
    }

    /// The driver.
    pub fn driver(&self) -> &EvoDriver<Tx, Rx> {
        &self.driver
    }

    async fn over(&self, at: &ChannelAt) -> Result<(), GatewayError> {
        let y = at.y_01mm + at.channel as i32 * self.spacing_01mm;
        let cmd = EvoCommand::new(b"C5", b"PAA", &[Some(at.x_01mm), Some(y), Some(self.spacing_01mm)])
            .map_err(|e| GatewayError::Malformed { command: "C5PAA".into(), detail: e.to_string() })?;
        self.driver.command(&cmd).await.map(|_| ())
    }

    async fn simple(&self, command: &[u8; 3], params: &[Option<i32>]) -> Result<(), GatewayError> {
        let cmd = EvoCommand::new(b"C5", command, params).map_err(|e| GatewayError::Malformed {
            command: String::from_utf8_lossy(command).into(),
            detail: e.to_string(),
        })?;
        self.driver.command(&cmd).await.map(|_| ())
    }

    /// Where the arm goes for tips `tips` at once: their common x, and the y of tip 1 when every tip
    /// sits one spacing in front of the one before (tip `k` at `y1 − k · spacing`); `None` otherwise.
    fn together(&self, tips: impl Iterator<Item = ChannelAt> + Clone) -> Option<(i32, i32)> {
        let mut origins = tips.map(|t| (t.x_01mm, t.y_01mm + t.channel as i32 * self.spacing_01mm));
        let first = origins.next()?;
        origins.all(|o| o == first).then_some(first)
    }

    async fn arm_to(&self, (x, y1): (i32, i32)) -> Result<(), GatewayError> {
        let cmd = EvoCommand::new(b"C5", b"PAA", &[Some(x), Some(y1), Some(self.spacing_01mm)])
            .map_err(|e| GatewayError::Malformed { command: "C5PAA".into(), detail: e.to_string() })?;
        self.driver.command(&cmd).await.map(|_| ())
    }

    async fn plunger(&self, ops: &[ChannelVolume], sign: i32) -> Result<(), GatewayError> {
        // Tips in a line 9 mm apart (a plate column, side by side in a trough): one move, one plunger
        // command with a volume per tip.
        if ops.len() > 1
            && let Some(origin) = self.together(ops.iter().map(|o| o.at))
        {
            self.arm_to(origin).await?;
            let last = ops.iter().map(|o| o.at.channel).max().unwrap_or(0);
            let mut p = vec![Some(0); last + 1];
            for op in ops {
                p[op.at.channel] = Some(sign * to_01(op.volume_ul) as i32);
            }
            return self.simple(b"PPR", &p).await;
        }
        for op in ops {
            self.over(&op.at).await?;
            let mut p = vec![Some(0); op.at.channel + 1];
            p[op.at.channel] = Some(sign * to_01(op.volume_ul) as i32);
            self.simple(b"PPR", &p).await?;
        }
        Ok(())
    }
}

/// Tips of the EVO's LiHa.
pub const LIHA_TIPS: usize = 8;

impl<Tx: LinkTx, Rx: LinkRx> LiquidHandler for EvoHandler<Tx, Rx> {
    fn channels(&self) -> usize {
        LIHA_TIPS
    }

    async fn initialise(&mut self, _tip_capacities_ul: &[f64]) -> Result<(), GatewayError> {
        self.simple(b"PIA", &[]).await?;
        let shz = EvoCommand::new(b"C5", b"SHZ", &[Some(heights::TRAVERSE as i32); 8])
            .map_err(|e| GatewayError::Malformed { command: "C5SHZ".into(), detail: e.to_string() })?;
        self.driver.set_cached(&shz).await.map(|_| ())
    }

    async fn pick_up_tips(&mut self, tips: &[ChannelAt], _capacity_ul: f64) -> Result<(), GatewayError> {
        if tips.len() > 1
            && let Some(origin) = self.together(tips.iter().copied())
        {
            self.arm_to(origin).await?;
            let mask = tips.iter().fold(0, |m, t| m | (1 << t.channel));
            return self.simple(b"AGT", &[Some(mask), Some(1000), Some(100), Some(0)]).await;
        }
        for t in tips {
            self.over(t).await?;
            self.simple(b"AGT", &[Some(1 << t.channel), Some(1000), Some(100), Some(0)]).await?;
        }
        Ok(())
    }

    async fn aspirate(&mut self, ops: &[ChannelVolume]) -> Result<(), GatewayError> {
        self.plunger(ops, 1).await
    }

    async fn dispense(&mut self, ops: &[ChannelVolume]) -> Result<(), GatewayError> {
        self.plunger(ops, -1).await
    }

    async fn drop_tips(&mut self, tips: &[ChannelAt]) -> Result<(), GatewayError> {
        if tips.len() > 1
            && let Some(origin) = self.together(tips.iter().copied())
        {
            self.arm_to(origin).await?;
            let mask = tips.iter().fold(0, |m, t| m | (1 << t.channel));
            return self.simple(b"AST", &[Some(mask), Some(0)]).await;
        }
        for t in tips {
            self.over(t).await?;
            self.simple(b"AST", &[Some(1 << t.channel), Some(0)]).await?;
        }
        Ok(())
    }

    async fn move_plate(&mut self, _from: (i32, i32), _to: (i32, i32)) -> Result<(), GatewayError> {
        Err(GatewayError::Unsupported("moving plates with the EVO RoMa".into()))
    }

    async fn tip_presence(&mut self) -> Result<Option<Vec<bool>>, GatewayError> {
        Ok(None)
    }
}

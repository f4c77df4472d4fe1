//! Triggers: waiting for the moment a `cut` step names (a console line, a request, a byte of a
//! download, a flash operation, a breakpoint, a time), then cutting the power.

use std::sync::Arc;
use std::time::Duration;

use fake_server::EventKind as ServerKind;
use fake_server::faults::glob_match;

use super::{AttemptRun, StepError, StepResult};
use crate::backend::sim::{CUT_EXIT_CODE, PowerCutEvent, power_cut};
use crate::board::probe::{Error as ProbeError, Halted, Probe};
use crate::scenario::{Action, Amount, BreakpointTrigger, Cut, Trigger, TriggerOn};
use crate::timeline::EventKind;

/// Where `symbol` is in each of `elfs` (distinct addresses).
fn symbol_addresses(elfs: &[std::path::PathBuf], symbol: &str) -> StepResult<Vec<u64>> {
    let mut addrs = Vec::new();
    let mut first_error = None;
    for elf in elfs {
        match crate::elf::symbol_address_in(elf, symbol) {
            Ok(a) if !addrs.contains(&a) => addrs.push(a),
            Ok(_) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if addrs.is_empty() {
        return Err(StepError::Infra(
            first_error.map_or_else(|| "symbol not found".into(), |e| e.to_string()),
        ));
    }
    Ok(addrs)
}

/// A byte-exact download trigger installed ahead of its step.
pub(super) struct ArmedBytes {
    step: usize,
    at: u64,
    glob: String,
    from: usize,
}

impl AttemptRun<'_> {
    pub(super) async fn cut(&mut self, i: usize, cut: &Cut) -> StepResult<()> {
        let t = &cut.when;
        let within = self.scaled(t.within.map_or(Duration::from_secs(30), |d| d.0));
        let deadline = tokio::time::Instant::now() + within;
        let fired = self.wait_trigger(i, t, deadline).await?;
        // The board's time to act on what triggered the cut grows with its time_scale too.
        if let Some(d) = t.delay {
            tokio::time::sleep(self.scaled(d.0)).await;
        }
        self.power_off().await?;
        self.note(format!("cut: {fired}"));
        self.resolved.push(format!("step {}: {fired}", i + 1));
        tokio::time::sleep(cut.hold.map_or(Duration::from_millis(200), |d| d.0)).await;
        self.power_on(i).await
    }

    /// Waits for a trigger; returns what fired, resolved to an exact point where possible.
    pub(super) async fn wait_trigger(
        &mut self,
        step: usize,
        t: &Trigger,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let missed = |what: String| StepError::Firmware(format!("trigger never fired: {what}"));
        match &t.on {
            TriggerOn::After(after) => {
                tokio::time::sleep(after.0).await;
                Ok(format!("after {after}"))
            }
            TriggerOn::Console(p) => {
                let from = self.last_power_on;
                let board = Arc::clone(&self.board);
                let (_, e) = self
                    .timeline
                    .wait_for(from, deadline, |e| {
                        e.board.as_deref() == Some(&*board)
                            && matches!(&e.kind, EventKind::Console { line } if p.regex.is_match(line))
                    })
                    .await
                    .ok_or_else(|| missed(format!("console /{p}/")))?;
                let line = match e.kind {
                    EventKind::Console { line } => line,
                    _ => String::new(),
                };
                Ok(format!("on console line `{line}`"))
            }
            TriggerOn::Breakpoint(bp) => self.halt_at_breakpoint(bp, deadline).await,
            TriggerOn::BytesSent { path, amount } => {
                self.cut_at_bytes(step, path, *amount, deadline).await
            }
            TriggerOn::Request { path, nth } => {
                let from = self.log.cursor();
                let mut seen = 0u32;
                let (_, e) = self
                    .log
                    .wait_for(from, deadline, |e| {
                        if let ServerKind::Request { path: p, .. } = &e.kind
                            && glob_match(path, p)
                        {
                            seen += 1;
                            return seen >= *nth;
                        }
                        false
                    })
                    .await
                    .ok_or_else(|| missed(format!("request #{nth} to {path}")))?;
                Ok(format!("at request #{nth} to {path} ({:?})", e.kind))
            }
            // A QEMU board has no exact cuts of its own: its probe stops the firmware there.
            TriggerOn::SlotWrite(amount) if !self.has_exact_cuts().await? => {
                self.halt_at_slot_write(*amount, deadline).await
            }
            TriggerOn::FlashOp(_) | TriggerOn::SlotWrite(_) => {
                self.wait_flash_cut(&t.on, deadline).await
            }
        }
    }

    /// A flash trigger is armed at power-on (the sim board stops itself at the exact
    /// operation): waits for the board to stop, then reads back which operation it was.
    async fn wait_flash_cut(
        &mut self,
        on: &TriggerOn,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let what = match on {
            TriggerOn::FlashOp(op) => format!("flash op {op}"),
            _ => on.to_string(),
        };
        self.wait_board_cut(&what, deadline).await?;
        let from = self.last_power_on;
        let board = Arc::clone(&self.board);
        let stop = tokio::time::Instant::now() + Duration::from_secs(1);
        let cut = self
            .timeline
            .wait_for(from, stop, |e| {
                e.board.as_deref() == Some(&*board) && power_cut(&e.kind).is_some()
            })
            .await
            .and_then(|(_, e)| power_cut(&e.kind));
        let at = |c: &PowerCutEvent| {
            format!(
                "{} ({} 0x{:08x} {}{})",
                c.op,
                c.kind.as_str(),
                c.addr,
                c.len,
                if c.torn { ", torn" } else { "" }
            )
        };
        Ok(match (on, cut) {
            (TriggerOn::FlashOp(_), Some(c)) => format!("at exact flash op {}", at(&c)),
            (TriggerOn::FlashOp(op), None) => format!("at exact flash op {op}"),
            (_, Some(c)) => format!(
                "{what}: flash op {} (replay exactly with `flash: {{ op: {} }}`)",
                at(&c),
                c.op
            ),
            (_, None) => what,
        })
    }

    /// Runs the board to a breakpoint at `bp.symbol` (looked up in the app ELFs of every image
    /// the scenario uses, both slots) and leaves its core halted there for the cut.
    pub(super) async fn halt_at_breakpoint(
        &mut self,
        bp: &BreakpointTrigger,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let elfs = self.app_elfs(&bp.symbol)?;
        let addrs = symbol_addresses(&elfs, &bp.symbol)?;
        let (halted, _) = self
            .run_probe_to(addrs, bp.hit, deadline, |_, _| Ok(true))
            .await?;
        match halted {
            Some(h) => {
                let what = format!(
                    "at breakpoint `{}` (hit {}, pc 0x{:08x}), core halted",
                    bp.symbol, bp.hit, h.pc
                );
                self.probe_event(format!("halted {what}"));
                Ok(what)
            }
            None => Err(StepError::Firmware(format!(
                "trigger never fired: the firmware did not reach `{}` {} time(s)",
                bp.symbol, bp.hit
            ))),
        }
    }

    /// `flash: { slot_write: P% }` on a QEMU board: a breakpoint on the firmware's flash
    /// program function (`otarig_flash_write`, both stages) whose hits count only when its
    /// offset argument (r1) lies in a slot at least `amount` of the offered image into it — the
    /// first such program, as the simulated board's own cut picks it. The core stays halted
    /// there, before anything of that program is written.
    pub(super) async fn halt_at_slot_write(
        &mut self,
        amount: Amount,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        const SYMBOL: &str = "otarig_flash_write";
        let offset = u32::try_from(amount.resolve(self.offered_image_len()?))
            .map_err(|_| StepError::Infra(format!("{amount} of the image is beyond a slot")))?;
        let mut elfs = self.app_elfs(SYMBOL)?;
        elfs.extend(self.store().bootloader_elf());
        let addrs = symbol_addresses(&elfs, SYMBOL)?;
        let layout = ota_core::layout::SIM;
        let (halted, at) = self
            .run_probe_to(addrs, 1, deadline, move |probe, _| {
                let addr = probe.read_register(1)?;
                Ok(layout
                    .slot_of(addr)
                    .is_some_and(|s| addr - layout.slot(s) >= offset))
            })
            .await?;
        match (halted, at) {
            (Some(h), Some(addr)) => {
                let slot = layout.slot_of(addr).unwrap_or(0);
                let what = format!(
                    "during the slot write at {amount}: `{SYMBOL}` at flash offset 0x{addr:06x} ({} bytes into slot {}, the first program at or beyond {offset}), pc 0x{:08x}, core halted",
                    addr - layout.slot(slot),
                    ota_core::layout::slot_name(slot),
                    h.pc
                );
                self.probe_event(format!("halted {what}"));
                Ok(what)
            }
            _ => Err(StepError::Firmware(format!(
                "trigger never fired: the firmware never programmed a slot at or beyond {offset} bytes ({amount})"
            ))),
        }
    }

    /// The app ELFs of every image the scenario uses (symbols for breakpoints).
    fn app_elfs(&self, symbol: &str) -> StepResult<Vec<std::path::PathBuf>> {
        let mut drills: Vec<crate::scenario::Drill> =
            self.sc.images.values().map(|d| d.drill).collect();
        drills.sort_by_key(|d| d.as_str());
        drills.dedup();
        let elfs = self.store().app_elfs(&drills);
        if elfs.is_empty() {
            return Err(StepError::Infra(format!(
                "board {}: no app ELF to look `{symbol}` up in (the firmware directory needs app-*.elf; tools/build-drills.sh writes them)",
                self.board
            )));
        }
        Ok(elfs)
    }

    /// A line on the board's probe lane of the timeline.
    fn probe_event(&self, detail: String) {
        self.timeline
            .push(Some(&self.board), EventKind::Probe { detail });
    }

    /// Runs the board's core until it halts at one of `addrs` for the `hits`-th time that
    /// `counts` accepts, leaving it halted there. Returns the halt (`None`: not reached by
    /// `deadline`) and the last offset argument (r1) seen at a counted hit.
    async fn run_probe_to(
        &self,
        addrs: Vec<u64>,
        hits: u32,
        deadline: tokio::time::Instant,
        mut counts: impl FnMut(&mut dyn Probe, &Halted) -> Result<bool, ProbeError> + Send + 'static,
    ) -> StepResult<(Option<Halted>, Option<u32>)> {
        let probe = self.kind.probe().ok_or_else(|| {
            StepError::Infra(format!(
                "board {}: a breakpoint trigger needs a debug probe",
                self.board
            ))
        })?;
        // The Cortex-M0+ has four hardware breakpoint comparators.
        if addrs.len() > 4 {
            return Err(StepError::Infra(format!(
                "the breakpoint is at {} different addresses in the builds this scenario uses; at most 4 fit",
                addrs.len()
            )));
        }
        let std_deadline = std::time::Instant::now()
            + deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::task::spawn_blocking(move || {
            let mut p = probe.lock().unwrap_or_else(|e| e.into_inner());
            let mut last = None;
            let halted = crate::board::probe::run_to_matching_breakpoint(
                &mut **p,
                &addrs,
                hits,
                std_deadline,
                &mut |probe: &mut dyn Probe, h: &Halted| {
                    let counted = counts(probe, h)?;
                    if counted {
                        last = probe.read_register(1).ok();
                    }
                    Ok(counted)
                },
            )?;
            Ok::<_, ProbeError>((halted, last))
        })
        .await
        .map_err(StepError::infra)?
        .map_err(|e| StepError::Infra(format!("probe: {e}")))
    }

    /// Whether the board's power carries out exact flash cuts itself (the simulated board).
    async fn has_exact_cuts(&self) -> StepResult<bool> {
        self.with_power(|p| p.exact_cuts().is_some()).await
    }

    /// Waits until a sim board armed with an exact cut stops itself (exit code 86).
    pub(super) async fn wait_board_cut(
        &self,
        what: &str,
        deadline: tokio::time::Instant,
    ) -> StepResult<()> {
        let power = self
            .power
            .clone()
            .ok_or_else(|| StepError::Infra("no board".into()))?;
        loop {
            let status = {
                let mut p = power.lock().unwrap_or_else(|e| e.into_inner());
                match p.exact_cuts() {
                    Some(exact) => exact.stopped(),
                    None => {
                        return Err(StepError::Infra(format!(
                            "board {} cannot cut power at {what}: exact flash cuts need the simulated board",
                            self.board
                        )));
                    }
                }
            };
            match status {
                Some(CUT_EXIT_CODE) => return Ok(()),
                Some(code) => {
                    return Err(StepError::Firmware(format!(
                        "board exited with code {code} before {what}"
                    )));
                }
                None if tokio::time::Instant::now() >= deadline => {
                    return Err(StepError::Firmware(format!(
                        "trigger never fired: {what} (the board never reached it)"
                    )));
                }
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    pub(super) fn offered_image_len(&self) -> StepResult<u64> {
        let release = self.server()?.offered().ok_or_else(|| {
            StepError::Firmware("a byte-based trigger needs an offered release".into())
        })?;
        Ok(release.size)
    }

    /// Arms an `http: { bytes_sent }` cut one step early. A download that starts while the
    /// previous step is still waiting (the board checks in right after booting) is then
    /// caught at its exact byte instead of racing the rig's install of the rule.
    pub(super) fn arm_next_byte_trigger(
        &mut self,
        index: usize,
        next: Option<&Action>,
    ) -> StepResult<()> {
        let Some(Action::Cut(Cut {
            when:
                Trigger {
                    on: TriggerOn::BytesSent { path, amount },
                    ..
                },
            ..
        })) = next
        else {
            return Ok(());
        };
        if self.server()?.offered().is_none() {
            // Nothing offered yet (a later step publishes): arm when the step itself runs.
            return Ok(());
        }
        let at = amount.resolve(self.offered_image_len()?);
        self.armed = Some(ArmedBytes {
            step: index,
            at,
            glob: path.clone(),
            from: self.log.cursor(),
        });
        self.install_faults()
    }

    /// Puts the scenario's rules on the server, behind an armed one-shot `stall_after`
    /// trigger when there is one (it is rule 0, so its fault events are recognisable).
    pub(super) fn install_faults(&self) -> StepResult<()> {
        let mut rules = Vec::with_capacity(self.base_faults.len() + 1);
        if let Some(a) = &self.armed {
            let yaml = format!(
                "faults:\n  - match: {{ path: \"{}\", method: GET }}\n    stall_after: {}\n    for: 60s\n    times: 1\n",
                a.glob, a.at
            );
            rules.extend(
                fake_server::faults::parse_faults_yaml(&yaml, "<trigger>")
                    .map_err(StepError::infra)?,
            );
        }
        rules.extend(self.base_faults.iter().cloned());
        self.server()?.set_faults(rules);
        Ok(())
    }

    /// Stops the server at exactly `amount` body bytes of the next matching download (a
    /// one-shot `stall_after`, armed when the previous step began) and returns when the stall
    /// begins: byte-exact and repeatable.
    pub(super) async fn cut_at_bytes(
        &mut self,
        step: usize,
        glob: &str,
        amount: Amount,
        deadline: tokio::time::Instant,
    ) -> StepResult<String> {
        let total = self.offered_image_len()?;
        if self.armed.as_ref().is_none_or(|a| a.step != step) {
            self.armed = Some(ArmedBytes {
                step,
                at: amount.resolve(total),
                glob: glob.to_string(),
                from: self.log.cursor(),
            });
            self.install_faults()?;
        }
        let (at, from) = match &self.armed {
            Some(a) => (a.at, a.from),
            None => return Err(StepError::Infra("byte trigger not armed".into())),
        };
        let found = self
            .log
            .wait_for(from, deadline, |e| {
                matches!(&e.kind, ServerKind::Fault { rule: 0, bytes_sent, .. } if *bytes_sent == at)
            })
            .await;
        self.armed = None;
        self.install_faults()?;
        found.ok_or_else(|| {
            StepError::Firmware(format!("the board never downloaded {at} bytes of {glob}"))
        })?;
        Ok(format!(
            "at exactly {at} of {total} image bytes ({amount}) of {glob}"
        ))
    }
}

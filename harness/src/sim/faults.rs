//! Faults: the nemesis's ticks, applying and undoing each fault, and the scripted
//! faults (Figure 8, comeback) step by step.

use super::nemesis::Fault;
use super::script::{Action, Comeback, Figure8, Script};
use super::{uniform, Event, Simulator};
use crate::protocol::SimProtocol;
use crate::workload::Phase;
use std::time::Duration;

impl<P: SimProtocol> Simulator<P> {
    pub(super) fn nemesis_tick(&mut self) {
        if self.phase != Phase::Main {
            return;
        }
        let active: Vec<Fault> = self.active_faults.iter().map(|(_, f)| f.clone()).collect();
        let leader = self.leader();
        for (fault, duration) in self.nemesis.pick(self.slots.len(), leader, &active) {
            self.next_fault_id += 1;
            let id = self.next_fault_id;
            self.stats.faults.push(format!("{}: {fault}", self.now));
            tracing::debug!(%fault, ?duration, "fault");
            self.apply_fault(fault.clone());
            self.active_faults.push((id, fault));
            self.schedule(duration, Event::FaultEnd { id });
        }
        let active: Vec<Fault> = self.active_faults.iter().map(|(_, f)| f.clone()).collect();
        let gap = self.nemesis.next_gap(&active);
        self.schedule(gap, Event::NemesisTick);
    }

    /// The up node that believes it leads, of the highest index if several do (a
    /// deposed leader that has not noticed yet is as good a target as the new one).
    pub(super) fn leader(&self) -> Option<usize> {
        let up = self.slots.iter().enumerate();
        up.filter_map(|(i, s)| s.node.as_ref().filter(|n| P::is_leader(n)).map(|_| i))
            .last()
    }

    /// Applies `fault` now. Public so tests can script faults by hand.
    pub fn apply_fault(&mut self, fault: Fault) {
        self.start();
        match fault {
            Fault::Partition { blocked, .. } => {
                for (a, b) in blocked {
                    let l = self.link(a, b);
                    self.blocked[l] = true;
                }
            }
            Fault::Crash(n) => self.crash(n),
            Fault::CrashInWrite(n) => {
                if self.slots[n].node.is_some() {
                    self.slots[n].crash_armed = true;
                }
            }
            Fault::Storm => {} // the nemesis crashes leaders while it lasts
            Fault::Figure8(plan) => {
                if let (None, Some(leader)) = (&self.script, self.leader()) {
                    let (f8, actions) = Figure8::start(plan, leader);
                    self.start_script(Script::Figure8(f8), actions);
                }
            }
            Fault::Comeback(plan) => {
                if let (None, Some(leader)) = (&self.script, self.leader()) {
                    let (c, actions) = Comeback::start(plan, leader, self.slots.len());
                    self.start_script(Script::Comeback(c), actions);
                }
            }
            Fault::Depose { leader, armed } => {
                self.isolated[leader] = true;
                self.slots[leader].clock.set_rate(self.now, DEPOSE_PPM);
                if let Some(n) = armed.filter(|&n| self.slots[n].node.is_some()) {
                    self.slots[n].crash_armed = true;
                }
            }
            Fault::Pause(n) => {
                if self.slots[n].node.is_some() {
                    self.slots[n].paused = true;
                }
            }
            Fault::Drift { node, ppm } => self.slots[node].clock.set_rate(self.now, ppm),
            Fault::DiskFail { node, eio } => {
                if self.slots[node].node.is_some() {
                    self.slots[node].disk_fail = Some(eio);
                }
            }
            Fault::DiskCorrupt(n) => {
                self.crash(n);
                self.slots[n].down = Some(super::nodes::Down::ForGood);
            }
            Fault::Loss => self.lossy = true,
            Fault::Delay => self.delaying = true,
            Fault::Clog { from, to } => {
                let l = self.link(from, to);
                self.clogged[l] = true;
            }
        }
    }

    /// Undoes `fault` now. Public so tests can script faults by hand.
    pub fn revert(&mut self, fault: Fault) {
        match fault {
            Fault::Partition { blocked, .. } => {
                for (a, b) in blocked {
                    let l = self.link(a, b);
                    self.blocked[l] = false;
                }
            }
            Fault::Crash(n) => self.restart(n),
            Fault::CrashInWrite(n) => {
                self.slots[n].crash_armed = false;
                self.restart(n);
            }
            Fault::Storm => {}
            Fault::Figure8(_) | Fault::Comeback(_) => {
                if let Some((run, script)) = self.script.take() {
                    self.script_act(run, script.undo());
                }
            }
            Fault::Depose { leader, armed } => {
                self.isolated[leader] = false;
                self.slots[leader].clock.set_rate(self.now, 0);
                if let Some(n) = armed {
                    self.slots[n].crash_armed = false;
                    self.restart(n);
                }
            }
            // The fault's end: an operator restarts a node that stopped on a failed write,
            // from what its disk holds; one whose disk fails its checksums stays down.
            Fault::DiskFail { node, .. } => {
                self.slots[node].disk_fail = None;
                if self.slots[node].down == Some(super::nodes::Down::UntilFixed) {
                    self.slots[node].down = None;
                    self.restart(node);
                }
            }
            Fault::DiskCorrupt(_) => {}
            Fault::Pause(n) => self.resume(n),
            Fault::Drift { node, .. } => self.slots[node].clock.set_rate(self.now, 0),
            Fault::Loss => self.lossy = false,
            Fault::Delay => self.delaying = false,
            Fault::Clog { from, to } => {
                let l = self.link(from, to);
                self.clogged[l] = false;
                let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition(|(f, t, _)| (*f, *t) == (from, to));
                self.held = keep;
                for (f, t, msg) in release {
                    let at = self.arrival(l);
                    self.schedule_at(
                        at,
                        Event::Deliver {
                            from: f,
                            to: t,
                            msg,
                        },
                    );
                }
            }
        }
    }

    /// Begins (`on`) or heals the scripted split: the leader (node 1 if none
    /// leads) alone on the minority side, with the clients homed on it.
    pub(super) fn scripted_split(&mut self, on: bool) {
        match (on, self.sides.is_some()) {
            (true, false) if self.phase == Phase::Main => {
                let leader = self.leader();
                let minority = leader.unwrap_or(0);
                let mut sides = vec![false; self.slots.len()];
                sides[minority] = true;
                if leader.is_some() {
                    self.leader_lost_at.get_or_insert(self.now);
                }
                self.stats.faults.push(format!(
                    "{}: split {{{}}} | the rest",
                    self.now, self.members[minority]
                ));
                self.stats.split = Some(super::SplitRecord {
                    start_ns: self.now.as_nanos(),
                    end_ns: self.now.as_nanos(),
                    minority: sides.clone(),
                });
                self.sides = Some(sides);
                self.schedule(super::config::SPLIT_FOR, Event::Split { on: false });
            }
            (false, true) => {
                self.sides = None;
                if let Some(split) = self.stats.split.as_mut() {
                    split.end_ns = self.now.as_nanos();
                }
            }
            _ => {}
        }
    }

    /// `true` while the scripted split keeps node `a` and node `b` apart.
    pub(super) fn across_split(&self, a: usize, b: usize) -> bool {
        self.sides.as_ref().is_some_and(|s| s[a] != s[b])
    }

    /// Client `client`'s home node: its side of the scripted split.
    pub(super) fn home(&self, client: usize) -> usize {
        client % self.slots.len()
    }

    /// Delivers what muffled node `n` sent, each message at its own random time
    /// within `STALL_RELEASE` from now: out of order, overtaken by newer traffic.
    pub(super) fn release_stalled(&mut self, n: usize) {
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stalled)
            .into_iter()
            .partition(|(from, _, _)| *from == n);
        self.stalled = keep;
        for (from, to, msg) in release {
            let at = uniform(&mut self.net_rng, Duration::ZERO, STALL_RELEASE);
            self.schedule(at, Event::Deliver { from, to, msg });
        }
    }

    pub(super) fn start_script(&mut self, script: Script, actions: Vec<Action>) {
        self.script_runs += 1;
        let run = self.script_runs;
        self.script = Some((run, script));
        self.script_act(run, actions);
    }

    /// Carries out steps of the scripted fault numbered `run`.
    pub(super) fn script_act(&mut self, run: u64, actions: Vec<Action>) {
        for action in actions {
            tracing::debug!(?action, "script");
            match action {
                Action::Isolate(n) => self.isolated[n] = true,
                Action::Muffle(n) => self.muffled[n] = true,
                Action::Depose(n) => {
                    self.isolated[n] = true;
                    self.slots[n].clock.set_rate(self.now, DEPOSE_PPM);
                }
                Action::Split(n) => self.split[n] = true,
                Action::Unsplit => self.split.fill(false),
                Action::Rejoin(n) => {
                    self.isolated[n] = false;
                    self.muffled[n] = false;
                    self.slots[n].clock.set_rate(self.now, 0);
                    self.release_stalled(n);
                }
                Action::Crash(n) => self.crash(n),
                Action::Restart(n) => self.restart(n),
                Action::Wake(after) => self.schedule(after, Event::ScriptWake { run }),
                Action::Done => {
                    self.script = None;
                    self.active_faults.retain(|(_, f)| !f.is_script());
                }
            }
        }
    }
}

/// A muffled node's stalled messages arrive within this long after it rejoins:
/// after the election that follows, most of them (`script.rs`).
pub(super) const STALL_RELEASE: Duration = Duration::from_millis(800);

/// Clock rate of a deposed leader (`Fault::Depose`): a tenth of real time (a
/// starved process, a VM whose time is stolen), so its own timers tell it it lost
/// its majority only seconds later. Neither protocol trusts clocks for safety.
const DEPOSE_PPM: i64 = -900_000;

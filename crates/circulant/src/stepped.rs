//! The cycle-stepped model of the parallel BPCA architecture ([`BmvTimingSim`], one
//! [`tick`](BmvTimingSim::tick) per cycle): a fetch stage gathering port-width operands, a
//! `pipeline_depth` register chain and a writeback stage draining the output queue. The model,
//! its counters and the closed form it equals in every count are in [`timing`](crate::timing).

use crate::timing::{Plan, Tally, TimingReport};
use crate::{ArchConfig, Error, LayerShape, LoopOrder};

/// One step of the schedule, as the stepped model's fetch stage sees it.
#[derive(Clone, Copy, Debug)]
struct Step {
    active: u64,
    new_input: bool,
    /// Outputs that become final when this step retires (0 for most steps).
    outputs: u64,
}

/// The schedule of a layer under the loop order, one [`Step`] at a time.
fn schedule(plan: Plan) -> impl Iterator<Item = Step> {
    let waves = plan.tasks.div_ceil(plan.units);
    let inputs = plan.q * plan.alpha;
    let wave_tasks = move |w: u64| w * plan.units..(w * plan.units + plan.units).min(plan.tasks);
    let (os, is) = match plan.order {
        LoopOrder::OutputStationary => (Some(()), None),
        LoopOrder::InputStationary => (None, Some(())),
    };
    let os = os.into_iter().flat_map(move |()| {
        (0..waves).flat_map(move |w| {
            let tasks = wave_tasks(w);
            let outs: u64 = tasks.clone().map(|task| plan.task_outputs(task)).sum();
            let active = tasks.end - tasks.start;
            (0..inputs).map(move |x| Step {
                active,
                new_input: true,
                outputs: if x + 1 == inputs { outs } else { 0 },
            })
        })
    });
    let is = is.into_iter().flat_map(move |()| {
        (0..inputs).flat_map(move |x| {
            (0..waves).map(move |w| {
                let tasks = wave_tasks(w);
                Step {
                    active: tasks.end - tasks.start,
                    new_input: w == 0,
                    outputs: if x + 1 == inputs && w + 1 == waves {
                        plan.rows
                    } else {
                        0
                    },
                }
            })
        })
    });
    os.chain(is)
}

/// The cycle-stepped model: a fetch stage gathering port-width operands, a `pipeline_depth`
/// register chain, and a writeback stage draining the output queue.
pub struct BmvTimingSim {
    plan: Plan,
    steps: Box<dyn Iterator<Item = Step>>,
    next: Option<Step>,
    weight_have: u64,
    input_have: u64,
    pipe: Vec<Option<Step>>,
    backlog: u64,
    cycle: u64,
    tally: Tally,
    cfg: ArchConfig,
}

impl std::fmt::Debug for BmvTimingSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmvTimingSim")
            .field("cycle", &self.cycle)
            .field("backlog", &self.backlog)
            .finish_non_exhaustive()
    }
}

impl BmvTimingSim {
    /// A simulator at cycle 0 for one layer.
    ///
    /// # Errors
    /// As [`analytic`](crate::analytic).
    pub fn new(cfg: &ArchConfig, shape: &LayerShape) -> Result<Self, Error> {
        let plan = cfg.plan(shape)?;
        let mut steps: Box<dyn Iterator<Item = Step>> = Box::new(schedule(plan));
        let next = steps.next();
        Ok(Self {
            plan,
            steps,
            next,
            weight_have: 0,
            input_have: 0,
            pipe: vec![None; plan.depth as usize],
            backlog: 0,
            cycle: 0,
            tally: Tally::default(),
            cfg: *cfg,
        })
    }

    /// Whether every step has retired and every output is written.
    pub fn is_idle(&self) -> bool {
        self.next.is_none() && self.pipe.iter().all(Option::is_none) && self.backlog == 0
    }

    /// Cycles simulated so far.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Advance one cycle: writeback, fetch/issue, retire, shift.
    pub fn tick(&mut self) {
        let plan = self.plan;
        // Writeback of outputs that became final in earlier cycles.
        let w = self.backlog.min(plan.output_port);
        self.backlog -= w;
        self.tally.output_writes += w;
        // Fetch: gather one cycle of port width; issue when the step's operands are complete.
        if let Some(step) = self.next {
            let need_w = step.active * plan.g * plan.bits;
            let need_x = if step.new_input { plan.g } else { 0 };
            self.weight_have = (self.weight_have + plan.weight_port).min(need_w);
            self.input_have = (self.input_have + plan.input_port).min(need_x);
            let took = plan.step_cycles(step.active, step.new_input);
            if self.weight_have == need_w && self.input_have == need_x {
                self.tally.step(&plan, step.active, step.new_input, took);
                self.pipe[0] = Some(step);
                self.weight_have = 0;
                self.input_have = 0;
                self.next = self.steps.next();
            }
        }
        // Retire from the last stage (accumulate), then move the pipeline on.
        if let Some(done) = self.pipe[plan.depth as usize - 1].take() {
            self.backlog += done.outputs;
        }
        self.pipe.rotate_right(1);
        self.cycle += 1;
    }

    /// Run to completion and report.
    pub fn run(mut self) -> TimingReport {
        while !self.is_idle() {
            self.tick();
        }
        self.tally.report(&self.cfg, &self.plan, self.cycle)
    }
}

/// [`BmvTimingSim::new`] then [`run`](BmvTimingSim::run).
///
/// # Errors
/// As [`analytic`](crate::analytic).
pub fn run_stepped(cfg: &ArchConfig, shape: &LayerShape) -> Result<TimingReport, Error> {
    Ok(BmvTimingSim::new(cfg, shape)?.run())
}

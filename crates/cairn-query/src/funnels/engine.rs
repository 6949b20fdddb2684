//! One actor's way through a funnel (spec/insights.md §2.3–2.7): ordered,
//! strict and unordered, with conversion windows, exclusions and optional
//! steps. Pure, so it is tested directly and against a brute force.

use std::borrow::Borrow;
use std::collections::VecDeque;

use smallvec::{smallvec, SmallVec};

use crate::nodes::FunnelOrder;

/// One of the actor's events: which steps and exclusions it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Microseconds since the epoch.
    pub t: i64,
    pub steps: u32,
    pub exclusions: u32,
}

impl Event {
    pub fn matches(&self, step: usize) -> bool {
        self.steps & (1 << step) != 0
    }
}

#[derive(Debug, Clone)]
pub struct Funnel {
    pub steps: usize,
    pub optional: Vec<bool>,
    pub window_us: i64,
    pub order: FunnelOrder,
    /// `(from, to)` 0-based steps between which an exclusion event disqualifies.
    pub exclusions: Vec<(usize, usize)>,
}

/// A time per step, inline for funnels of up to eight steps: a funnel walks
/// tens of thousands of actors, and attempts are copied as they advance.
pub type StepTimes = SmallVec<[Option<i64>; 8]>;

/// The attempt reported for an actor: the furthest step (0-based) and the
/// time of each step it went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reached: usize,
    pub times: StepTimes,
}

impl Outcome {
    /// Whether the actor counts at `step` (optional steps only if taken).
    pub fn counts_at(&self, step: usize, optional: &[bool]) -> bool {
        self.reached >= step && (!optional[step] || self.times[step].is_some())
    }

    /// Seconds from the step before `step` (skipping untaken optional
    /// steps) to `step`, if both happened.
    pub fn seconds_to(&self, step: usize) -> Option<f64> {
        let at = self.times.get(step).copied().flatten()?;
        let before = self.times[..step].iter().rev().find_map(|t| *t)?;
        Some((at - before) as f64 / 1e6)
    }
}

#[derive(Debug, Clone)]
struct Attempt {
    start: i64,
    times: StepTimes,
    excluded: bool,
}

impl Funnel {
    /// The actor's outcome; `None` when it never entered the funnel or its
    /// best attempt hit an exclusion. `events` are sorted by time, and at
    /// equal times by their first step.
    pub fn run<E: Borrow<Event>>(&self, events: impl IntoIterator<Item = E>) -> Option<Outcome> {
        let events = events.into_iter();
        match self.order {
            FunnelOrder::Unordered => self.unordered(events),
            FunnelOrder::Ordered | FunnelOrder::Strict => self.ordered(events),
        }
    }

    fn ordered<E: Borrow<Event>>(&self, events: impl Iterator<Item = E>) -> Option<Outcome> {
        let n = self.steps;
        let strict = self.order == FunnelOrder::Strict;
        let mut entered: SmallVec<[Option<Attempt>; 8]> = smallvec![None; n];
        let mut best: Option<(usize, Attempt)> = None;
        for event in events {
            let event = event.borrow();
            if event.exclusions != 0 {
                self.exclude(event, &mut entered, &mut best);
            }
            for step in (0..n).rev().filter(|s| event.matches(*s)) {
                let attempt = if step == 0 {
                    let mut times: StepTimes = smallvec![None; n];
                    times[0] = Some(event.t);
                    Attempt {
                        start: event.t,
                        times,
                        excluded: false,
                    }
                } else {
                    let Some(prev) = self.previous(&entered, step, event.t) else {
                        continue;
                    };
                    let prev = entered[prev].as_ref()?;
                    if entered[step]
                        .as_ref()
                        .is_some_and(|a| a.start == prev.start)
                    {
                        continue; // this attempt already got here
                    }
                    let mut next = prev.clone();
                    next.times[step] = Some(event.t);
                    next
                };
                let better = match &best {
                    None => true,
                    Some((reached, current)) => {
                        step > *reached
                            || (step == *reached && current.excluded && !attempt.excluded)
                    }
                };
                if better {
                    best = Some((step, attempt.clone()));
                }
                entered[step] = Some(attempt);
            }
            if strict {
                for (step, slot) in entered.iter_mut().enumerate() {
                    if !event.matches(step) {
                        *slot = None;
                    }
                }
            }
            if matches!(&best, Some((reached, a)) if *reached == n - 1 && !a.excluded) {
                break;
            }
        }
        let (reached, attempt) = best?;
        (!attempt.excluded).then_some(Outcome {
            reached,
            times: attempt.times,
        })
    }

    /// The step an event of `step` continues from: the one before it, or
    /// further back over optional steps not taken.
    fn previous(&self, entered: &[Option<Attempt>], step: usize, t: i64) -> Option<usize> {
        for k in (0..step).rev() {
            match &entered[k] {
                Some(a) if t - a.start <= self.window_us => return Some(k),
                _ if self.optional[k] => continue,
                _ => return None,
            }
        }
        None
    }

    /// Marks attempts between an exclusion's steps (inside their window).
    fn exclude(
        &self,
        event: &Event,
        entered: &mut [Option<Attempt>],
        best: &mut Option<(usize, Attempt)>,
    ) {
        for (j, &(from, to)) in self.exclusions.iter().enumerate() {
            if event.exclusions & (1 << j) == 0 {
                continue;
            }
            let reached_to = entered[to].as_ref().map(|a| a.start);
            for slot in entered[from..to].iter_mut().flatten() {
                if reached_to != Some(slot.start) && event.t - slot.start <= self.window_us {
                    slot.excluded = true;
                    if let Some((reached, b)) = best.as_mut() {
                        if b.start == slot.start && *reached < to {
                            b.excluded = true;
                        }
                    }
                }
            }
        }
    }

    /// The most distinct steps done within one window, in any order.
    fn unordered<E: Borrow<Event>>(&self, events: impl Iterator<Item = E>) -> Option<Outcome> {
        let n = self.steps;
        let mut queues: Vec<VecDeque<i64>> = vec![VecDeque::new(); n];
        let mut best: Option<Outcome> = None;
        for event in events {
            let event = event.borrow();
            if event.exclusions != 0 {
                queues.iter_mut().for_each(VecDeque::clear);
                continue;
            }
            for step in (0..n).filter(|s| event.matches(*s)) {
                queues[step].push_back(event.t);
            }
            for queue in &mut queues {
                while queue.front().is_some_and(|t| event.t - t > self.window_us) {
                    queue.pop_front();
                }
            }
            let mut fronts: Vec<i64> = queues.iter().filter_map(|q| q.front().copied()).collect();
            if fronts.is_empty() || best.as_ref().is_some_and(|b| b.reached + 1 >= fronts.len()) {
                continue;
            }
            fronts.sort_unstable();
            let mut times: StepTimes = smallvec![None; n];
            for (slot, t) in times.iter_mut().zip(&fronts) {
                *slot = Some(*t);
            }
            best = Some(Outcome {
                reached: fronts.len() - 1,
                times,
            });
            if fronts.len() == n {
                break;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn funnel(order: FunnelOrder, steps: usize) -> Funnel {
        Funnel {
            steps,
            optional: vec![false; steps],
            window_us: 100 * S,
            order,
            exclusions: vec![],
        }
    }

    fn ev(t: i64, step: usize) -> Event {
        Event {
            t: t * S,
            steps: 1 << step,
            exclusions: 0,
        }
    }

    #[test]
    fn later_steps_attach_to_the_latest_first_step_within_the_window() {
        let f = funnel(FunnelOrder::Ordered, 3);
        // A first step at 0, another at 150: step 2 at 200 converts from 150.
        let out = f
            .run([ev(0, 0), ev(150, 0), ev(200, 1), ev(240, 2)])
            .unwrap();
        assert_eq!(out.reached, 2);
        assert_eq!(out.times[..], [Some(150 * S), Some(200 * S), Some(240 * S)]);
        // Outside the window, measured from the first step.
        let out = f.run([ev(0, 0), ev(50, 1), ev(101, 2)]).unwrap();
        assert_eq!(out.reached, 1);
        // The window is inclusive.
        assert_eq!(f.run([ev(0, 0), ev(50, 1), ev(100, 2)]).unwrap().reached, 2);
    }

    #[test]
    fn strict_needs_consecutive_events() {
        let f = funnel(FunnelOrder::Strict, 2);
        let other = Event {
            t: 5 * S,
            steps: 0,
            exclusions: 0,
        };
        assert_eq!(f.run([ev(0, 0), other, ev(10, 1)]).unwrap().reached, 0);
        assert_eq!(f.run([ev(0, 0), ev(10, 1)]).unwrap().reached, 1);
    }

    #[test]
    fn unordered_counts_distinct_steps_in_one_window() {
        let f = funnel(FunnelOrder::Unordered, 3);
        let out = f.run([ev(0, 2), ev(10, 0), ev(20, 1)]).unwrap();
        assert_eq!(out.reached, 2);
        assert_eq!(out.times[0], Some(0));
        assert_eq!(
            f.run([ev(0, 2), ev(150, 0), ev(160, 1)]).unwrap().reached,
            1
        );
    }

    #[test]
    fn an_excluded_best_attempt_removes_the_actor_unless_a_clean_one_matches_it() {
        let mut f = funnel(FunnelOrder::Ordered, 3);
        f.exclusions = vec![(0, 1)];
        let x = |t: i64| Event {
            t: t * S,
            steps: 0,
            exclusions: 1,
        };
        assert_eq!(f.run([ev(0, 0), x(5), ev(10, 1)]), None);
        // After step 2, the exclusion no longer applies.
        assert_eq!(
            f.run([ev(0, 0), ev(10, 1), x(15), ev(20, 2)])
                .unwrap()
                .reached,
            2
        );
        // A clean attempt later replaces the excluded one.
        assert_eq!(
            f.run([ev(0, 0), x(5), ev(10, 1), ev(200, 0), ev(210, 1)])
                .unwrap()
                .reached,
            1
        );
    }

    #[test]
    fn optional_steps_may_be_skipped() {
        let mut f = funnel(FunnelOrder::Ordered, 3);
        f.optional = vec![false, true, false];
        let out = f.run([ev(0, 0), ev(10, 2)]).unwrap();
        assert_eq!(out.reached, 2);
        assert!(!out.counts_at(1, &f.optional));
        assert_eq!(out.seconds_to(2), Some(10.0));
    }

    #[test]
    fn one_event_never_fills_two_steps() {
        let f = funnel(FunnelOrder::Ordered, 2);
        let both = Event {
            t: 0,
            steps: 0b11,
            exclusions: 0,
        };
        assert_eq!(f.run([both]).unwrap().reached, 0);
        assert_eq!(
            f.run([
                both,
                Event {
                    t: 1,
                    steps: 0b11,
                    exclusions: 0
                }
            ])
            .unwrap()
            .reached,
            1
        );
    }
}

//! `batchproof forecast`: turn a scenario into the sample of a bulk job. The sample is a
//! run of its own, sending every `stride`-th batch of the job (numbered as in the job, so
//! its files and feeder rows are the job's, spread across it) with the scenario's own
//! load model; the report then carries the forecast for the whole job.

use std::time::Duration;

use super::RunError;
use crate::load::schedule::OpenSchedule;
use crate::scenario::{BatchSize, Model, Phase, Sample, Scenario};

/// Submitters that send an open-model job's sample: enough to meet the target's limits
/// with a handful of batches, few enough not to be a flood.
const SAMPLE_SUBMITTERS: u64 = 4;

/// How much of the job the sample sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SampleSize {
    Batches(u64),
    /// A share of the job's batches, 0 < share ≤ 1.
    Share(f64),
}

impl std::str::FromStr for SampleSize {
    type Err = String;

    /// `12` batches, or `5%` of them.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{s}` is not a sample size: write a number of batches (e.g. 12) or a share (e.g. 5%)"
            )
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            return Ok(SampleSize::Share(p / 100.0));
        }
        match s.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(SampleSize::Batches(n)),
            _ => Err(bad()),
        }
    }
}

/// The sample's scenario: `files` of the job (None: one per feeder row), in the
/// scenario's batch size, of which the sample sends `size`.
pub fn sample_scenario(
    mut scenario: Scenario,
    files: Option<u64>,
    size: SampleSize,
) -> Result<Scenario, RunError> {
    if scenario.results.webhooks.is_none() && scenario.results.polling.is_none() {
        return Err(RunError::Invalid(
            "forecast: the sample must be followed to its end, and this scenario collects no results\n  fix: set `results.via: webhooks`, `polling` or `both`".into(),
        ));
    }
    let per_batch = match scenario.load.size {
        BatchSize::Fixed(n) => n as f64,
        BatchSize::Uniform(a, b) => (a + b) as f64 / 2.0,
    };
    let files = job_files(&scenario, files, per_batch)?;
    let batches = (files as f64 / per_batch).ceil().max(1.0) as u64;
    let wanted = match size {
        SampleSize::Batches(n) => n,
        SampleSize::Share(p) => (batches as f64 * p).ceil() as u64,
    };
    if wanted < 3 {
        return Err(RunError::Invalid(format!(
            "forecast: a sample of {wanted} batch(es) cannot show how batches vary\n  fix: --sample 3 or more (10 or more gives useful intervals)"
        )));
    }
    let stride = (batches / wanted).max(1);
    let sent = batches.div_ceil(stride).min(wanted);
    // Refused here, before the first request: a sample the forecast would refuse after
    // paying for it.
    if sent < 3 {
        return Err(RunError::Invalid(format!(
            "forecast: a job of {files} file(s) is {batches} batch(es) of about {per_batch:.0}, too few to sample (a forecast needs at least 3 batches)\n  fix: run the job whole (`batchproof run`), or lower `load.inputs_per_batch` so the job spans 3 or more batches"
        )));
    }
    // An open-model job is paced by its own schedule, which the forecast reads from the
    // phases; its sample goes out as fast as the target answers, so that it measures the
    // target's capacity and not the schedule's first seconds.
    let schedule_s =
        (scenario.load.model == Model::Open).then(|| job_schedule(&scenario.load.phases, batches));
    if schedule_s.is_some() {
        let submitters = SAMPLE_SUBMITTERS.min(sent) as f64;
        scenario.load.model = Model::Closed;
        scenario.load.phases = vec![Phase::Concurrency {
            duration: Duration::from_secs(24 * 3600),
            from: submitters,
            to: submitters,
        }];
    }
    scenario.load.batches = Some(sent);
    // The forecast answers for the job; a projection from the sample would be a second,
    // contradicting answer.
    scenario.project_files = None;
    scenario.sample = Some(Sample {
        files,
        batches,
        stride,
        schedule_s,
    });
    Ok(scenario)
}

/// The job's size: `--files` when given, else what the scenario states of its job — its
/// feeder's rows, `load.batches` × inputs per batch, or `project.files`, in that order.
fn job_files(scenario: &Scenario, files: Option<u64>, per_batch: f64) -> Result<u64, RunError> {
    let stated = scenario
        .inputs
        .feeder
        .as_ref()
        .map(|rows| rows.len() as u64)
        .or_else(|| {
            scenario
                .load
                .batches
                .map(|b| (b as f64 * per_batch).round() as u64)
        })
        .or(scenario.project_files)
        .or_else(|| {
            // An open schedule of finite phases says how many batches it sends.
            (scenario.load.model == Model::Open).then(|| {
                let batches = OpenSchedule::new(&scenario.load.phases).count_remaining(10_000_000);
                (batches as f64 * per_batch).round() as u64
            })
        })
        .filter(|&f| f > 0);
    let Some(files) = files.or(stated) else {
        return Err(RunError::Invalid(
            "forecast: how large is the job?\n  fix: pass --files N, or state the job in the scenario (`load.batches`, `project.files`, open phases that end, or a feeder holding the job's file list)".into(),
        ));
    };
    if files == 0 {
        return Err(RunError::Invalid(
            "forecast: a job of 0 files has nothing to forecast\n  fix: pass --files N with the job's file count".into(),
        ));
    }
    Ok(files)
}

/// When an open-model schedule sends each of `batches` batches. A job larger than the
/// phases hold goes on at the last phase's final rate (or the schedule's average rate).
fn job_schedule(phases: &[Phase], batches: u64) -> Vec<f64> {
    let mut out: Vec<f64> = OpenSchedule::new(phases)
        .take(batches as usize)
        .map(|d| d.as_secs_f64())
        .collect();
    let last_rate = phases.iter().rev().find_map(|p| match p {
        Phase::Rate { to, .. } if *to > 0.0 => Some(*to),
        _ => None,
    });
    let average = match (out.first(), out.last()) {
        (Some(a), Some(b)) if b > a => Some((out.len() - 1) as f64 / (b - a)),
        _ => None,
    };
    let rate = last_rate.or(average).unwrap_or(1.0);
    let mut t = out.last().copied().unwrap_or(0.0);
    while (out.len() as u64) < batches {
        if !out.is_empty() {
            t += 1.0 / rate;
        }
        out.push(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario() -> Scenario {
        Scenario::from_text(
            Path::new("t.yaml"),
            "load: {phases: [{hold: 1s, rate: 1}], inputs_per_batch: 100}\nresults: {via: webhooks}\n",
        )
        .unwrap()
    }

    #[test]
    fn a_sample_spans_the_job() {
        let s = sample_scenario(scenario(), Some(20_000), SampleSize::Batches(10)).unwrap();
        let sample = s.sample.clone().unwrap();
        assert_eq!((sample.batches, sample.stride), (200, 20));
        assert_eq!(s.load.batches, Some(10));
        // The job keeps its schedule (1 batch/s, then on at that rate); the sample goes
        // out as fast as the target answers.
        let schedule = sample.schedule_s.unwrap();
        assert_eq!(schedule.len(), 200);
        assert!((schedule[199] - 199.0).abs() < 1e-9, "{}", schedule[199]);
        assert_eq!(s.load.model, Model::Closed);
        let s = sample_scenario(scenario(), Some(20_000), "5%".parse().unwrap()).unwrap();
        assert_eq!(s.sample.unwrap().stride, 20);
    }

    #[test]
    fn the_job_size_comes_from_the_scenario_unless_files_says_otherwise() {
        let mut batches = scenario();
        batches.load.batches = Some(40);
        batches.project_files = Some(99_000);
        let s = sample_scenario(batches.clone(), None, SampleSize::Batches(10)).unwrap();
        // `load.batches` × inputs per batch is the job.
        assert_eq!(s.sample.unwrap().files, 4_000);
        // `--files` overrides it.
        let s = sample_scenario(batches, Some(20_000), SampleSize::Batches(10)).unwrap();
        assert_eq!(s.sample.unwrap().files, 20_000);
        let mut project = scenario();
        project.project_files = Some(12_000);
        let s = sample_scenario(project.clone(), None, SampleSize::Batches(10)).unwrap();
        assert_eq!(
            (s.sample.clone().unwrap().files, s.sample.unwrap().batches),
            (12_000, 120)
        );
        // Refusals still come before a request: a stated job too small to sample.
        project.project_files = Some(150);
        let e = sample_scenario(project, None, SampleSize::Batches(5)).unwrap_err();
        assert!(e.to_string().contains("too few to sample"), "{e}");
    }

    #[test]
    fn sizes_that_cannot_work_are_refused_with_the_fix() {
        assert!("0".parse::<SampleSize>().is_err());
        assert!("120%".parse::<SampleSize>().is_err());
        let e = sample_scenario(scenario(), Some(1_000), SampleSize::Batches(2)).unwrap_err();
        assert!(e.to_string().contains("--sample 3"), "{e}");
        // An open schedule that ends states its job (here 1 batch: too few to sample).
        let e = sample_scenario(scenario(), None, SampleSize::Batches(5)).unwrap_err();
        assert!(e.to_string().contains("too few to sample"), "{e}");
        // A closed one does not: the job's size is asked for.
        let mut closed = scenario();
        closed.load.model = Model::Closed;
        let e = sample_scenario(closed, None, SampleSize::Batches(5)).unwrap_err();
        assert!(e.to_string().contains("--files"), "{e}");
        assert!(e.to_string().contains("project.files"), "{e}");
        let mut blind = scenario();
        blind.results.webhooks = None;
        blind.results.polling = None;
        let e = sample_scenario(blind, Some(1_000), SampleSize::Batches(5)).unwrap_err();
        assert!(e.to_string().contains("results.via"), "{e}");
    }
}

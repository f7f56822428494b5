//! Resolution: the file form, checked field by field (file:line:column errors with the
//! fix), becomes the checked `Scenario` the rest of the library uses.

use std::path::Path;

use serde_saphyr::Spanned;

use super::file::*;
use super::template::{Template, ValueTemplate};
use super::*;
use crate::api::{ApiVersion, MAX_BATCH_INPUTS};
use crate::config::{ConfigError, parse_yaml};
use crate::mock::Profile;
use crate::mock::profile::DEFAULT_WORKFLOW;

/// A fix for an unknown rule pattern: the nearest id, or where the list is.
fn suggest_rule(p: &str) -> String {
    let best = crate::checks::catalogue()
        .map(|r| r.id)
        .chain([
            "batch", "auth", "version", "error", "runs", "list", "webhook",
        ])
        .map(|id| (strsim::jaro_winkler(p, id), id))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((score, id)) if score > 0.8 => format!("did you mean `{id}`? (`batchproof checks` lists every rule)"),
        _ => "`batchproof checks` lists every rule id; families are batch, auth, version, error, runs, list, webhook".into(),
    }
}

fn located<T>(name: &str, at: &Spanned<T>, message: String, fix: &str) -> ConfigError {
    let mut e = ConfigError::new(name, message).with_fix(fix);
    if at.referenced.line() > 0 {
        e = e.at(at.referenced.line(), at.referenced.column());
    }
    e
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(&name, format!("cannot read scenario: {e}"))
                .with_fix("check the path; scenarios ship in scenarios/")
        })?;
        Scenario::from_text(path, &text)
    }

    /// As [`Scenario::load`], for a run whose target URL is given apart from the file (`run
    /// --target URL`): see [`Scenario::from_text_at`].
    pub fn load_at(path: &Path, url: Option<&str>) -> Result<Scenario, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(&name, format!("cannot read scenario: {e}"))
                .with_fix("check the path; scenarios ship in scenarios/")
        })?;
        Scenario::from_text_at(path, &text, url)
    }

    /// The scenario in `text` (read from `path`), with `${VAR}` taken from the environment.
    /// The report keeps the text as written (so shards whose variables differ are still one
    /// scenario to `merge`, and a secret passed as `${VAR}` is not copied into it).
    pub fn from_text(path: &Path, text: &str) -> Result<Scenario, ConfigError> {
        Scenario::from_text_at(path, text, None)
    }

    /// As [`Scenario::from_text`], when the target's URL is known apart from the file (an
    /// explicit `--target`, or the URL a run's journal recorded): a variable that is the
    /// whole of `target.url` (`url: ${TARGET_URL}`) and is not set takes that URL, since
    /// the URL is all it was there to say.
    pub fn from_text_at(
        path: &Path,
        text: &str,
        url: Option<&str>,
    ) -> Result<Scenario, ConfigError> {
        Scenario::from_journal(path, text, url, &Default::default())
    }

    /// As [`Scenario::from_text_at`], for a run read back from its journal: the
    /// variables take the values the run had (`env`, as the journal kept them) before
    /// this process's environment, so a resume on another machine reads the same
    /// scenario.
    pub fn from_journal(
        path: &Path,
        text: &str,
        url: Option<&str>,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Scenario, ConfigError> {
        let name = path.display().to_string();
        let url_var = url.and_then(|_| target_url_variable(text));
        let expanded = crate::config::interpolate_env(&name, text, |k| {
            env.get(k)
                .cloned()
                .or_else(|| std::env::var(k).ok())
                .or_else(|| {
                    (url_var.as_deref() == Some(k))
                        .then(|| url.map(str::to_string))
                        .flatten()
                })
        })?;
        let file: ScenarioFile = parse_yaml(&name, &expanded)?;
        let base = path.parent().unwrap_or(Path::new("."));

        let target = resolve_target(&file, &name, base)?;
        let load = resolve_load(&file, &name)?;
        let inputs = resolve_inputs(&file, &name, base)?;
        let (webhooks, polling) = resolve_results(&file, &name, &target)?;
        let thresholds = resolve_thresholds(&file, &name)?;
        let checks = resolve_checks(&file, &name)?;
        let limits = resolve_limits(&file, &name)?;
        let r = &file.results;

        Ok(Scenario {
            name: file.name.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scenario".into())
            }),
            description: file.description.clone(),
            path: path.to_path_buf(),
            text: text.to_string(),
            target,
            api_version: file.api_version.unwrap_or(ApiVersion::CURRENT),
            workflow: file.workflow.clone().unwrap_or(WorkflowRef {
                id: DEFAULT_WORKFLOW.into(),
                version: None,
            }),
            load,
            inputs,
            results: Results {
                webhooks,
                polling,
                deadline: r.deadline.0,
                settle: r.settle.0,
            },
            thresholds,
            project_files: file.project.as_ref().map(|p| p.files),
            sample: None,
            checks,
            plan: file.limits.as_ref().and_then(|l| l.value.plan),
            limits,
            budget_runs: file.budget.as_ref().map(|b| b.value.max_runs),
            expect: file.expect,
            budget_stop: None,
        })
    }
}

/// The variable that `target.url` consists of in the text as written (`${VAR}` or
/// `${VAR:-default}`), if it is one.
fn target_url_variable(text: &str) -> Option<String> {
    let raw: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    let url = raw.get("target")?.get("url")?.as_str()?.trim();
    let inner = url.strip_prefix("${")?.strip_suffix('}')?;
    let var = inner.split_once(":-").map_or(inner, |(v, _)| v);
    (!var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| var.to_string())
}

/// The limits the harness keeps to: the named plan's published ones, each field
/// overridable; every rate positive.
fn resolve_limits(file: &ScenarioFile, name: &str) -> Result<crate::api::RateLimits, ConfigError> {
    let Some(spanned) = &file.limits else {
        return Ok(crate::api::RateLimits::default());
    };
    let l = &spanned.value;
    let plan = l.plan.map(crate::api::Plan::limits).unwrap_or_default();
    let pick = |own: Option<f64>, field: &str, published: Option<f64>| match own {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(located(
            name,
            spanned,
            format!("limits.{field} is {v}; a rate must be a positive number"),
            "write e.g. `get_rps: 25`, or leave the field out for no limit",
        )),
        Some(v) => Ok(Some(v)),
        None => Ok(published),
    };
    Ok(crate::api::RateLimits {
        run_rps: pick(l.run_rps, "run_rps", plan.run_rps)?,
        write_rps: pick(l.write_rps, "write_rps", plan.write_rps)?,
        get_rps: pick(l.get_rps, "get_rps", plan.get_rps)?,
        files_per_minute: pick(
            l.files_per_minute,
            "files_per_minute",
            plan.files_per_minute,
        )?,
    })
}

/// The target: the embedded mock (with its profile) or a URL.
fn resolve_target(file: &ScenarioFile, name: &str, base: &Path) -> Result<Target, ConfigError> {
    let target = match &file.target {
        None => Target::Mock {
            profile: Box::new(Profile::default()),
            profile_path: None,
        },
        Some(spanned) => {
            let t = &spanned.value;
            match (&t.mock, &t.url) {
                (Some(_), Some(_)) => {
                    return Err(located(
                        name,
                        spanned,
                        "target has both `mock` and `url`".into(),
                        "keep one: `mock:` for the embedded mock, `url:` for a real endpoint",
                    ));
                }
                (None, Some(url)) => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(located(
                            name,
                            spanned,
                            format!("target.url `{url}` is not an http(s) URL"),
                            "write e.g. `url: https://api.extend.ai`",
                        ));
                    }
                    if let Some(ts) = t.time_scale
                        && !(ts.is_finite() && ts > 0.0)
                    {
                        return Err(located(
                            name,
                            spanned,
                            format!(
                                "target.time_scale is {ts}; a time scale must be a positive number"
                            ),
                            "write the time scale the mock behind the URL runs at, e.g. `time_scale: 60` (1 is real time)",
                        ));
                    }
                    Target::Url {
                        time_scale: t.time_scale,
                        url: url.trim_end_matches('/').to_string(),
                        token_env: t
                            .token_env
                            .clone()
                            .unwrap_or_else(|| "EXTEND_API_KEY".into()),
                        workspace_id: t.workspace_id.clone(),
                    }
                }
                (mock, None) => {
                    if t.time_scale.is_some() {
                        return Err(located(
                            name,
                            spanned,
                            "target.time_scale is for a `url:` target".into(),
                            "for the embedded mock write `mock: {time_scale: N}`",
                        ));
                    }
                    let m = mock.clone().unwrap_or_default();
                    let (mut profile, profile_path) = match &m.profile {
                        Some(p) => {
                            let full = base.join(p);
                            let profile = Profile::load(&full).map_err(|e| {
                                if e.line.is_some() {
                                    // The profile itself is malformed: its own location is the useful one.
                                    e
                                } else {
                                    located(name, spanned, format!("target.mock.profile: {e}"), "the path is relative to the scenario file; profiles ship in mock/")
                                }
                            })?;
                            (profile, Some(full))
                        }
                        None => (Profile::default(), None),
                    };
                    if let Some(ts) = m.time_scale {
                        profile.time_scale = ts;
                    }
                    if let Some(seed) = m.seed {
                        profile.seed = seed;
                    }
                    if let Err((m, f)) = profile.validate() {
                        return Err(located(name, spanned, format!("target.mock: {m}"), &f));
                    }
                    Target::Mock {
                        profile: Box::new(profile),
                        profile_path,
                    }
                }
            }
        }
    };
    Ok(target)
}

/// The load: model, phases, batch sizes, limits.
fn resolve_load(file: &ScenarioFile, name: &str) -> Result<Load, ConfigError> {
    let err = |msg: String, fix: &str| ConfigError::new(name, msg).with_fix(fix);
    let l = &file.load;
    if l.phases.is_empty() {
        return Err(err(
            "load.phases is empty".into(),
            "add a phase, e.g. `- {hold: 10s, rate: 2}`",
        ));
    }
    let mut phases = Vec::new();
    // A ramp without `from` starts at the level the previous phase ended on.
    let mut level: Option<f64> = None;
    for p in &l.phases {
        let phase = resolve_phase(name, l.model, p, level)?;
        level = Some(match phase {
            Phase::Rate { to, .. } | Phase::Concurrency { to, .. } => to,
        });
        phases.push(phase);
    }
    let size = match &l.inputs_per_batch.value {
        BatchSizeFile::Fixed(n) => BatchSize::Fixed(*n),
        BatchSizeFile::Uniform { min, max } => BatchSize::Uniform(*min, *max),
    };
    let (lo, hi) = match size {
        BatchSize::Fixed(n) => (n, n),
        BatchSize::Uniform(a, b) => (a, b),
    };
    if lo < 1 || hi > MAX_BATCH_INPUTS as u64 || lo > hi {
        return Err(located(
            name,
            &l.inputs_per_batch,
            format!("inputs_per_batch must be within 1..{MAX_BATCH_INPUTS} (got {lo}..{hi})"),
            "the API accepts 1 to 1000 inputs per batch; the conformance probes test the limits separately",
        ));
    }
    if l.max_in_flight == 0 {
        return Err(err(
            "load.max_in_flight is 0: nothing could be sent".into(),
            "set it to 1 or more",
        ));
    }
    if let Some(p) = l.priority
        && !(1..=100).contains(&p)
    {
        return Err(err(
            format!("load.priority {p} is outside 1..100"),
            "use a priority from 1 (first) to 100",
        ));
    }
    let load = Load {
        model: l.model,
        phases,
        batches: l.batches,
        size,
        max_in_flight: l.max_in_flight,
        priority: l.priority,
        seed: l.seed,
        lag_bound: l.lag_bound.0,
        request_timeout: l.request_timeout.0,
        max_throttle_retries: l.max_throttle_retries,
    };
    Ok(load)
}

/// One phase of the load: a hold or a ramp, in the model's unit (rate or concurrency).
/// `level` is where the previous phase ended.
fn resolve_phase(
    name: &str,
    model: Model,
    p: &Spanned<PhaseFile>,
    level: Option<f64>,
) -> Result<Phase, ConfigError> {
    let f = &p.value;
    let (duration, ramp) = match (f.hold, f.ramp) {
        (Some(h), None) => (h.0, false),
        (None, Some(r)) => (r.0, true),
        _ => {
            return Err(located(
                name,
                p,
                "a phase needs exactly one of `hold` or `ramp`".into(),
                "write `{hold: 30s, rate: 2}` or `{ramp: 10s, to: 5}`",
            ));
        }
    };
    let target_level = match model {
        Model::Open => {
            if f.concurrency.is_some() {
                return Err(located(
                    name,
                    p,
                    "`concurrency` belongs to the closed model".into(),
                    "use `rate` (batches per second), or set `load.model: closed`",
                ));
            }
            if ramp { f.to } else { f.rate.or(f.to) }
        }
        Model::Closed => {
            if f.rate.is_some() {
                return Err(located(
                    name,
                    p,
                    "`rate` belongs to the open model".into(),
                    "use `concurrency`, or set `load.model: open`",
                ));
            }
            if ramp {
                f.to
            } else {
                f.concurrency.map(f64::from).or(f.to)
            }
        }
    };
    let Some(to) = target_level else {
        let what = if model == Model::Open {
            "rate"
        } else {
            "concurrency"
        };
        return Err(located(
            name,
            p,
            format!("this phase gives no {what}"),
            if ramp {
                "add `to: N`"
            } else {
                "add the level, e.g. `rate: 2` or `concurrency: 4`"
            },
        ));
    };
    let from = if ramp {
        f.from.or(level).unwrap_or(0.0)
    } else {
        to
    };
    if !(to.is_finite() && to >= 0.0 && from.is_finite() && from >= 0.0) {
        return Err(located(
            name,
            p,
            "phase levels must be non-negative numbers".into(),
            "use e.g. `rate: 2`",
        ));
    }
    Ok(match model {
        Model::Open => Phase::Rate { duration, from, to },
        Model::Closed => Phase::Concurrency { duration, from, to },
    })
}

/// The inputs: the file template, metadata, secrets, feeder, correlation key.
fn resolve_inputs(file: &ScenarioFile, name: &str, base: &Path) -> Result<Inputs, ConfigError> {
    let err = |msg: String, fix: &str| ConfigError::new(name, msg).with_fix(fix);
    let i = &file.inputs;
    let tmpl = |s: &Spanned<String>| {
        Template::compile(&s.value).map_err(|m| located(name, s, m, "fix the placeholder"))
    };
    let file_tmpl = match &i.file {
        None => FileTemplate {
            kind: FileKind::Url,
            value: Template::compile("https://files.batchproof.test/b{{batch}}/doc-{{index}}.pdf")
                .expect("literal template"),
            name: None,
        },
        Some(f) => {
            let given: Vec<(FileKind, &Spanned<String>)> = [
                (FileKind::Url, f.url.as_ref()),
                (FileKind::Id, f.id.as_ref()),
                (FileKind::Text, f.text.as_ref()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let [(kind, value)] = given.as_slice() else {
                return Err(err(
                    "inputs.file needs exactly one of `url`, `id` or `text`".into(),
                    "e.g. `file: {url: \"https://…/{{seq}}.pdf\"}`",
                ));
            };
            if *kind == FileKind::Id && f.name.is_some() {
                return Err(located(
                    name,
                    value,
                    "a file given by `id` takes no `name`".into(),
                    "remove `name`",
                ));
            }
            FileTemplate {
                kind: *kind,
                value: tmpl(value)?,
                name: f.name.as_ref().map(tmpl).transpose()?,
            }
        }
    };
    let value_tmpl =
        |v: &Option<Value>, what: &str| -> Result<Option<ValueTemplate>, ConfigError> {
            match v {
                None => Ok(None),
                Some(v @ Value::Object(_)) => ValueTemplate::compile(v)
                    .map(Some)
                    .map_err(|m| err(format!("inputs.{what}: {m}"), "fix the placeholder")),
                Some(_) => Err(err(
                    format!("inputs.{what} must be a mapping"),
                    "write key: value pairs",
                )),
            }
        };
    let feeder = match &i.feeder {
        None => None,
        Some(f) => {
            let p = base.join(&f.value.path);
            Some(feeder::load(&p, f.value.format).map_err(|m| {
                located(
                    name,
                    f,
                    m,
                    "fix the feeder file or its path (relative to the scenario)",
                )
            })?)
        }
    };
    let inputs = Inputs {
        file: file_tmpl,
        metadata: value_tmpl(&i.metadata, "metadata")?,
        secrets: value_tmpl(&i.secrets, "secrets")?,
        feeder,
        correlation_key: i.correlation_key.clone(),
        // Set when a run starts (or from its journal when resumed).
        run_nonce: String::new(),
    };
    Ok(inputs)
}

/// Why a receiver listening on `listen` cannot get what is sent to `public_url`, when
/// that can be told from the scenario alone: it listens on loopback while the public URL
/// names another machine's address (a pod IP: nothing from outside reaches 127.0.0.1 of a
/// pod). A public host *name* on loopback stays allowed: a tunnel on this machine forwards
/// to it.
fn unreachable_listen(listen: std::net::SocketAddr, public_url: &str) -> Option<String> {
    let authority = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    // host[:port] or [v6]:port or [v6].
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    let host_ip: Option<std::net::IpAddr> = host.parse().ok();
    if listen.ip().is_loopback() && host_ip.is_some_and(|ip| !ip.is_loopback()) {
        return Some(format!(
            "the webhook receiver listens on {listen}, which only this machine can reach, but `public_url` sends the target to {host}: no delivery would arrive"
        ));
    }
    None
}

/// The results channels: webhooks and polling (a URL target needs a public URL for webhooks).
fn resolve_results(
    file: &ScenarioFile,
    name: &str,
    target: &Target,
) -> Result<(Option<WebhookResults>, Option<PollResults>), ConfigError> {
    let err = |msg: String, fix: &str| ConfigError::new(name, msg).with_fix(fix);
    let r = &file.results;
    let webhooks = matches!(r.via, Via::Webhooks | Via::Both).then(|| WebhookResults {
        listen: r.webhooks.listen,
        public_url: r.webhooks.public_url.clone(),
        secret_env: r.webhooks.secret_env.clone(),
        register: r.webhooks.register,
        max_age: r.webhooks.max_age.0,
        refuse_first: r.webhooks.refuse_first,
    });
    if let (Some(w), Target::Url { .. }) = (&webhooks, &target) {
        if w.register && w.public_url.is_none() {
            return Err(err(
                "results via webhooks from a real target need `results.webhooks.public_url`".into(),
                "give the URL the target can reach (e.g. a tunnel to `listen`), or use `via: polling`",
            ));
        }
        if let Some(why) = w
            .public_url
            .as_deref()
            .and_then(|u| unreachable_listen(w.listen, u))
        {
            return Err(err(
                why,
                "listen where the public URL leads: `results.webhooks.listen: '0.0.0.0:8090'` (or `'[::]:8090'`) with the same port in `public_url`; or use `via: polling`",
            ));
        }
        if !w.register && w.secret_env.is_none() {
            return Err(err(
                "with `register: false` the receiver needs the endpoint's secret".into(),
                "set `results.webhooks.secret_env: NAME_OF_ENV_VAR` holding the `wss_…` secret",
            ));
        }
    }
    if r.polling.page_size == 0 || r.polling.page_size > 1000 {
        return Err(err(
            format!(
                "results.polling.page_size {} is outside 1..1000",
                r.polling.page_size
            ),
            "the API's maxPageSize is 1 to 1000",
        ));
    }
    let polling = matches!(r.via, Via::Polling | Via::Both).then(|| PollResults {
        interval: r.polling.interval.0,
        page_size: r.polling.page_size,
        get_concurrency: r.polling.get_concurrency.max(1),
    });
    Ok((webhooks, polling))
}

/// The thresholds, each parsed where it stands.
fn resolve_thresholds(file: &ScenarioFile, name: &str) -> Result<Vec<Threshold>, ConfigError> {
    let mut thresholds = Vec::new();
    for t in &file.thresholds {
        thresholds.push(
            threshold::parse(&t.value)
                .map_err(|m| located(name, t, m, "see the metric list in scenarios/README.md"))?,
        );
    }
    Ok(thresholds)
}

/// The contract checks: rule selection and the expectations a target may differ on.
fn resolve_checks(file: &ScenarioFile, name: &str) -> Result<Option<Checks>, ConfigError> {
    let checks = match &file.checks {
        None => None,
        Some(c) => {
            let patterns = |list: &[Spanned<String>]| -> Result<Vec<String>, ConfigError> {
                list.iter()
                    .map(|p| {
                        if crate::checks::is_known_pattern(&p.value) {
                            Ok(p.value.clone())
                        } else {
                            Err(located(
                                name,
                                p,
                                format!("`{}` is neither a rule id nor a family", p.value),
                                &suggest_rule(&p.value),
                            ))
                        }
                    })
                    .collect()
            };
            let mut severity = std::collections::BTreeMap::new();
            for (id, sev) in &c.value.severity {
                if crate::checks::rule(id).is_none() {
                    return Err(located(
                        name,
                        c,
                        format!("checks.severity names `{id}`, which is not a rule id"),
                        &suggest_rule(id),
                    ));
                }
                severity.insert(id.clone(), *sev);
            }
            if c.value.page_size == 0 || c.value.page_size > 1000 {
                return Err(located(
                    name,
                    c,
                    format!("checks.page_size {} is outside 1..1000", c.value.page_size),
                    "the API's maxPageSize is 1 to 1000; a small one (e.g. 7) makes a batch span many pages",
                ));
            }
            if !(1..=100).contains(&c.value.priority) {
                return Err(located(
                    name,
                    c,
                    format!("checks.priority {} is outside 1..100", c.value.priority),
                    "priorities run from 1 (first) to 100; batch runs default to 90",
                ));
            }
            Some(Checks {
                selection: crate::checks::Selection {
                    include: patterns(&c.value.include)?,
                    exclude: patterns(&c.value.exclude)?,
                    severity,
                },
                probes: c.value.probes,
                probes_on_every_shard: c.value.probes_on_every_shard,
                audit_batches: c.value.audit_batches,
                page_size: c.value.page_size,
                rapid_batches: c.value.rapid_batches,
                throttle_probe: c.value.throttle_probe,
                missing_version: c.value.missing_version,
                priority: c.value.priority,
            })
        }
    };
    Ok(checks)
}

//! Shared pieces of the YAML files people write (scenarios and mock profiles): loading
//! with errors that name the file, line and column and the fix, durations written the way
//! people say them (`250ms`, `2s`, `30m`), and time distributions.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp, LogNormal};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A YAML file that could not be read or does not describe a valid document.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
    /// What to change, when we can tell.
    pub fix: Option<String>,
}

impl ConfigError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
            fix: None,
        }
    }

    pub fn at(mut self, line: u64, column: u64) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(line), Some(col)) = (self.line, self.column) {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and parses a YAML file into `T`, rejecting unknown keys (types opt in with
/// `deny_unknown_fields`).
pub fn load_yaml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&name, format!("cannot read file: {e}")))?;
    parse_yaml(&name, &text)
}

/// Parses YAML text into `T`; `name` is what errors call the source.
pub fn parse_yaml<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, ConfigError> {
    // An empty file means "all defaults", which serde-saphyr would read as null.
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_saphyr::from_str::<T>(text).map_err(|err| yaml_error(name, &err))
}

fn yaml_error(name: &str, err: &serde_saphyr::Error) -> ConfigError {
    // The Display of serde-saphyr's error carries a snippet; keep only the first line as
    // the message and put our own location in front, so the format is uniform.
    let full = err.to_string();
    let message = innermost_message(&full);
    let mut out = ConfigError::new(name, message.clone());
    if let Some(loc) = err.location() {
        out = out.at(loc.line(), loc.column());
    }
    if let Some(fix) = suggest_fix(&message) {
        out = out.with_fix(fix);
    }
    out
}

fn innermost_message(full: &str) -> String {
    let first = full.lines().next().unwrap_or(full).trim();
    // "error: line 3 column 5: unknown field ..." → keep what follows the location.
    let msg = first.strip_prefix("error:").unwrap_or(first).trim();
    let msg = match msg.find(": ") {
        Some(i) if msg[..i].starts_with("line ") => &msg[i + 2..],
        _ => msg,
    };
    msg.to_string()
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into "did you mean `a`?".
fn suggest_fix(message: &str) -> Option<String> {
    if let Some(field) = between(message, "missing field `", "`") {
        return Some(format!("add the required key `{field}:`"));
    }
    let unknown = between(message, "unknown field `", "`")
        .or_else(|| between(message, "unknown variant `", "`"))?;
    // serde writes the candidates as "expected one of `a`, `b`"; serde-saphyr drops the
    // backticks. Accept both.
    let rest = message
        .split("expected one of")
        .nth(1)
        .or_else(|| message.split("expected").nth(1))
        .unwrap_or("");
    let candidates: Vec<&str> = rest
        .split(',')
        .map(|c| c.trim().trim_matches('`').trim())
        .filter(|c| !c.is_empty() && !c.contains(' '))
        .collect();
    if candidates.is_empty() {
        return Some(format!("remove `{unknown}`"));
    }
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(unknown, c), *c))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    if best.0 > 0.7 {
        Some(format!("did you mean `{}`? (replace `{unknown}`)", best.1))
    } else {
        Some(format!(
            "`{unknown}` is not allowed here; allowed: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

/// A duration written as a string with a unit: `250ms`, `1.5s`, `30m`, `2h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn from_secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
    pub fn from_millis(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
}

/// Parses `250ms`, `1.5s`, `30m`, `2h`, `1d`, `500us`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` has no unit; write e.g. `{s}ms` or `{s}s`"))?;
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    let secs = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{s}`; use one of us, ms, s, m, h, d"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration given in milliseconds (as reports store them), formatted as
/// `format_duration` does; negative values show as zero.
pub fn format_ms(ms: f64) -> String {
    format_duration(std::time::Duration::from_secs_f64((ms / 1e3).max(0.0)))
}

/// Formats a duration the way `parse_duration` reads it, choosing a readable unit.
pub fn format_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us == 0 {
        "0s".into()
    } else if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        trim_float(us as f64 / 1e3, "ms")
    } else if us < 120_000_000 {
        trim_float(us as f64 / 1e6, "s")
    } else if us < 7_200_000_000 {
        trim_float(us as f64 / 6e7, "m")
    } else {
        trim_float(us as f64 / 3.6e9, "h")
    }
}

fn trim_float(v: f64, unit: &str) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{unit}")
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration with a unit, like `500ms`, `2s` or `30m`")
        })?;
        parse_duration(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

/// A distribution of durations, e.g. processing time or injected latency.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum DurationDist {
    /// Always the same value.
    Fixed { value: Dur },
    /// Uniform between `min` and `max`.
    Uniform { min: Dur, max: Dur },
    /// Exponential with the given mean.
    Exponential { mean: Dur },
    /// Log-normal fitted through a median and a 99th percentile: the usual shape of
    /// document-processing times (most quick, a long tail).
    Lognormal { median: Dur, p99: Dur },
}

impl DurationDist {
    pub fn fixed(d: Duration) -> Self {
        DurationDist::Fixed { value: Dur(d) }
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let secs = match self {
            DurationDist::Fixed { value } => value.0.as_secs_f64(),
            DurationDist::Uniform { min, max } => {
                let (a, b) = (min.0.as_secs_f64(), max.0.as_secs_f64());
                if b > a { rng.random_range(a..b) } else { a }
            }
            DurationDist::Exponential { mean } => {
                let m = mean.0.as_secs_f64();
                if m <= 0.0 {
                    0.0
                } else {
                    Exp::new(1.0 / m).map(|e| e.sample(rng)).unwrap_or(m)
                }
            }
            DurationDist::Lognormal { median, p99 } => {
                let med = median.0.as_secs_f64().max(1e-9);
                let p99 = p99.0.as_secs_f64().max(med);
                // z(0.99) = 2.3263: sigma so that exp(mu + z·sigma) = p99.
                let sigma = (p99 / med).ln() / 2.326_348;
                LogNormal::new(med.ln(), sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(med)
            }
        };
        Duration::from_secs_f64(secs.clamp(0.0, 1e7))
    }

    /// Checks the parameters make sense; the message names the fix.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            DurationDist::Uniform { min, max } if min > max => Err(format!(
                "uniform: min {} is above max {}",
                format_duration(min.0),
                format_duration(max.0)
            )),
            DurationDist::Lognormal { median, p99 } if p99 < median => Err(format!(
                "lognormal: p99 {} is below median {}; p99 must be at least the median",
                format_duration(p99.0),
                format_duration(median.0)
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        timeout: Dur,
        #[serde(default)]
        workers: u32,
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(
            parse_duration("3 weeks")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn unknown_key_names_line_column_and_suggestion() {
        let err = parse_yaml::<Doc>("p.yaml", "timeout: 2s\nworkerz: 3\n").unwrap_err();
        assert_eq!(err.file, "p.yaml");
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("workerz"), "{err}");
        assert!(
            err.fix
                .as_deref()
                .unwrap()
                .contains("did you mean `workers`"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_is_located() {
        let err = parse_yaml::<Doc>("p.yaml", "timeout: 2 parsecs\n").unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
        assert!(err.message.contains("unknown unit"), "{err}");
    }

    #[test]
    fn lognormal_median_is_about_right() {
        use rand::SeedableRng;
        let d = DurationDist::Lognormal {
            median: Dur::from_millis(100),
            p99: Dur::from_secs(1),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut v: Vec<f64> = (0..2001)
            .map(|_| d.sample(&mut rng).as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((0.08..0.12).contains(&v[1000]), "median {}", v[1000]);
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in a scenario's text with the environment's
/// values, before the YAML is read, so any string can come from the environment (a
/// target URL, each shard's own webhook URL). `$${` stands for a literal `${`. Comments
/// are left alone. An unset variable without a default is an error at its line and
/// column, naming the variable and the fix.
pub fn interpolate_env(
    name: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let bytes = line.as_bytes();
        let (mut i, mut quote) = (0, None::<u8>);
        while i < bytes.len() {
            let c = bytes[i];
            match (c, quote) {
                (b'"' | b'\'', None) => quote = Some(c),
                (q, Some(open)) if q == open => quote = None,
                // A comment starts at `#` outside quotes, at the start or after a blank.
                (b'#', None) if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                    out.push_str(&line[i..]);
                    break;
                }
                (b'$', _) if line[i..].starts_with("$${") => {
                    out.push_str("${");
                    i += 3;
                    continue;
                }
                (b'$', _) if line[i..].starts_with("${") => {
                    let Some(len) = line[i + 2..].find('}') else {
                        return Err(ConfigError::new(name, "`${` without a closing `}`")
                            .at(n as u64 + 1, i as u64 + 1)
                            .with_fix(
                                "write `${VAR}` or `${VAR:-default}`; `$${` is a literal `${`",
                            ));
                    };
                    let inner = &line[i + 2..i + 2 + len];
                    let (var, default) = match inner.split_once(":-") {
                        Some((v, d)) => (v, Some(d)),
                        None => (inner, None),
                    };
                    let valid = !var.is_empty()
                        && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !var.starts_with(|c: char| c.is_ascii_digit());
                    if !valid {
                        return Err(ConfigError::new(
                            name,
                            format!("`${{{inner}}}` does not name an environment variable"),
                        )
                        .at(n as u64 + 1, i as u64 + 1)
                        .with_fix(
                            "variable names are letters, digits and `_`, e.g. `${TARGET_URL}`",
                        ));
                    }
                    match lookup(var).or(default.map(str::to_string)) {
                        Some(v) => out.push_str(&v),
                        None => {
                            return Err(ConfigError::new(
                                name,
                                format!("environment variable `{var}` is not set"),
                            )
                            .at(n as u64 + 1, i as u64 + 1)
                            .with_fix(format!(
                                "export {var}=…, or give a default: `${{{var}:-value}}`"
                            )));
                        }
                    }
                    i += 3 + len;
                    continue;
                }
                _ => {}
            }
            let ch = line[i..].chars().next().expect("a char at a boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod interpolation_tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TARGET_URL" => Some("https://api.example.test".into()),
            "POD_IP" => Some("10.0.0.7".into()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_and_defaults_and_leaves_comments_and_escapes() {
        let text = "url: \"${TARGET_URL}\"\n# ${UNSET} in a comment\npublic: http://${POD_IP}:8090/hook # ${ALSO_UNSET}\nshard: ${SHARD:-0}\nlit: \"$${HOME}\"\n";
        let got = interpolate_env("s.yaml", text, env).unwrap();
        assert_eq!(
            got,
            "url: \"https://api.example.test\"\n# ${UNSET} in a comment\npublic: http://10.0.0.7:8090/hook # ${ALSO_UNSET}\nshard: 0\nlit: \"${HOME}\"\n"
        );
    }

    #[test]
    fn an_unset_variable_is_an_error_at_its_place_with_the_fix() {
        let e = interpolate_env("s.yaml", "name: x\n  url: ${NOPE}\n", env).unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(8)));
        assert!(e.message.contains("`NOPE` is not set"), "{e:?}");
        assert!(e.fix.unwrap().contains("${NOPE:-value}"));
        let e = interpolate_env("s.yaml", "url: ${TARGET URL}\n", env).unwrap_err();
        assert!(e.message.contains("does not name"), "{e:?}");
        let e = interpolate_env("s.yaml", "url: ${OPEN\n", env).unwrap_err();
        assert!(e.message.contains("closing"), "{e:?}");
    }
}

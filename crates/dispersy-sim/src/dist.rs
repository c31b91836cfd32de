//! Durations as scenario files write them, random distributions, and seed derivation.
//!
//! Every random choice in a run draws from a ChaCha stream derived from the scenario's one
//! seed and a label ("net", "churn", "node" + index ...), so adding a consumer of randomness in
//! one place does not shift the draws anywhere else.

use std::fmt;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// The random number generator of every simulator stream.
pub type SimRng = ChaCha8Rng;

/// Longest duration a distribution may produce; keeps heavy tails from overflowing the clock.
pub const MAX_SAMPLE: Duration = Duration::from_secs(1_000_000_000);

/// A duration in a scenario file: a number of seconds (`2.5`) or a string with a unit
/// (`"500us"`, `"250ms"`, `"30s"`, `"2m"`, `"1h"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

impl Span {
    /// A span of whole seconds.
    pub const fn secs(s: u64) -> Span {
        Span(Duration::from_secs(s))
    }

    /// A span of whole milliseconds.
    pub const fn millis(ms: u64) -> Span {
        Span(Duration::from_millis(ms))
    }

    /// Microseconds, saturating.
    pub fn as_micros(self) -> u64 {
        u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX)
    }
}

/// Parses `"250ms"`-style text; see [`Span`].
pub fn parse_span(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected e.g. \"250ms\" or \"30s\""))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("bad duration unit {other:?} in {text:?}")),
    };
    secs_to_duration(value * scale).ok_or_else(|| format!("duration {text:?} out of range"))
}

fn secs_to_duration(secs: f64) -> Option<Duration> {
    if secs.is_finite() && (0.0..=MAX_SAMPLE.as_secs_f64()).contains(&secs) {
        Some(Duration::from_secs_f64(secs))
    } else {
        None
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SpanVisitor)
    }
}

struct SpanVisitor;

impl<'de> Visitor<'de> for SpanVisitor {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration: seconds as a number, or a string such as \"250ms\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        parse_span(v).map(Span).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Span, E> {
        secs_to_duration(v)
            .map(Span)
            .ok_or_else(|| E::custom(format!("duration {v} s out of range")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Span, E> {
        u64::try_from(v)
            .map(Span::secs)
            .map_err(|_| E::custom("negative duration"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Span, E> {
        Ok(Span::secs(v))
    }
}

/// A distribution of durations. In a scenario file either a plain duration (fixed) or a table
/// with a `kind`: `{ kind = "exponential", mean = "30s" }`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Dist {
    /// Always the same value.
    Fixed {
        /// The value.
        value: Span,
    },
    /// Uniform on `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Span,
        /// Upper bound.
        max: Span,
    },
    /// Exponential with the given mean (memoryless sessions, Poisson arrivals).
    Exponential {
        /// Mean.
        mean: Span,
    },
    /// Normal, truncated at zero.
    Normal {
        /// Mean.
        mean: Span,
        /// Standard deviation.
        stddev: Span,
    },
    /// Pareto (heavy tail): `scale / U^(1/shape)`, at least `scale`.
    Pareto {
        /// Minimum value.
        scale: Span,
        /// Tail index; smaller is heavier.
        shape: f64,
    },
}

impl Default for Dist {
    fn default() -> Self {
        Dist::ZERO
    }
}

/// The table form of [`Dist`]; the plain-duration form is handled by hand.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum DistTable {
    Fixed { value: Span },
    Uniform { min: Span, max: Span },
    Exponential { mean: Span },
    Normal { mean: Span, stddev: Span },
    Pareto { scale: Span, shape: f64 },
}

impl<'de> Deserialize<'de> for Dist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DistVisitor)
    }
}

struct DistVisitor;

impl<'de> Visitor<'de> for DistVisitor {
    type Value = Dist;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration, or a table such as { kind = \"exponential\", mean = \"30s\" }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Dist, E> {
        SpanVisitor.visit_str(v).map(Dist::fixed)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dist, E> {
        SpanVisitor.visit_f64(v).map(Dist::fixed)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dist, E> {
        SpanVisitor.visit_i64(v).map(Dist::fixed)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dist, E> {
        SpanVisitor.visit_u64(v).map(Dist::fixed)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Dist, A::Error> {
        let table = DistTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let dist = match table {
            DistTable::Fixed { value } => Dist::Fixed { value },
            DistTable::Uniform { min, max } => Dist::Uniform { min, max },
            DistTable::Exponential { mean } => Dist::Exponential { mean },
            DistTable::Normal { mean, stddev } => Dist::Normal { mean, stddev },
            DistTable::Pareto { scale, shape } => Dist::Pareto { scale, shape },
        };
        dist.validate().map_err(de::Error::custom)?;
        Ok(dist)
    }
}

impl Dist {
    /// Always zero.
    pub const ZERO: Dist = Dist::Fixed {
        value: Span(Duration::ZERO),
    };

    /// A fixed value.
    pub fn fixed(value: Span) -> Dist {
        Dist::Fixed { value }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Dist::Uniform { min, max } if min > max => {
                Err(format!("uniform: min {min:?} exceeds max {max:?}"))
            }
            Dist::Pareto { shape, .. } if !(shape.is_finite() && *shape > 0.0) => {
                Err(format!("pareto: shape must be positive, got {shape}"))
            }
            _ => Ok(()),
        }
    }

    /// True when every sample is zero (lets hot paths skip a draw).
    pub fn is_zero(&self) -> bool {
        matches!(self, Dist::Fixed { value } if value.0.is_zero())
    }

    /// Draws one value, at most [`MAX_SAMPLE`].
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let secs = match self {
            Dist::Fixed { value } => return value.0,
            Dist::Uniform { min, max } => {
                let (a, b) = (min.as_micros(), max.as_micros());
                return Duration::from_micros(if a >= b { a } else { rng.gen_range(a..=b) });
            }
            Dist::Exponential { mean } => -mean.0.as_secs_f64() * open01(rng).ln(),
            Dist::Normal { mean, stddev } => {
                let z = (-2.0 * open01(rng).ln()).sqrt()
                    * (std::f64::consts::TAU * rng.r#gen::<f64>()).cos();
                mean.0.as_secs_f64() + stddev.0.as_secs_f64() * z
            }
            Dist::Pareto { scale, shape } => scale.0.as_secs_f64() / open01(rng).powf(1.0 / shape),
        };
        secs_to_duration(secs.max(0.0)).unwrap_or(MAX_SAMPLE)
    }
}

/// A uniform draw on (0, 1]: safe to take the logarithm of.
fn open01<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    1.0 - rng.r#gen::<f64>()
}

/// True with probability `p` (no draw when `p` is zero).
pub fn chance<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    p > 0.0 && rng.r#gen::<f64>() < p
}

/// Derives a 32-byte seed from the run's seed, a label and an index.
pub fn derive_seed(master: u64, label: &str, index: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"dispersy-sim seed v1\0");
    h.update(master.to_le_bytes());
    h.update((label.len() as u64).to_le_bytes());
    h.update(label.as_bytes());
    h.update(index.to_le_bytes());
    h.finalize().into()
}

/// A fresh stream for `label`/`index` of the run seeded with `master`.
pub fn stream(master: u64, label: &str, index: u64) -> SimRng {
    SimRng::from_seed(derive_seed(master, label, index))
}

/// Checks that `p` is a probability.
pub fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!("{name} must be a probability in [0, 1], got {p}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        d: Dist,
        s: Span,
    }

    fn parse(text: &str) -> Result<Holder, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn spans_parse_units_and_numbers() {
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_span("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_span("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_span("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_span("-1s").is_err());
        assert!(parse_span("5 parsecs").is_err());
        assert!(parse_span("1e300s").is_err());
        let h = parse("d = 3\ns = \"20ms\"").unwrap();
        assert_eq!(h.d, Dist::fixed(Span::secs(3)));
        assert_eq!(h.s, Span::millis(20));
    }

    #[test]
    fn dists_parse_tables_and_reject_nonsense() {
        let h = parse("s = 1\nd = { kind = \"exponential\", mean = \"30s\" }").unwrap();
        assert_eq!(
            h.d,
            Dist::Exponential {
                mean: Span::secs(30)
            }
        );
        assert!(parse("s = 1\nd = { kind = \"uniform\", min = 5, max = 1 }").is_err());
        assert!(parse("s = 1\nd = { kind = \"pareto\", scale = 1, shape = 0.0 }").is_err());
        assert!(parse("s = 1\nd = { kind = \"weibull\", mean = 1 }").is_err());
        assert!(parse("s = 1\nd = { kind = \"fixed\", value = 1, extra = 2 }").is_err());
    }

    #[test]
    fn sample_means_match() {
        let mut rng = stream(7, "test", 0);
        let n = 20_000;
        for (dist, mean) in [
            (
                Dist::Exponential {
                    mean: Span::secs(30),
                },
                30.0,
            ),
            (
                Dist::Uniform {
                    min: Span::secs(10),
                    max: Span::secs(20),
                },
                15.0,
            ),
            (
                Dist::Normal {
                    mean: Span::secs(50),
                    stddev: Span::secs(5),
                },
                50.0,
            ),
            (
                Dist::Pareto {
                    scale: Span::secs(1),
                    shape: 3.0,
                },
                1.5,
            ),
        ] {
            let total: f64 = (0..n).map(|_| dist.sample(&mut rng).as_secs_f64()).sum();
            let got = total / f64::from(n);
            assert!((got - mean).abs() < mean * 0.05, "{dist:?}: mean {got}");
        }
    }

    #[test]
    fn streams_are_independent_and_reproducible() {
        let a: u64 = stream(1, "net", 0).r#gen();
        assert_eq!(a, stream(1, "net", 0).r#gen::<u64>());
        assert_ne!(a, stream(1, "net", 1).r#gen::<u64>());
        assert_ne!(a, stream(1, "churn", 0).r#gen::<u64>());
        assert_ne!(a, stream(2, "net", 0).r#gen::<u64>());
    }
}

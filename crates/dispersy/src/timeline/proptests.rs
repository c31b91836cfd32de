//! Property tests: every answer is a function of the set of messages held, agrees with the
//! naive reference model, and every changed answer is reported by the delta.
//!
//! Each test prints its seed; `DISPERSY_SEED=<seed>` reproduces a run, `TIMELINE_CASES=<n>`
//! changes the number of cases.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::reference::Reference;
use super::tests::{DYNAMIC, MASTER, PROTECTED, PUBLIC, member, metas};
use super::*;
use crate::wire::builtin::Permissions;

const MEMBERS: u8 = 5;
const METAS: [MetaId; 5] = [
    PROTECTED,
    DYNAMIC,
    PUBLIC,
    MetaId(byte::DYNAMIC_SETTINGS),
    MetaId(byte::DESTROY_COMMUNITY),
];
const BITS: [Permissions; 4] = [
    Permissions::PERMIT,
    Permissions::AUTHORIZE,
    Permissions::REVOKE,
    Permissions::UNDO,
];
/// Messages get global times 1..=20; queries look at 0..=HORIZON.
const HORIZON: u64 = 22;

#[derive(Debug, Clone)]
struct Case {
    messages: Vec<PermissionMessage>,
    order_seed: u64,
    remove: Vec<bool>,
}

/// A meta-message, mostly the protected and dynamic ones.
fn meta() -> impl Strategy<Value = MetaId> {
    prop_oneof![8 => Just(0usize), 3 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)]
        .prop_map(|i| METAS[i])
}

/// Permission bits, each likely enough that delegation chains form.
fn bits() -> impl Strategy<Value = Permissions> {
    (
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.6),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(p, a, r, u)| {
            let bits = [p, a, r, u]
                .iter()
                .zip(BITS)
                .filter(|(on, _)| **on)
                .fold(Permissions::default(), |acc, (_, bit)| acc.union(bit));
            if bits.0 == 0 {
                Permissions::AUTHORIZE
            } else {
                bits
            }
        })
}

/// Grants to 1-2 members, on one meta-message (usually) or two.
fn grants() -> impl Strategy<Value = Vec<Grant>> {
    let one = (0..MEMBERS, bits());
    (
        meta(),
        vec(one, 1..=2),
        prop::option::weighted(0.2, (meta(), 0..MEMBERS, bits())),
    )
        .prop_map(|(meta, members, extra)| {
            let mut grants: Vec<Grant> = members
                .into_iter()
                .map(|(m, permissions)| Grant {
                    member: member(m),
                    meta,
                    permissions,
                })
                .collect();
            if let Some((meta, m, permissions)) = extra {
                grants.push(Grant {
                    member: member(m),
                    meta,
                    permissions,
                });
            }
            grants
        })
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => grants().prop_map(Kind::Authorize),
        2 => grants().prop_map(Kind::Revoke),
        2 => (0u8..2).prop_map(|i| Kind::DynamicSettings(vec![(DYNAMIC, i)])),
        1 => any::<bool>().prop_map(|hard| Kind::DestroyCommunity(if hard {
            DestroyKind::Hard
        } else {
            DestroyKind::Soft
        })),
    ]
}

/// Authors: the master a third of the time.
fn author() -> impl Strategy<Value = u8> {
    prop_oneof![2 => Just(0u8), 4 => 1..MEMBERS]
}

fn message() -> impl Strategy<Value = PermissionMessage> {
    // The master writes early (global times 1-12) so that delegations have room to grow; a
    // one-byte tiebreak makes equal tiebreaks common, so the message-id fallback is exercised.
    (author(), 0u64..20, any::<u8>(), kind()).prop_map(|(author, t, tiebreak, kind)| {
        let t = if author == 0 { 1 + t * 12 / 20 } else { 1 + t };
        PermissionMessage {
            id: MessageId {
                member: member(author),
                global_time: GlobalTime(t),
            },
            tiebreak: Tiebreak([tiebreak; 32]),
            kind,
        }
    })
}

fn case() -> impl Strategy<Value = Case> {
    (vec(message(), 1..=40), any::<u64>(), vec(any::<bool>(), 40)).prop_map(
        |(messages, order_seed, remove)| {
            let mut seen = BTreeSet::new();
            let messages = messages.into_iter().filter(|m| seen.insert(m.id)).collect();
            Case {
                messages,
                order_seed,
                remove,
            }
        },
    )
}

/// Runs `test` on `TIMELINE_CASES` (default 64) random cases from a printed seed.
#[allow(clippy::print_stderr)]
fn run(name: &str, test: impl Fn(Case) -> Result<(), TestCaseError>) {
    let seed: u64 = std::env::var("DISPERSY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let cases = std::env::var("TIMELINE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    eprintln!("{name}: DISPERSY_SEED={seed} TIMELINE_CASES={cases}");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    if let Err(e) = runner.run(&case(), test) {
        panic!("{name} failed with DISPERSY_SEED={seed}: {e}");
    }
}

fn new_timeline() -> Timeline {
    Timeline::new(MASTER, metas(), Config::default()).expect("valid meta table")
}

fn build<'a>(messages: impl IntoIterator<Item = &'a PermissionMessage>) -> Timeline {
    let mut tl = new_timeline();
    for m in messages {
        tl.insert(m.clone())
            .expect("generated messages are well-formed");
    }
    tl
}

fn times() -> impl Iterator<Item = GlobalTime> {
    (0..=HORIZON).map(GlobalTime)
}

/// Every answer the timeline gives about the generated domain.
#[derive(Debug, PartialEq)]
struct Snapshot {
    held: Vec<(PermissionMessage, bool)>,
    checks: Vec<Verdict>,
    message_checks: Vec<Verdict>,
    policies: Vec<ActivePolicy>,
    permissions: Vec<BTreeMap<MetaId, Permissions>>,
    justifications: Vec<Option<Verdict>>,
    chains: Vec<Vec<MessageId>>,
    destruction: Option<Destruction>,
    effective: usize,
}

fn snapshot(tl: &Timeline) -> Snapshot {
    let mut s = Snapshot {
        held: tl.messages().map(|(m, e)| (m.clone(), e)).collect(),
        checks: Vec::new(),
        message_checks: Vec::new(),
        policies: times()
            .map(|t| tl.policy(DYNAMIC, t).expect("dynamic meta"))
            .collect(),
        permissions: Vec::new(),
        justifications: tl
            .messages()
            .map(|(m, _)| tl.justification(&m.id))
            .collect(),
        chains: tl.messages().map(|(m, _)| tl.proof_chain([m.id])).collect(),
        destruction: tl.destruction(),
        effective: tl.stats().effective,
    };
    for who in (0..MEMBERS).map(member) {
        for t in times() {
            s.permissions.push(tl.permissions(who, t));
            for meta in METAS {
                s.message_checks
                    .push(tl.check_message(who, meta, t).expect("known meta"));
                for bit in BITS {
                    s.checks.push(tl.check(who, meta, bit, t));
                }
            }
        }
    }
    s
}

fn agrees_with_reference(tl: &Timeline) -> Result<(), TestCaseError> {
    let held: Vec<PermissionMessage> = tl.messages().map(|(m, _)| m.clone()).collect();
    let reference = Reference::new(MASTER, held);
    for (id, effective) in reference.effective() {
        prop_assert_eq!(
            tl.is_effective(id),
            Some(*effective),
            "effectiveness of {:?}",
            id
        );
        let judged = tl.justification(id).map(|v| v.allowed);
        prop_assert_eq!(judged, Some(*effective), "justification of {:?}", id);
    }
    for who in (0..MEMBERS).map(member) {
        for meta in METAS {
            for bit in BITS {
                for t in times() {
                    let v = tl.check(who, meta, bit, t);
                    let (allowed, proof) = reference.holds(who, meta, bit, t);
                    prop_assert_eq!(
                        (v.allowed, &v.proof),
                        (allowed, &proof),
                        "check {:?} {} {} at {}",
                        who,
                        meta,
                        bit.name(),
                        t
                    );
                }
            }
        }
    }
    for t in times() {
        let p = tl.policy(DYNAMIC, t).expect("dynamic meta");
        let (index, proof) = reference.policy(DYNAMIC, t);
        prop_assert_eq!((p.index, p.proof), (Some(index), proof), "policy at {}", t);
    }
    let destruction = tl.destruction().map(|d| (d.kind, d.by));
    prop_assert_eq!(destruction, reference.destruction());
    Ok(())
}

/// The answers a delta must account for.
#[derive(Debug, PartialEq)]
struct Answers {
    checks: BTreeMap<(MemberId, MetaId, Permissions, GlobalTime), bool>,
    messages: BTreeMap<(MemberId, MetaId, GlobalTime), bool>,
    undo_other: BTreeMap<(MemberId, MetaId, GlobalTime), bool>,
    policies: BTreeMap<GlobalTime, Option<u8>>,
    effective: BTreeMap<MessageId, bool>,
    destruction: Option<Destruction>,
}

fn answers(tl: &Timeline) -> Answers {
    let mut a = Answers {
        checks: BTreeMap::new(),
        messages: BTreeMap::new(),
        undo_other: BTreeMap::new(),
        policies: times()
            .map(|t| (t, tl.policy(DYNAMIC, t).expect("dynamic meta").index))
            .collect(),
        effective: tl.messages().map(|(m, e)| (m.id, e)).collect(),
        destruction: tl.destruction(),
    };
    for who in (0..MEMBERS).map(member) {
        for meta in METAS {
            for t in times() {
                let allowed = tl.check_message(who, meta, t).expect("known meta").allowed;
                a.messages.insert((who, meta, t), allowed);
                a.undo_other
                    .insert((who, meta, t), tl.check_undo_other(who, meta, t).allowed);
                for bit in BITS {
                    a.checks
                        .insert((who, meta, bit, t), tl.check(who, meta, bit, t).allowed);
                }
            }
        }
    }
    a
}

/// Every answer that changed between `before` and `after` is covered by `delta`.
fn delta_is_complete(
    before: &Answers,
    after: &Answers,
    delta: &Delta,
    subject: MessageId,
) -> Result<(), TestCaseError> {
    for (key, allowed) in &after.checks {
        if before.checks.get(key) != Some(allowed) {
            let (who, meta, bit, t) = *key;
            let covered = delta.holdings.iter().any(|h| {
                h.member == who && h.meta == meta && h.permission == bit && h.range.contains(t)
            });
            prop_assert!(covered, "unreported change of {:?} in {:?}", key, delta);
        }
    }
    let recheck = delta.recheck_messages();
    for (key, allowed) in &after.messages {
        if before.messages.get(key) != Some(allowed) {
            let covered = recheck.get(&key.1).is_some_and(|r| r.contains(key.2));
            prop_assert!(covered, "unreported verdict {:?} in {:?}", key, delta);
        }
    }
    let recheck = delta.recheck_undo_other();
    for (key, allowed) in &after.undo_other {
        if before.undo_other.get(key) != Some(allowed) {
            let covered = recheck.get(&key.1).is_some_and(|r| r.contains(key.2));
            prop_assert!(covered, "unreported undo verdict {:?} in {:?}", key, delta);
        }
    }
    for (t, index) in &after.policies {
        if before.policies.get(t) != Some(index) {
            let covered = delta.policies.iter().any(|p| p.range.contains(*t));
            prop_assert!(covered, "unreported policy change at {} in {:?}", t, delta);
        }
    }
    let flips = |to: bool| -> Vec<MessageId> {
        after
            .effective
            .iter()
            .filter(|(id, e)| {
                **id != subject && **e == to && before.effective.get(id) == Some(&!to)
            })
            .map(|(id, _)| *id)
            .collect()
    };
    let sort = |mut v: Vec<MessageId>| {
        v.sort_by_key(|id| (id.global_time, id.member));
        v
    };
    prop_assert_eq!(sort(flips(true)), delta.became_effective.clone());
    prop_assert_eq!(sort(flips(false)), delta.became_ineffective.clone());
    prop_assert_eq!(
        before.destruction != after.destruction,
        delta.destruction_changed
    );
    Ok(())
}

#[test]
fn answers_depend_only_on_the_set() {
    run("answers_depend_only_on_the_set", |case| {
        let mut rng = ChaCha8Rng::seed_from_u64(case.order_seed);
        let baseline = build(&case.messages);
        let expected = snapshot(&baseline);
        agrees_with_reference(&baseline)?;
        let mut reversed = case.messages.clone();
        reversed.reverse();
        prop_assert_eq!(&snapshot(&build(&reversed)), &expected, "reversed order");
        for _ in 0..3 {
            let mut order = case.messages.clone();
            order.shuffle(&mut rng);
            prop_assert_eq!(&snapshot(&build(&order)), &expected, "order {:?}", order);
        }
        Ok(())
    });
}

#[test]
fn removal_leaves_the_timeline_of_the_remaining_set() {
    run("removal_leaves_the_timeline_of_the_remaining_set", |case| {
        let mut rng = ChaCha8Rng::seed_from_u64(case.order_seed);
        let mut order = case.messages.clone();
        order.shuffle(&mut rng);
        let mut tl = build(&order);
        let (gone, kept): (Vec<_>, Vec<_>) = case
            .messages
            .iter()
            .enumerate()
            .partition(|(i, _)| case.remove.get(*i).copied().unwrap_or(false));
        let mut gone: Vec<&PermissionMessage> = gone.into_iter().map(|(_, m)| m).collect();
        gone.shuffle(&mut rng);
        for m in gone {
            let (removed, _) = tl.remove(&m.id).expect("held");
            prop_assert_eq!(removed.id, m.id);
        }
        let mut kept: Vec<&PermissionMessage> = kept.into_iter().map(|(_, m)| m).collect();
        kept.shuffle(&mut rng);
        prop_assert_eq!(snapshot(&tl), snapshot(&build(kept)));
        agrees_with_reference(&tl)
    });
}

#[test]
fn deltas_report_every_changed_answer() {
    run("deltas_report_every_changed_answer", |case| {
        let mut rng = ChaCha8Rng::seed_from_u64(case.order_seed);
        let mut order = case.messages.clone();
        order.shuffle(&mut rng);
        let mut tl = new_timeline();
        let mut before = answers(&tl);
        for m in &order {
            let delta = tl.insert(m.clone()).expect("well-formed");
            prop_assert_eq!(Some(delta.effective), tl.is_effective(&m.id));
            let after = answers(&tl);
            delta_is_complete(&before, &after, &delta, m.id)?;
            before = after;
        }
        order.shuffle(&mut rng);
        for (m, remove) in order.iter().zip(&case.remove) {
            if !remove {
                continue;
            }
            let was = tl.is_effective(&m.id);
            let (_, delta) = tl.remove(&m.id).expect("held");
            prop_assert_eq!(Some(delta.effective), was);
            let after = answers(&tl);
            delta_is_complete(&before, &after, &delta, m.id)?;
            before = after;
        }
        Ok(())
    });
}
